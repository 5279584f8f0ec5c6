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
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: How long the server may take to accept queries after it is spawned, in seconds.
START_TIMEOUT_S = 30.0
#: How long each stop step (SIGINT, SIGQUIT, SIGKILL) may take, in seconds.
STOP_TIMEOUT_S = 10.0
#: Attempts with fresh ports when another process took a chosen port between choosing and binding.
START_ATTEMPTS = 3
SUPERUSER = "postgres"
#: Unix socket paths longer than this do not fit `sockaddr_un` (108 bytes with the terminating NUL).
MAX_SOCKET_PATH = 100


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on `host` (an IPv4 address) now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def postgres_bin_dir() -> Path:
    """The bin directory of the highest PostgreSQL version installed by Debian's packages."""
    found = []
    for binary in Path("/usr/lib/postgresql").glob("*/bin/postgres"):
        version = tuple(int(part) for part in re.findall(r"\d+", binary.parents[1].name))
        found.append((version, binary.parent))
    if not found:
        raise RuntimeError("no /usr/lib/postgresql/*/bin/postgres: install the Debian package `postgresql`")
    return max(found)[1]


def _service_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run as when we are root (PostgreSQL refuses root); None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and there is neither a `postgres` nor a `nobody` user to run PostgreSQL as")


def _pg_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's PG* settings (they would redirect or alter our connections)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    return {**env, "LC_ALL": "C", **extra}


@dataclass
class PostgresServer:
    """A running PostgreSQL server. `url` carries the password of `user`, who owns `database`."""

    directory: Path
    port: int
    user: str
    password: str
    database: str
    host: str = "127.0.0.1"
    run_as: pwd.struct_passwd | None = field(default=None, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"postgres://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "run"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def _as_service_user(self, command: Sequence[str]) -> list[str]:
        if self.run_as is None:
            return list(command)
        user = self.run_as
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--", *command]

    def init(self) -> None:
        """Create the cluster (`initdb`) with socket-only trust for the superuser and passwords over TCP."""
        for path in (self.directory, self.data_dir, self.socket_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.run_as is not None:
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
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
        if self.process is not None:
            raise RuntimeError("postgres is running already")
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
        began = time.monotonic()
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                self._as_service_user(command), cwd=self.directory, env=_pg_env(), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - began

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.output()}")
            try:
                self.admin_psql("SELECT 1")
                return
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not answer within {START_TIMEOUT_S} s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server by its pid: fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL; data stays."""
        process, self.process = self.process, None
        if process is None:
            return
        for stop in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            if process.poll() is not None:
                return
            process.send_signal(stop)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
                return
            except subprocess.TimeoutExpired:
                continue

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

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


@contextmanager
def postgres_server(tmp_dir: Path, host: str = "127.0.0.1") -> Iterator[PostgresServer]:
    """A started PostgreSQL server on `host` with its data in `tmp_dir` (or under /tmp, see above), stopped on exit."""
    run_as = _service_user()
    directory = Path(tmp_dir) / "postgres"
    fresh: Path | None = None
    if run_as is not None or len(str(directory / "run" / ".s.PGSQL.65535")) > MAX_SOCKET_PATH:
        fresh = Path(tempfile.mkdtemp(prefix="pywhisk-pg-", dir="/tmp"))
        fresh.chmod(0o755)
        directory = fresh
    server = PostgresServer(
        directory=directory, port=free_port(host), user="pywhisk", password=secrets.token_hex(16), database="pywhisk",
        host=host, run_as=run_as,
    )
    try:
        server.init()
        for attempt in range(START_ATTEMPTS):
            try:
                server.start()
                break
            except RuntimeError:
                if attempt + 1 == START_ATTEMPTS or "already in use" not in server.output():
                    raise
                server.port = free_port(host)
        server.create_login()
        yield server
    finally:
        server.stop()
        if fresh is not None:
            if server.log_path.exists():
                Path(tmp_dir).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(server.log_path, Path(tmp_dir) / "postgres.log")
            shutil.rmtree(fresh, ignore_errors=True)
