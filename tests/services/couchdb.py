"""A CouchDB-compatible server for tests: npm `pouchdb-server`, pinned in `deploy/services/couchdb/`.

`couchdb_server(tmp_dir, host)` installs it on first use (`npm ci`, under a file lock so concurrent test runs install
once), starts it on a free port of `host` only (127.0.0.1 unless the caller gives another IPv4 address of this
machine, e.g. the gateway of a Docker bridge network, where containers can reach it) with its data on disk in
`tmp_dir`, an admin user with a random password, and `NODE_OPTIONS=--unhandled-rejections=warn` (without it, some
bad requests crash the server). It waits until `GET /` answers and stops the server by its pid on exit. `stop()` and
`start()` take it down and bring it back on the same port and data, for tests of what clients do while the database
is gone.

pouchdb-server differs from CouchDB 3.x (see DESIGN.md): without admins it is an "admin party"; with one, as here,
creating or deleting a database needs the admin's credentials, and an unauthenticated attempt is never answered.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from yarl import URL

from tests.services.npm import npm_ci
from tests.services.server import ServerProcess, free_port

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "services" / "couchdb"
SERVER_JS = PACKAGE_DIR / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"
ADMIN = "admin"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def install() -> None:
    """Install pouchdb-server from the lockfile unless it is there already."""
    npm_ci(PACKAGE_DIR, SERVER_JS)


@dataclass
class CouchServer(ServerProcess):
    """A running pouchdb-server. `url` carries the admin's credentials."""

    program = "pouchdb-server"
    start_timeout_s = STARTUP_TIMEOUT_S
    stop_timeout_s = STOP_TIMEOUT_S

    directory: Path
    port: int
    password: str
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{ADMIN}:{self.password}@{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.out"

    def start(self) -> None:
        """Start the server on its port and data directory, and wait until it answers."""
        self._refuse_if_running()
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.json"
        if not config.exists():
            config.write_text(
                json.dumps(
                    {
                        "admins": {ADMIN: self.password},
                        "log": {"file": str(self.directory / "couchdb.log"), "level": "warning"},
                    }
                )
            )
        # the config file gets the admin's password hashed into it on the first start; keep it across restarts
        env = {**os.environ, "NODE_OPTIONS": "--unhandled-rejections=warn"}
        command = ["node", str(SERVER_JS), "--host", self.host, "--port", str(self.port)]
        command += ["--dir", str(data), "--config", str(config), "--no-stdout-logs", "--no-color"]
        self._launch(command, self._answers, cwd=self.directory, env=env, stdin=None)

    def _answers(self) -> bool:
        request = urllib.request.Request(f"http://{self.host}:{self.port}/", headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=1.0) as response:
                json.load(response)
                return True
        except (urllib.error.URLError, OSError, ValueError):
            return False


@contextmanager
def couchdb_server(tmp_dir: Path, host: str = "127.0.0.1") -> Iterator[CouchServer]:
    """A started pouchdb-server on `host` with its data in `tmp_dir`, stopped on exit."""
    install()
    server = CouchServer(directory=Path(tmp_dir), port=free_port(host), password=secrets.token_hex(16), host=host)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def drop_databases(url: str, prefix: str) -> None:
    """Test helper: delete the store's databases under `prefix` (missing ones are fine)."""
    parsed = URL(url)
    credentials = base64.b64encode(f"{parsed.user}:{parsed.password}".encode()).decode("ascii")
    base = str(parsed.with_user(None).with_password(None)).rstrip("/")
    headers = {"Accept": "application/json", "Authorization": f"Basic {credentials}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for name in ("subjects", "whisks", "activations", "feeds"):
            async with session.delete(f"{base}/{prefix}{name}") as response:
                if response.status not in (200, 202, 404):
                    raise RuntimeError(f"deleting {prefix}{name} answered {response.status}: {await response.text()}")
