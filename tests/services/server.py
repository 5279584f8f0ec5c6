"""What the test servers of tests/services share: a free port, one child process with its output in a log file,
waiting until it answers, and stopping it by its pid.

Every server runs as one child process in a session of its own (so a Ctrl-C at the terminal does not reach it, and
only we stop it), stopped by its pid with a bounded wait per signal, never by name: other servers of the same program
(another test run, the machine's own) are not ours. Its stdout and stderr are appended to a log file that survives
restarts, and errors carry the end of that log, since that is where a server says why it would not start.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

#: SIGTERM for a clean shutdown, then SIGKILL when it is not done in time.
TERM_THEN_KILL = (signal.SIGTERM, signal.SIGKILL)
#: How much of a log's end goes into an error message, in characters.
LOG_TAIL_CHARS = 4000
#: Unix socket paths longer than this do not fit `sockaddr_un` (108 bytes with the terminating NUL).
MAX_SOCKET_PATH = 100


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on `host` (an IPv4 address) now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    """The last `chars` characters of the log at `path` ("" when there is none yet), for error messages."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def spawn(
    command: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start `command` in a session of its own with stdout and stderr appended to `log_path`."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            list(command), cwd=cwd, env=env, stdin=stdin, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process(
    process: subprocess.Popen[bytes], signals: Sequence[signal.Signals] = TERM_THEN_KILL, timeout_s: float = 10.0
) -> None:
    """Send `process` (by its pid) each of `signals` in turn until it exits, waiting up to `timeout_s` after each."""
    for stop in signals:
        if process.poll() is not None:
            return
        process.send_signal(stop)
        try:
            process.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            continue


def succeeds(
    errors: type[BaseException] | tuple[type[BaseException], ...], action: Callable[..., object], *args: object
) -> bool:
    """Whether `action(*args)` returns rather than raising one of `errors`: a readiness probe, which is expected to
    fail until the server is up."""
    try:
        action(*args)
    except errors:
        return False
    return True


def wait_until_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    program: str,
    timeout_s: float,
    output: Callable[[], str],
    poll_s: float = 0.05,
    verb: str = "answer",
) -> None:
    """Poll `ready()` until it is true; RuntimeError with the log's end (`output()`) when `process` exits first or
    `timeout_s` passes (`program did not VERB within ...`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{program} exited with {process.returncode}:\n{output()}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{program} did not {verb} within {timeout_s} s:\n{output()}")
        time.sleep(poll_s)


def service_user(name: str, product: str) -> pwd.struct_passwd | None:
    """The unprivileged user `name` (or `nobody`) that `product` runs as when we are root; None when we are not
    root. Database servers refuse to run as root, or drop to such a user themselves."""
    if os.geteuid() != 0:
        return None
    for candidate in (name, "nobody"):
        try:
            return pwd.getpwnam(candidate)
        except KeyError:
            continue
    raise RuntimeError(f"running as root, and there is neither a `{name}` nor a `nobody` user to run {product} as")


@contextmanager
def server_directory(tmp_dir: Path, name: str, socket_file: str, fresh_prefix: str, other_user: bool) -> Iterator[Path]:
    """The directory for a server's files: `tmp_dir/name`, or a fresh one under /tmp when the server runs as another
    user (`other_user`: that user cannot enter pytest's 0700 /tmp/pytest-of-root) or its unix socket `socket_file` (a
    path relative to the directory) would not fit `sockaddr_un` there. A fresh directory is removed on exit, after its
    `server.log` is copied to `tmp_dir/NAME.log`, so that the log stays with the test's other files."""
    directory = Path(tmp_dir) / name
    if not other_user and len(str(directory / socket_file)) <= MAX_SOCKET_PATH:
        yield directory
        return
    fresh = Path(tempfile.mkdtemp(prefix=fresh_prefix, dir="/tmp"))
    fresh.chmod(0o755)
    try:
        yield fresh
    finally:
        log = fresh / "server.log"
        if log.exists():
            Path(tmp_dir).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, Path(tmp_dir) / f"{name}.log")
        shutil.rmtree(fresh, ignore_errors=True)


class ServerProcess:
    """The part of a test server's dataclass that runs its process: `pid`, `output()`, `stop()` and `_launch()`
    for its `start()`.

    The dataclass has the fields `directory`, `port`, `host`, `process` and `startup_s`, and sets `program` (its
    name in messages), `start_timeout_s` and, when they differ from the defaults, `stop_signals` and
    `stop_timeout_s`. The log is `directory/server.log` unless it overrides `log_path`.
    """

    program: ClassVar[str]
    start_timeout_s: ClassVar[float]
    stop_signals: ClassVar[tuple[signal.Signals, ...]] = TERM_THEN_KILL
    stop_timeout_s: ClassVar[float] = 10.0

    directory: Path
    port: int
    host: str
    process: subprocess.Popen[bytes] | None
    startup_s: float

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def start(self) -> None:
        raise NotImplementedError

    def output(self) -> str:
        return log_tail(self.log_path)

    def stop(self) -> None:
        """Stop the server by its pid (`stop_signals` in turn, each given `stop_timeout_s`); its data stays."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, self.stop_signals, self.stop_timeout_s)

    def start_on_a_free_port(self, attempts: int, in_use: str) -> None:
        """`start()`, again on a fresh port of `host` when another process took the chosen port between choosing and
        binding (the log then says `in_use`), up to `attempts` times."""
        for attempt in range(attempts):
            try:
                self.start()
                return
            except RuntimeError:
                if attempt + 1 == attempts or in_use not in self.output():
                    raise
                self.port = free_port(self.host)

    def _refuse_if_running(self) -> None:
        """Fail before `start()` changes anything when the server runs already (a second process would be lost)."""
        if self.process is not None:
            raise RuntimeError(f"{self.program} is running already")

    def _launch(
        self,
        command: Sequence[str],
        ready: Callable[[], bool],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
        poll_s: float = 0.05,
        verb: str = "answer",
    ) -> None:
        """Spawn `command` with its output in the log and wait until `ready()`; on any failure (also an interrupt)
        stop it again, so no server outlives a failed start. Sets `startup_s`."""
        began = time.monotonic()
        self.process = spawn(command, self.log_path, cwd=cwd, env=env, stdin=stdin)
        try:
            wait_until_ready(
                self.process, ready, program=self.program, timeout_s=self.start_timeout_s, output=self.output,
                poll_s=poll_s, verb=verb,
            )
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - began


@dataclass
class DatabaseServer(ServerProcess):
    """A database server (PostgreSQL, MariaDB) with a login `user` who owns `database`: what they share.

    As root the server runs as, or drops to, `run_as`, which must own its directories. `url` starts with `scheme`.
    """

    scheme: ClassVar[str]

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
        return f"{self.scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def init(self) -> None:
        """Create the data directory's system tables."""
        raise NotImplementedError

    def create_login(self) -> None:
        """Create `user` with its password and `database` for it."""
        raise NotImplementedError

    def _make_directories(self, *paths: Path, mode: int) -> None:
        """Create `paths` with `mode`, owned by `run_as` (when set), who must be able to enter and write them."""
        for path in paths:
            path.mkdir(mode=mode, parents=True, exist_ok=True)
            if self.run_as is not None:
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)

    @contextmanager
    def serving(self, attempts: int) -> Iterator[Self]:
        """`init()`, `start_on_a_free_port()` and `create_login()`; the server is stopped on exit, also after a
        failure halfway."""
        try:
            self.init()
            self.start_on_a_free_port(attempts, "already in use")
            self.create_login()
            yield self
        finally:
            self.stop()
