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
import signal
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

#: How long the broker may take to accept connections after it is spawned, in seconds.
START_TIMEOUT_S = 15.0
#: How long each stop step (SIGTERM, SIGKILL) may take, in seconds.
STOP_TIMEOUT_S = 10.0
#: How long a new subscription may take to become live, in seconds.
SUBSCRIBE_TIMEOUT_S = 15.0
#: Attempts with fresh ports when another process took a chosen port between choosing and binding.
START_ATTEMPTS = 3


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on `host` (an IPv4 address) now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _binary(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{name} not found: install the Debian package `{package}`")
    return found


def _stop(process: subprocess.Popen[bytes]) -> None:
    for stop in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        process.send_signal(stop)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class MosquittoServer:
    """A running mosquitto broker that anyone reaching `host` may use without credentials."""

    directory: Path
    port: int
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def start(self) -> None:
        """Write the config for the current port, start the broker, and wait until it accepts connections."""
        if self.process is not None:
            raise RuntimeError("mosquitto is running already")
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
        began = time.monotonic()
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [_binary("mosquitto", "mosquitto"), "-c", str(self.config_path)], cwd=self.directory,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            self._wait_ready(log_start)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - began

    def _wait_ready(self, log_start: int) -> None:
        """Wait for this process's "running" line (a connection alone could reach whoever else took the port)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}:\n{self.output()}")
            with open(self.log_path, "rb") as log:
                log.seek(log_start)
                running = b" running" in log.read()
            if running:
                try:
                    socket.create_connection((self.host, self.port), timeout=1.0).close()
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start within {START_TIMEOUT_S} s:\n{self.output()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the broker by its pid (SIGTERM, then SIGKILL)."""
        process, self.process = self.process, None
        if process is not None:
            _stop(process)

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

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


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
        _stop(self.process)
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
        for attempt in range(START_ATTEMPTS):
            try:
                server.start()
                break
            except RuntimeError:
                if attempt + 1 == START_ATTEMPTS or "Address already in use" not in server.output():
                    raise
                server.port = free_port(host)
        yield server
    finally:
        server.stop()
