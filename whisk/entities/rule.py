"""Rules: a trigger-to-action link (OpenWhisk's `WhiskRule`, `WhiskRuleResponse`, `WhiskRulePut`).

A rule document names its trigger and action as `{"path", "name"}`; it does not hold its own status. The status
lives in the trigger's `rules` map (see `whisk.entities.trigger`), which is what firing reads, and GET shows it
from there (`inactive` when the trigger is gone or does not list the rule).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from whisk.entities.names import DEFAULT_NAMESPACE, EntityPath, FullyQualifiedName, InvalidName, is_valid_name
from whisk.entities.params import KeyValues
from whisk.entities.semver import DEFAULT_VERSION

RuleStatus = Literal["active", "inactive"]
ACTIVE: RuleStatus = "active"
INACTIVE: RuleStatus = "inactive"
STATUSES: tuple[RuleStatus, ...] = (ACTIVE, INACTIVE)


class PathName(BaseModel):
    """A fully qualified entity name as OpenWhisk serialises one: `{"path": "ns[/pkg]", "name": "n"}`."""

    model_config = ConfigDict(extra="ignore")

    path: str
    name: str

    @classmethod
    def of(cls, fqn: FullyQualifiedName) -> PathName:
        return cls(path=str(fqn.path), name=fqn.name)

    @classmethod
    def parse(cls, value: Any, namespace: str) -> PathName:
        """A rule's `trigger` or `action` as clients send it: `/ns/[pkg/]name` (the leading slash may be left out)
        or `{"path", "name"}`; `_` becomes `namespace`. At least namespace and name are needed (OpenWhisk's
        `EntityPath.toFullyQualifiedEntityName`); `InvalidName` otherwise."""
        if isinstance(value, dict):
            path, name = value.get("path"), value.get("name")
            if not isinstance(path, str) or not isinstance(name, str):
                raise InvalidName(str(value))
            text = f"/{path}/{name}"
        elif isinstance(value, str):
            text = value
        else:
            raise InvalidName(str(value))
        segments = text.removeprefix("/").split("/")
        if not 2 <= len(segments) <= 3 or not all(is_valid_name(s) for s in segments):
            raise InvalidName(text)
        if segments[0] == DEFAULT_NAMESPACE:
            segments[0] = namespace
        return cls(path="/".join(segments[:-1]), name=segments[-1])

    @property
    def fqn(self) -> FullyQualifiedName:
        return FullyQualifiedName(EntityPath.parse(self.path), self.name)

    @property
    def namespace(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def doc_id(self) -> str:
        """`ns/name` or `ns/pkg/name`, as OpenWhisk's `asString` writes it in trigger activation logs."""
        return f"{self.path}/{self.name}"

    def __str__(self) -> str:
        return f"/{self.doc_id}"


class WhiskRule(BaseModel):
    """A rule as stored in the whisks store."""

    model_config = ConfigDict(extra="ignore")

    namespace: str
    name: str
    trigger: PathName
    action: PathName
    version: str = DEFAULT_VERSION
    publish: bool = False
    annotations: KeyValues = Field(default_factory=list)
    updated: int = 0

    @property
    def doc_id(self) -> str:
        return f"{self.namespace}/{self.name}"

    def api(self, status: RuleStatus | None = None) -> dict[str, Any]:
        """The rule as GET, PUT and DELETE answer (`WhiskRuleResponse`, with `status`) or as listed (without)."""
        out: dict[str, Any] = {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": [a.model_dump() for a in self.annotations],
            "trigger": self.trigger.model_dump(),
            "action": self.action.model_dump(),
            "updated": self.updated,
        }
        if status is not None:
            out["status"] = status
        return out


class RulePut(BaseModel):
    """The body of `PUT .../rules/{name}`. `trigger` and `action` are names as clients write them (see
    `PathName.parse`); a `status` in the body is ignored, as OpenWhisk does: a new rule is active, an updated one
    keeps its status."""

    model_config = ConfigDict(extra="ignore")

    trigger: str | dict[str, Any] | None = None
    action: str | dict[str, Any] | None = None
    version: str | None = None
    publish: bool | None = None
    annotations: KeyValues | None = None

