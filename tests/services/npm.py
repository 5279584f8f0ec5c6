"""npm packages the tests run on the host, installed from a pinned lockfile on first use."""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path


def npm_ci(package_dir: Path, needed: Path) -> None:
    """`npm ci` in `package_dir` unless `needed` (a file it installs) is there already; under a file lock, so that
    concurrent test runs install once."""

    def installed() -> bool:
        return (package_dir / "node_modules" / ".package-lock.json").is_file() and needed.is_file()

    if installed():
        return
    with open(package_dir / "node_modules.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return
        result = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", str(package_dir)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"npm ci in {package_dir} failed:\n{result.stdout}\n{result.stderr}")
