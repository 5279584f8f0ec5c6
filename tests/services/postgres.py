"""A PostgreSQL server for tests: Debian's `postgresql`, its `postgres` binary run in the foreground.

`postgres_server(tmp_dir, host)` runs `initdb` and then `postgres` itself (no pg_ctl, no cluster wrappers, no
systemd), so the server is one child process that we stop by its pid. It listens on a free port of `host` only
(127.0.0.1 unless the caller gives another IPv4 address of this machine, e.g. the gateway of a Docker bridge
network, where containers can reach it), with its unix socket in its own directory, `fsync=off` (tests need no
durability) and its log on stdout/stderr in `server.log`. The login `pywhisk` has a random password (scram-sha-256
over TCP: from 127.0.0.1 and, for another `host`, from `samenet`, any address in a subnet of this machine's
interfaces, which covers 127.0.0.0/8 on `lo` and the containers of a Docker bridge whose gateway `host` is) and owns
the database `pywhisk`; the superuser `postgres` is reachable only through the unix socket (`trust`), for set-up.
`stop()` and `start()` take the server down and bring it back on the same port and data, for tests of what clients
do while it is gone.

PostgreSQL refuses to run as root: as root, initdb and postgres run as the `postgres` system user (or `nobody`)
through `setpriv`, in a fresh directory under /tmp that user can reach (pytest's /tmp/pytest-of-root is 0700),
removed on exit. The same fresh directory is used when the unix socket path under `tmp_dir` would be too long.

`start()` and `stop()` block; from a coroutine, call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.services.server import DatabaseServer, free_port, server_directory, service_user, succeeds

#: How long the server may take to accept queries after it is spawned, in seconds.
START_TIMEOUT_S = 30.0
#: How long each stop step (SIGINT, SIGQUIT, SIGKILL) may take, in seconds.
STOP_TIMEOUT_S = 10.0
#: Attempts with fresh ports when another process took a chosen port between choosing and binding.
START_ATTEMPTS = 3
SUPERUSER = "postgres"


def postgres_bin_dir() -> Path:
    """The bin directory of the highest PostgreSQL version installed by Debian's packages."""
    found = []
    for binary in Path("/usr/lib/postgresql").glob("*/bin/postgres"):
        version = tuple(int(part) for part in re.findall(r"\d+", binary.parents[1].name))
        found.append((version, binary.parent))
    if not found:
        raise RuntimeError("no /usr/lib/postgresql/*/bin/postgres: install the Debian package `postgresql`")
    return max(found)[1]


def _pg_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's PG* settings (they would redirect or alter our connections)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    return {**env, "LC_ALL": "C", **extra}


@dataclass
class PostgresServer(DatabaseServer):
    """A running PostgreSQL server. `url` carries the password of `user`, who owns `database`."""

    program = "postgres"
    scheme = "postgres"
    start_timeout_s = START_TIMEOUT_S
    #: fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL
    stop_signals = (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL)
    stop_timeout_s = STOP_TIMEOUT_S

    @property
    def socket_dir(self) -> Path:
        return self.directory / "run"

    def _as_service_user(self, command: Sequence[str]) -> list[str]:
        if self.run_as is None:
            return list(command)
        user = self.run_as
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--", *command]

    def init(self) -> None:
        """Create the cluster (`initdb`) with socket-only trust for the superuser and passwords over TCP."""
        self._make_directories(self.directory, self.data_dir, self.socket_dir, mode=0o700)
        initdb = str(postgres_bin_dir() / "initdb")
        command = [initdb, "-D", str(self.data_dir), "-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync"]
        command += ["--auth-local=trust", "--auth-host=scram-sha-256"]
        done = subprocess.run(
            self._as_service_user(command), cwd=self.directory, env=_pg_env(), capture_output=True, text=True,
            timeout=START_TIMEOUT_S, check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
        # only the socket (set-up) and passwords over 127.0.0.1 (and, when listening elsewhere, from the subnets of
        # this machine's interfaces: the server listens on `host` only); no replication, no IPv6
        rules = ["local all all trust", "host all all 127.0.0.1/32 scram-sha-256"]
        if self.host != "127.0.0.1":
            rules.append("host all all samenet scram-sha-256")
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text("".join(f"{rule}\n" for rule in rules))
        if self.run_as is not None:
            os.chown(hba, self.run_as.pw_uid, self.run_as.pw_gid)

    def start(self) -> None:
        """Start the server on its port and data directory, and wait until it answers queries."""
        self._refuse_if_running()
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
            "password_encryption": "scram-sha-256",
        }
        command = [str(postgres_bin_dir() / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        self._launch(
            self._as_service_user(command), lambda: succeeds(RuntimeError, self.admin_psql, "SELECT 1"),
            cwd=self.directory, env=_pg_env(),
        )

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run `sql` as `user` over TCP with the password (`psql -At`); its output, or RuntimeError with stderr."""
        command = ["-h", self.host, "-U", self.user, "-d", database or self.database]
        return self._run_psql(command, sql, PGPASSWORD=self.password)

    def admin_psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql` as the superuser over the unix socket (set-up and inspection)."""
        return self._run_psql(["-h", str(self.socket_dir), "-U", SUPERUSER, "-d", database], sql)

    def _run_psql(self, target: list[str], sql: str, **env: str) -> str:
        command = [str(postgres_bin_dir() / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-p", str(self.port)]
        done = subprocess.run(
            [*command, *target, "-c", sql], env=_pg_env(PGCONNECT_TIMEOUT="5", **env), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60, check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed (exit {done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def create_login(self) -> None:
        """Create `user` with its password and `database` owned by it."""
        self.admin_psql(f"CREATE ROLE \"{self.user}\" LOGIN PASSWORD '{self.password}'")
        self.admin_psql(f'CREATE DATABASE "{self.database}" OWNER "{self.user}"')


@contextmanager
def postgres_server(tmp_dir: Path, host: str = "127.0.0.1") -> Iterator[PostgresServer]:
    """A started PostgreSQL server on `host` with its data in `tmp_dir` (or under /tmp, see above), stopped on exit."""
    run_as = service_user(SUPERUSER, "PostgreSQL")
    with server_directory(tmp_dir, "postgres", "run/.s.PGSQL.65535", "pywhisk-pg-", run_as is not None) as directory:
        server = PostgresServer(
            directory=directory, port=free_port(host), user="pywhisk", password=secrets.token_hex(16),
            database="pywhisk", host=host, run_as=run_as,
        )
        with server.serving(START_ATTEMPTS):
            yield server
