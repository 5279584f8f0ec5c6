"""`pywsk` entry point: `main(argv=None) -> int`."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run pywsk with `argv` (default: the process arguments) and return the exit code."""
    from pywsk.cli import main as cli_main

    try:
        return cli_main(argv)
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
