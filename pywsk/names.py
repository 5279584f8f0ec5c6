"""Entity names on the command line, parsed like wsk's `NewQualifiedName` (`commands/qualified_name.go`).

`hello` and `pkg/hello` live in the default namespace (the NAMESPACE property, `_` unless set); `/ns/hello` and
`/ns/pkg/hello` are fully qualified; `ns/pkg/hello` (three parts) is read as `/ns/pkg/hello`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from pywsk.errors import EXIT_CODE_ERR_GENERAL, WskError


@dataclass(frozen=True)
class QualifiedName:
    namespace: str
    package: str
    entity: str
    entity_name: str  # "[package/]entity"

    @property
    def full(self) -> str:
        """`/namespace/[package/]entity`."""
        return f"/{self.namespace}/{self.entity_name}" if self.entity_name else f"/{self.namespace}"


def _invalid(name: str) -> WskError:
    return WskError(
        f"'{name}' is not a valid qualified name: A valid qualified name must be specified.",
        EXIT_CODE_ERR_GENERAL,
        display_usage=True,
    )


def parse_name(name: str, default_namespace: str = "_") -> QualifiedName:
    """Split a (possibly fully qualified) entity name; raises WskError like wsk for an invalid one."""
    original = name
    parts = name.split("/")
    if len(parts) == 3 and parts[0] != "":
        name = "/" + name
        parts = name.split("/")
    if name.startswith("/"):
        if len(parts) < 2 or len(parts) > 4 or any(p in ("", ".") for p in parts[1:]):
            raise _invalid(original)
        return QualifiedName(
            namespace=parts[1],
            package=parts[2] if len(parts) == 4 else "",
            entity=parts[-1],
            entity_name="/".join(parts[2:]),
        )
    if name in ("", "."):
        raise _invalid(original)
    return QualifiedName(
        namespace=default_namespace or "_",
        package=parts[0] if len(parts) == 2 else "",
        entity=parts[-1],
        entity_name=name,
    )


def qualify(name: str, namespace: str) -> str:
    """`/ns/[pkg/]name` for a possibly unqualified name (wsk's `getQualifiedName`), used for sequence components."""
    parts = name.split("/")
    if len(parts) == 3 and parts[0] != "":
        name = "/" + name
    if name.startswith("/"):
        return name
    if namespace.startswith("/"):
        return f"{namespace}/{name}"
    return f"/{namespace or '_'}/{name}"


def quote_path(path: str) -> str:
    """URL-encode each `/`-separated segment of an entity path."""
    return "/".join(quote(segment, safe="") for segment in path.split("/"))
