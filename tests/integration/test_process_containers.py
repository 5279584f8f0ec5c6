"""The invoker with process containers: real runtime proxies as sandboxed processes, driven through the bus.

Every test publishes activation messages to the invoker's topic and reads the completions it sends back, with a
real SQLite store, so the whole invoker path runs. Bounds on waiting are there against hangs; nothing is timed.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from invoker.containers import sandbox as sb
from tests.integration.conftest import Harness, HeldWrites, MakeHarness, eventually
from whisk.entities.activation import WhiskActivation
from whisk.store import Unavailable

REPO = Path(__file__).resolve().parents[2]
NODE = shutil.which("node") is not None
BWRAP = shutil.which("bwrap") is not None
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z {4}(stdout|stderr): (.*)$")

HELLO_PY = """
import os, sys, uuid
CONTAINER = uuid.uuid4().hex  # pids repeat across sandboxes (each has its own pid namespace)
def main(args):
    print("hello", args.get("name"))
    print("to stderr", file=sys.stderr)
    return {"greeting": "Hello " + args.get("name", "stranger"), "container": CONTAINER,
            "activation": os.environ.get("__OW_ACTIVATION_ID"), "action": os.environ.get("__OW_ACTION_NAME")}
"""
HELLO_JS = """
const CONTAINER = require("crypto").randomUUID();
function main(args) {
  console.log("hello", args.name);
  console.error("to stderr");
  return {greeting: "Hello " + (args.name || "stranger"), container: CONTAINER,
          activation: process.env.__OW_ACTIVATION_ID, action: process.env.__OW_ACTION_NAME};
}
"""
KINDS = [
    pytest.param("python:3.11", HELLO_PY, id="python"),
    pytest.param("nodejs:22", HELLO_JS, id="nodejs", marks=pytest.mark.skipif(not NODE, reason="no node")),
]
SANDBOXES = [
    pytest.param(True, id="bwrap", marks=pytest.mark.skipif(not BWRAP, reason="no bwrap")),
    pytest.param(False, id="plain"),
]


def annotations(activation: WhiskActivation) -> dict:
    return {a.key: a.value for a in activation.annotations}


@pytest.mark.parametrize("sandbox", SANDBOXES)
@pytest.mark.parametrize(("kind", "code"), KINDS)
async def test_a_cold_start_initialises_and_runs_the_action(make_harness: MakeHarness, kind, code, sandbox):
    harness = await make_harness(sandbox=sandbox)
    ref = await harness.action("hello", code, kind=kind, parameters={"name": "default"})

    activation = await harness.invoke(ref, {"name": "Ada"})

    assert activation.response.statusCode == 0
    result = activation.response.result
    assert result["greeting"] == "Hello Ada"
    assert result["activation"] == activation.activationId
    assert result["action"] == "/guest/hello"
    assert activation.response.size > 0
    notes = annotations(activation)
    assert notes["path"] == "guest/hello"
    assert notes["kind"] == kind
    assert notes["timeout"] is False
    assert notes["limits"] == {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}
    assert "initTime" in notes and notes["waitTime"] >= 0
    assert activation.duration == activation.end - activation.start
    assert harness.stats.cold_starts == 1
    stored = await harness.stored(activation.activationId)
    assert stored.response == activation.response


async def test_parameters_of_the_action_are_used_when_the_invocation_has_none(make_harness: MakeHarness):
    harness = await make_harness()
    ref = await harness.action("hello", HELLO_PY, parameters={"name": "default"})
    assert (await harness.invoke(ref)).response.result["greeting"] == "Hello default"


@pytest.mark.parametrize(("kind", "code"), KINDS)
async def test_logs_are_timestamped_per_stream_without_the_sentinel(make_harness: MakeHarness, kind, code):
    harness = await make_harness()
    ref = await harness.action("hello", code, kind=kind)

    activation = await harness.invoke(ref, {"name": "Ada"})

    parsed = [LOG_LINE.match(line) for line in activation.logs]
    assert all(parsed), activation.logs
    assert [(m.group(1), m.group(2)) for m in parsed] == [("stdout", "hello Ada"), ("stderr", "to stderr")]
    assert all(line.index(" stdout: " if "stdout" in line else " stderr: ") == 30 for line in activation.logs)
    assert not any("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX" in line for line in activation.logs)


async def test_warm_containers_are_reused_for_the_same_action(make_harness: MakeHarness):
    harness = await make_harness()
    ref = await harness.action("hello", HELLO_PY)

    activations = [await harness.invoke(ref, {"name": str(i)}) for i in range(10)]

    assert all(a.response.statusCode == 0 for a in activations)
    assert len({a.response.result["container"] for a in activations}) == 1
    assert harness.stats.cold_starts == 1
    assert harness.stats.warm_reuses == 9
    assert "initTime" in annotations(activations[0])
    assert not any("initTime" in annotations(a) for a in activations[1:])
    assert [len(a.logs) for a in activations] == [2] * 10


async def test_parallel_activations_start_containers_up_to_capacity_then_queue(make_harness: MakeHarness):
    """The action waits at a barrier until four activations run at once, so the test knows the pool ran four
    containers side by side (its capacity) without measuring time."""
    arrived: list[asyncio.StreamWriter] = []
    all_there = asyncio.Event()

    async def barrier(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.append(writer)
        if len(arrived) >= 4:
            all_there.set()
        await all_there.wait()
        writer.write(b"go")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(barrier, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code = f"""
