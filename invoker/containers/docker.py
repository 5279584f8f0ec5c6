"""Containers in Docker: the runtime image of the kind, hardened, on a bridge network of the platform's own.

The factory speaks the Docker Engine HTTP API over its Unix socket. Each container runs read-only as a non-root
user with no capabilities, a memory, process and open-file limit and a small `/tmp`; the invoker reaches its proxy
on port 8080 of its address on the `pywhisk-actions` network (inter-container traffic disabled). Docker names are
`wsk{invokerId}_...` and carry the label `pywhisk.invoker`, which is how `cleanup` finds what an earlier run left.
Logs come from one follow stream per container, with Docker's timestamps. Images are never pulled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import re
import time
from typing import Any

import aiohttp

from invoker import logs as actlogs
from invoker.containers import (
    ContainerError,
    Crashed,
    OutOfMemory,
    RunResult,
    StartError,
    UnsupportedKind,
    proxy_http,
)
from whisk.config import InvokerSettings
from whisk.logs import fields
from whisk.runtimes import BLACKBOX, Runtime, manifest

log = logging.getLogger(__name__)

DOCKER_SOCKET = "/var/run/docker.sock"
API_VERSION = "v1.41"
NETWORK = "pywhisk-actions"
#: the Linux bridge of `NETWORK`, named so that a host firewall rule can refer to it
BRIDGE = "pywhisk0"
PROXY_PORT = 8080
#: uid:gid actions run as, whatever the image says
ACTION_USER = "1000:1000"
#: processes (threads included) per container, as OpenWhisk
PIDS_LIMIT = 1024
OPEN_FILES = 1024
TMP_SIZE = "64m"
#: how long a new container's proxy has to answer, in seconds
START_TIMEOUT_S = 10.0
#: how long a Docker API call may take, in seconds
API_TIMEOUT_S = 30.0
#: how long a crashed container has to stop (and its logs to drain) before its state is read, in seconds
EXIT_WAIT_S = 1.0
#: how long the cached image presence is trusted by `check_kind`, in seconds
IMAGE_CACHE_S = 10.0

_FRAME_STREAMS = {1: "stdout", 2: "stderr"}
_OOM_MARKERS = ("JavaScript heap out of memory", "MemoryError")
_DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z")
_IMAGE_REF = re.compile(
    r"(?!.*\.\.)(?!.*//)[a-z0-9][a-z0-9._/-]*(:[0-9]+/[a-z0-9._/-]+)?(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?"
)


class _Stream(actlogs.StreamBuffer):
    """A `StreamBuffer` whose lines carry the time Docker read them rather than the time they reached us."""

    def add_at(self, moment: str, raw: bytes) -> None:
        first = len(self.items)
        self.add(raw)
        for index in range(first, len(self.items)):
            line = self.items[index]
            if line is not None:
                self.items[index] = dataclasses.replace(line, time=moment)


class DockerContainer:
    def __init__(
        self, name: str, kind: str, memory_mb: int, container_id: str, factory: DockerContainerFactory
    ) -> None:
        self.name = name
        self.kind = kind
        self.memory_mb = memory_mb
        self.id = container_id
        self.ip: str | None = None
        self._factory = factory
        self._session: aiohttp.ClientSession | None = None
        self._streams = {"stdout": _Stream("stdout"), "stderr": _Stream("stderr")}
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._destroyed = False

    def _follow_logs(self) -> None:
        self._reader = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        params = {"follow": "1", "stdout": "1", "stderr": "1", "timestamps": "1"}
        pending = bytearray()
        try:
            async with self._factory._docker().get(
                self._factory._url(f"/containers/{self.id}/logs"),
                params=params,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=API_TIMEOUT_S),
            ) as response:
                if response.status != 200:
                    return
                async for chunk in response.content.iter_chunked(65536):
                    pending += chunk
                    offset = 0
                    # frames of 8-byte headers: stream (1 stdout, 2 stderr), 3 zero bytes, payload size big-endian
                    while len(pending) - offset >= 8:
                        end = offset + 8 + int.from_bytes(pending[offset + 4 : offset + 8], "big")
                        if len(pending) < end:
                            break
                        stream = self._streams.get(_FRAME_STREAMS.get(pending[offset], ""))
                        if stream is not None:
                            self._add(stream, bytes(pending[offset + 8 : end]))
                        offset = end
                    del pending[:offset]
                    self._changed.set()
        except (aiohttp.ClientError, OSError, TimeoutError):
            pass
        finally:
            for stream in self._streams.values():
                stream.eof = True
            self._changed.set()

    @staticmethod
    def _add(stream: _Stream, payload: bytes) -> None:
        stamp, _, text = payload.partition(b" ")
        moment = _log_time(stamp.decode(errors="replace"))
        for line in text.removesuffix(b"\n").split(b"\n"):
            stream.add_at(moment, line)

    async def _wait_ready(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(f"http://{self.ip}:{PROXY_PORT}")
        while True:
            try:
                async with self._session.get("/", timeout=aiohttp.ClientTimeout(total=1.0)) as response:
                    await response.read()
                return
            except (aiohttp.ClientError, OSError, TimeoutError):
                if self._streams["stderr"].eof:
                    tail = " | ".join(self._streams["stderr"].tail)
                    raise StartError(f"The runtime proxy exited while starting: {tail}") from None
                if loop.time() > deadline:
                    raise StartError(f"The runtime proxy did not answer within {START_TIMEOUT_S:g} s.") from None
                await asyncio.sleep(0.02)

    async def initialize(self, payload: dict[str, Any], timeout_s: float) -> RunResult:
        for stream in self._streams.values():
            stream.clear()  # whatever the proxy printed while starting is not the action's
        return await self._post("/init", payload, timeout_s, proxy_http.INIT_BODY_BYTES)

    async def run(self, payload: dict[str, Any], timeout_s: float, max_body_bytes: int) -> RunResult:
        return await self._post("/run", payload, timeout_s, max_body_bytes)

    async def _post(self, path: str, payload: dict[str, Any], timeout_s: float, max_body: int) -> RunResult:
        if self._destroyed or self._session is None:
            raise Crashed("The container was destroyed.")
        return await proxy_http.post(self._session, path, payload, timeout_s, max_body, self._crashed)

    async def _crashed(self, exc: BaseException) -> Crashed:
        if self._destroyed:
            return Crashed("The container was destroyed.")
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=EXIT_WAIT_S)  # it ends once the container has stopped
        state: dict[str, Any] = {}
        with contextlib.suppress(ContainerError):
            state = (await self._factory._inspect(self.id, Crashed)).get("State", {})
        tail = " ".join(self._streams["stderr"].tail)
        if state.get("OOMKilled") or (not state.get("Running") and any(m in tail for m in _OOM_MARKERS)):
            return OutOfMemory(f"The proxy ran out of memory: {exc}")
        return Crashed(f"The proxy did not answer: {exc!r} (exit code {state.get('ExitCode')})")

    async def logs(self, limit_bytes: int, wait_for_sentinel: bool = True) -> tuple[list[str], bool]:
        return await actlogs.collect(self._streams.values(), self._changed, limit_bytes, wait_for_sentinel)

    async def suspend(self) -> None:
        await self._factory._call("POST", f"/containers/{self.id}/pause", ContainerError, ok=(204,))

    async def resume(self) -> None:
        await self._factory._call("POST", f"/containers/{self.id}/unpause", ContainerError, ok=(204,))

    async def destroy(self) -> None:
        if self._destroyed:
            return
        self._destroyed = True
        try:
            if self._session is not None:
                await self._session.close()
            await self._factory._remove(self.id)
            if self._reader is not None:
                _done, pending = await asyncio.wait([self._reader], timeout=2.0)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        except Exception:
            log.exception("destroying container failed", extra=fields(container=self.name))
        finally:
            self._factory._containers.discard(self)


class DockerContainerFactory:
    """Starts runtime images as hardened Docker containers; see the module docstring.

    `check_kind` and `available_kinds` answer from the images seen by the last `cleanup`, `create` or background
    refresh (they cannot wait for Docker); call `cleanup` first at start-up.
    """

    def __init__(
        self,
        settings: InvokerSettings,
        *,
        socket_path: str = DOCKER_SOCKET,
        network: str = NETWORK,
        bridge: str | None = BRIDGE,
        pids_limit: int = PIDS_LIMIT,
    ) -> None:
        self._invoker_id = settings.invoker_id
        self._user_memory_mb = settings.user_memory_mb
        self._api_host = settings.api_host
        self._socket_path = socket_path
        self._network = network
        self._bridge = bridge
        self._pids_limit = pids_limit
        self._prefix = f"wsk{settings.invoker_id}_"
        self._counter = itertools.count()
        self._session: aiohttp.ClientSession | None = None
        self._network_ready = False
        self._network_lock = asyncio.Lock()
        self._images: dict[str, bool] = {}
        self._images_checked = float("-inf")
        self._refresh: asyncio.Task[None] | None = None
        self._containers: set[DockerContainer] = set()
        self._closed = False

    # Docker API plumbing

    def _docker(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.UnixConnector(path=self._socket_path, limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    @staticmethod
    def _url(path: str) -> str:
        return f"http://docker/{API_VERSION}{path}"

    async def _call(
        self,
        method: str,
        path: str,
        error: type[ContainerError],
        *,
        ok: tuple[int, ...] = (200,),
        params: dict[str, str] | None = None,
        body: Any = None,
    ) -> tuple[int, Any]:
        """The status and decoded JSON body of a Docker API call; `error` for a status not in `ok` or when the
        engine cannot be reached."""
        try:
            async with self._docker().request(
                method, self._url(path), params=params, json=body, timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_S)
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise error(f"The Docker engine at {self._socket_path} did not answer {method} {path}: {exc!r}") from exc
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")
        if status not in ok:
            message = data.get("message") if isinstance(data, dict) else data
            raise error(f"Docker {method} {path} failed with {status}: {message}")
        return status, data

    async def _inspect(self, container_id: str, error: type[ContainerError]) -> dict[str, Any]:
        return (await self._call("GET", f"/containers/{container_id}/json", error))[1]

    async def _remove(self, container_id: str) -> None:
        await self._call(
            "DELETE", f"/containers/{container_id}", ContainerError, ok=(204, 404, 409), params={"force": "1", "v": "1"}
        )

    async def _image_present(self, image: str) -> bool:
        status, _ = await self._call("GET", f"/images/{image}/json", StartError, ok=(200, 404))
        self._images[image] = status == 200
        return status == 200

    async def _refresh_images(self) -> None:
        self._images_checked = asyncio.get_running_loop().time()
        with contextlib.suppress(ContainerError):
            for runtime in manifest().runtimes.values():
                await self._image_present(runtime.image)

    async def actions_gateway(self) -> str:
        """The host's address on the actions' network: where actions reach services the host offers them (a
        database for the catalog's actions, say); the network is created if it is not there yet."""
        await self._ensure_network()
        _, body = await self._call("GET", f"/networks/{self._network}", StartError)
        for config in (body or {}).get("IPAM", {}).get("Config") or []:
            if config.get("Gateway"):
                return str(config["Gateway"])
        raise StartError(f"The network '{self._network}' has no gateway address.")

    async def _ensure_network(self) -> None:
        async with self._network_lock:
            if self._network_ready:
                return
            status, _ = await self._call("GET", f"/networks/{self._network}", StartError, ok=(200, 404))
            if status == 404:
                options = {"com.docker.network.bridge.enable_icc": "false"}
                if self._bridge:
                    options["com.docker.network.bridge.name"] = self._bridge
                body = {
                    "Name": self._network,
                    "Driver": "bridge",
                    "CheckDuplicate": True,
                    "Options": options,
                    "Labels": {"pywhisk.network": "actions"},
                }
                # 409: another invoker on this engine created it first
                await self._call("POST", "/networks/create", StartError, ok=(201, 409), body=body)
            self._network_ready = True

    # the seam

    def check_kind(self, kind: str) -> None:
        if kind == BLACKBOX:
            return
        runtime = manifest().get(kind)
        if runtime is None:
            raise UnsupportedKind(f"The kind '{kind}' is not supported by Docker containers.")
        loop = _running_loop()
        stale = loop is not None and loop.time() - self._images_checked > IMAGE_CACHE_S
        if loop is not None and stale and not self._refreshing and not self._closed:
            self._refresh = loop.create_task(self._refresh_images())
        if self._images.get(runtime.image) is False:
            raise UnsupportedKind(
                f"The kind '{kind}' needs the image '{runtime.image}', which is not present on the Docker engine."
            )

    @property
    def _refreshing(self) -> bool:
        return self._refresh is not None and not self._refresh.done()

    def available_kinds(self) -> list[str]:
        kinds = []
        for kind in manifest().runtimes:
            with contextlib.suppress(UnsupportedKind):
                self.check_kind(kind)
                kinds.append(kind)
        return kinds

    async def create(self, name: str, runtime: Runtime, memory_mb: int, env: dict[str, str]) -> DockerContainer:
        if self._closed:
            raise StartError("The container factory is closed.")
        if runtime.kind != BLACKBOX and manifest().get(runtime.kind) is None:
            raise UnsupportedKind(f"The kind '{runtime.kind}' is not supported by Docker containers.")
        if not _IMAGE_REF.fullmatch(runtime.image):
            raise StartError(f"'{runtime.image}' is not a valid Docker image name.")
        await self._ensure_network()
        if not await self._image_present(runtime.image):
            raise StartError(
                f"The image '{runtime.image}' is not present on this invoker's Docker engine"
                " (images are never pulled; build it with deploy/images.sh)."
            )
        started = time.monotonic()
        docker_name = self._docker_name(name)
        _, created = await self._call(
            "POST",
            "/containers/create",
            StartError,
            ok=(201,),
            params={"name": docker_name},
            body=self._spec(runtime, memory_mb, env),
        )
        container = DockerContainer(docker_name, runtime.kind, memory_mb, created["Id"], self)
        self._containers.add(container)
        try:
            await self._call("POST", f"/containers/{container.id}/start", StartError, ok=(204, 304))
            container._follow_logs()
            details = await self._inspect(container.id, StartError)
            network = details.get("NetworkSettings", {}).get("Networks", {}).get(self._network) or {}
            container.ip = network.get("IPAddress")
            if not container.ip:
                raise StartError(f"The container has no address on the network '{self._network}'.")
            await container._wait_ready(asyncio.get_running_loop().time() + START_TIMEOUT_S)
            if self._closed:
                raise StartError("The container factory is closed.")
        except BaseException:
            await container.destroy()
            raise
        log.info(
            "container started",
            extra=fields(container=docker_name, kind=runtime.kind, id=container.id[:12],
                         start_ms=proxy_http.since_ms(started)),
        )
        return container

    def _docker_name(self, name: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        return safe if safe.startswith(self._prefix) else f"{self._prefix}{next(self._counter)}_{safe}"

    def _spec(self, runtime: Runtime, memory_mb: int, env: dict[str, str]) -> dict[str, Any]:
        variables = {"__OW_API_HOST": self._api_host} | env
        memory = memory_mb * 1024 * 1024
        return {
            "Image": runtime.image,
            "Env": [f"{key}={value}" for key, value in variables.items()],
            "User": ACTION_USER,
            "Labels": {"pywhisk.invoker": str(self._invoker_id), "pywhisk.kind": runtime.kind},
            "ExposedPorts": {f"{PROXY_PORT}/tcp": {}},
            "HostConfig": {
                "Memory": memory,
                "MemorySwap": memory,
                "CpuShares": max(1024 * memory_mb // self._user_memory_mb, 2),
                "PidsLimit": self._pids_limit,
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "ReadonlyRootfs": True,
                # Docker adds noexec unless told otherwise; native modules of zipped actions load from /tmp
                "Tmpfs": {"/tmp": f"rw,exec,nosuid,nodev,size={TMP_SIZE},mode=1777"},
                "Ulimits": [{"Name": "nofile", "Soft": OPEN_FILES, "Hard": OPEN_FILES}],
                "NetworkMode": self._network,
                "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "2"}},
                "RestartPolicy": {"Name": "no"},
            },
        }

    async def cleanup(self) -> None:
        filters = json.dumps({"label": [f"pywhisk.invoker={self._invoker_id}"], "name": [self._prefix]})
        _, found = await self._call("GET", "/containers/json", StartError, params={"all": "1", "filters": filters})
        leftovers = [c["Id"] for c in found if any(n.lstrip("/").startswith(self._prefix) for n in c.get("Names", []))]
        await asyncio.gather(*(self._remove(container_id) for container_id in leftovers))
        if leftovers:
            log.warning("removed containers left by an earlier run", extra=fields(count=len(leftovers)))
        await self._ensure_network()
        await self._refresh_images()

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(c.destroy() for c in list(self._containers)))
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


async def engine_answers(socket_path: str = DOCKER_SOCKET, timeout_s: float = 2.0) -> bool:
    """Whether a Docker engine answers on `socket_path` (for choosing a container factory)."""
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket_path)) as session:
            async with session.get(f"http://docker/{API_VERSION}/_ping", timeout=aiohttp.ClientTimeout(timeout_s)) as r:
                return r.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


def _log_time(stamp: str) -> str:
    """Docker's RFC 3339 nanosecond time as `invoker.logs.timestamp` writes it (microseconds), or now."""
    match = _DOCKER_TIME.fullmatch(stamp)
    if match is None:
        return actlogs.timestamp()
    return f"{match[1]}.{(match[2] or '').ljust(6, '0')[:6]}Z"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

