"""`pywhisk admin` against a real SQLite store: in-process through the CLI entry, as a subprocess, and against a
running standalone platform."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pywhisk.__main__ import main
from pywhisk.admin import create_user, delete_limits, get_limits, rotate_key, set_blocked, set_limits
from tests.e2e.platform import REPO, Platform
from whisk.entities.identity import Identity, NamespaceLimits, generate_key, generate_uuid
from whisk.store import NotFound, Store, open_store


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PYWHISK_"):
            monkeypatch.delenv(name)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def admin(capsys: pytest.CaptureFixture[str], store_url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["admin", "--store", store_url, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def lookup(store_url: str, auth: str) -> Identity | None:
    """The identity `uuid:key` authenticates as in the store, or None."""

    async def find() -> Identity | None:
        store = await open_store(store_url)
        try:
            uuid, key = auth.split(":")
            return await store.identity_by_key(uuid, key)
        except NotFound:
            return None
        finally:
            await store.close()

    return asyncio.run(find())


def test_users_and_namespaces(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    code, out, _ = admin(capsys, store_url, "user", "create", "alice01")
    assert code == 0
    alice = out.strip()
    uuid, key = alice.split(":")
    assert len(key) == 64 and key.isalnum()
    assert lookup(store_url, alice) == Identity(subject="alice01", namespace="alice01", uuid=uuid)

    code, out, _ = admin(capsys, store_url, "user", "create", "alice01", "-ns", "team")
    assert code == 0
    team = out.strip()
    assert lookup(store_url, team) == Identity(subject="alice01", namespace="team", uuid=team.split(":")[0])

    assert admin(capsys, store_url, "user", "create", "alice01")[::2] == (1, "error: Namespace already exists\n")
    code, out, err = admin(capsys, store_url, "user", "create", "bobby01", "-ns", "team")
    assert (code, out) == (1, "")
    assert "Namespace 'team' already exists: it belongs to another subject" in err
    code, _, err = admin(capsys, store_url, "user", "create", "bobby01", "--namespace", "alice01")
    assert code == 1 and "belongs to another subject" in err
    assert admin(capsys, store_url, "user", "create", "bob")[0] == 2
    assert admin(capsys, store_url, "user", "create", "bobby01", "-u", "not-a-uuid:" + "k" * 64)[0] == 2
    assert admin(capsys, store_url, "user", "create", "bobby01", "-u", f"{generate_uuid()}:short")[0] == 2

    code, out, err = admin(capsys, store_url, "user", "get", "alice01")
    assert (code, out) == (0, f"{uuid}\n")
    assert key not in out + err and "shown once" in err
    code, out, _ = admin(capsys, store_url, "user", "get", "alice01", "-ns", "team")
    assert (code, out) == (0, f"{team.split(':')[0]}\n")
    code, out, _ = admin(capsys, store_url, "user", "get", "alice01", "--all")
    assert (code, out) == (0, f"alice01\t{uuid}\nteam\t{team.split(':')[0]}\n")
    assert admin(capsys, store_url, "user", "get", "alice01", "-ns", "other")[0] == 1
    assert admin(capsys, store_url, "user", "get", "nobody1")[::2] == (1, "error: Subject 'nobody1' does not exist\n")

    assert admin(capsys, store_url, "user", "whois", alice)[:2] == (0, "subject: alice01\nnamespace: alice01\n")
    code, _, err = admin(capsys, store_url, "user", "whois", f"{uuid}:{generate_key()}")
    assert (code, err) == (1, "error: Subject id is not recognized\n")
    assert admin(capsys, store_url, "user", "whois", "no-colon")[0] == 2

    assert admin(capsys, store_url, "user", "list", "team")[:2] == (0, f"{team.split(':')[0]}\talice01\n")
    assert admin(capsys, store_url, "user", "list", "team", "-k")[:2] == (0, f"{team.split(':')[0]}\n")
    code, _, err = admin(capsys, store_url, "user", "list", "nowhere")
    assert (code, err) == (1, "error: no identities found for namespace 'nowhere'\n")
    assert admin(capsys, store_url, "user", "list", "team", "-p", "0")[0] == 2

    code, out, _ = admin(capsys, store_url, "user", "rotate", "alice01", "-ns", "team")
    assert code == 0
    rotated = out.strip()
    assert rotated.split(":")[0] == team.split(":")[0] and rotated != team
    assert lookup(store_url, team) is None
    assert lookup(store_url, rotated) is not None
    assert lookup(store_url, alice) is not None, "rotating one namespace leaves the others' keys alone"
    assert admin(capsys, store_url, "user", "rotate", "alice01", "-ns", "other")[0] == 1

    code, out, err = admin(capsys, store_url, "user", "delete", "alice01", "-ns", "team")
    assert (code, out) == (0, "Namespace deleted\n")
    assert lookup(store_url, rotated) is None and lookup(store_url, alice) is not None
    code, _, err = admin(capsys, store_url, "user", "delete", "alice01", "-ns", "team")
    assert (code, err) == (1, "error: Namespace 'team' does not exist for 'alice01'\n")
    assert admin(capsys, store_url, "user", "create", "bobby01", "-ns", "team")[0] == 0, "the name is free again"
    assert admin(capsys, store_url, "user", "delete", "alice01")[:2] == (0, "Subject deleted\n")
    assert lookup(store_url, alice) is None
    code, _, err = admin(capsys, store_url, "user", "delete", "alice01")
    assert (code, err) == (1, "error: Subject to delete not found\n")


def test_block_and_unblock(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    carol = admin(capsys, store_url, "user", "create", "carol01")[1].strip()
    dave = admin(capsys, store_url, "user", "create", "dave001")[1].strip()

    code, out, _ = admin(capsys, store_url, "user", "block", "carol01", "dave001")
    assert (code, out) == (0, "'carol01' blocked successfully\n'dave001' blocked successfully\n")
    assert lookup(store_url, carol) is None and lookup(store_url, dave) is None
    assert admin(capsys, store_url, "user", "whois", carol)[0] == 1
    assert admin(capsys, store_url, "user", "list", "carol01")[0] == 1
    code, out, err = admin(capsys, store_url, "user", "get", "carol01")
    assert code == 0 and "'carol01' is blocked" in err
    code, _, err = admin(capsys, store_url, "user", "create", "carol01", "-ns", "more")
    assert (code, err) == (1, "error: The subject you want to edit is blocked\n")

    code, out, err = admin(capsys, store_url, "user", "unblock", "carol01", "nobody1", "nobody2")
    assert code == 2, "the exit code counts the subjects that failed, as wskadmin"
    assert out == "'carol01' unblocked successfully\n"
    assert err.count("does not exist") == 2
    assert lookup(store_url, carol) is not None and lookup(store_url, dave) is None


def test_limits(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    assert admin(capsys, store_url, "user", "create", "erin001")[0] == 0
    assert admin(capsys, store_url, "user", "create", "erin001", "-ns", "erin-batch")[0] == 0

    code, out, _ = admin(capsys, store_url, "limits", "get", "erin001")
    assert (code, out) == (0, "No limits found, default system limits apply\n")
    code, out, _ = admin(capsys, store_url, "limits", "set", "erin001", "--invocationsPerMinute", "10",
                         "--concurrentInvocations", "2")
    assert (code, out) == (0, "Limits successfully set for 'erin001'\n")
    code, out, _ = admin(capsys, store_url, "limits", "set", "erin001", "--firesPerMinute", "0")
    assert (code, out) == (0, "Limits successfully updated for 'erin001'\n")
    code, out, _ = admin(capsys, store_url, "limits", "get", "erin001")
    assert (code, out) == (0, "invocationsPerMinute = 10\nconcurrentInvocations = 2\nfiresPerMinute = 0\n")
    assert admin(capsys, store_url, "limits", "get", "erin-batch")[1].startswith("No limits found")

    async def limits_of(namespace: str) -> NamespaceLimits:
        store = await open_store(store_url)
        try:
            return (await store.identity_by_namespace(namespace)).limits
        finally:
            await store.close()

    assert asyncio.run(limits_of("erin001")) == NamespaceLimits(
        invocationsPerMinute=10, concurrentInvocations=2, firesPerMinute=0)
    assert asyncio.run(limits_of("erin-batch")) == NamespaceLimits()

    assert admin(capsys, store_url, "limits", "set", "erin001")[0] == 2
    assert admin(capsys, store_url, "limits", "set", "erin001", "--firesPerMinute", "-1")[0] == 2
    code, _, err = admin(capsys, store_url, "limits", "set", "nowhere", "--firesPerMinute", "1")
    assert code == 1 and "Namespace 'nowhere' does not exist" in err

    assert admin(capsys, store_url, "limits", "delete", "erin001")[:2] == (0, "Limits deleted\n")
    assert asyncio.run(limits_of("erin001")) == NamespaceLimits()
    code, _, err = admin(capsys, store_url, "limits", "delete", "erin001")
    assert (code, err) == (1, "error: Limits not found for 'erin001'\n")

    assert admin(capsys, store_url, "limits", "set", "erin-batch", "--concurrentInvocations", "1")[0] == 0
    assert admin(capsys, store_url, "user", "delete", "erin001", "-ns", "erin-batch")[0] == 0
    assert admin(capsys, store_url, "user", "create", "erin001", "-ns", "erin-batch")[0] == 0
    assert admin(capsys, store_url, "limits", "get", "erin-batch")[1].startswith("No limits found"), \
        "deleting a namespace deletes its limits"


def test_store_location(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["admin", "--data-dir", str(tmp_path / "missing"), "user", "get", "alice01"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["admin", "--store", "sqlite::memory:", "--data-dir", str(tmp_path), "user", "get", "alice01"])
    assert exited.value.code == 2
    capsys.readouterr()

    # the flags go before or after the subcommand; the data dir holds the standalone database
    assert main(["admin", "user", "create", "frank01", "--data-dir", str(tmp_path)]) == 0
    auth = capsys.readouterr().out.strip()
    assert lookup(f"sqlite:///{tmp_path / 'pywhisk.db'}", auth) is not None
    monkeypatch.setenv("PYWHISK_DATA_DIR", str(tmp_path))
    assert main(["admin", "user", "whois", auth]) == 0
    assert capsys.readouterr().out == "subject: frank01\nnamespace: frank01\n"

    monkeypatch.setenv("PYWHISK_STORE_URL", "ftp://admin:s3cret@127.0.0.1:1/")
    code = main(["admin", "user", "get", "frank01"])
    err = capsys.readouterr().err
    assert code == 2 and "admin:***@" in err and "s3cret" not in err, err
    assert main(["admin", "--data-dir", str(tmp_path), "user", "get", "frank01"]) == 0, "a flag beats the variable"


def test_as_a_subprocess(tmp_path: Path) -> None:
    auth = f"{generate_uuid()}:{generate_key()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYWHISK_")}
    env["PYWHISK_STORE_URL"] = f"sqlite:///{tmp_path / 'store.db'}"

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pywhisk", "admin", *argv], capture_output=True, text=True,
                              cwd=REPO, env=env, timeout=60)

    created = run("user", "create", "grace01", "-u", auth)
    assert (created.returncode, created.stdout) == (0, f"{auth}\n"), created.stderr
    whois = run("user", "whois", auth)
    assert (whois.returncode, whois.stdout) == (0, "subject: grace01\nnamespace: grace01\n"), whois.stderr
    again = run("user", "create", "grace01")
    assert (again.returncode, again.stdout, again.stderr) == (1, "", "error: Namespace already exists\n")
    usage = run("user", "frobnicate")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


async def test_commands_take_the_store(tmp_path: Path) -> None:
    store: Store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        auth = await create_user(store, "heidi01")
        uuid, key = auth.split(":")
        assert (await store.identity_by_key(uuid, key)).namespace == "heidi01"
        assert await set_limits(store, "heidi01", firesPerMinute=3) == "Limits successfully set for 'heidi01'"
        assert await get_limits(store, "heidi01") == NamespaceLimits(firesPerMinute=3)
        new_uuid, new_key = (await rotate_key(store, "heidi01")).split(":")
        assert new_uuid == uuid
        with pytest.raises(NotFound):
            await store.identity_by_key(uuid, key)
        assert (await store.identity_by_key(uuid, new_key)).limits.firesPerMinute == 3
        await set_blocked(store, "heidi01", True)
        with pytest.raises(NotFound):
            await store.identity_by_key(uuid, new_key)
        await set_blocked(store, "heidi01", False)
        assert await delete_limits(store, "heidi01") == "Limits deleted"
        assert await get_limits(store, "heidi01") is None
    finally:
        await store.close()


def _namespaces(api_host: str, auth: str) -> tuple[int, object]:
    token = base64.b64encode(auth.encode()).decode()
    request = urllib.request.Request(f"{api_host}/api/v1/namespaces", headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


@pytest.mark.e2e
def test_against_a_running_standalone_platform(tmp_path: Path) -> None:
    platform = Platform(data_dir=tmp_path / "standalone", containers="process", env={"PYWHISK_IDENTITY_CACHE_S": "0"})
    platform.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYWHISK_")}

        def run(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "pywhisk", "admin", "--data-dir", str(platform.data_dir), *argv],
                capture_output=True, text=True, cwd=REPO, env=env, timeout=60)

        created = run("user", "create", "ivan001")
        assert created.returncode == 0, created.stderr
        auth = created.stdout.strip()
        assert _namespaces(platform.api_host, auth) == (200, ["ivan001"])
        assert _namespaces(platform.api_host, platform.auth) == (200, ["guest"])

        assert run("user", "block", "ivan001").returncode == 0
        status, body = _namespaces(platform.api_host, auth)
        assert status == 401, body
        assert run("user", "unblock", "ivan001").returncode == 0
        assert _namespaces(platform.api_host, auth)[0] == 200

        rotated = run("user", "rotate", "ivan001")
        assert rotated.returncode == 0, rotated.stderr
        assert _namespaces(platform.api_host, auth)[0] == 401
        assert _namespaces(platform.api_host, rotated.stdout.strip()) == (200, ["ivan001"])
    finally:
        assert platform.stop() == 0
