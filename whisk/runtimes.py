"""The runtime manifest: which `exec.kind` values exist, how `family:default` resolves, and prewarm counts.

The manifest is `runtimes.json` beside this module (OpenWhisk's `runtimes.json` in spirit). Nothing else in the
code base lists kinds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

BLACKBOX = "blackbox"
SEQUENCE = "sequence"


@dataclass(frozen=True)
class Runtime:
    kind: str
    family: str
    language: str
    image: str
    is_default: bool
    prewarm_count: int
    prewarm_memory_mb: int


@dataclass(frozen=True)
class RuntimeManifest:
    runtimes: dict[str, Runtime]
    defaults: dict[str, str]

    def resolve(self, kind: str) -> str | None:
        """The concrete kind for `kind` (`python:default` → `python:3.11`), or None when unknown."""
        if kind in self.runtimes or kind in (BLACKBOX, SEQUENCE):
            return kind
        family, _, version = kind.partition(":")
        if version == "default":
            return self.defaults.get(family)
        return None

    def known_kinds(self) -> list[str]:
        kinds = sorted(self.runtimes) + [f"{family}:default" for family in sorted(self.defaults)]
        return [*kinds, BLACKBOX]

    def get(self, kind: str) -> Runtime | None:
        resolved = self.resolve(kind)
        return self.runtimes.get(resolved) if resolved else None


def parse_manifest(data: dict) -> RuntimeManifest:
    runtimes: dict[str, Runtime] = {}
    defaults: dict[str, str] = {}
    for family, entries in data["runtimes"].items():
        for entry in entries:
            prewarm = entry.get("prewarm", {})
            runtime = Runtime(
                kind=entry["kind"],
                family=family,
                language=entry.get("language", family),
                image=entry["image"],
                is_default=bool(entry.get("default", False)),
                prewarm_count=int(prewarm.get("count", 0)),
                prewarm_memory_mb=int(prewarm.get("memory", 256)),
            )
            runtimes[runtime.kind] = runtime
            if runtime.is_default:
                defaults[family] = runtime.kind
    return RuntimeManifest(runtimes=runtimes, defaults=defaults)


@cache
def manifest() -> RuntimeManifest:
    """The manifest shipped with pywhisk."""
    return parse_manifest(json.loads((Path(__file__).parent / "runtimes.json").read_text()))
