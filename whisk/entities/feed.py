"""Feed registrations: what a feed action's CREATE leaves for the feed service, durable in the store.

A registration belongs to one trigger (`ns/name`) and one built-in feed (`alarms/alarm`, `alarms/once`,
`alarms/interval`, `couchdb/changes`). It keeps the feed's validated parameters, the trigger owner's `authKey`
(needed to fire; never shown, never logged: the field is left out of `repr`), a status as OpenWhisk's providers
report it, and a cursor: the CouchDB `seq` a changes feed has fired up to, or the time an alarm last fired.

`id` is new for every CREATE, so the cursor of a registration that was deleted and created again is never
mistaken for the new one's.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ALARM = "alarms/alarm"
ONCE = "alarms/once"
INTERVAL = "alarms/interval"
CHANGES = "couchdb/changes"
#: changes to the records of a model of the LoopBack catalog (read from the catalog registry's changes database)
LOOPBACK_CHANGES = "loopback/changes"
FEEDS = (ALARM, ONCE, INTERVAL, CHANGES, LOOPBACK_CHANGES)

#: parameters kept in a registration's config but never returned by READ
SECRET_PARAMS = frozenset({"password"})


def now_ms() -> int:
    return int(time.time() * 1000)


class FeedReason(BaseModel):
    """Why a registration is inactive, or (active) what is wrong with its source; OpenWhisk's `status.reason`."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["AUTO", "USER", "ADMIN"] = "AUTO"
    statusCode: int | None = None
    message: str


class FeedStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    active: bool = True
    #: epoch ms of the last change of `active` or `reason`
    dateChanged: int = Field(default_factory=now_ms)
    reason: FeedReason | None = None


class FeedRegistration(BaseModel):
    model_config = ConfigDict(extra="ignore")

    #: the trigger, `namespace/name`
    trigger: str
    feed: Literal["alarms/alarm", "alarms/once", "alarms/interval", "couchdb/changes", "loopback/changes"]
    id: str = Field(default_factory=lambda: secrets.token_hex(16))
    #: the trigger owner's `uuid:key`
    authKey: str = Field(repr=False)
    config: dict[str, Any] = Field(default_factory=dict, repr=False)
    status: FeedStatus = Field(default_factory=FeedStatus)
    cursor: str | int | None = None
    created: int = Field(default_factory=now_ms)

    @property
    def namespace(self) -> str:
        return self.trigger.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.trigger.split("/", 1)[1]

    def public(self) -> dict[str, Any]:
        """What READ answers, in the shape of OpenWhisk's alarm and cloudant providers: no key, no password."""
        config = {k: v for k, v in self.config.items() if k not in SECRET_PARAMS}
        config.update(name=self.name, namespace=self.namespace)
        status: dict[str, Any] = {"active": self.status.active, "dateChanged": self.status.dateChanged}
        if self.status.reason is not None:
            status["reason"] = self.status.reason.model_dump(exclude_none=True)
        return {"config": config, "status": status}

    def inactive(self, message: str, status_code: int | None = None, kind: str = "AUTO") -> FeedRegistration:
        """This registration, disabled for `message`."""
        reason = FeedReason(kind=kind, statusCode=status_code, message=message)  # type: ignore[arg-type]
        return self.model_copy(update={"status": FeedStatus(active=False, reason=reason)})

    def same_schedule(self, other: FeedRegistration) -> bool:
        """Whether `other` asks for the same work: a cursor or a status reason of an active source differ freely."""
        return (self.id, self.feed, self.config, self.authKey, self.status.active) == (
            other.id, other.feed, other.config, other.authKey, other.status.active
        )
