"""Which container an activation runs on: pure functions over snapshots of the pool.

Algorithm (OpenWhisk's `ContainerPool.schedule`/`remove`, one activation per container):

1. Warm: an idle container already initialised for the same invocation namespace, action document and revision
   (paused ones included; the shell resumes them). Among several, the most recently used, so the others age out.
2. Otherwise the activation needs a new container of `memory_mb` in the capacity `user_memory_mb`. Capacity counts
   every container bound to an action (starting, busy, idle or paused); prewarmed containers are free until taken.
   If the memory does not fit, evict idle warm containers of other actions, least recently used first, until it
   fits. When even evicting every idle container would not make room, the activation waits.
3. The new container is an idle prewarmed one of the same kind and memory when there is one (it still takes
   `/init`), else a cold start.
4. Waiting activations form one FIFO queue: the shell schedules its head first whenever capacity frees, and a new
   activation joins the back of the queue while it is not empty.

Housekeeping: idle warm containers are paused after `pause_grace_s` and removed after `idle_timeout_s`; prewarmed
containers are replenished up to the manifest's count per (kind, memory).

Example: capacity 512 MB; warm idle A (256 MB, used at t=1) and B (256 MB, used at t=5); an activation of C
(256 MB) arrives → no warm C, 0 MB free → evict A (least recently used) → 256 MB free → cold start C.
A second activation of C while the first still runs → B is idle → evict B, start another C. A third → both C are
busy, nothing idle to evict → it waits in the queue until one C is released, and then reuses it warm.

Known caveats: eviction is by recency only, not by how expensive a container was to start; strict FIFO means the
head of the queue can hold back later activations that would find an idle warm container of their own; prewarmed
containers are never expired, only replenished.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ActionKey:
    """What a warm container is initialised for: invocation namespace, action document id and its revision."""

    namespace: str
    doc_id: str
    revision: str


@dataclass(frozen=True)
class Slot:
    """A snapshot of one container as the policy sees it.

    `action` is None for a prewarmed container not yet taken. `busy` covers running an activation and starting
    (a starting prewarm is busy too, so it cannot be taken before it is ready). `last_used` is a monotonic time in
    seconds.
    """

    id: str
    kind: str
    memory_mb: int
    action: ActionKey | None = None
    busy: bool = False
    paused: bool = False
    last_used: float = 0.0

    @property
    def is_prewarm(self) -> bool:
        return self.action is None


@dataclass(frozen=True)
class Request:
    action: ActionKey
    kind: str
    memory_mb: int


@dataclass(frozen=True)
class UseWarm:
    container_id: str


@dataclass(frozen=True)
class Start:
    """Start a container for the activation: take `prewarm_id` (or start cold when None) after removing `evict`."""

    prewarm_id: str | None
    evict: tuple[str, ...] = ()


@dataclass(frozen=True)
class Wait:
    """No capacity now; queue the activation."""


@dataclass(frozen=True)
class Reject:
    """The activation can never fit: its memory exceeds the whole capacity."""

    reason: str


Decision = UseWarm | Start | Wait | Reject


def used_memory_mb(slots: Iterable[Slot]) -> int:
    return sum(slot.memory_mb for slot in slots if not slot.is_prewarm)


def schedule(request: Request, slots: Iterable[Slot], user_memory_mb: int) -> Decision:
    """Decide where `request` runs, per the module docstring."""
    slots = list(slots)
    warm = [s for s in slots if s.action == request.action and not s.busy]
    if warm:
        return UseWarm(max(warm, key=lambda s: s.last_used).id)
    if request.memory_mb > user_memory_mb:
        return Reject(f"The action needs {request.memory_mb} MB but this invoker has {user_memory_mb} MB for actions.")
    evict = evictions(slots, request.memory_mb, user_memory_mb)
    if evict is None:
        return Wait()
    prewarm = take_prewarm(slots, request.kind, request.memory_mb)
    return Start(prewarm, evict)


def evictions(slots: Iterable[Slot], needed_mb: int, user_memory_mb: int) -> tuple[str, ...] | None:
    """Idle warm containers to remove, least recently used first, so that `needed_mb` fits; () when it fits
    already, None when it cannot fit even after removing every idle warm container."""
    slots = list(slots)
    free = user_memory_mb - used_memory_mb(slots)
    if free >= needed_mb:
        return ()
    chosen: list[str] = []
    for slot in sorted((s for s in slots if not s.is_prewarm and not s.busy), key=lambda s: s.last_used):
        chosen.append(slot.id)
        free += slot.memory_mb
        if free >= needed_mb:
            return tuple(chosen)
    return None


def take_prewarm(slots: Iterable[Slot], kind: str, memory_mb: int) -> str | None:
    """An idle prewarmed container of `kind` and `memory_mb`, the oldest first; None when there is none."""
    ready = [s for s in slots if s.is_prewarm and not s.busy and s.kind == kind and s.memory_mb == memory_mb]
    return min(ready, key=lambda s: s.last_used).id if ready else None


def to_pause(slots: Iterable[Slot], now: float, pause_grace_s: float) -> list[str]:
    """Idle warm containers, not paused yet, unused for at least `pause_grace_s`."""
    return [
        s.id for s in slots if not s.is_prewarm and not s.busy and not s.paused and now - s.last_used >= pause_grace_s
    ]


def to_remove(slots: Iterable[Slot], now: float, idle_timeout_s: float) -> list[str]:
    """Idle warm containers (paused or not) unused for at least `idle_timeout_s`; prewarmed ones stay."""
    return [s.id for s in slots if not s.is_prewarm and not s.busy and now - s.last_used >= idle_timeout_s]


def prewarm_deficit(wanted: Mapping[tuple[str, int], int], slots: Iterable[Slot]) -> dict[tuple[str, int], int]:
    """How many prewarmed containers to start per (kind, memory MB) so that idle and starting prewarms reach
    `wanted`; only positive counts are returned."""
    have: dict[tuple[str, int], int] = {}
    for slot in slots:
        if slot.is_prewarm:
            key = (slot.kind, slot.memory_mb)
            have[key] = have.get(key, 0) + 1
    deficit = {key: count - have.get(key, 0) for key, count in wanted.items()}
    return {key: n for key, n in deficit.items() if n > 0}
