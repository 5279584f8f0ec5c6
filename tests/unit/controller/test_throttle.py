"""The throttles' counting, on a clock the test moves."""

from __future__ import annotations

import pytest

from controller.errors import TooManyRequests
from controller.throttle import ThrottleDefaults, Throttles
from whisk.entities.identity import Identity, NamespaceLimits


class Clock:
    def __init__(self) -> None:
        self.now = 600.0  # the start of a minute

    def __call__(self) -> float:
        return self.now


def identity(namespace: str, **limits: int) -> Identity:
    return Identity(subject=namespace, namespace=namespace, uuid=f"uuid-{namespace}", limits=NamespaceLimits(**limits))


def test_a_rate_counts_the_current_minute_per_namespace_and_resets_when_it_changes() -> None:
    clock = Clock()
    throttles = Throttles(ThrottleDefaults(invocations_per_minute=2), clock)
    alice, bob = identity("alice"), identity("bob")
    throttles.check_invocation(alice, 0)
    throttles.check_invocation(alice, 0)
    with pytest.raises(TooManyRequests, match=r"count: 3, allowed: 2"):
        throttles.check_invocation(alice, 0)
    with pytest.raises(TooManyRequests, match=r"count: 3, allowed: 2"):  # refusals are not counted
        throttles.check_invocation(alice, 0)
    throttles.check_invocation(bob, 0)
    clock.now += 59.0
    with pytest.raises(TooManyRequests):
        throttles.check_invocation(alice, 0)
    clock.now += 1.0
    throttles.check_invocation(alice, 0)


def test_a_namespaces_own_limits_override_the_defaults() -> None:
    throttles = Throttles(ThrottleDefaults(invocations_per_minute=1, fires_per_minute=1), Clock())
    generous = identity("generous", invocationsPerMinute=3, firesPerMinute=2)
    for _ in range(3):
        throttles.check_invocation(generous, 0)
    throttles.check_fire(generous)
    throttles.check_fire(generous)
    with pytest.raises(TooManyRequests, match=r"count: 3, allowed: 2"):
        throttles.check_fire(generous)
    assert throttles.limits_of(identity("plain")).invocations_per_minute == 1


def test_concurrent_invocations_are_bounded_by_what_is_in_flight() -> None:
    throttles = Throttles(ThrottleDefaults(concurrent_invocations=2), Clock())
    throttles.check_invocation(identity("a"), 1)
    with pytest.raises(TooManyRequests, match=r"Too many concurrent requests in flight \(count: 3, allowed: 2\)\."):
        throttles.check_invocation(identity("a"), 2)
