"""How a process container is confined: the bubblewrap command line, resource limits and the uid it runs as.

With `bwrap` the proxy sees a read-only root, a private `/tmp` (a tmpfs of the container's memory size), empty
home directories (except the paths it needs, bound back read-only), its own socket directory, and private pid,
IPC and UTS namespaces; the network is shared. Without `bwrap` only the resource limits and the uid apply.

Each invoker holds an instance slot of its id (a lock file in the temporary directory) that names its socket
directory and its uid range; `cleanup` only ever touches the slot it holds.

When the invoker runs as root, each container runs as a uid of its own, because RLIMIT_NPROC is counted per uid
and not enforced for uid 0: with `bwrap`, bwrap runs as root to set up the mounts and `setpriv` drops to that uid
with no capabilities; without, the process is started as that uid. As another user, containers share the
invoker's uid, and their process limit is set above the uid's current count.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import resource
import signal
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

#: Directories hidden from actions (empty tmpfs); paths an action needs under them are bound back read-only.
HIDDEN_DIRS = ("/root", "/home")
#: Container uids when the invoker runs as root: a range of UIDS_PER_INVOKER per invoker id and instance (see
#: `uid_base`), all below 2**31.
FIRST_UID = 200_000
UIDS_PER_INVOKER = 10_000
#: invokers with the same id that may run on one machine at once (each takes an instance slot)
INSTANCES_PER_ID = 10

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one container's processes (None leaves a limit as inherited), and the uid to switch to
    (None: stay)."""

    address_space_bytes: int | None
    cpu_s: int
    open_files: int
    processes: int | None
    file_size_bytes: int
    uid: int | None = None

    def apply(self) -> None:
        """Runs in the child between fork and exec: switch uid, set the limits, die with the parent (set after the
        uid switch, which clears it). Done here rather than with `subprocess`'s `user=`, which uvloop lacks."""
        if self.uid is not None:
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)
        pairs = [
            (resource.RLIMIT_CPU, self.cpu_s),
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_FSIZE, self.file_size_bytes),
            (resource.RLIMIT_CORE, 0),
        ]
        if self.address_space_bytes is not None:
            pairs.append((resource.RLIMIT_AS, self.address_space_bytes))
        if self.processes is not None:
            pairs.append((resource.RLIMIT_NPROC, self.processes))
        for which, value in pairs:
            _soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class InstanceSlot:
    """One of `INSTANCES_PER_ID` slots of an invoker id on this machine, held with an exclusive `flock` for the
    factory's life (the kernel releases it when the process dies). Two invokers with the same id on one machine
    (two standalone platforms, say) get different slots, hence different socket directories and uid ranges, and
    neither's cleanup touches the other's containers."""

    def __init__(self, instance: int, fd: int, root: Path) -> None:
        self.instance = instance
        self.root = root
        self._fd: int | None = fd

    @classmethod
    def claim(cls, invoker_id: int) -> InstanceSlot:
        """The first free slot; `OSError` when every slot is taken. Blocking."""
        base = Path(tempfile.gettempdir())
        for instance in range(INSTANCES_PER_ID):
            suffix = "" if instance == 0 else f".{instance}"
            try:
                fd = os.open(base / f"pywhisk-invoker{invoker_id}{suffix}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                continue  # another user's
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            return cls(instance, fd, base / f"pywhisk-invoker{invoker_id}{suffix}")
        raise OSError(f"{INSTANCES_PER_ID} invokers with id {invoker_id} run on this machine already.")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def uid_base(invoker_id: int, instance: int) -> int:
    """The first uid of the range of an invoker id's instance."""
    return FIRST_UID + ((invoker_id % 10_000) * INSTANCES_PER_ID + instance) * UIDS_PER_INVOKER


def bwrap_argv(
    bwrap: str,
    socket_dir: Path,
    tmp_size_bytes: int,
    visible: Iterable[Path],
    drop_to_uid: int | None = None,
    setpriv: str | None = None,
) -> list[str]:
    """The `bwrap ... --` prefix of a container's command line.

    `visible` are paths (interpreter prefixes, the runtimes directory) bound back when they sit under a hidden
    directory. With `drop_to_uid` (and `setpriv`), bwrap runs as root and `setpriv` drops to that uid with every
    capability cleared; otherwise bwrap drops all capabilities itself."""
    argv = [bwrap, "--ro-bind", "/", "/"]
    argv += ["--perms", "1777", "--size", str(tmp_size_bytes), "--tmpfs", "/tmp"]
    argv += ["--dev", "/dev", "--proc", "/proc"]
    hidden = [d for d in HIDDEN_DIRS if os.path.isdir(d)]
    for directory in hidden:
        argv += ["--tmpfs", directory]
    made: set[Path] = set()

    def parents_in_private_tmp(path: Path) -> list[str]:
        # bwrap would create the directories above a bound path in the new /tmp as root-only
        out = []
        for parent in reversed(path.parents):
            if parent.is_relative_to("/tmp") and parent != Path("/tmp") and parent not in made:
                made.add(parent)
                out += ["--perms", "0755", "--dir", str(parent)]
        return out

    for path in sorted({str(p) for p in visible}):
        # the private /tmp hides a checkout or a virtualenv under /tmp as much as the hidden directories do
        if any(path == d or path.startswith(d + "/") for d in (*hidden, "/tmp")) and os.path.exists(path):
            argv += [*parents_in_private_tmp(Path(path)), "--ro-bind", path, path]
    argv += [*parents_in_private_tmp(socket_dir), "--bind", str(socket_dir), str(socket_dir), "--chdir", "/tmp"]
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
    if drop_to_uid is None or setpriv is None:
        return [*argv, "--cap-drop", "ALL", "--"]
    drop = [setpriv, f"--reuid={drop_to_uid}", f"--regid={drop_to_uid}", "--clear-groups"]
    drop += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return [*argv, "--", *drop]


def reachable_by_others(path: Path) -> bool:
    """Whether a user who is neither owner nor group member can read `path` (every parent searchable)."""
    path = path.resolve()
    try:
        if not all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents):
            return False
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    uid: int
    threads: int


