"""Structured logs: one JSON object per line, carrying the transaction id of the work being done."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

transaction_id: contextvars.ContextVar[str] = contextvars.ContextVar("transaction_id", default="sid_unknown")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "tid": transaction_id.get(),
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if extra:
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def fields(**values: object) -> dict[str, dict[str, object]]:
    """`log.info("msg", extra=fields(activation_id=...))` adds keys to the JSON line."""
    return {"fields": values}
