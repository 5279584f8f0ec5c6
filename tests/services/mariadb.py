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
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.services.server import DatabaseServer, free_port, server_directory, service_user, succeeds

#: How long the server may take to accept queries after it is spawned, in seconds.
START_TIMEOUT_S = 30.0
#: How long each stop step (SIGTERM, SIGKILL) may take, in seconds.
STOP_TIMEOUT_S = 20.0
#: Attempts with fresh ports when another process took a chosen port between choosing and binding.
START_ATTEMPTS = 3
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


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if found:
            return found
    raise RuntimeError(f"none of {', '.join(names)} found: install the Debian package `mariadb-server`")


def _client_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's MYSQL_* settings (they would redirect or alter our connections)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MYSQL")}
    return {**env, **extra}


@dataclass
class MariaDBServer(DatabaseServer):
    """A running MariaDB server. `url` carries the password of `user`, who may do anything in `database`."""

    program = "mariadbd"
    scheme = "mysql"
    start_timeout_s = START_TIMEOUT_S
    #: stop_signals: the default, SIGTERM (a clean shutdown), then SIGKILL
    stop_timeout_s = STOP_TIMEOUT_S

    @property
    def socket_path(self) -> Path:
        return self.directory / "mariadb.sock"

    @property
    def admin(self) -> str:
        """The account set up for `unix_socket` authentication: the OS user running the tests."""
        return "root" if self.run_as is not None else pwd.getpwuid(os.geteuid()).pw_name

    def _user_option(self) -> list[str]:
        return [f"--user={self.run_as.pw_name}"] if self.run_as is not None else []

    def init(self) -> None:
        """Create the system tables (`mariadb-install-db`) with socket authentication for the administrator."""
        self._make_directories(self.directory, self.data_dir, self.directory / "tmp", mode=0o750)
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
        self._refuse_if_running()
        command = [_binary("mariadbd", "mysqld"), "--no-defaults", f"--datadir={self.data_dir}"]
        command += [f"--socket={self.socket_path}", f"--port={self.port}", f"--bind-address={self.host}"]
        command += [f"--pid-file={self.directory / 'mariadbd.pid'}", f"--tmpdir={self.directory / 'tmp'}"]
        command += [*self._user_option(), *SERVER_OPTIONS]
        self._launch(
            command, lambda: succeeds(RuntimeError, self.admin_sql, "SELECT 1"), cwd=self.directory, env=_client_env()
        )

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


@contextmanager
def mariadb_server(tmp_dir: Path, host: str = "127.0.0.1") -> Iterator[MariaDBServer]:
    """A started MariaDB server on `host` with its data in `tmp_dir` (or under /tmp, see above), stopped on exit."""
    run_as = service_user("mysql", "MariaDB")
    with server_directory(tmp_dir, "mariadb", "mariadb.sock", "pywhisk-mariadb-", run_as is not None) as directory:
        server = MariaDBServer(
            directory=directory, port=free_port(host), user="pywhisk", password=secrets.token_hex(16),
            database="pywhisk", host=host, run_as=run_as,
        )
        with server.serving(START_ATTEMPTS):
            yield server
