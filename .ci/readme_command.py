"""Print command N (1-based) of the Quick start code block in README.rst.

.ci/run uses it so that CI runs exactly the command the README gives.
"""

import sys
from pathlib import Path


def quick_start_commands(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Quick start")
    block = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith("::"))
    commands = []
    for line in lines[block + 1 :]:
        if line.strip() and not line.startswith(" "):
            break
        if line.strip():
            commands.append(line.strip())
    return commands


if __name__ == "__main__":
    readme = Path(__file__).resolve().parent.parent / "README.rst"
    print(quick_start_commands(readme.read_text(encoding="utf-8"))[int(sys.argv[1]) - 1])
