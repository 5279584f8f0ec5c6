"""Messages on the bus, modelled on OpenWhisk's ActivationMessage, completion messages and PingMessage."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from whisk.entities.identity import Identity


def invoker_topic(invoker_id: int) -> str:
    return f"invoker{invoker_id}"


def completion_topic(controller_id: str) -> str:
    return f"completed{controller_id}"


HEALTH_TOPIC = "health"


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def serialize(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def parse(cls, data: bytes):
        return cls.model_validate_json(data)


class ActionRef(BaseModel):
    """The action to run: its path (`ns` or `ns/pkg`), name, version, and the store revision to load."""

    path: str
    name: str
    version: str
    revision: str

    @property
    def doc_id(self) -> str:
        return f"{self.path}/{self.name}"


class ControllerRef(BaseModel):
    asString: str
    instanceType: str = "controller"


class InvokerRef(BaseModel):
    instance: int
    instanceType: str = "invoker"
    userMemory: str | None = None


class ActivationMessage(_Message):
    """A request to run one activation, published to `invoker{N}`."""

    transid: tuple[str, int]  # (transaction id, epoch ms the controller received the request)
    action: ActionRef
    user: Identity
    activationId: str
    rootControllerIndex: ControllerRef
    blocking: bool
    content: dict[str, Any] | None = None
    initArgs: list[str] = Field(default_factory=list)
    cause: str | None = None
    #: the caller's key, only for actions annotated `provide-api-key: true` (for `__OW_API_KEY`)
    apiKey: str | None = None
    #: `ns/binding` when the action was reached through a package binding (recorded as an annotation)
    binding: str | None = None


class CompletionMessage(_Message):
    """An invoker's answer on `completed{M}`: always the activation id, and the whole record when the caller waits
    (OpenWhisk's CombinedCompletionAndResultMessage); `isSystemError` when the platform, not the action, failed."""

    transid: tuple[str, int]
    activationId: str
    isSystemError: bool = False
    instance: InvokerRef
    response: dict[str, Any] | None = None  # the activation record (store form)


class PingMessage(_Message):
    """An invoker's heartbeat on `health`, every second; `isEnabled: false` when it stops. `time` (epoch ms, a
    pywhisk addition) lets a controller that reads old pings from the log tell they are stale."""

    name: InvokerRef
    isEnabled: bool = True
    time: int | None = None

    @property
    def user_memory_mb(self) -> int:
        """`userMemory` is OpenWhisk's "2048 MB" string."""
        text = (self.name.userMemory or "0").split()[0]
        return int(text) if text.isdigit() else 0


CACHE_INVALIDATION_TOPIC = "cacheInvalidation"


class CacheInvalidationMessage(_Message):
    """An entity changed: every controller but the sender drops it from its caches."""

    key: str
    instanceId: str


FEEDS_TOPIC = "feeds"


class FeedChangedMessage(_Message):
    """A feed registration was created, changed or deleted (`trigger` is `ns/name`): the feed service re-reads it."""

    trigger: str
