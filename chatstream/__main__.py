"""``python -m chatstream``: the command-line tool."""

import sys

from .cli.command import main

sys.exit(main())
