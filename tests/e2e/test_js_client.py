"""The official OpenWhisk JavaScript client (npm `openwhisk`, pinned in tests/clients/js/ and installed by the test
tooling) drives the platform unchanged: actions, activations, packages, triggers, rules, feeds and routes."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from pathlib import Path

from tests.e2e.platform import Platform
from tests.services.npm import npm_ci

CLIENT_DIR = Path(__file__).resolve().parents[1] / "clients" / "js"
DRIVE_TIMEOUT_S = 300


async def test_the_openwhisk_js_client_drives_the_whole_programming_model(platform: Platform) -> None:
    await asyncio.to_thread(npm_ci, CLIENT_DIR, CLIENT_DIR / "node_modules" / "openwhisk" / "package.json")
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "__OW_API_HOST": platform.api_host,
        "__OW_API_KEY": platform.auth,
        "SUFFIX": secrets.token_hex(4),
    }
    done = await asyncio.to_thread(
        subprocess.run, ["node", str(CLIENT_DIR / "drive.js")], cwd=CLIENT_DIR, env=env, capture_output=True,
        text=True, timeout=DRIVE_TIMEOUT_S, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert done.stdout.count("ok: ") == 8, done.stdout
