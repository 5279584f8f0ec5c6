"""Cold start and warm invoke on Docker containers, beside their baselines: an alias of

    python -m bench --only latency,cold --name containers [more flags of python -m bench]

kept for the command it used to be (`python -m bench.containers [--samples N] [--json FILE]`).
"""

from __future__ import annotations

import sys

from bench.__main__ import main as bench_main


def main(argv: list[str] | None = None) -> int:
    return bench_main(["--only", "latency,cold", "--name", "containers", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
