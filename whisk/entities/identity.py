"""Subjects, namespaces, keys and the identity a request runs as."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid as uuidlib

from pydantic import BaseModel, ConfigDict, Field

KEY_LENGTH = 64
_KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def hash_key(key: str) -> str:
    """How a key is kept in the store: never in clear. Keys are 64 random characters, so a plain digest suffices."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), key_hash)


def generate_uuid() -> str:
    return str(uuidlib.uuid4())


def generate_key() -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(KEY_LENGTH))


class NamespaceLimits(BaseModel):
    """Per-namespace overrides of the system throttles; None means the system default."""

    model_config = ConfigDict(extra="ignore")

    invocationsPerMinute: int | None = None
    concurrentInvocations: int | None = None
    firesPerMinute: int | None = None


class NamespaceKey(BaseModel):
    """A namespace of a subject with its credentials (the key as its hash)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    uuid: str
    key_hash: str


class Subject(BaseModel):
    """A user: a subject name and the namespaces it owns (OpenWhisk's `subjects` document)."""

    model_config = ConfigDict(extra="ignore")

    subject: str
    namespaces: list[NamespaceKey] = Field(default_factory=list)
    blocked: bool = False
    limits: dict[str, NamespaceLimits] = Field(default_factory=dict)


class Identity(BaseModel):
    """Who a request runs as: resolved from `uuid:key`, carried in activation messages."""

    model_config = ConfigDict(extra="ignore")

    subject: str
    namespace: str
    uuid: str
    limits: NamespaceLimits = Field(default_factory=NamespaceLimits)
