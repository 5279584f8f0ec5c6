"""`pywsk` for the programming model against a real platform: packages and bindings, triggers, rules and feeds,
sequences, web actions and API routes, each driven only through the CLI (and plain HTTP for web URLs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.platform import REPO, Platform

pytestmark = pytest.mark.e2e

WAIT_S = 60.0


def pywsk(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WSK_CONFIG_FILE": str(platform.wskprops)}
    return subprocess.run(
        [sys.executable, "-m", "pywsk", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )


def ok(platform: Platform, *args: str) -> str:
    done = pywsk(platform, *args)
    assert done.returncode == 0, f"pywsk {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=90) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def activation_result(platform: Platform, activation_id: str) -> Any:
    """The result of an activation, once it is recorded."""
    deadline = time.monotonic() + WAIT_S
    while True:
        done = pywsk(platform, "activation", "result", activation_id)
        if done.returncode == 0:
            return json.loads(done.stdout)
        assert time.monotonic() < deadline, done.stderr
        time.sleep(0.5)


def write(tmp_path: Path, name: str, code: str) -> str:
    path = tmp_path / name
    path.write_text(code)
    return str(path)


def test_packages_bindings_override_parameters(platform: Platform, tmp_path: Path) -> None:
    pkg, binding = unique("cli-pkg"), unique("cli-bind")
    greet = write(tmp_path, "greet.py", "def main(args):\n    return {'text': args['greeting'] + ' ' + args['name']}\n")
    assert ok(platform, "package", "create", pkg, "-p", "greeting", "Hello") == f"ok: created package {pkg}\n"
    assert ok(platform, "action", "create", f"{pkg}/greet", greet) == f"ok: created action {pkg}/greet\n"
    out = ok(platform, "package", "bind", pkg, binding, "-p", "greeting", "Hey")
    assert out == f"ok: created binding {binding}\n"

    out = ok(platform, "package", "get", binding)
    header, body = out.split("\n", 1)
    assert header == f"ok: got package {binding}"
    assert json.loads(body)["binding"] == {"namespace": "guest", "name": pkg}
    summary = ok(platform, "package", "get", pkg, "--summary")
    assert summary.startswith(f"package /guest/{pkg}")

    result = json.loads(ok(platform, "action", "invoke", f"{pkg}/greet", "-r", "-p", "name", "Ada"))
    assert result == {"text": "Hello Ada"}
    result = json.loads(ok(platform, "action", "invoke", f"{binding}/greet", "-r", "-p", "name", "Ada"))
    assert result == {"text": "Hey Ada"}

    listed = ok(platform, "package", "list")
    assert f"/guest/{pkg}".ljust(70) + " private" in listed

    not_empty = pywsk(platform, "package", "delete", pkg)
    assert not_empty.returncode != 0 and not_empty.stderr.startswith(f"error: Unable to delete package '{pkg}'")
    assert ok(platform, "package", "delete", binding) == f"ok: deleted package {binding}\n"
    ok(platform, "action", "delete", f"{pkg}/greet")
    assert ok(platform, "package", "delete", pkg) == f"ok: deleted package {pkg}\n"


def test_triggers_fire_rules_that_are_enabled(platform: Platform, tmp_path: Path) -> None:
    trigger, rule, action = unique("cli-trig"), unique("cli-rule"), unique("cli-echo")
    ok(platform, "action", "create", action, write(tmp_path, "echo.py", "def main(args):\n    return args\n"))
    assert ok(platform, "trigger", "create", trigger, "-p", "source", "cli") == f"ok: created trigger {trigger}\n"

    out = ok(platform, "trigger", "fire", trigger)
    assert out == f"trigger /_/{trigger} did not fire as it is not associated with an active rule\n"

    assert ok(platform, "rule", "create", rule, trigger, action) == f"ok: created rule {rule}\n"
    assert ok(platform, "rule", "status", rule) == f"ok: rule {rule} is active\n"
    out = ok(platform, "trigger", "fire", trigger, "-p", "n", "1")
    prefix = f"ok: triggered /_/{trigger} with id "
    assert out.startswith(prefix)
    trigger_activation = out.strip()[len(prefix) :]

    deadline = time.monotonic() + WAIT_S
    while True:
        got = pywsk(platform, "activation", "get", trigger_activation)
        if got.returncode == 0:
            logs = json.loads(got.stdout.split("\n", 1)[1])["logs"]
            if logs:
                break
        assert time.monotonic() < deadline, got.stderr
        time.sleep(0.5)
    outcome = json.loads(logs[0])
    assert outcome["rule"].endswith(f"/{rule}") and outcome["action"].endswith(f"/{action}")
    assert activation_result(platform, outcome["activationId"]) == {"source": "cli", "n": 1}

    assert ok(platform, "rule", "disable", rule) == f"ok: disabled rule {rule}\n"
    assert ok(platform, "rule", "status", rule) == f"ok: rule {rule} is inactive\n"
    assert "did not fire" in ok(platform, "trigger", "fire", trigger)
    assert ok(platform, "rule", "enable", rule) == f"ok: enabled rule {rule}\n"
    assert ok(platform, "trigger", "fire", trigger).startswith(prefix)

    assert f"/guest/{rule}" in ok(platform, "rule", "list")
    assert f"/guest/{trigger}" in ok(platform, "trigger", "list")
    assert ok(platform, "rule", "delete", rule, "--disable") == f"ok: deleted rule {rule}\n"
    assert ok(platform, "trigger", "delete", trigger) == f"ok: deleted trigger {trigger}\n"
    ok(platform, "action", "delete", action)


def test_trigger_with_a_feed_configures_and_releases_the_feed(platform: Platform) -> None:
    trigger = unique("cli-once")
    when = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    out = ok(platform, "trigger", "create", trigger, "--feed", "/whisk.system/alarms/once", "-p", "date", when)
    assert out.startswith("ok: invoked /whisk.system/alarms/once with id ")
    assert out.endswith(f"ok: created trigger {trigger}\n")
    out = ok(platform, "trigger", "delete", trigger)
    assert out.endswith(f"ok: deleted trigger {trigger}\n")
    assert pywsk(platform, "trigger", "get", trigger).returncode == 148


def test_sequences_and_secured_web_actions(platform: Platform, tmp_path: Path) -> None:
    inc, double, seq, web = unique("cli-inc"), unique("cli-dbl"), unique("cli-seq"), unique("cli-web")
    ok(platform, "action", "create", inc, write(tmp_path, "inc.py", "def main(a):\n    return {'n': a['n'] + 1}\n"))
    ok(platform, "action", "create", double, write(tmp_path, "dbl.py", "def main(a):\n    return {'n': a['n'] * 2}\n"))
    assert ok(platform, "action", "create", seq, "--sequence", f"{inc},{double}") == f"ok: created action {seq}\n"
    assert json.loads(ok(platform, "action", "invoke", seq, "-r", "-p", "n", "1")) == {"n": 4}
    got = json.loads(ok(platform, "action", "get", seq).split("\n", 1)[1])
    assert got["exec"]["components"] == [f"/_/{inc}", f"/_/{double}"] or got["exec"]["components"] == [
        f"/guest/{inc}",
        f"/guest/{double}",
    ]

    code = "def main(args):\n    return {'hello': args.get('name', 'web')}\n"
    ok(platform, "action", "create", web, write(tmp_path, "web.py", code), "--web", "true")
    url = ok(platform, "action", "get", web, "--url").split("\n")[1]
    assert url == f"{platform.api_host}/api/v1/web/guest/default/{web}"
    status, body = http_get(f"{url}.json?name=Ada")
    assert (status, json.loads(body)) == (200, {"hello": "Ada"})

    ok(platform, "action", "update", web, "--web-secure", "s3cret")
    assert http_get(f"{url}.json")[0] == 401
    status, body = http_get(f"{url}.json", {"X-Require-Whisk-Auth": "s3cret"})
    assert (status, json.loads(body)) == (200, {"hello": "web"})
    ok(platform, "action", "update", web, "--web", "false")
    assert http_get(f"{url}.json", {"X-Require-Whisk-Auth": "s3cret"})[0] == 404

    for name in (seq, inc, double, web):
        ok(platform, "action", "delete", name)


def test_api_routes_create_list_and_delete(platform: Platform, tmp_path: Path) -> None:
    action, base = unique("cli-users"), f"/{unique('iot')}"
    code = "def main(args):\n    return {'users': ['ada'], 'id': args.get('id')}\n"
    ok(platform, "action", "create", action, write(tmp_path, "users.py", code), "--web", "true")

    out = ok(platform, "api", "create", "--apiname", "iot", base, "/users", "get", action)
    first, url, rest = out.split("\n", 2)
    assert first == f"ok: created API {base}/users GET for action /_/{action}"
    assert url.endswith("/users") and rest == ""
    status, body = http_get(url)
    assert status == 200 and json.loads(body)["users"] == ["ada"]

    listed = ok(platform, "api", "list")
    assert listed.startswith("ok: APIs\nAction")
    assert any(line.endswith(f"  {url}") and action in line for line in listed.splitlines())
    got = json.loads(ok(platform, "api", "get", base))
    assert got["basePath"] == base and "/users" in got["paths"]

    assert ok(platform, "api", "delete", base) == f"ok: deleted API {base}\n"
    assert url not in ok(platform, "api", "list")
    assert http_get(url)[0] == 404
    ok(platform, "action", "delete", action)
