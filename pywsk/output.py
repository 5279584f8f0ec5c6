"""Output formatting shared by the commands, matching what wsk prints.

wsk pretty-prints JSON with a 4-space indent. Generic JSON objects (a result, an invoke response) come out with their
keys sorted, as Go encodes maps; entities that wsk decodes into Go structs (an action for `action get`, an activation
for `activation get`) come out in the struct's field order, with Go's `omitempty` rules. Keys pywsk does not know are
kept, after the known ones.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, TextIO

STATUS_CODES = ["success", "application error", "developer error", "internal error"]
_RESPONSE_STATUS_CODES = {
    "success": 0,
    "application error": 1,
    "action developer error": 2,
    "developer error": 2,
    "whisk internal error": 3,
    "internal error": 3,
}

_TIMESTAMP = re.compile(r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-6]\d:[0-6]\d.\d+Z( *(stdout|stderr):)?\s(.*)")


def go_sorted(value: Any) -> Any:
    """`value` with every object's keys sorted, as Go encodes `map[string]interface{}`."""
    if isinstance(value, dict):
        return {k: go_sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [go_sorted(v) for v in value]
    return value


def json_text(value: Any, *, sort: bool = True) -> str:
    """Pretty JSON, 4-space indent, UTF-8 kept, newline-terminated."""
    if sort:
        value = go_sorted(value)
    return json.dumps(value, indent=4, ensure_ascii=False) + "\n"


def print_json(value: Any, stream: TextIO, *, sort: bool = True) -> None:
    stream.write(json_text(value, sort=sort))


# -- Go struct views --------------------------------------------------------------------------------------------

# (json key, omitempty kind): "str" omitted when "", "list" when empty, "ptr" when absent/None, "int" when 0,
# None never omitted (zero value filled in when absent).
_EXEC_FIELDS = [
    ("kind", "str"),
    ("code", "ptr"),
    ("image", "str"),
    ("init", "str"),
    ("main", "str"),
    ("components", "list"),
    ("binary", "ptr"),
]
_LIMITS_FIELDS = [("timeout", "ptr"), ("memory", "ptr"), ("logs", "ptr"), ("concurrency", "ptr")]
_ACTION_FIELDS = [
    ("namespace", "str"),
    ("name", "str"),
    ("version", "str"),
    ("exec", "ptr"),
    ("annotations", "list"),
    ("delAnnotations", "list"),
    ("parameters", "list"),
    ("limits", "ptr"),
    ("error", "str"),
    ("code", "int"),
    ("publish", "ptr"),
    ("updated", "int"),
]
_ACTIVATION_FIELDS = [
    ("namespace", None),
    ("name", None),
    ("version", None),
    ("subject", None),
    ("activationId", None),
    ("cause", "str"),
    ("start", None),
    ("end", None),
    ("duration", None),
    ("statusCode", None),
    ("response", None),
    ("logs", None),
    ("annotations", None),
    ("publish", "ptr"),
]
_RESPONSE_FIELDS = [("status", None), ("statusCode", None), ("success", None), ("result", "ptr")]
_ZERO = {
    "namespace": "",
    "name": "",
    "version": "",
    "subject": "",
    "activationId": "",
    "start": 0,
    "end": 0,
    "duration": 0,
    "statusCode": 0,
    "status": "",
    "success": False,
    "logs": None,
    "annotations": None,
}

# `get NAME FIELD`: the field filters wsk accepts (its Go struct's field names, any case) -> (json key, zero value)
ACTION_FIELD_FILTERS = {
    "namespace": ("namespace", ""),
    "name": ("name", ""),
    "version": ("version", ""),
    "exec": ("exec", None),
    "annotations": ("annotations", None),
    "delannotations": ("delAnnotations", None),
    "parameters": ("parameters", None),
    "limits": ("limits", None),
    "error": ("error", ""),
    "code": ("code", 0),
    "publish": ("publish", None),
    "updated": ("updated", 0),
}
ACTIVATION_FIELD_FILTERS = {
    "namespace": ("namespace", ""),
    "name": ("name", ""),
    "version": ("version", ""),
    "subject": ("subject", ""),
    "activationid": ("activationId", ""),
    "cause": ("cause", ""),
    "start": ("start", 0),
    "end": ("end", 0),
    "duration": ("duration", 0),
    "statuscode": ("statusCode", 0),
    "response": ("response", None),
    "logs": ("logs", None),
    "annotations": ("annotations", None),
    "publish": ("publish", None),
}


def _omitted(kind: str | None, present: bool, value: Any) -> bool:
    if kind is None:
        return False
    if not present or value is None:
        return True
    if kind == "str":
        return value == ""
    if kind == "list":
        return isinstance(value, list | dict) and len(value) == 0
    if kind == "int":
        return value == 0 or value is False
    return False


def _struct(obj: dict, fields: list[tuple[str, str | None]], nested: dict[str, Any] | None = None) -> dict:
    nested = nested or {}
    out: dict[str, Any] = {}
    known = {k for k, _ in fields}
    for key, kind in fields:
        present = key in obj
        value = obj.get(key)
        if _omitted(kind, present, value):
            continue
        if not present:
            value = _ZERO.get(key)
        if key in nested and isinstance(value, dict | list):
            value = nested[key](value)
        elif key in ("annotations", "parameters") and isinstance(value, list):
            value = [_key_value(kv) for kv in value]
        else:
            value = go_sorted(value)
        out[key] = value
    for key in sorted(k for k in obj if k not in known):
        out[key] = go_sorted(obj[key])
    return out


def _key_value(kv: Any) -> Any:
    if isinstance(kv, dict):
        ordered = {"key": kv.get("key"), "value": go_sorted(kv.get("value"))}
        for k in sorted(k for k in kv if k not in ("key", "value")):
            ordered[k] = go_sorted(kv[k])
        return ordered
    return go_sorted(kv)


def action_view(action: dict) -> dict:
    """An action as `wsk action get` prints it."""
    return _struct(
        action,
        _ACTION_FIELDS,
        {"exec": _object_of(_EXEC_FIELDS), "limits": _object_of(_LIMITS_FIELDS)},
    )


_PACKAGE_FIELDS = [
    ("namespace", "str"),
    ("name", "str"),
    ("version", "str"),
    ("publish", "ptr"),
    ("annotations", "list"),
    ("parameters", "list"),
    ("binding", "ptr"),
    ("actions", "list"),
    ("feeds", "list"),
    ("updated", "int"),
]
_TRIGGER_FIELDS = [
    ("namespace", "str"),
    ("name", "str"),
    ("version", "str"),
    ("activationId", "str"),
    ("annotations", "list"),
    ("parameters", "list"),
    ("limits", "ptr"),
    ("publish", "ptr"),
    ("rules", "list"),
    ("updated", "int"),
]
_RULE_FIELDS = [
    ("namespace", "str"),
    ("name", "str"),
    ("version", "str"),
    ("status", None),
    ("trigger", None),
    ("action", None),
    ("publish", "ptr"),
    ("updated", "int"),
]


def _filters(fields: list[tuple[str, str | None]]) -> dict[str, tuple[str, Any]]:
    zeros = {"str": "", "int": 0}
    return {key.lower(): (key, zeros.get(kind or "", "" if key == "status" else None)) for key, kind in fields}


PACKAGE_FIELD_FILTERS = _filters(_PACKAGE_FIELDS)
TRIGGER_FIELD_FILTERS = _filters(_TRIGGER_FIELDS)
RULE_FIELD_FILTERS = _filters(_RULE_FIELDS)


def package_view(package: dict) -> dict:
    """A package as `wsk package get` prints it (Go `whisk.Package` field order)."""
    return _struct(package, _PACKAGE_FIELDS, {"actions": _list_of(action_view), "feeds": _list_of(action_view)})


def trigger_view(trigger: dict) -> dict:
    """A trigger as `wsk trigger get` prints it (Go `whisk.Trigger` field order)."""
    return _struct(trigger, _TRIGGER_FIELDS)


def rule_view(rule: dict) -> dict:
    """A rule as `wsk rule get` prints it (Go `whisk.Rule` field order)."""
    return _struct(rule, _RULE_FIELDS)


def _list_of(view: Any) -> Any:
    return lambda items: (
        [view(i) if isinstance(i, dict) else go_sorted(i) for i in items]
        if isinstance(items, list)
        else go_sorted(items)
    )


def _object_of(fields: list[tuple[str, str | None]]) -> Any:
    return lambda obj: _struct(obj, fields) if isinstance(obj, dict) else go_sorted(obj)


def status_code_of(activation: dict) -> int:
    """The activation's status code (0..3): `statusCode`, else derived from `response`."""
    code = activation.get("statusCode")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    response = activation.get("response")
    if isinstance(response, dict):
        code = response.get("statusCode")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
        status = response.get("status")
        if isinstance(status, str):
            return _RESPONSE_STATUS_CODES.get(status, 0)
    return 0


def activation_view(activation: dict) -> dict:
    """An activation record as `wsk activation get` prints it."""
    obj = dict(activation)
    obj.setdefault("statusCode", status_code_of(activation))
    response = obj.get("response")
    if isinstance(response, dict) and "statusCode" not in response:
        response = dict(response)
        response["statusCode"] = status_code_of(activation)
        obj["response"] = response
    return _struct(obj, _ACTIVATION_FIELDS, {"response": _object_of(_RESPONSE_FIELDS)})


def field_value(view: dict, filters: dict[str, tuple[str, Any]], field: str) -> Any:
    key, zero = filters[field.lower()]
    return view.get(key, zero)


# -- small helpers ----------------------------------------------------------------------------------------------


def kv_get(pairs: Any, key: str) -> Any:
    """The value of `key` in a `[{"key", "value"}]` list, or None."""
    if isinstance(pairs, list):
        for kv in pairs:
            if isinstance(kv, dict) and kv.get("key") == key:
                return kv.get("value")
    return None


def go_duration(ms: int) -> str:
    """A duration in milliseconds formatted like Go's `time.Duration.String()` (`0s`, `12ms`, `1.5s`, `1m2.003s`)."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    hours, rem = divmod(ms, 3_600_000)
    minutes, rem = divmod(rem, 60_000)
    seconds, millis = divmod(rem, 1000)
    sec = str(seconds) + (("." + f"{millis:03d}".rstrip("0")) if millis else "")
    if hours:
        return f"{sign}{hours}h{minutes}m{sec}s"
    if minutes:
        return f"{sign}{minutes}m{sec}s"
    return f"{sign}{sec}s"


def strip_timestamp(line: str) -> str:
    """A log line without its timestamp and stream (`wsk activation logs --strip`)."""
    match = _TIMESTAMP.search(line)
    if match and match.group(3):
        return match.group(3)
    return line


def truncate(text: str, maxlen: int) -> str:
    """wsk's `TruncateStr`: shorten to `maxlen` characters with `...` in the middle."""
    if len(text) <= maxlen:
        return text
    mid = maxlen // 2
    upp = len(text) - mid + 3
    if maxlen % 2 != 0:
        mid += 1
    return text[:mid] + "..." + text[upp:]


def local_time(ms: int) -> time.struct_time:
    return time.localtime(ms / 1000)


def activation_table(activations: list[dict]) -> str:
    """The `wsk activation list` table (Datetime, Activation ID, Kind, Start, Duration, Status, Entity)."""
    kinds = []
    statuses = []
    for a in activations:
        kind = kv_get(a.get("annotations"), "kind")
        kinds.append(kind if isinstance(kind, str) else "unknown")
        code = status_code_of(a)
        statuses.append(STATUS_CODES[code] if 0 < code < len(STATUS_CODES) else STATUS_CODES[0])
    if not activations:
        return "\n"
    kind_w = max(len("Kind"), *(len(k) for k in kinds))
    status_w = max(len("Status"), len(STATUS_CODES[0]), *(len(s) for s in statuses))
    lines = [
        f"{'Datetime':<19} {'Activation ID':<32} {'Kind':<{kind_w}} {'Start':<6}{'Duration':<10} "
        f"{'Status':<{status_w}} {'Entity':<6}\n"
    ]
    for a, kind, status in zip(activations, kinds, statuses, strict=True):
        start = _int(a.get("start"))
        end = _int(a.get("end"))
        t = local_time(start)
        duration = "0s" if not _int(a.get("duration")) else go_duration(end - start)
        cold = "cold" if kv_get(a.get("annotations"), "initTime") is not None else "warm"
        fqn = (
            f"{truncate(str(a.get('namespace', '')), 20)}/{truncate(str(a.get('name', '')), 30)}:"
            f"{truncate(str(a.get('version', '')), 20)}"
        )
        lines.append(
            f"{t.tm_year}-{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} "
            f"{a.get('activationId', '')!s:<32} {kind:<{kind_w}} {cold:<5} {duration:<10} "
            f"{status:<{status_w}} {fqn}\n"
        )
    return "".join(lines)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0
