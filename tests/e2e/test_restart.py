"""Restarting standalone keeps actions, activations and the guest key."""

import aiohttp
import pytest

from tests.e2e.platform import Api, Platform

pytestmark = pytest.mark.e2e


async def test_restart_keeps_actions_activations_and_the_guest_key(fresh_platform: Platform) -> None:
    fresh_platform.start()
    first_auth = fresh_platform.auth
    async with aiohttp.ClientSession() as session:
        api = Api(fresh_platform, session)
        await api.put_action("kept", "def main(a):\n    print('before restart')\n    return {'ok': True}\n")
        status, body, _ = await api.invoke("kept", blocking="true")
        assert status == 200
        activation_id = body["activationId"]

    assert fresh_platform.stop() == 0
    fresh_platform.start()
    assert fresh_platform.auth == first_auth

    async with aiohttp.ClientSession() as session:
        api = Api(fresh_platform, session)
        status, action, _ = await api.request("GET", "namespaces/_/actions/kept")
        assert status == 200 and action["name"] == "kept"
        record = await api.wait_for_activation(activation_id, timeout_s=5)
        assert any("before restart" in line for line in record["logs"])
        status, body, _ = await api.invoke("kept", blocking="true", result="true")
        assert status == 200 and body == {"ok": True}
