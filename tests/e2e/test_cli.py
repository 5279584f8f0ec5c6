"""The `pywsk` CLI against a standalone platform: the tour of the README."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.platform import REPO, Platform

pytestmark = pytest.mark.e2e


def pywsk(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WSK_CONFIG_FILE": str(platform.wskprops)}
    return subprocess.run([sys.executable, "-m", "pywsk", *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=90)


def test_the_cli_tour_creates_invokes_and_shows_activations(platform: Platform, tmp_path: Path) -> None:
    hello_py = tmp_path / "hello.py"
    hello_py.write_text("def main(args):\n    print('hi', args.get('name'))\n"
                        "    return {'greeting': 'Hello ' + args.get('name', 'stranger')}\n")
    created = pywsk(platform, "action", "update", "cli-hello", str(hello_py))
    assert created.returncode == 0, created.stderr
    assert "ok: updated action cli-hello" in created.stdout

    invoked = pywsk(platform, "action", "invoke", "cli-hello", "-r", "-p", "name", "Ada")
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout) == {"greeting": "Hello Ada"}

    hello_js = tmp_path / "hello.js"
    hello_js.write_text("function main(p) { return { greeting: 'Hello ' + p.name }; }\n")
    created = pywsk(platform, "action", "update", "cli-hello-js", str(hello_js))
    assert created.returncode == 0, created.stderr
    invoked = pywsk(platform, "action", "invoke", "cli-hello-js", "--result", "--param", "name", "Grace")
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout) == {"greeting": "Hello Grace"}

    blocking = pywsk(platform, "action", "invoke", "cli-hello", "-b", "-p", "name", "Lin")
    assert blocking.returncode == 0, blocking.stderr
    first_line, _, rest = blocking.stdout.partition("\n")
    assert first_line.startswith("ok: invoked /_/cli-hello with id ")
    activation_id = first_line.rsplit(" ", 1)[1]
    assert json.loads(rest)["activationId"] == activation_id

    got = pywsk(platform, "activation", "get", activation_id)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith(f"ok: got activation {activation_id}")
    record = json.loads(got.stdout.split("\n", 1)[1])
    assert record["response"]["result"] == {"greeting": "Hello Lin"}
    assert any("hi Lin" in line for line in record["logs"])

    logs = pywsk(platform, "activation", "logs", activation_id)
    assert logs.returncode == 0 and "hi Lin" in logs.stdout

    listed = pywsk(platform, "action", "list")
    assert listed.returncode == 0 and "/guest/cli-hello" in listed.stdout

    missing = pywsk(platform, "action", "get", "no-such-action")
    assert missing.returncode != 0
    assert missing.stderr.startswith("error: ")
