"""`~/.wskprops` handling and property resolution, as in wsk (`commands/property.go`, `commands/util.go`).

The file holds `KEY=VALUE` lines (`APIHOST`, `AUTH`, `NAMESPACE`, `APIVERSION`, `CERT`, `KEY`, `CACERT`); `#` starts a
comment. `WSK_CONFIG_FILE` replaces the file's path (even when empty). Values are resolved in this order, later wins:
defaults, the file, the environment (`WHISK_AUTH`, `WHISK_APIHOST`, `WHISK_NAMESPACE`, `WHISK_APIVERSION`), then the
global command-line flags. Unlike wsk, which rewrites the whole file, pywsk edits only the lines it sets or unsets and
keeps every other line (comments included) as it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_API_VERSION = "v1"
DEFAULT_NAMESPACE = "_"
DEFAULT_PROPS_FILE = "~/.wskprops"

_COMMENT = re.compile(r"#.*")


@dataclass
class Properties:
    """The effective configuration of one command."""

    auth: str = ""
    apihost: str = ""
    apiversion: str = DEFAULT_API_VERSION
    namespace: str = DEFAULT_NAMESPACE
    cert: str = ""
    key: str = ""
    cacert: str = ""
    props_file: str = ""


def props_file_path(env: Mapping[str, str] | None = None) -> str:
    """The properties file: `WSK_CONFIG_FILE` when set (even to ""), else `~/.wskprops`."""
    env = os.environ if env is None else env
    if "WSK_CONFIG_FILE" in env:
        return env["WSK_CONFIG_FILE"]
    return os.path.expanduser(DEFAULT_PROPS_FILE)


def _parse_line(line: str) -> tuple[str, str] | None:
    line = _COMMENT.sub("", line).strip()
    key, sep, value = line.partition("=")
    if not sep or not key.strip():
        return None
    return key.strip(), value.strip()


def read_props(path: str) -> dict[str, str]:
    """The `KEY=VALUE` pairs of a properties file; a missing or unreadable file gives no pairs (like wsk)."""
    props: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return props
    for line in text.splitlines():
        kv = _parse_line(line)
        if kv is not None:
            props[kv[0]] = kv[1]
    return props


def write_props(path: str, updates: Mapping[str, str | None]) -> None:
    """Set (value) or remove (None) keys in the properties file, keeping all other lines intact.

    A key already present is replaced in place (duplicates of it are dropped); a new key is appended. A new file is
    created readable by its owner only, since it holds the API key. Raises OSError on failure.
    """
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            lines = f.read().splitlines(keepends=True)
        exists = True
    except FileNotFoundError:
        lines, exists = [], False
    for key, value in updates.items():
        out: list[str] = []
        replaced = False
        for line in lines:
            kv = _parse_line(line)
            if kv is not None and kv[0] == key:
                if value is not None and not replaced:
                    eol = line[len(line.rstrip("\r\n")) :] or "\n"
                    out.append(f"{key}={value}{eol}")
                    replaced = True
                continue
            out.append(line)
        if value is not None and not replaced:
            if out and not out[-1].endswith(("\n", "\r")):
                out[-1] += "\n"
            out.append(f"{key}={value}\n")
        lines = out
    data = "".join(lines)
    if exists:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(data)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(data)


def load_properties(env: Mapping[str, str] | None = None) -> Properties:
    """Defaults, then the properties file, then the `WHISK_*` environment variables."""
    env = os.environ if env is None else env
    path = props_file_path(env)
    props = read_props(path) if path else {}
    p = Properties(props_file=path)
    p.cert = props.get("CERT", p.cert)
    p.key = props.get("KEY", p.key)
    p.cacert = props.get("CACERT", p.cacert)
    p.auth = props.get("AUTH", p.auth)
    p.auth = env.get("WHISK_AUTH") or p.auth
    p.apiversion = props.get("APIVERSION", p.apiversion)
    p.apiversion = env.get("WHISK_APIVERSION") or p.apiversion
    p.apihost = props.get("APIHOST", p.apihost)
    p.apihost = env.get("WHISK_APIHOST") or p.apihost
    p.namespace = props.get("NAMESPACE") or p.namespace
    p.namespace = env.get("WHISK_NAMESPACE") or p.namespace
    return p


def base_url(apihost: str) -> str:
    """`{scheme://host[:port]}` for an API host; a host given without a scheme gets `https://` (like wsk)."""
    host = apihost.strip()
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", host):
        host = "https://" + host
    return host.rstrip("/")
