"""Containers as local processes: the runtime proxy on a Unix socket in a private directory, sandboxed.

Python kinds run on the invoker's own interpreter, Node.js kinds on the host's `node`; `blackbox` needs Docker.
See `sandbox` for the confinement. Suspending a container stops its processes with SIGSTOP.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from invoker import logs as actlogs
from invoker.containers import (
    Crashed,
    OutOfMemory,
    RunResult,
    StartError,
    UnsupportedKind,
    proxy_http,
)
from invoker.containers import sandbox as sb
from whisk.config import InvokerSettings
from whisk.logs import fields
from whisk.runtimes import BLACKBOX, Runtime, manifest

log = logging.getLogger(__name__)

DEFAULT_RUNTIMES_DIR = Path(__file__).resolve().parents[2] / "runtime-images"
PROXY_FILES = {"python": "proxy.py", "nodejs": "proxy.js"}

#: how long a new proxy has to answer on its socket, in seconds
START_TIMEOUT_S = 10.0
#: virtual memory a Python proxy may use above the action's memory limit, in MB
PYTHON_HEADROOM_MB = 128
#: processes (threads included) per container
PIDS_LIMIT = 128
#: CPU time over a container's whole life, in seconds; the per-activation limit is enforced by the invoker
CPU_LIMIT_S = 3600
OPEN_FILES = 1024
FILE_SIZE_BYTES = 1024 * 1024 * 1024
#: longest log line kept as one line, in bytes (Docker splits at 16 KiB too)
MAX_LINE_BYTES = 16 * 1024
#: what V8 writes to stderr, before a native stack trace, when the heap limit kills the process
_NODE_OOM = "JavaScript heap out of memory"


class ProcessContainer:
    """A runtime proxy process (under bwrap when available) and its socket directory; see `Container`."""

    def __init__(
        self,
        name: str,
        kind: str,
        memory_mb: int,
        proc: asyncio.subprocess.Process,
        socket_dir: Path,
        uid: int | None,
        factory: ProcessContainerFactory,
    ) -> None:
        self.name = name
        self.kind = kind
        self.memory_mb = memory_mb
        self._proc = proc
        self._socket_dir = socket_dir
        self._socket = socket_dir / "s"
        self._uid = uid
        self._factory = factory
        self._session: aiohttp.ClientSession | None = None
        self._streams = {"stdout": actlogs.StreamBuffer("stdout"), "stderr": actlogs.StreamBuffer("stderr")}
        self._changed = asyncio.Event()
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._pump(proc.stdout, self._streams["stdout"])),
            asyncio.create_task(self._pump(proc.stderr, self._streams["stderr"])),
        ]
        self._destroyed = False

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def _pump(self, reader: asyncio.StreamReader, stream: actlogs.StreamBuffer) -> None:
        pending = b""
        try:
            while chunk := await reader.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                while len(pending) > MAX_LINE_BYTES:
                    lines.append(pending[:MAX_LINE_BYTES])
                    pending = pending[MAX_LINE_BYTES:]
                for line in lines:
                    stream.add(line)
                self._changed.set()
            if pending:
                stream.add(pending)
        except OSError:
            pass
        finally:
            stream.eof = True
            self._changed.set()

    async def _wait_ready(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._proc.returncode is not None:
                await asyncio.wait(self._readers, timeout=0.5)
                tail = " | ".join(self._streams["stderr"].tail)
                raise StartError(f"The runtime proxy exited with code {self._proc.returncode}: {tail}")
            try:
                _reader, writer = await asyncio.open_unix_connection(str(self._socket))
            except OSError:
                if loop.time() > deadline:
                    raise StartError(f"The runtime proxy did not answer within {START_TIMEOUT_S:g} s.") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            break
        self._session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self._socket)))

    async def initialize(self, payload: dict[str, Any], timeout_s: float) -> RunResult:
        for stream in self._streams.values():
            stream.clear()  # whatever the proxy printed while starting is not the action's
        return await self._post("/init", payload, timeout_s, proxy_http.INIT_BODY_BYTES)

    async def run(self, payload: dict[str, Any], timeout_s: float, max_body_bytes: int) -> RunResult:
        return await self._post("/run", payload, timeout_s, max_body_bytes)

    async def _post(self, path: str, payload: dict[str, Any], timeout_s: float, max_body: int) -> RunResult:
        if self._destroyed or self._session is None:
            raise Crashed("The container was destroyed.")
        url = f"http://localhost{path}"
        return await proxy_http.post(self._session, url, payload, timeout_s, max_body, self._crashed)

    async def _crashed(self, exc: BaseException) -> Crashed:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._proc.wait(), 0.5)
        if self._proc.returncode is not None:
            await asyncio.wait(self._readers, timeout=0.5)  # its last words tell why it died
        tail = list(self._streams["stderr"].tail)
        out_of_memory = any(_NODE_OOM in line for line in tail) or (tail and tail[-1].startswith("MemoryError"))
        if self._proc.returncode is not None and out_of_memory:
            return OutOfMemory(f"The proxy ran out of memory: {exc}")
        return Crashed(f"The proxy did not answer: {exc!r} (exit code {self._proc.returncode})")

    async def logs(self, limit_bytes: int, wait_for_sentinel: bool = True) -> tuple[list[str], bool]:
        return await actlogs.collect(self._streams.values(), self._changed, limit_bytes, wait_for_sentinel)

    def _pids(self) -> list[int]:
        table = sb.process_table()
        pids = sb.descendants(self._proc.pid, table)
        if self._uid is not None:
            known = set(pids)
            pids += [p.pid for p in table if p.uid == self._uid and p.pid not in known]
        return pids

    async def suspend(self) -> None:
        await asyncio.to_thread(lambda: sb.signal_all(self._pids(), signal.SIGSTOP))

    async def resume(self) -> None:
        await asyncio.to_thread(lambda: sb.signal_all(self._pids(), signal.SIGCONT))

    async def destroy(self) -> None:
        if self._destroyed:
            return
        self._destroyed = True
        try:
            if self._session is not None:
                await self._session.close()
            await asyncio.to_thread(sb.stop_and_kill, self._pids)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 5.0)
            _done, pending = await asyncio.wait(self._readers, timeout=2.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await asyncio.to_thread(shutil.rmtree, self._socket_dir, True)
        except Exception:
            log.exception("destroying container failed", extra=fields(container=self.name))
        finally:
            self._factory._forget(self)


class ProcessContainerFactory:
    """Starts runtime proxies as sandboxed processes; see the module docstring and `sandbox`."""

    def __init__(
        self,
        settings: InvokerSettings,
        *,
        sandbox: bool = True,
        pids_limit: int = PIDS_LIMIT,
    ) -> None:
        self._invoker_id = settings.invoker_id
        self._runtimes_dir = (settings.runtimes_dir or DEFAULT_RUNTIMES_DIR).resolve()
        self._pids_limit = pids_limit
        self._bwrap = shutil.which("bwrap") if sandbox else None
        self._setpriv = shutil.which("setpriv")
        self._as_root = os.geteuid() == 0
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self._slot: sb.InstanceSlot | None = None
        self._root = Path()  # set with the slot
        self._uid_base = 0  # set with the slot
        self._uids_in_use: set[int] = set()
        self._counter = itertools.count()
        self._uid_counter = itertools.count()
        self._containers: set[ProcessContainer] = set()
        self._closed = False

    @property
    def sandboxed(self) -> bool:
        """Whether containers run under bwrap (settled once `cleanup` or `create` has run)."""
        return self._bwrap is not None

    @property
    def _drops_inside(self) -> bool:
        """Whether bwrap starts as root and `setpriv` drops to the container's uid inside the sandbox."""
        return self._as_root and self._bwrap is not None and self._setpriv is not None

    def _interpreter(self, family: str) -> str | None:
        if family == "python":
            candidates = [sys.executable, *_on_path(f"python{sys.version_info[0]}.{sys.version_info[1]}")]
        elif family == "nodejs":
            candidates = _on_path("node")
        else:
            return None
        if self._as_root and not self._drops_inside:
            # started as an unprivileged uid on the host's file system as it is: it must reach the interpreter
            candidates = [c for c in candidates if sb.reachable_by_others(Path(c))]
        return next(iter(candidates), None)

    def check_kind(self, kind: str) -> None:
        if kind == BLACKBOX:
            raise UnsupportedKind(
                "Blackbox (Docker image) actions cannot run in process containers; run the invoker with Docker."
            )
        runtime = manifest().get(kind)
        if runtime is None or runtime.family not in PROXY_FILES:
            raise UnsupportedKind(f"The kind '{kind}' is not supported by process containers.")
        if self._interpreter(runtime.family) is None:
            program = {"nodejs": "node"}.get(runtime.family, runtime.family)
            raise UnsupportedKind(
                f"The kind '{kind}' needs '{program}' installed where the invoker runs"
                + (", readable by other users (or bubblewrap installed)." if self._as_root else ".")
            )
        proxy = self._runtimes_dir / runtime.family / PROXY_FILES[runtime.family]
        if not proxy.is_file():
            raise UnsupportedKind(f"The kind '{kind}' has no runtime proxy in {self._runtimes_dir}.")
        if self._as_root and not self._drops_inside and not sb.reachable_by_others(proxy):
            raise UnsupportedKind(f"The runtime proxy {proxy} must be readable by other users.")

    def available_kinds(self) -> list[str]:
        kinds = []
        for kind in manifest().runtimes:
            with contextlib.suppress(UnsupportedKind):
                self.check_kind(kind)
                kinds.append(kind)
        return kinds

    async def create(self, name: str, runtime: Runtime, memory_mb: int, env: dict[str, str]) -> ProcessContainer:
        await self._prepare()
        self.check_kind(runtime.kind)
        interpreter = self._interpreter(runtime.family)
        assert interpreter is not None
        if runtime.family == "nodejs":
            # the modules preinstalled for Node.js actions (`./run install` puts them there), as the image's NODE_PATH
            env = {"NODE_PATH": str(self._runtimes_dir / "nodejs" / "node_modules"), **env}
        uid = await self._allocate_uid()
        socket_dir = self._root / f"c{next(self._counter)}"
        started = time.monotonic()
        try:
            await asyncio.to_thread(self._make_socket_dir, socket_dir, uid)
            argv, limits = self._command(runtime, interpreter, memory_mb, socket_dir, uid)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_environment(env),
                cwd="/",
                start_new_session=True,
                preexec_fn=limits.apply,
            )
        except OSError as exc:
            self._uids_in_use.discard(uid or -1)
            await asyncio.to_thread(shutil.rmtree, socket_dir, True)
            raise StartError(f"Cannot start the runtime proxy: {exc}") from exc
        container = ProcessContainer(name, runtime.kind, memory_mb, proc, socket_dir, uid, self)
        self._containers.add(container)
        try:
            await container._wait_ready(asyncio.get_running_loop().time() + START_TIMEOUT_S)
            if uid is not None:
                # the proxy has bound its socket; the action may not write anything more there
                await asyncio.to_thread(_seal, socket_dir)
        except BaseException:
            await container.destroy()
            raise
        log.info(
            "container started",
            extra=fields(
                container=name, kind=runtime.kind, pid=proc.pid, uid=uid, start_ms=proxy_http.since_ms(started)),
        )
        return container

    def _command(
        self, runtime: Runtime, interpreter: str, memory_mb: int, socket_dir: Path, uid: int | None
    ) -> tuple[list[str], sb.Limits]:
        proxy = self._runtimes_dir / runtime.family / PROXY_FILES[runtime.family]
        if runtime.family == "nodejs":
            command = [interpreter, f"--max-old-space-size={memory_mb}", str(proxy)]
            address_space = None  # V8 reserves far more address space than it uses
        else:
            command = [interpreter, "-I", "-u", str(proxy)]
            address_space = (memory_mb + PYTHON_HEADROOM_MB) * 1024 * 1024
        command += ["--socket", str(socket_dir / "s")]
        processes = self._pids_limit if uid is not None else sb.tasks_of_uid(os.getuid()) + self._pids_limit
        switch_to = None if uid is None or self._drops_inside else uid
        limits = sb.Limits(address_space, CPU_LIMIT_S, OPEN_FILES, processes, FILE_SIZE_BYTES, switch_to)
        if self._bwrap is None:
            return command, limits
        exe = Path(interpreter).resolve()
        visible = [Path(sys.base_prefix), Path(sys.prefix), exe.parent.parent, self._runtimes_dir]
        drop = uid if self._drops_inside else None
        prefix = sb.bwrap_argv(self._bwrap, socket_dir, memory_mb * 1024 * 1024, visible, drop, self._setpriv)
        return prefix + command, limits

    async def _allocate_uid(self) -> int | None:
        """A uid of this invoker's range that no container holds and no process runs as (an orphan of an action
        may linger as a zombie, and zombies count against the process limit), rotating through the range so that
        uids are reused as late as possible."""
        if not self._as_root:
            return None
        running = await asyncio.to_thread(lambda: {p.uid for p in sb.process_table()})
        busy = running | self._uids_in_use
        for _ in range(sb.UIDS_PER_INVOKER):
            uid = self._uid_base + next(self._uid_counter) % sb.UIDS_PER_INVOKER
            if uid not in busy:
                self._uids_in_use.add(uid)
                return uid
        raise StartError("No free uid for another container.")

    def _make_socket_dir(self, socket_dir: Path, uid: int | None) -> None:
        self._root.mkdir(mode=0o711, parents=True, exist_ok=True)
        shutil.rmtree(socket_dir, ignore_errors=True)
        socket_dir.mkdir(mode=0o700)
        if uid is not None:
            os.chown(socket_dir, uid, uid)

    async def _prepare(self) -> None:
        """Once: take an instance slot of this invoker id, then check that bwrap works."""
        async with self._ready_lock:
            if self._ready:
                return
            if self._closed:
                raise StartError("The container factory is closed.")
            try:
                self._slot = await asyncio.to_thread(sb.InstanceSlot.claim, self._invoker_id)
            except OSError as exc:
                raise StartError(f"No instance slot for invoker {self._invoker_id}: {exc}") from exc
            self._root, self._uid_base = self._slot.root, sb.uid_base(self._invoker_id, self._slot.instance)
            if self._bwrap is not None:
                await self._probe_bwrap()
            self._ready = True

    async def _probe_bwrap(self) -> None:
        """Run `true` in a sandbox; where namespaces are not allowed (e.g. an unprivileged Docker container) the
        invoker goes on without bwrap."""
        assert self._bwrap is not None
        probe_dir = self._root / "probe"
        drop = self._uid_base + sb.UIDS_PER_INVOKER - 1 if self._drops_inside else None
        try:
            await asyncio.to_thread(self._make_socket_dir, probe_dir, drop)
            argv = [*sb.bwrap_argv(self._bwrap, probe_dir, 1024 * 1024, [], drop, self._setpriv), "/bin/true"]
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            try:
                _out, err = await asyncio.wait_for(proc.communicate(), 10)
            except TimeoutError:
                proc.kill()
                _out, err = await proc.communicate()
            ok = proc.returncode == 0
        except OSError as exc:
            ok, err = False, str(exc).encode()
        finally:
            await asyncio.to_thread(shutil.rmtree, probe_dir, True)
        if not ok:
            log.warning("bwrap cannot run here; containers run without it", extra=fields(error=err.decode()[-500:]))
            self._bwrap = None

    def _forget(self, container: ProcessContainer) -> None:
        self._containers.discard(container)
        if container._uid is not None:
            self._uids_in_use.discard(container._uid)

    async def cleanup(self) -> None:
        """Remove what an earlier invoker with this id and instance slot left: nobody holds the slot but us."""
        await self._prepare()
        if self._as_root:
            first, last = self._uid_base, self._uid_base + sb.UIDS_PER_INVOKER
            leftovers = await asyncio.to_thread(
                sb.stop_and_kill, lambda: [p.pid for p in sb.process_table() if first <= p.uid < last]
            )
            if leftovers:
                log.warning("killed processes left by an earlier run", extra=fields(count=leftovers))
        await asyncio.to_thread(shutil.rmtree, self._root, True)

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(c.destroy() for c in list(self._containers)))
        if self._slot is not None:
            await asyncio.to_thread(shutil.rmtree, self._root, True)
            self._slot.release()


def _environment(env: dict[str, str]) -> dict[str, str]:
    """A clean environment: nothing of the invoker's leaks into actions."""
    base = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",  # each glibc arena reserves 64 MB of the address space limit
    }
    return base | env


def _on_path(program: str) -> list[str]:
    """Every executable `program` on PATH and in the usual system directories, in that order."""
    dirs = [*os.environ.get("PATH", "").split(os.pathsep), "/usr/local/bin", "/usr/bin", "/bin"]
    found = [shutil.which(program, path=d) for d in dict.fromkeys(d for d in dirs if d)]
    return [f for f in found if f]


def _seal(socket_dir: Path) -> None:
    os.chown(socket_dir, 0, 0)
    socket_dir.chmod(0o711)

