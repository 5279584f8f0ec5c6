"""Parameters and annotations: OpenWhisk sends both as `[{"key": ..., "value": ...}]`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class KeyValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    value: Any = None


KeyValues = list[KeyValue]


def to_dict(pairs: KeyValues) -> dict[str, Any]:
    return {pair.key: pair.value for pair in pairs}


def from_dict(values: dict[str, Any]) -> KeyValues:
    return [KeyValue(key=k, value=v) for k, v in values.items()]


def get(pairs: KeyValues, key: str, default: Any = None) -> Any:
    for pair in pairs:
        if pair.key == key:
            return pair.value
    return default


def merge(base: KeyValues, override: KeyValues) -> KeyValues:
    """`base` with the keys of `override` replaced or added, keeping `base`'s order first."""
    merged = to_dict(base)
    merged.update(to_dict(override))
    return from_dict(merged)


def without(pairs: KeyValues, keys: list[str]) -> KeyValues:
    return [pair for pair in pairs if pair.key not in keys]
