"""Activation records and their responses (OpenWhisk's `WhiskActivation` and `ActivationResponse`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from whisk.entities import params
from whisk.entities.params import KeyValues

SUCCESS = 0
APPLICATION_ERROR = 1
DEVELOPER_ERROR = 2
WHISK_ERROR = 3

STATUS_NAMES = {
    SUCCESS: "success",
    APPLICATION_ERROR: "application error",
    DEVELOPER_ERROR: "action developer error",
    WHISK_ERROR: "whisk internal error",
}


class ActivationResponse(BaseModel):
    """The outcome of an activation. Stored with `statusCode`; shown with `status` and `success`."""

    model_config = ConfigDict(extra="ignore")

    statusCode: int = Field(default=SUCCESS, ge=SUCCESS, le=WHISK_ERROR)
    result: Any = None
    size: int | None = None

    @property
    def is_success(self) -> bool:
        return self.statusCode == SUCCESS

    @property
    def status(self) -> str:
        return STATUS_NAMES[self.statusCode]

    def api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "success": self.is_success}
        if self.result is not None:
            out["result"] = self.result
        if self.size is not None:
            out["size"] = self.size
        return out

    @classmethod
    def success(cls, result: Any, size: int | None = None) -> ActivationResponse:
        return cls(statusCode=SUCCESS, result=result, size=size)

    @classmethod
    def application_error(cls, error: Any, size: int | None = None) -> ActivationResponse:
        return cls(statusCode=APPLICATION_ERROR, result={"error": error}, size=size)

    @classmethod
    def developer_error(cls, error: Any) -> ActivationResponse:
        return cls(statusCode=DEVELOPER_ERROR, result={"error": error})

    @classmethod
    def whisk_error(cls, error: Any) -> ActivationResponse:
        return cls(statusCode=WHISK_ERROR, result={"error": error})


class WhiskActivation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    namespace: str
    name: str
    version: str
    subject: str
    activationId: str
    start: int
    end: int = 0
    duration: int | None = None
    publish: bool = False
    response: ActivationResponse = Field(default_factory=ActivationResponse)
    logs: list[str] = Field(default_factory=list)
    annotations: KeyValues = Field(default_factory=list)
    cause: str | None = None

    def annotation(self, key: str, default: Any = None) -> Any:
        return params.get(self.annotations, key, default)

    @property
    def entity_path(self) -> str:
        """`name` or `pkg/name`: the action's path without its namespace, from the `path` annotation."""
        path = self.annotation("path")
        if isinstance(path, str) and "/" in path:
            return path.split("/", 1)[1]
        return self.name

    def api(self) -> dict[str, Any]:
        """The full record as GET /activations/{id} and a blocking invoke return it."""
        out: dict[str, Any] = {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "subject": self.subject,
            "activationId": self.activationId,
            "start": self.start,
            "end": self.end,
            "duration": self.duration if self.duration is not None else max(0, self.end - self.start),
            "publish": self.publish,
            "response": self.response.api(),
            "logs": self.logs,
            "annotations": [a.model_dump() for a in self.annotations],
        }
        if self.cause is not None:
            out["cause"] = self.cause
        return out

    def summary(self) -> dict[str, Any]:
        """The list form: no logs and no response, with a top-level `statusCode`."""
        out = self.api()
        del out["logs"], out["response"]
        out["statusCode"] = self.response.statusCode
        return out
