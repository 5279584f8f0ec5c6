"""The distributed stack under faults: several invokers, a lost invoker, a restarted controller, store and bus
outages. Each test runs its own stack (process containers, to keep it quick)."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.distributed import DistributedPlatform, ServiceProcess
from tests.e2e.platform import Api

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SLEEPY = "import time\ndef main(a):\n    time.sleep(a.get('seconds', 0))\n    return {'slept': a.get('seconds', 0)}\n"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DistributedPlatform]:
    platform = DistributedPlatform(data_dir=tmp_path / "stack", containers="process", invoker_count=2)
    platform.start()
    yield platform
    platform.stop()


def handled_by(invoker: ServiceProcess) -> set[str]:
    """Activation ids an invoker reports done in its log."""
    ids = set()
    for line in (invoker.log_dir / f"{invoker.name}.log").read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == "activation done":
            ids.add(entry["activation_id"])
    return ids


async def served_by(invokers: list[ServiceProcess], activation_id: str) -> str:
    """The name of the invoker whose log reports `activation_id` done (it logs just after completing)."""
    for _ in range(100):
        for invoker in invokers:
            if activation_id in handled_by(invoker):
                return invoker.name
        await asyncio.sleep(0.1)
    raise AssertionError(f"no invoker reported {activation_id}")


async def eventually(probe: Callable[[], Awaitable[bool]], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await probe():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.5)


async def test_two_invokers_share_the_work_and_the_loss_of_one_is_an_error_not_a_hang(
    stack: DistributedPlatform,
) -> None:
    first, second = stack.invokers
    async with aiohttp.ClientSession() as session:
        api = Api(stack, session)  # type: ignore[arg-type]
        owner: dict[str, str] = {}
        for n in range(12):
            name = f"spread{n}"
            await api.put_action(name, SLEEPY, limits={"timeout": 30_000})
            status, body, _ = await api.invoke(name, blocking="true")
            assert status == 200, body
            owner[name] = await served_by(stack.invokers, body["activationId"])
        assert set(owner.values()) == {first.name, second.name}, "the sharding rule put every action on one invoker"

        victim = first
        homed = [name for name, invoker in owner.items() if invoker == victim.name]
        calls = [asyncio.create_task(api.invoke(homed[0], {"seconds": 20}, blocking="true")) for _ in range(3)]
        await asyncio.sleep(2)
        victim.kill()
        results = await asyncio.gather(*calls)
        for status, body, _ in results:
            # 500, not 202: the error came within the blocking wait, long before the time limit plus grace
            assert status == 500, body
            assert body["response"]["status"] == "whisk internal error"
            record = await api.wait_for_activation(body["activationId"], timeout_s=10)
            assert record["response"]["status"] == "whisk internal error"

        status, body, _ = await api.invoke(homed[0], blocking="true")
        assert status == 200, body
        assert await served_by(stack.invokers, body["activationId"]) == second.name

        victim.start()

        async def victim_used_again() -> bool:
            status, body, _ = await api.invoke(homed[-1], blocking="true")
            return status == 200 and await served_by(stack.invokers, body["activationId"]) == victim.name

        await eventually(victim_used_again)


async def test_a_controller_restart_loses_no_accepted_non_blocking_activation(stack: DistributedPlatform) -> None:
    async with aiohttp.ClientSession() as session:
        api = Api(stack, session)  # type: ignore[arg-type]
        await api.put_action("queued", SLEEPY)
        accepted = []
        for n in range(20):
            status, body, _ = await api.invoke("queued", {"seconds": 0.2, "n": n})
            assert status == 202
            accepted.append(body["activationId"])
        stack.controllers[0].kill()
        stack.controllers[0].start()
        for activation_id in accepted:
            record = await api.wait_for_activation(activation_id, timeout_s=90)
            assert record["response"]["status"] == "success"


async def test_store_and_bus_outages_answer_503_and_recover(stack: DistributedPlatform) -> None:
    async with aiohttp.ClientSession() as session:
        api = Api(stack, session)  # type: ignore[arg-type]
        await api.put_action("steady", SLEEPY)

        stack.couchdb.stop()
        status, body, _ = await api.request("GET", "namespaces/_/actions")
        assert status == 503 and set(body) == {"error", "code"}, body
        stack.couchdb.start()

        async def store_back() -> bool:
            status, _, _ = await api.request("GET", "namespaces/_/actions")
            return status == 200

        await eventually(store_back)

        stack.kafka.stop()
        status, body, _ = await api.invoke("steady", blocking="true")
        assert status == 503 and set(body) == {"error", "code"}, body
        stack.kafka.start()

        async def bus_back() -> bool:
            status, _, _ = await api.invoke("steady", blocking="true", timeout="10000")
            return status == 200

        await eventually(bus_back, timeout_s=120)


async def test_two_controllers_behind_nginx_serve_the_same_actions_and_see_each_others_updates(
    tmp_path: Path,
) -> None:
    platform = DistributedPlatform(data_dir=tmp_path / "stack", containers="process", controller_count=2)
    platform.start()
    try:
        async with aiohttp.ClientSession() as session:
            gateway = Api(platform, session)  # type: ignore[arg-type]
            direct = []
            for url in platform.controller_urls:
                own = DistributedPlatform(data_dir=tmp_path / "unused", api_host=url, auth=platform.auth)
                direct.append(Api(own, session))  # type: ignore[arg-type]
            await gateway.put_action("shared", "def main(a):\n    return {'v': 1}\n")
            for api in direct:  # both controllers cache the action
                status, body, _ = await api.invoke("shared", blocking="true", result="true")
                assert (status, body) == (200, {"v": 1})
            await direct[0].put_action("shared", "def main(a):\n    return {'v': 2}\n")

            async def second_sees_the_update() -> bool:
                status, body, _ = await direct[1].invoke("shared", blocking="true", result="true")
                return status == 200 and body == {"v": 2}

            await eventually(second_sees_the_update, timeout_s=30)
            for _ in range(6):
                status, body, _ = await gateway.invoke("shared", blocking="true", result="true")
                assert (status, body) == (200, {"v": 2})
    finally:
        platform.stop()
