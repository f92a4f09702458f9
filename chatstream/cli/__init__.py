"""The ``chatstream`` command: ``chat``, ``replay``, ``demo`` and ``record``.

The command line is a face of the library like any other: it uses only the public
client and the core, plus the rendering, recording and advice modules of this package.
"""

from .command import main

__all__ = ["main"]