import socket, uuid
CONTAINER = uuid.uuid4().hex
def main(args):
    with socket.create_connection(("127.0.0.1", {port}), timeout=60) as s:
        s.recv(2)
    return {{"container": CONTAINER}}
"""
    try:
        harness = await make_harness(user_memory_mb=4 * 256)
        ref = await harness.action("wait", code)

        activations = await asyncio.gather(*(harness.invoke(ref) for _ in range(8)))
    finally:
        server.close()
        await server.wait_closed()

    assert all(a.response.statusCode == 0 for a in activations)
    assert len({a.response.result["container"] for a in activations}) == 4
    assert harness.stats.cold_starts == 4
    assert harness.stats.queued == 4
    assert harness.stats.warm_reuses == 4


@pytest.mark.parametrize(("kind", "code"), KINDS)
async def test_an_action_past_its_time_limit_is_stopped_and_the_next_one_works(make_harness: MakeHarness, kind, code):
    harness = await make_harness()
    if kind.startswith("python"):
        slow = "import time\ndef main(args):\n    if args.get('sleep'): time.sleep(30)\n    return {'ok': True}\n"
    else:
        slow = (
            "function main(a) { const t = Date.now(); while (a.sleep && Date.now() - t < 30000); return {ok: true}; }"
        )
    ref = await harness.action("slow", slow, kind=kind, timeout=1000)

    timed_out = await harness.invoke(ref, {"sleep": True})
    after = await harness.invoke(ref, {})

    assert timed_out.response.statusCode == 2
    assert timed_out.response.result == {"error": "The action exceeded its time limits of 1000 milliseconds."}
    assert annotations(timed_out)["timeout"] is True
    assert after.response.result == {"ok": True}
    assert harness.stats.cold_starts == 2
    assert harness.stats.destroyed_failed == 1


async def test_an_action_that_kills_its_process_gets_a_fresh_container(make_harness: MakeHarness):
    harness = await make_harness()
    code = "import os, uuid\nC = uuid.uuid4().hex\n\ndef main(args):\n"
    code += "    if args.get('die'):\n        os._exit(1)\n    return {'c': C}\n"
    ref = await harness.action("crash", code)

    first = await harness.invoke(ref, {})
    crashed = await harness.invoke(ref, {"die": True})
    after = await harness.invoke(ref, {})

    assert crashed.response.statusCode == 2
    assert crashed.response.result == {"error": "The action did not produce a valid response and exited unexpectedly."}
    assert any("Log data might be missing" in line for line in crashed.logs)
    assert after.response.statusCode == 0
    assert after.response.result["c"] != first.response.result["c"]
    assert harness.stats.cold_starts == 2


async def test_an_error_result_is_an_application_error_and_the_container_stays(make_harness: MakeHarness):
    harness = await make_harness()
    ref = await harness.action("fails", "def main(args):\n    return {'error': 'bad input', 'field': 'x'}\n")

    first = await harness.invoke(ref, {})
    second = await harness.invoke(ref, {})

    assert first.response.statusCode == 1
    assert first.response.result == {"error": "bad input", "field": "x"}
    assert second.response.statusCode == 1
    assert harness.stats.cold_starts == 1


async def test_an_exception_is_a_developer_error(make_harness: MakeHarness):
    harness = await make_harness()
    ref = await harness.action("raises", "def main(args):\n    raise ValueError('boom')\n")

    activation = await harness.invoke(ref, {})

    assert activation.response.statusCode == 2
    assert activation.response.result == {"error": "An error has occurred: ValueError: boom"}
    assert any("ValueError: boom" in line for line in activation.logs)


async def test_code_that_does_not_load_is_a_developer_error_from_init(make_harness: MakeHarness):
    harness = await make_harness()
    ref = await harness.action("broken", "def main(args) return 1\n")

    activation = await harness.invoke(ref, {})

    assert activation.response.statusCode == 2
    assert "Initialization has failed" in activation.response.result["error"]
    assert "initTime" in annotations(activation)
    assert harness.stats.destroyed_failed == 1


async def test_logs_past_the_limit_are_truncated_with_a_note(make_harness: MakeHarness):
    harness = await make_harness()
    code = "def main(args):\n    for i in range(1200):\n        print('x' * 1024)\n    return {}\n"
    ref = await harness.action("chatty", code, logs=1)

    activation = await harness.invoke(ref, {})

    assert activation.response.statusCode == 0
    assert len(activation.logs) == 1024 + 1
    assert activation.logs[-1].endswith(
        "stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes."
    )


async def test_a_result_too_large_is_an_application_error(make_harness: MakeHarness):
    harness = await make_harness()
    ref = await harness.action("big", "def main(args):\n    return {'x': 'y' * (2 * 1024 * 1024)}\n")

    activation = await harness.invoke(ref, {})

    assert activation.response.statusCode == 1
    assert activation.response.result["error"].startswith(
        "The action produced a response that exceeded the allowed length: 2097161 > 1048576 bytes."
    )


async def test_idle_containers_are_paused_and_resumed_on_reuse(make_harness: MakeHarness):
    harness = await make_harness(pause_grace_s=0.1, idle_timeout_s=600)
    ref = await harness.action("hello", HELLO_PY)
    first = await harness.invoke(ref, {"name": "a"})
    container = first.response.result["container"]

    await eventually(lambda: harness.stats.pauses == 1)
    assert _states(harness) == {"T"}
    second = await harness.invoke(ref, {"name": "b"})

    assert second.response.result["container"] == container
    assert harness.stats.resumes == 1
    assert harness.stats.cold_starts == 1


async def test_idle_containers_are_removed_after_the_idle_timeout(make_harness: MakeHarness):
    harness = await make_harness(pause_grace_s=0.1, idle_timeout_s=0.3)
    ref = await harness.action("hello", HELLO_PY)
    await harness.invoke(ref, {"name": "a"})

    await eventually(lambda: harness.stats.removals == 1)

    assert harness.invoker.pool.containers() == []
    await eventually(lambda: not harness.factory._containers)


def _states(harness: Harness) -> set[str]:
    """The scheduler states of every process of the harness's containers."""
    states = set()
    for container in list(harness.factory._containers):
        for pid in container._pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    states.add(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                continue
    return states


@pytest.mark.skipif(not NODE, reason="no node")
async def test_a_prewarmed_container_serves_a_new_action_of_its_kind(make_harness: MakeHarness):
    harness = await make_harness(prewarm=True)
    assert harness.stats.prewarm_starts == 2  # python:3.11 and nodejs:22, one each
    ref = await harness.action("hello", HELLO_JS, kind="nodejs:22")

    activation = await harness.invoke(ref, {"name": "Ada"})

    assert activation.response.result["greeting"] == "Hello Ada"
    assert "initTime" in annotations(activation)
    assert harness.stats.prewarms_taken == 1
    assert harness.stats.cold_starts == 0
    await eventually(lambda: harness.stats.prewarm_starts == 3)


async def test_a_missing_action_is_an_application_error(make_harness: MakeHarness):
    harness = await make_harness()
    ref = await harness.action("gone", HELLO_PY)
    doc = await harness.store.get_entity("guest/gone")
    await harness.store.delete_entity("guest/gone", doc.rev)

    done = await harness.completion(await harness.send(ref))

    assert done.isSystemError is False
    assert done.response["response"]["statusCode"] == 1
    assert done.response["response"]["result"] == {"error": "Action could not be found or may have been deleted."}


async def test_blackbox_actions_are_refused_in_process_mode(make_harness: MakeHarness):
    harness = await make_harness()
    ref = await harness.action("box", "", kind="blackbox")

    activation = await harness.invoke(ref)

    assert activation.response.statusCode == 2
    assert "Docker" in activation.response.result["error"]


async def test_a_message_that_does_not_parse_is_skipped(make_harness: MakeHarness):
    harness = await make_harness()
    ref = await harness.action("hello", HELLO_PY)
    await harness.bus.send(harness.invoker.topic, b'{"not": "an activation"}')

    activation = await harness.invoke(ref, {"name": "after"})

    assert activation.response.result["greeting"] == "Hello after"


async def test_a_non_blocking_activation_is_stored_and_completed_without_the_record(make_harness: MakeHarness):
    harness = await make_harness()
    ref = await harness.action("hello", HELLO_PY)

    activation_id = await harness.send(ref, {"name": "bg"}, blocking=False)
    done = await harness.completion(activation_id)

    assert done.response is None
    stored = await harness.stored(activation_id)
    assert stored.response.result["greeting"] == "Hello bg"


async def test_a_failed_store_write_still_completes(make_harness: MakeHarness, tmp_path):
    from whisk.store import open_store

    class FailingWrites:
        def __init__(self, store):
            self._store = store

        def __getattr__(self, name):
            return getattr(self._store, name)

        async def put_activation(self, activation):
            raise Unavailable("disk full")

    real = await open_store(f"sqlite:///{tmp_path / 'failing.db'}")
    try:
        harness = await make_harness(store=FailingWrites(real))
        ref = await harness.action("hello", HELLO_PY)
        activation = await harness.invoke(ref, {"name": "Ada"})
        assert activation.response.result["greeting"] == "Hello Ada"
    finally:
        await harness.invoker.stop()
        await real.close()


async def test_the_completion_is_sent_before_the_record_is_stored(make_harness: MakeHarness, tmp_path):
    from whisk.store import open_store

    real = await open_store(f"sqlite:///{tmp_path / 'held.db'}")
    held = HeldWrites(real)
    try:
        harness = await make_harness(store=held)
        ref = await harness.action("hello", HELLO_PY)
        activation = await harness.invoke(ref, {"name": "Ada"})  # bounded: it fails if the write held it back
        assert activation.response.result["greeting"] == "Hello Ada"

        held.release.set()
        await harness.stored(activation.activationId)
    finally:
        await harness.invoker.stop()
        await real.close()


async def test_stopping_the_invoker_still_stores_the_records_of_completed_activations(
    make_harness: MakeHarness, tmp_path
):
    from whisk.store import open_store

    real = await open_store(f"sqlite:///{tmp_path / 'held.db'}")
    held = HeldWrites(real)
    try:
        harness = await make_harness(store=held)
        ref = await harness.action("hello", HELLO_PY)
        activation = await harness.invoke(ref, {"name": "Ada"})

        stopping = asyncio.create_task(harness.invoker.stop())
        await asyncio.sleep(0.1)
        held.release.set()
        await asyncio.wait_for(stopping, 30)
        stored = await real.get_activation("guest", activation.activationId)
        assert stored.response.result["greeting"] == "Hello Ada"
    finally:
        await harness.invoker.stop()
        await real.close()


@pytest.mark.skipif(not BWRAP, reason="no bwrap")
async def test_an_action_can_write_only_to_its_own_tmp_and_sees_no_home_directories(make_harness: MakeHarness):
    harness = await make_harness(sandbox=True)
    code = """
import os
def main(args):
    written = {}
    for path in ("/tmp/mine", "/etc/pywhisk-test", "/root/pywhisk-test", args["repo"] + "/pywhisk-test"):
        try:
            with open(path, "w") as f:
                f.write("x")
            written[path] = True
        except OSError:
            written[path] = False
    return {"written": written, "uid": os.getuid(), "root": sorted(os.listdir("/root"))}
"""
    repo = str(REPO)
    ref = await harness.action("writer", code)

    result = (await harness.invoke(ref, {"repo": repo})).response.result

    assert result["written"] == {
        "/tmp/mine": True,
        "/etc/pywhisk-test": False,
        "/root/pywhisk-test": False,
        repo + "/pywhisk-test": False,
    }
    # only what leads to the interpreter is bound back into the empty /root
    interpreter = Path(sys.base_prefix)
    allowed = {interpreter.relative_to("/root").parts[0]} if interpreter.is_relative_to("/root") else set()
    assert set(result["root"]) <= allowed
    if os.geteuid() == 0:
        assert result["uid"] >= sb.FIRST_UID


@pytest.mark.parametrize("sandbox", SANDBOXES)
async def test_a_fork_bomb_is_contained_and_cleaned_up(make_harness: MakeHarness, sandbox):
    harness = await make_harness(sandbox=sandbox)
    code = """
import os, time
def main(args):
    children, refused = 0, 0
    end = time.time() + 30
    while time.time() < end:
        try:
            if os.fork() == 0:
                while True:
                    try:
                        os.fork()
                    except OSError:
                        time.sleep(0.01)
            children += 1
        except OSError:
            refused += 1
            time.sleep(0.01)
    return {"children": children, "refused": refused}
"""
    ref = await harness.action("bomb", code, timeout=2000)
    before = len(sb.process_table())
    hello = await harness.action("hello", HELLO_PY)

    bombed = await harness.invoke(ref, {})
    after = await harness.invoke(hello, {"name": "still here"})

    assert bombed.response.result == {"error": "The action exceeded its time limits of 2000 milliseconds."}
    assert after.response.result["greeting"] == "Hello still here"
    await harness.invoker.stop()
    await eventually(lambda: _live(sb.process_table()) <= before + 5)


def _live(table: list[sb.ProcessInfo]) -> int:
    """Processes that are not zombies (an init that reaps slowly leaves zombies of killed orphans behind)."""
    count = 0
    for p in table:
        try:
            with open(f"/proc/{p.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    count += 1
        except OSError:
            continue
    return count


async def test_memory_beyond_the_limit_is_refused(make_harness: MakeHarness):
    harness = await make_harness()
    code = "def main(args):\n    block = bytearray(args['mb'] * 1024 * 1024)\n    return {'len': len(block)}\n"
    ref = await harness.action("hungry", code, memory=128)

    small = await harness.invoke(ref, {"mb": 64})
    too_much = await harness.invoke(ref, {"mb": 1024})

    assert small.response.result == {"len": 64 * 1024 * 1024}
    assert too_much.response.statusCode == 2
    assert "MemoryError" in too_much.response.result["error"]


@pytest.mark.skipif(not NODE, reason="no node")
async def test_a_node_action_exhausting_its_heap_is_aborted(make_harness: MakeHarness):
    harness = await make_harness()
    code = "function main(a) { const keep = []; for (;;) keep.push(new Array(1e6).fill(1)); }"
    ref = await harness.action("hungry", code, kind="nodejs:22", memory=128)

    activation = await harness.invoke(ref, {})

    assert activation.response.statusCode == 2
    assert activation.response.result == {"error": "The action exhausted its memory and was aborted."}


async def test_the_consumer_carries_on_after_a_bus_failure(make_harness: MakeHarness, monkeypatch):
    from invoker import consumer as consumer_module
    from whisk.bus import BusUnavailable
    from whisk.bus.local import LocalBus

    class FlakyBus(LocalBus):
        failures = 2

        async def consumer(self, topic, group_id, max_peek=128, *, relaxed=False):
            real = await super().consumer(topic, group_id, max_peek, relaxed=relaxed)
            if not topic.startswith("invoker"):
                return real
            bus = self

            class Flaky:
                async def peek(self, timeout_s):
                    if bus.failures:
                        bus.failures -= 1
                        raise BusUnavailable("broker away")
                    return await real.peek(timeout_s)

                async def commit(self):
                    await real.commit()

                async def close(self):
                    await real.close()

            return Flaky()

    monkeypatch.setattr(consumer_module, "BUS_RETRY_S", 0.01)
    harness = await make_harness(bus=FlakyBus())
    ref = await harness.action("hello", HELLO_PY)

    activation = await harness.invoke(ref, {"name": "again"})

    assert activation.response.result["greeting"] == "Hello again"
    assert harness.bus.failures == 0


async def test_cleanup_removes_what_an_earlier_run_of_the_same_invoker_left():
    from invoker.containers.process import ProcessContainerFactory
    from tests.integration.conftest import TEST_INVOKER_ID
    from whisk.config import InvokerSettings

    settings = InvokerSettings(invoker_id=TEST_INVOKER_ID)
    earlier = ProcessContainerFactory(settings)
    await earlier.cleanup()
    leftover_dir = earlier._root / "c7"
    await asyncio.to_thread(leftover_dir.mkdir, parents=True)
    leftover = None
    if os.geteuid() == 0:
        uid = earlier._uid_base + 7
        leftover = await asyncio.create_subprocess_exec("sleep", "60", preexec_fn=lambda: os.setuid(uid))
    earlier._slot.release()  # as if that invoker died without cleaning up
    later = ProcessContainerFactory(settings)
    try:
        await later.cleanup()

        assert later._root == earlier._root
        assert not await asyncio.to_thread(leftover_dir.exists)
        if leftover is not None:
            assert await asyncio.wait_for(leftover.wait(), 10) == -9
    finally:
        if leftover is not None and leftover.returncode is None:
            leftover.kill()
            await leftover.wait()
        await later.close()


async def test_a_second_invoker_with_the_same_id_leaves_the_first_ones_containers_alone(make_harness: MakeHarness):
    first = await make_harness()
    ref = await first.action("hello", HELLO_PY)
    before = await first.invoke(ref, {"name": "a"})

    second = await make_harness(invoker_id=first.invoker.settings.invoker_id)
    after = await first.invoke(ref, {"name": "b"})

    assert second.factory._root != first.factory._root
    assert after.response.result["container"] == before.response.result["container"]
    assert first.stats.cold_starts == 1
