"""Entity names and paths, with OpenWhisk's name rule.

A name is 1 to 256 characters: the first alphanumeric or `_`; the rest alphanumeric, space, `_ @ . - &`; it may not
end in a space. A fully qualified name is `/namespace[/package]/name`. `_` stands for the caller's namespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_NAMESPACE = "_"
MAX_NAME_LENGTH = 256
_NAME = re.compile(r"\A([\w]|[\w][\w@ .&-]{0,254}[\w@.&-])\Z", re.ASCII)

#: the platform's own namespace: the catalog's packages, which tenants read but cannot write
SYSTEM_NAMESPACE = "whisk.system"


class InvalidName(ValueError):
    """A name or path that breaks the name rule."""


def is_valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


def check_name(name: str) -> str:
    if not is_valid_name(name):
        raise InvalidName(name)
    return name


@dataclass(frozen=True)
class EntityPath:
    """Where an entity lives: a namespace and, for actions in a package, the package."""

    namespace: str
    package: str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.package}" if self.package else self.namespace

    @classmethod
    def parse(cls, path: str) -> EntityPath:
        """`ns` or `ns/pkg` as stored in an entity's `namespace` field."""
        parts = path.split("/")
        if len(parts) > 2 or not all(is_valid_name(p) for p in parts):
            raise InvalidName(path)
        return cls(parts[0], parts[1] if len(parts) == 2 else None)

    @property
    def root(self) -> str:
        return self.namespace


@dataclass(frozen=True)
class FullyQualifiedName:
    """`/namespace[/package]/name`."""

    path: EntityPath
    name: str

    @property
    def namespace(self) -> str:
        return self.path.namespace

    @property
    def package(self) -> str | None:
        return self.path.package

    def doc_id(self) -> str:
        """The entity's id in the whisks store: `ns/name` or `ns/pkg/name`."""
        return f"{self.path}/{self.name}"

    def __str__(self) -> str:
        return f"/{self.doc_id()}"

    def resolve(self, namespace: str) -> FullyQualifiedName:
        """Replace the `_` namespace with the caller's."""
        if self.path.namespace != DEFAULT_NAMESPACE:
            return self
        return FullyQualifiedName(EntityPath(namespace, self.path.package), self.name)

    @classmethod
    def of(cls, namespace: str, name: str, package: str | None = None) -> FullyQualifiedName:
        check_name(namespace)
        check_name(name)
        if package is not None:
            check_name(package)
        return cls(EntityPath(namespace, package), name)

    @classmethod
    def parse(cls, text: str, default_namespace: str = DEFAULT_NAMESPACE) -> FullyQualifiedName:
        """Parse a reference as clients write it: `name`, `pkg/name`, `/ns/name` or `/ns/pkg/name`."""
        if text.startswith("/"):
            parts = text[1:].split("/")
            if len(parts) == 2:
                return cls.of(parts[0], parts[1])
            if len(parts) == 3:
                return cls.of(parts[0], parts[2], parts[1])
            raise InvalidName(text)
        parts = text.split("/")
        if len(parts) == 1:
            return cls.of(default_namespace, parts[0])
        if len(parts) == 2:
            return cls.of(default_namespace, parts[1], parts[0])
        raise InvalidName(text)
