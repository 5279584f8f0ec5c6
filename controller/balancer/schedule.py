"""Choosing an invoker for an activation: pure functions over plain data.

Algorithm (OpenWhisk's sharding container pool balancer). Every action has a home invoker,
`hash(namespace, action) % n`, so repeated calls of one action land where its containers are warm, and a step size
taken from the numbers coprime to `n` (also chosen by the hash), so that the walk home, home + step, home + 2·step,
... (mod n) visits every invoker exactly once and different actions spread their overflow differently. The first
invoker on the walk that is healthy and has free memory for the action takes it. When none has room, a healthy
invoker is chosen anyway (overload: it buffers the activation), picked by the hash so the choice is stable. With
no healthy invoker there is no choice, and the caller answers 503.

Example: 10 invokers, hash 13: home 13 % 10 = 3; coprime steps [1, 3, 7, 9], step = steps[13 % 4] = 3; the walk
is 3, 6, 9, 2, 5, 8, 1, 4, 7, 0.

Known caveats: capacity is the memory each controller believes free, from its own reservations only (OpenWhisk
divides an invoker's memory among controllers for the same reason); it is released on completion, so a lost
completion holds memory until the forced completion.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class InvokerState:
    id: int
    healthy: bool
    free_mb: int


def action_hash(namespace: str, action_doc_id: str) -> int:
    """A hash stable across processes and restarts (Python's `hash` of str is salted per process)."""
    return zlib.crc32(f"{namespace}\x00{action_doc_id}".encode())


def coprime_steps(n: int) -> list[int]:
    """Step sizes in 1..n that are coprime to n (for n = 1: [1])."""
    return [step for step in range(1, n + 1) if math.gcd(step, n) == 1] or [1]


def walk(n: int, hash_value: int) -> list[int]:
    """Positions 0..n-1 in the order the balancer tries them for `hash_value`."""
    if n <= 0:
        return []
    steps = coprime_steps(n)
    home, step = hash_value % n, steps[hash_value % len(steps)]
    return [(home + i * step) % n for i in range(n)]


def schedule(invokers: list[InvokerState], hash_value: int, memory_mb: int) -> int | None:
    """The id of the invoker that takes an activation needing `memory_mb`, or None when none is healthy.
    `invokers` is ordered by id, the order every controller sees them in."""
    order = walk(len(invokers), hash_value)
    for position in order:
        candidate = invokers[position]
        if candidate.healthy and candidate.free_mb >= memory_mb:
            return candidate.id
    healthy = [invoker.id for invoker in invokers if invoker.healthy]
    if not healthy:
        return None
    return healthy[hash_value % len(healthy)]


def home_invoker(invokers: list[int], namespace: str, action_doc_id: str) -> int:
    if not invokers:
        raise ValueError("no invokers")
    return invokers[action_hash(namespace, action_doc_id) % len(invokers)]
