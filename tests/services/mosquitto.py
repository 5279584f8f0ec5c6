"""An MQTT broker for tests: Debian's `mosquitto`, with `mosquitto_sub`/`mosquitto_pub` from `mosquitto-clients`.

`mosquitto_server(tmp_dir, host)` writes a config to `tmp_dir` (one listener on a free port of `host` only, by
default 127.0.0.1, or e.g. the gateway of a Docker bridge network where containers can reach it; anonymous
clients allowed, no persistence, the log on stderr in `server.log`), runs `mosquitto -c CONF` in the foreground
and returns once it says it is running and accepts connections; on exit it stops it by its pid. `stop()` and
`start()` take the broker down and bring it back on the same port, for tests of what clients do while it is gone
(without persistence, a restarted broker has no retained messages and no sessions, so a `Subscription` taken
before `stop()` receives nothing afterwards: subscribe again).

As root, mosquitto reads its config and opens its listener and log (our stderr file) before it drops to the
`mosquitto` user, so nothing it touches afterwards needs to be readable by that user.

`subscribe(topic)` starts `mosquitto_sub` and returns once its subscription is live: it also subscribes to a
private probe topic and publishes there until a probe comes back (the broker handles one client's subscriptions
in order, so `topic` is live then too). Probes are never returned. Payloads go through hex (`-F '%x %t'`), so
payloads with newlines come back whole.

`start()`, `stop()`, `subscribe()` and `Subscription.messages()` block; from a coroutine, use `asyncio.to_thread`.
"""

from __future__ import annotations

import queue
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tests.services.server import TERM_THEN_KILL, ServerProcess, free_port, stop_process, succeeds

#: How long the broker may take to accept connections after it is spawned, in seconds.
START_TIMEOUT_S = 15.0
#: How long each stop step (SIGTERM, SIGKILL) may take, in seconds.
STOP_TIMEOUT_S = 10.0
#: How long a new subscription may take to become live, in seconds.
SUBSCRIBE_TIMEOUT_S = 15.0
#: Attempts with fresh ports when another process took a chosen port between choosing and binding.
START_ATTEMPTS = 3


def _binary(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{name} not found: install the Debian package `{package}`")
    return found


@dataclass
class MosquittoServer(ServerProcess):
    """A running mosquitto broker that anyone reaching `host` may use without credentials."""

    program = "mosquitto"
    start_timeout_s = START_TIMEOUT_S
    stop_timeout_s = STOP_TIMEOUT_S

    directory: Path
    port: int
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    def start(self) -> None:
        """Write the config for the current port, start the broker, and wait until it accepts connections."""
        self._refuse_if_running()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
        )
        self.config_path.chmod(0o644)
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._launch(
            [_binary("mosquitto", "mosquitto"), "-c", str(self.config_path)], lambda: self._running(log_start),
            cwd=self.directory, poll_s=0.02, verb="start",
        )

    def _running(self, log_start: int) -> bool:
        """Whether this process logged its "running" line and the port takes connections (a connection alone could
        reach whoever else took the port)."""
        with open(self.log_path, "rb") as log:
            log.seek(log_start)
            if b" running" not in log.read():
                return False
        return succeeds(OSError, lambda: socket.create_connection((self.host, self.port), timeout=1.0).close())

    def publish(self, topic: str, payload: str, qos: int = 1, retain: bool = False) -> None:
        """Publish one message with `mosquitto_pub`; RuntimeError with its stderr on failure."""
        command = [_binary("mosquitto_pub", "mosquitto-clients"), "-h", self.host, "-p", str(self.port)]
        command += ["-q", str(qos), "-t", topic, "-m", payload, *(["-r"] if retain else [])]
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"mosquitto_pub failed (exit {done.returncode}): {done.stderr.strip()}")

    def subscribe(self, topic: str) -> Subscription:
        """A live subscription to `topic` (wildcards allowed) through `mosquitto_sub`."""
        subscription = Subscription(self, topic)
        try:
            subscription.wait_live()
        except BaseException:
            subscription.close()
            raise
        return subscription


class Subscription:
    """A running `mosquitto_sub`; a reader thread queues what it prints. Close it (or use it with `with`)."""

    def __init__(self, server: MosquittoServer, topic: str) -> None:
        self.server = server
        self.topic = topic
        self.probe_topic = f"pywhisk-probe/{secrets.token_hex(8)}"
        self._probed = threading.Event()
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._stderr = tempfile.TemporaryFile()
        command = [_binary("mosquitto_sub", "mosquitto-clients"), "-h", server.host, "-p", str(server.port)]
        command += ["-q", "1", "-t", topic, "-t", self.probe_topic, "-F", "%x %t"]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, start_new_session=True
        )
        self._reader = threading.Thread(target=self._read, name=f"mosquitto_sub {topic}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            payload_hex, _, topic = line.decode("utf-8", errors="replace").rstrip("\n").partition(" ")
            if topic == self.probe_topic:
                self._probed.set()
                continue
            self._queue.put((topic, bytes.fromhex(payload_hex).decode("utf-8", errors="replace")))

    def _failure(self) -> str:
        if self.process.poll() is None:
            return ""
        self._stderr.seek(0)
        error = self._stderr.read().decode(errors="replace").strip()[-2000:]
        return f"mosquitto_sub exited with {self.process.returncode}: {error}"

    def wait_live(self) -> None:
        """Publish probes until one comes back through this subscription."""
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
        while not self._probed.is_set():
            if failure := self._failure():
                raise RuntimeError(failure)
            if time.monotonic() > deadline:
                raise RuntimeError(f"subscription to {self.topic!r} not live within {SUBSCRIBE_TIMEOUT_S} s")
            self.server.publish(self.probe_topic, "probe", qos=0)
            self._probed.wait(0.2)

    def messages(self, count: int, timeout_s: float = 20.0) -> list[tuple[str, str]]:
        """The next `count` messages as (topic, payload); AssertionError with what did arrive on a timeout."""
        deadline = time.monotonic() + timeout_s
        received: list[tuple[str, str]] = []
        while len(received) < count:
            try:
                received.append(self._queue.get(timeout=max(0.0, min(0.2, deadline - time.monotonic()))))
                continue
            except queue.Empty:
                pass
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{len(received)} of {count} messages on {self.topic!r} within {timeout_s} s: {received!r}"
                    f" {self._failure()}".rstrip()
                )
        return received

    def close(self) -> None:
        """Stop mosquitto_sub by its pid."""
        stop_process(self.process, TERM_THEN_KILL, STOP_TIMEOUT_S)
        self._reader.join(timeout=STOP_TIMEOUT_S)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


@contextmanager
def mosquitto_server(tmp_dir: Path, host: str = "127.0.0.1") -> Iterator[MosquittoServer]:
    """A started mosquitto broker on `host` with its config and log in `tmp_dir`, stopped on exit."""
    server = MosquittoServer(directory=Path(tmp_dir) / "mosquitto", port=free_port(host), host=host)
    try:
        server.start_on_a_free_port(START_ATTEMPTS, "Address already in use")
        yield server
    finally:
        server.stop()
