"""Settings of each process: typed, read from `PYWHISK_*` environment variables, failing loudly on bad values."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from whisk.loopback_registry import Registry

ENV_PREFIX = "PYWHISK_"
LOOPBACK_REGISTRY_PREFIX = "loopback_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable and the value."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Self:
        """Fields from `PYWHISK_<FIELD>` variables, then `overrides` (flags) on top."""
        values: dict[str, Any] = {}
        for field in cls.model_fields:
            variable = ENV_PREFIX + field.upper()
            if variable in environ:
                values[field] = environ[variable]
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else "?"
                problems.append(f"{ENV_PREFIX}{field.upper()}={values.get(field)!r}: {error['msg']}")
            raise SettingsError("; ".join(problems)) from None


class _LoopbackRegistry(_Settings):
    """Where the LoopBack catalog keeps its registry of datasources and models: the invoker gives it to the
    catalog's actions, the controller's `loopback/changes` feed checks models there, the feed service follows its
    changes database."""

    #: a CouchDB with credentials of its own (`http://user:password@host:port`); empty: the catalog is not set up
    loopback_registry_url: str | None = None
    #: prefix of the registry's database names
    loopback_registry_prefix: str = LOOPBACK_REGISTRY_PREFIX

    @field_validator("loopback_registry_url")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    def loopback_registry(self) -> Registry | None:
        """The registry's location, or None when the catalog is not set up."""
        if self.loopback_registry_url is None:
            return None
        return Registry.at(self.loopback_registry_url, self.loopback_registry_prefix)


class InvokerSettings(_LoopbackRegistry):
    #: this invoker's id (topic `invoker{id}`); `auto` takes one from the store by host name, so that
    #: `docker-compose up --scale invoker=N` gives each invoker its own
    invoker_id: int | Literal["auto"] = Field(default=0)
    #: memory for action containers, in MB; prewarmed containers are not counted (as OpenWhisk)
    user_memory_mb: int = Field(default=2048, ge=128)
    #: how long an idle warm container stays before it is removed, in seconds
    idle_timeout_s: float = Field(default=600.0, gt=0)
    #: how long an idle warm container stays unpaused, in seconds (containers that can pause)
    pause_grace_s: float = Field(default=10.0, ge=0)
    #: start prewarmed containers per the runtime manifest
    prewarm: bool = True
    #: which container factory runs actions
    containers: Literal["process", "docker"] = "process"
    #: where the runtime proxies live (default: the repository's runtime-images/)
    runtimes_dir: Path | None = None
    #: the URL actions use to reach the platform (`__OW_API_HOST`)
    api_host: str = "http://127.0.0.1:3233"

    def system_action_env(self) -> dict[str, str]:
        """Environment variables for actions of the `whisk.system` namespace (the catalog's), set at `/init`."""
        if self.loopback_registry_url is None:
            return {}
        return {"LOOPBACK_REGISTRY_URL": self.loopback_registry_url,
                "LOOPBACK_REGISTRY_PREFIX": self.loopback_registry_prefix}


class ControllerSettings(_LoopbackRegistry):
    controller_id: str = "0"
    #: longest a blocking invoke waits, in milliseconds (OpenWhisk: 60 s)
    max_blocking_wait_ms: int = Field(default=60_000, ge=1)
    #: extra time after an action's time limit before the controller gives up on an invoker, in seconds
    #: (an invoker that stops pinging is given up on sooner, after 10 s of silence)
    completion_grace_s: float = Field(default=60.0, gt=0)
    #: how long an authenticated identity stays cached, in seconds
    identity_cache_s: float = Field(default=60.0, ge=0)
    #: largest request body, in bytes
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    #: throttles of namespaces that set none of their own (OpenWhisk's deployment defaults)
    invocations_per_minute: int = Field(default=60, ge=1)
    concurrent_invocations: int = Field(default=30, ge=1)
    fires_per_minute: int = Field(default=60, ge=1)


class StandaloneSettings(_Settings):
    host: str = "127.0.0.1"
    port: int = Field(default=3233, ge=0, le=65535)
    data_dir: Path = Path.home() / ".pywhisk"
    containers: Literal["auto", "process", "docker"] = "auto"
    #: write APIHOST and AUTH to this file (default: $WSK_CONFIG_FILE or ~/.wskprops)
    wskprops: Path | None = None


class ServiceSettings(_Settings):
    """Where a distributed controller or invoker finds the store and the bus, and where a controller listens."""

    #: the store: `http(s)://user:password@host:port/?prefix=...` for CouchDB, or `sqlite:///path.db`
    store_url: str = "http://127.0.0.1:5984"
    #: the bus: `kafka://host:port[,host:port]`
    bus_url: str = "kafka://127.0.0.1:9092"
    host: str = "0.0.0.0"
    port: int = Field(default=3233, ge=0, le=65535)


class FeedSettings(_LoopbackRegistry):
    """The feed service (`pywhisk feeds`, or inside standalone); its store and bus come from `ServiceSettings`."""

    #: where the service fires triggers: the platform's API, e.g. a controller or the gateway
    api_url: str = "http://127.0.0.1:3233"
    #: how often all registrations are re-read, in seconds (changes arrive on the bus at once)
    feeds_resync_s: float = Field(default=60.0, gt=0)
