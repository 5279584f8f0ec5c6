"""Two benchmark runs side by side: each measurement's value and its added-or-ratio in both, and the change.

    python -m bench.compare bench/results/before.json bench/results/latest.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def load_rows(path: Path) -> dict[str, dict[str, Any]]:
    """A results file's table rows by measurement (a repeated measurement is keyed with its baseline too)."""
    rows: dict[str, dict[str, Any]] = {}
    for row in json.loads(path.read_text())["table"]:
        key = row["measurement"] if row["measurement"] not in rows else f"{row['measurement']} vs {row['baseline']}"
        rows[key] = row
    return rows


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    compared = f"{row['comparison']:+.2f}" if row["compare"] == "added" else f"x{row['comparison']:.2f}"
    return f"{row['value']:.2f} {row['unit']} ({compared})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    before, after = load_rows(args.before), load_rows(args.after)
    lines = [("measurement", str(args.before.name), str(args.after.name), "change")]
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key), after.get(key)
        change = f"{(new['value'] / old['value'] - 1) * 100:+.0f}%" if old and new and old["value"] else "-"
        lines.append((key, _cell(old), _cell(new), change))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    for line in lines:
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
