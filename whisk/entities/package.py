"""Packages and package bindings: the stored document and the create/update request body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from whisk.entities import params
from whisk.entities.params import KeyValues
from whisk.entities.semver import DEFAULT_VERSION


class Binding(BaseModel):
    """The package a binding points at. OpenWhisk stores an unbound package's binding as `{}`."""

    model_config = ConfigDict(extra="ignore")

    namespace: str
    name: str

    @property
    def doc_id(self) -> str:
        return f"{self.namespace}/{self.name}"


class WhiskPackage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    namespace: str
    name: str
    version: str = DEFAULT_VERSION
    publish: bool = False
    binding: Binding | None = None
    parameters: KeyValues = Field(default_factory=list)
    annotations: KeyValues = Field(default_factory=list)
    updated: int = 0

    def annotation(self, key: str, default: Any = None) -> Any:
        return params.get(self.annotations, key, default)

    @property
    def doc_id(self) -> str:
        return f"{self.namespace}/{self.name}"

    def api(self, actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "binding": self.binding.model_dump() if self.binding else {},
            "annotations": [a.model_dump() for a in self.annotations],
            "parameters": [p.model_dump() for p in self.parameters],
            "updated": self.updated,
        }
        if actions is not None:
            out["actions"] = actions
            out["feeds"] = [a for a in actions if _is_feed(a)]
        return out

    def summary(self) -> dict[str, Any]:
        out = self.api()
        del out["parameters"]
        return out


def _is_feed(action_summary: dict[str, Any]) -> bool:
    return any(a.get("key") == "feed" for a in action_summary.get("annotations", []))


class PackagePut(BaseModel):
    """The body of `PUT .../packages/{name}`: every field is optional; `binding` makes a binding."""

    model_config = ConfigDict(extra="ignore")

    binding: dict[str, Any] | None = None
    parameters: KeyValues | None = None
    annotations: KeyValues | None = None
    publish: bool | None = None
    version: str | None = None
