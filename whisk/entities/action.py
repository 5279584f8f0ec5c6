"""Actions: the `exec` block, the stored document, and the create/update request body."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from whisk.entities import params
from whisk.entities.limits import ActionLimits, ActionLimitsPut
from whisk.entities.params import KeyValues
from whisk.entities.semver import DEFAULT_VERSION

ZIP_MAGIC = b"PK\x03\x04"


class Exec(BaseModel):
    """What runs: a runtime kind with code (text or a base64 zip), or a `blackbox` image."""

    model_config = ConfigDict(extra="ignore")

    kind: str
    code: str | None = None
    image: str | None = None
    main: str | None = None
    binary: bool | None = None
    components: list[str] | None = None

    def is_binary(self) -> bool:
        if self.binary is not None:
            return self.binary
        return looks_like_zip(self.code)

    def api(self, with_code: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if with_code and self.code is not None:
            out["code"] = self.code
        if self.image is not None:
            out["image"] = self.image
        if self.main is not None:
            out["main"] = self.main
        if self.components is not None:
            out["components"] = self.components
        out["binary"] = self.is_binary()
        return out


def looks_like_zip(code: str | None) -> bool:
    """Whether `code` is base64 text of a zip archive (clients may send zips without `binary: true`)."""
    if not code or len(code) < 8:
        return False
    try:
        head = base64.b64decode(code[:8], validate=True)
    except (binascii.Error, ValueError):
        return False
    return head.startswith(ZIP_MAGIC)


class WhiskAction(BaseModel):
    """An action as stored and as returned by GET (OpenWhisk's field names)."""

    model_config = ConfigDict(extra="ignore")

    namespace: str
    name: str
    version: str = DEFAULT_VERSION
    publish: bool = False
    exec: Exec
    parameters: KeyValues = Field(default_factory=list)
    annotations: KeyValues = Field(default_factory=list)
    limits: ActionLimits = Field(default_factory=ActionLimits)
    updated: int = 0

    def annotation(self, key: str, default: Any = None) -> Any:
        return params.get(self.annotations, key, default)

    def api(self, with_code: bool = True) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "exec": self.exec.api(with_code),
            "annotations": [a.model_dump() for a in self.annotations],
            "parameters": [p.model_dump() for p in self.parameters],
            "limits": self.limits.model_dump(),
            "updated": self.updated,
        }

    def summary(self) -> dict[str, Any]:
        """The list form: no code and no parameters."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "exec": {"binary": self.exec.is_binary()},
            "annotations": [a.model_dump() for a in self.annotations],
            "limits": self.limits.model_dump(),
            "updated": self.updated,
        }


class ActionPut(BaseModel):
    """The body of `PUT .../actions/{name}`; every field is optional on update."""

    model_config = ConfigDict(extra="ignore")

    exec: Exec | None = None
    parameters: KeyValues | None = None
    annotations: KeyValues | None = None
    limits: ActionLimitsPut | None = None
    publish: bool | None = None
    version: str | None = None
    delAnnotations: list[str] | None = None
