"""Per-namespace throttles: invocations per minute, concurrent invocations, and trigger fires per minute.

As OpenWhisk's `RateThrottler`, a rate counts the requests of the current clock minute and starts again at zero
when the minute changes; each controller counts what it sees (with several controllers behind nginx the effective
limit is the per-controller limit times their number, as in OpenWhisk). A refused request is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from controller import messages
from controller.errors import TooManyRequests
from whisk.entities.identity import Identity


@dataclass(frozen=True)
class ThrottleDefaults:
    """The system-wide limits, for namespaces that set none (OpenWhisk's deployment defaults: 60, 30, 60)."""

    invocations_per_minute: int = 60
    concurrent_invocations: int = 30
    fires_per_minute: int = 60


class _MinuteCounter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._minute = -1
        self._counts: dict[str, int] = {}

    def take(self, key: str, allowed: int) -> None:
        minute = int(self._clock() // 60)
        if minute != self._minute:
            self._minute, self._counts = minute, {}
        count = self._counts.get(key, 0) + 1
        if count > allowed:
            raise TooManyRequests(messages.TOO_MANY_REQUESTS.format(count=count, allowed=allowed))
        self._counts[key] = count


class Throttles:
    def __init__(self, defaults: ThrottleDefaults, clock: Callable[[], float] = time.time) -> None:
        self.defaults = defaults
        self._invocations = _MinuteCounter(clock)
        self._fires = _MinuteCounter(clock)

    def limits_of(self, identity: Identity) -> ThrottleDefaults:
        own = identity.limits
        return ThrottleDefaults(
            invocations_per_minute=own.invocationsPerMinute or self.defaults.invocations_per_minute,
            concurrent_invocations=own.concurrentInvocations or self.defaults.concurrent_invocations,
            fires_per_minute=own.firesPerMinute or self.defaults.fires_per_minute,
        )

    def check_invocation(self, identity: Identity, in_flight: int) -> None:
        """Count one invocation by `identity`, whose namespace has `in_flight` activations running; 429 past a
        limit."""
        limits = self.limits_of(identity)
        if in_flight >= limits.concurrent_invocations:
            raise TooManyRequests(
                messages.TOO_MANY_CONCURRENT.format(count=in_flight + 1, allowed=limits.concurrent_invocations))
        self._invocations.take(identity.namespace, limits.invocations_per_minute)

    def check_fire(self, identity: Identity) -> None:
        """Count one trigger fire by `identity`; 429 past its limit."""
        self._fires.take(identity.namespace, self.limits_of(identity).fires_per_minute)
