"""Triggers (OpenWhisk's `WhiskTrigger`, `WhiskTriggerPut` and `ReducedRule`).

A trigger keeps the rules that fire from it in its own document, as OpenWhisk does: `rules` maps each rule's
`ns/name` to its action and status, so firing needs one read. `rules` is absent until a rule is first linked, and
an empty map once the last one is gone. Triggers have no limits yet: `limits` is always `{}`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from whisk.entities import params
from whisk.entities.names import is_valid_name
from whisk.entities.params import KeyValues
from whisk.entities.rule import ACTIVE, INACTIVE, PathName, RuleStatus
from whisk.entities.semver import DEFAULT_VERSION

#: the annotation naming a trigger's feed action, `/ns/[pkg/]feed`
FEED_ANNOTATION = "feed"


class ReducedRule(BaseModel):
    """What a trigger knows of one of its rules."""

    model_config = ConfigDict(extra="ignore")

    action: PathName
    status: RuleStatus


class WhiskTrigger(BaseModel):
    """A trigger as stored and as GET returns it."""

    model_config = ConfigDict(extra="ignore")

    namespace: str
    name: str
    version: str = DEFAULT_VERSION
    publish: bool = False
    parameters: KeyValues = Field(default_factory=list)
    annotations: KeyValues = Field(default_factory=list)
    limits: dict[str, Any] = Field(default_factory=dict)
    #: rule `ns/name` -> action and status
    rules: dict[str, ReducedRule] | None = None
    updated: int = 0

    @property
    def doc_id(self) -> str:
        return f"{self.namespace}/{self.name}"

    def annotation(self, key: str, default: Any = None) -> Any:
        return params.get(self.annotations, key, default)

    def rule_status(self, rule: str) -> RuleStatus:
        """The status of rule `ns/name`: inactive unless this trigger lists it."""
        linked = (self.rules or {}).get(rule)
        return linked.status if linked is not None else INACTIVE

    def has_active_rule(self) -> bool:
        return any(linked.status == ACTIVE for linked in (self.rules or {}).values())

    def with_rule(self, rule: str, action: PathName, status: RuleStatus) -> WhiskTrigger:
        rules = dict(self.rules or {})
        rules[rule] = ReducedRule(action=action, status=status)
        return self.model_copy(update={"rules": rules})

    def without_rule(self, rule: str) -> WhiskTrigger:
        if self.rules is None:
            return self
        return self.model_copy(update={"rules": {k: v for k, v in self.rules.items() if k != rule}})

    def api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": [a.model_dump() for a in self.annotations],
            "parameters": [p.model_dump() for p in self.parameters],
            "limits": self.limits,
            "updated": self.updated,
        }
        if self.rules is not None:
            out["rules"] = {name: linked.model_dump() for name, linked in self.rules.items()}
        return out

    def summary(self) -> dict[str, Any]:
        """The list form (OpenWhisk's `TriggerMeta`): no parameters, limits or rules."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": [a.model_dump() for a in self.annotations],
            "updated": self.updated,
        }


class TriggerPut(BaseModel):
    """The body of `PUT .../triggers/{name}`; every field is optional, and on update an absent one keeps its value.
    `rules` cannot be set this way: rules link themselves."""

    model_config = ConfigDict(extra="ignore")

    parameters: KeyValues | None = None
    annotations: KeyValues | None = None
    limits: dict[str, Any] | None = None
    publish: bool | None = None
    version: str | None = None


def is_valid_feed(value: Any) -> bool:
    """Whether a `feed` annotation names an entity: `name`, `pkg/name`, `/ns/name` or `/ns/pkg/name`."""
    if not isinstance(value, str):
        return False
    segments = value.removeprefix("/").split("/")
    return 1 <= len(segments) <= 3 and all(is_valid_name(s) for s in segments)
