"""Choosing an invoker for an activation: pure functions over plain data.

Algorithm (OpenWhisk's sharding balancer, reduced to what a fixed set of healthy invokers needs): the home invoker of
an action is `hash(namespace, action) % n`, so repeated calls of one action land where its containers are warm.
The health- and capacity-aware walk with coprime step sizes comes with the distributed stack.

Example: invokers [0, 1, 2], an action whose hash is 13 → home index 13 % 3 = 1 → invoker 1.
"""

from __future__ import annotations

import zlib


def action_hash(namespace: str, action_doc_id: str) -> int:
    """A hash stable across processes and restarts (Python's `hash` of str is salted per process)."""
    return zlib.crc32(f"{namespace}\x00{action_doc_id}".encode())


def home_invoker(invokers: list[int], namespace: str, action_doc_id: str) -> int:
    if not invokers:
        raise ValueError("no invokers")
    return invokers[action_hash(namespace, action_doc_id) % len(invokers)]
