"""A MariaDB server for tests: Debian's `mariadb-server`, `mariadbd` run in the foreground.

`mariadb_server(tmp_dir, host)` runs `mariadb-install-db` and then `mariadbd --no-defaults` itself (no mysqld_safe, no
Debian config, no systemd), so the server is one child process that we stop by its pid. It listens on a free port of
`host` only (127.0.0.1 unless the caller gives another IPv4 address of this machine, e.g. the gateway of a Docker
bridge network, where containers can reach it), with its unix socket in its own directory, a small InnoDB (32 MB
buffer pool, 8 MB redo log), no binary log, no performance schema, utf8mb4, and its error log on stderr in
`server.log`. The login `pywhisk` (from any host; the server listens on `host` only) has a random password and every
privilege on the database `pywhisk`; the administrator (root, or the user running the tests) is reachable only
through the unix socket with `unix_socket` authentication, for set-up. `stop()` and `start()` take the server down
and bring it back on the same port and data, for tests of what clients do while it is gone.

As root, mariadbd drops to the `mysql` user (`--user`), which cannot enter pytest's 0700 /tmp/pytest-of-root: the
server's files then go to a fresh directory under /tmp, removed on exit (also when the socket path would be too
long).

`start()` and `stop()` block; from a coroutine, call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: How long the server may take to accept queries after it is spawned, in seconds.
START_TIMEOUT_S = 30.0
#: How long each stop step (SIGTERM, SIGKILL) may take, in seconds.
STOP_TIMEOUT_S = 20.0
#: Attempts with fresh ports when another process took a chosen port between choosing and binding.
START_ATTEMPTS = 3
#: Unix socket paths longer than this do not fit `sockaddr_un` (108 bytes with the terminating NUL).
MAX_SOCKET_PATH = 100
#: Small and fast: tests need neither memory nor durability.
SERVER_OPTIONS = (
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--innodb-use-native-aio=OFF",
    "--innodb-flush-log-at-trx-commit=2",
    "--performance-schema=OFF",
    "--skip-log-bin",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on `host` (an IPv4 address) now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if found:
            return found
    raise RuntimeError(f"none of {', '.join(names)} found: install the Debian package `mariadb-server`")


def _service_user() -> pwd.struct_passwd | None:
    """The user mariadbd drops to when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("mysql", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and there is neither a `mysql` nor a `nobody` user to run MariaDB as")


def _client_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's MYSQL_* settings (they would redirect or alter our connections)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MYSQL")}
    return {**env, **extra}


@dataclass
class MariaDBServer:
    """A running MariaDB server. `url` carries the password of `user`, who may do anything in `database`."""

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
        return f"mysql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_path(self) -> Path:
        return self.directory / "mariadb.sock"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def admin(self) -> str:
        """The account set up for `unix_socket` authentication: the OS user running the tests."""
        return "root" if self.run_as is not None else pwd.getpwuid(os.geteuid()).pw_name

    def _user_option(self) -> list[str]:
        return [f"--user={self.run_as.pw_name}"] if self.run_as is not None else []

    def init(self) -> None:
        """Create the system tables (`mariadb-install-db`) with socket authentication for the administrator."""
        for path in (self.directory, self.data_dir, self.directory / "tmp"):
            path.mkdir(mode=0o750, parents=True, exist_ok=True)
            if self.run_as is not None:
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        command = [_binary("mariadb-install-db", "mysql_install_db"), "--no-defaults", f"--datadir={self.data_dir}"]
        command += ["--auth-root-authentication-method=socket", "--skip-test-db", *self._user_option()]
        if self.run_as is None:
            command.append(f"--auth-root-socket-user={self.admin}")
        command += [f"--tmpdir={self.directory / 'tmp'}", *SERVER_OPTIONS]
        done = subprocess.run(
            command, cwd=self.directory, env=_client_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=120, check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-4000:]
            raise RuntimeError(f"mariadb-install-db failed (exit {done.returncode}):\n{output}")

    def start(self) -> None:
        """Start the server on its port and data directory, and wait until it answers queries."""
        if self.process is not None:
            raise RuntimeError("mariadbd is running already")
        command = [_binary("mariadbd", "mysqld"), "--no-defaults", f"--datadir={self.data_dir}"]
        command += [f"--socket={self.socket_path}", f"--port={self.port}", f"--bind-address={self.host}"]
        command += [f"--pid-file={self.directory / 'mariadbd.pid'}", f"--tmpdir={self.directory / 'tmp'}"]
        command += [*self._user_option(), *SERVER_OPTIONS]
        began = time.monotonic()
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                command, cwd=self.directory, env=_client_env(), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
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
                raise RuntimeError(f"mariadbd exited with {self.process.returncode}:\n{self.output()}")
            try:
                self.admin_sql("SELECT 1")
                return
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd did not answer within {START_TIMEOUT_S} s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server by its pid (SIGTERM: a clean shutdown, then SIGKILL); the data stays."""
        process, self.process = self.process, None
        if process is None:
            return
        for stop in (signal.SIGTERM, signal.SIGKILL):
            if process.poll() is not None:
                return
            process.send_signal(stop)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
                return
            except subprocess.TimeoutExpired:
                continue

    def sql(self, sql: str, database: str | None = None) -> str:
        """Run `sql` as `user` over TCP with the password (`-N -B`); its output, or RuntimeError with stderr."""
        target = ["--protocol=TCP", "-h", self.host, "-P", str(self.port), "-u", self.user, database or self.database]
        return self._run_client(target, sql, MYSQL_PWD=self.password)

    def admin_sql(self, sql: str, database: str | None = None) -> str:
        """Run `sql` as the administrator over the unix socket (set-up and inspection)."""
        target = ["--protocol=SOCKET", f"--socket={self.socket_path}", "-u", self.admin]
        return self._run_client([*target, *([database] if database else [])], sql)

    def _run_client(self, target: list[str], sql: str, **env: str) -> str:
        command = [_binary("mariadb", "mysql"), "--no-defaults", "-N", "-B", "--connect-timeout=5", *target, "-e", sql]
        done = subprocess.run(
            command, env=_client_env(**env), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mariadb client failed (exit {done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def create_login(self) -> None:
        """Create `database`, and `user` with its password and every privilege on it."""
        account = f"'{self.user}'@'%'"
        self.admin_sql(
            f"CREATE DATABASE `{self.database}`; CREATE USER {account} IDENTIFIED BY '{self.password}';"
            f" GRANT ALL PRIVILEGES ON `{self.database}`.* TO {account};"
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


@contextmanager
def mariadb_server(tmp_dir: Path, host: str = "127.0.0.1") -> Iterator[MariaDBServer]:
    """A started MariaDB server on `host` with its data in `tmp_dir` (or under /tmp, see above), stopped on exit."""
    run_as = _service_user()
    directory = Path(tmp_dir) / "mariadb"
    fresh: Path | None = None
    if run_as is not None or len(str(directory / "mariadb.sock")) > MAX_SOCKET_PATH:
        fresh = Path(tempfile.mkdtemp(prefix="pywhisk-mariadb-", dir="/tmp"))
        fresh.chmod(0o755)
        directory = fresh
    server = MariaDBServer(
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
                shutil.copyfile(server.log_path, Path(tmp_dir) / "mariadb.log")
            shutil.rmtree(fresh, ignore_errors=True)
