"""Action limits with OpenWhisk's ranges and defaults."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

MIN_TIMEOUT_MS = 100
MAX_TIMEOUT_MS = 300_000
DEFAULT_TIMEOUT_MS = 60_000
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 512
DEFAULT_MEMORY_MB = 256
MIN_LOGS_MB = 0
MAX_LOGS_MB = 10
DEFAULT_LOGS_MB = 10
MIN_CONCURRENCY = 1
MAX_CONCURRENCY = 1
DEFAULT_CONCURRENCY = 1

#: Largest invocation payload and largest result, in bytes (OpenWhisk `whisk.activation.payload.max`).
MAX_PAYLOAD_BYTES = 1024 * 1024
#: Largest action code, in bytes (OpenWhisk `exec-size-limit`).
MAX_CODE_BYTES = 48 * 1024 * 1024
#: Largest parameters of an entity, in bytes.
MAX_PARAMETERS_BYTES = 1024 * 1024


def _check_range(value: int, low: int, high: int, what: str, unit: str) -> int:
    if value < low:
        raise ValueError(f"{what} {value} {unit} below allowed threshold of {low} {unit}.")
    if value > high:
        raise ValueError(f"{what} {value} {unit} exceeds allowed threshold of {high} {unit}.")
    return value


class ActionLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout: int = DEFAULT_TIMEOUT_MS
    memory: int = DEFAULT_MEMORY_MB
    logs: int = DEFAULT_LOGS_MB
    concurrency: int = DEFAULT_CONCURRENCY

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: int) -> int:
        return _check_range(v, MIN_TIMEOUT_MS, MAX_TIMEOUT_MS, "Time limit", "milliseconds")

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: int) -> int:
        return _check_range(v, MIN_MEMORY_MB, MAX_MEMORY_MB, "Memory limit", "MB")

    @field_validator("logs")
    @classmethod
    def _logs(cls, v: int) -> int:
        return _check_range(v, MIN_LOGS_MB, MAX_LOGS_MB, "Log size limit", "MB")

    @field_validator("concurrency")
    @classmethod
    def _concurrency(cls, v: int) -> int:
        return _check_range(v, MIN_CONCURRENCY, MAX_CONCURRENCY, "Concurrency limit", "activations")


class ActionLimitsPut(BaseModel):
    """Limits in a create or update request: any subset, merged onto the current or default limits."""

    model_config = ConfigDict(extra="forbid")

    timeout: int | None = None
    memory: int | None = None
    logs: int | None = None
    concurrency: int | None = None

    def apply_to(self, current: ActionLimits) -> ActionLimits:
        return ActionLimits(**(current.model_dump() | self.model_dump(exclude_none=True)))