def process_table() -> list[ProcessInfo]:
    """A snapshot of every process from /proc."""
    table = []
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
            table.append(
                ProcessInfo(pid, int(status["PPid"]), int(status["Uid"].split()[0]), int(status.get("Threads", 1)))
            )
        except (OSError, KeyError, ValueError, IndexError):
            continue
    return table


def tasks_of_uid(uid: int, table: list[ProcessInfo] | None = None) -> int:
    """How many tasks (threads included) run as `uid`: what RLIMIT_NPROC is counted against."""
    return sum(p.threads for p in (process_table() if table is None else table) if p.uid == uid)


def descendants(root: int, table: list[ProcessInfo] | None = None) -> list[int]:
    """`root` and every live process below it, parents before children."""
    children: dict[int, list[int]] = {}
    for p in process_table() if table is None else table:
        children.setdefault(p.ppid, []).append(p.pid)
    order, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        order.append(pid)
        todo.extend(children.get(pid, []))
    return order


def signal_all(pids: Iterable[int], signum: int) -> int:
    """Send `signum` to each pid that still exists; how many were signalled."""
    sent = 0
    for pid in pids:
        try:
            os.kill(pid, signum)
            sent += 1
        except (ProcessLookupError, PermissionError):
            continue
    return sent


def stop_and_kill(find: Callable[[], Iterable[int]], rounds: int = 200) -> int:
    """Kill the processes `find` returns, new ones included: stop them until a snapshot shows no process that is
    not stopped yet (a stopped process cannot fork, and no child is orphaned meanwhile), then kill them all.
    Blocking (it reads /proc); how many processes were killed."""
    stopped: set[int] = set()
    for _ in range(rounds):
        new = set(find()) - stopped
        if not new:
            break
        signal_all(new, signal.SIGSTOP)
        stopped |= new
    return signal_all(stopped, signal.SIGKILL)
