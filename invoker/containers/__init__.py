"""The container seam: where an action's runtime proxy runs, and how the invoker talks to it.

Implementations: `process.ProcessContainerFactory` (the proxy as a sandboxed local process on a Unix socket). A
Docker implementation follows the same contract. `open_factory` picks one by name and imports it only then.

Requirements on every factory (after OpenWhisk's ContainerFactory):

- A container runs the runtime proxy for its kind (`runtime-images/<family>/`) and answers OpenWhisk's `/init` and
  `/run` protocol; `create` returns only once the proxy answers, or raises `StartError`.
- `__OW_API_HOST` and the other variables given to `create` are in the proxy's environment.
- The memory limit given to `create` is enforced; so are a cap on processes and on open files. An action cannot
  change anything outside its own container (files, processes of others, the invoker).
- Everything the action writes to stdout and stderr is captured, in order per stream, with the time it was read,
  and handed out per activation up to the sentinel line the proxy writes after each activation.
- `cleanup` removes whatever an earlier run of the same invoker left behind (it may have crashed), and never
  what a running invoker holds.
- No exception other than the `ContainerError` tree below escapes a factory or a container.

Errors::

    ContainerError
     ├── UnsupportedKind   this factory cannot run the kind at all (no interpreter, blackbox in process mode)
     ├── StartError        the container could not be started or its proxy never answered
     ├── TimedOut          no answer within the time given; the container must be destroyed
     └── Crashed           the connection failed or the proxy exited; the container must be destroyed
          └── OutOfMemory  ... because the action exhausted its memory
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from whisk.config import InvokerSettings
from whisk.runtimes import Runtime


class ContainerError(Exception):
    """Base of every error a container or a container factory raises."""


class UnsupportedKind(ContainerError):
    pass


class StartError(ContainerError):
    pass


class TimedOut(ContainerError):
    pass


class Crashed(ContainerError):
    pass


class OutOfMemory(Crashed):
    pass


@dataclass(frozen=True)
class RunResult:
    """The proxy's answer to `/init` or `/run`: the HTTP status and the body.

    `body` holds at most `max_body_bytes` of the answer (what `run` was given); `size` is the whole answer's size,
    so `size > len(body)` means the rest was dropped unread. `start_ms`/`end_ms` are epoch milliseconds around the
    request.
    """

    status: int
    body: bytes
    size: int
    start_ms: int
    end_ms: int

    @property
    def ok(self) -> bool:
        return self.status == 200


class Container(Protocol):
    """One running runtime proxy.

    Concurrency: `initialize`, `run` and `logs` are used by one activation at a time (the pool guarantees it).
    `suspend`, `resume` and `destroy` are not safe to call concurrently with each other or with a running
    activation; the pool serialises them. `destroy` is idempotent and may be called at any time, including while
    `run` waits, which then fails with `Crashed`.
    """

    name: str
    kind: str
    memory_mb: int

    async def initialize(self, payload: dict[str, Any], timeout_s: float) -> RunResult:
        """POST `payload` to `/init`; `TimedOut` after `timeout_s`, `Crashed` when the proxy is gone."""
        ...

    async def run(self, payload: dict[str, Any], timeout_s: float, max_body_bytes: int) -> RunResult:
        """POST `payload` to `/run`; reads at most `max_body_bytes` of the answer. Raises as `initialize`."""
        ...

    async def logs(self, limit_bytes: int, wait_for_sentinel: bool = True) -> tuple[list[str], bool]:
        """The formatted log lines of the activation that just ended, both streams merged in time order, and
        whether `limit_bytes` cut them short. With `wait_for_sentinel` it waits (bounded) for the sentinel on
        both streams and adds a line saying logs may be missing when it does not come; without, it takes what is
        there (for a container that failed) and adds a line saying so."""
        ...

    async def suspend(self) -> None:
        """Stop the container's processes from using CPU until `resume`; `ContainerError` if it cannot."""
        ...

    async def resume(self) -> None: ...

    async def destroy(self) -> None:
        """Kill every process of the container and free what it held. Never raises."""
        ...


class ContainerFactory(Protocol):
    """Creates containers; owns whatever they share (sockets directory, HTTP sessions, uid range)."""

    def check_kind(self, kind: str) -> None:
        """Raise `UnsupportedKind` with a message for users if `kind` cannot run here."""
        ...

    def available_kinds(self) -> list[str]:
        """The concrete kinds of the manifest this factory can run (for prewarming)."""
        ...

    async def create(self, name: str, runtime: Runtime, memory_mb: int, env: dict[str, str]) -> Container:
        """Start a container for `runtime` limited to `memory_mb` with `env`, and wait until its proxy answers.
        `name` is unique within this invoker. Raises `UnsupportedKind` or `StartError`."""
        ...

    async def cleanup(self) -> None:
        """Remove what an earlier run of this invoker left behind (containers, sockets, processes)."""
        ...

    async def close(self) -> None:
        """Destroy every container this factory created and free its own resources; idempotent."""
        ...


async def open_factory(settings: InvokerSettings, kind: str | None = None) -> ContainerFactory:
    """The container factory named `kind` (default `settings.containers`): `process` or `docker`. The
    implementation is imported only when chosen."""
    kind = kind or settings.containers
    if kind == "process":
        from invoker.containers.process import ProcessContainerFactory

        return ProcessContainerFactory(settings)
    if kind == "docker":
        from invoker.containers.docker import DockerContainerFactory

        return DockerContainerFactory(settings)
    raise ValueError(f"Container factory '{kind}' is not supported; expected process or docker")
