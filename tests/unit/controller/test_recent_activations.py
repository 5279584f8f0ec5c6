"""The controller's cache of just-answered activation records: bounded in count, bytes and age."""

from __future__ import annotations

import pytest

from controller import context
from controller.context import RecentActivations
from whisk.entities.activation import ActivationResponse, WhiskActivation


def record(activation_id: str, result_bytes: int = 10, logs: list[str] | None = None) -> WhiskActivation:
    return WhiskActivation(namespace="guest", name="a", version="0.0.1", subject="guest", activationId=activation_id,
                           start=1, end=2,
                           response=ActivationResponse.success({"x": 1}, size=result_bytes), logs=logs or [])


def test_a_record_is_found_by_namespace_and_id_only() -> None:
    recent = RecentActivations()
    recent.add(record("a" * 32))
    assert recent.get("guest", "a" * 32) is not None
    assert recent.get("other", "a" * 32) is None and recent.get("guest", "b" * 32) is None


def test_the_oldest_records_go_first_when_the_count_or_the_bytes_run_over() -> None:
    recent = RecentActivations(size=2, max_bytes=1000)
    for n in range(3):
        recent.add(record(f"{n}" * 32))
    assert recent.get("guest", "0" * 32) is None and recent.get("guest", "2" * 32) is not None

    recent.add(record("3" * 32, result_bytes=600))
    recent.add(record("4" * 32, result_bytes=10, logs=["y" * 500]))
    assert recent.get("guest", "3" * 32) is None and recent.get("guest", "4" * 32) is not None


def test_a_record_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(context.time, "monotonic", lambda: clock[0])
    recent = RecentActivations(ttl_s=30)
    recent.add(record("a" * 32))
    clock[0] += 31
    assert recent.get("guest", "a" * 32) is None
    recent.add(record("b" * 32))  # adding drops what expired
    assert len(recent._records) == 1
