import base64

import pytest

from controller.auth import entitled_namespace, parse_basic
from controller.balancer.schedule import home_invoker
from controller.errors import Forbidden
from whisk.entities.identity import Identity


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_basic_credentials_are_split_into_uuid_and_key() -> None:
    assert parse_basic(basic("abc:def:ghi")) == ("abc", "def:ghi")


@pytest.mark.parametrize("header", [None, "", "Bearer x", "Basic !!!", basic("nocolon"), basic(":key"), basic("u:")])
def test_missing_or_malformed_credentials_are_none(header: str | None) -> None:
    assert parse_basic(header) is None


def test_the_default_namespace_and_the_own_namespace_are_entitled() -> None:
    me = Identity(subject="guest", namespace="guest", uuid="u")
    assert entitled_namespace(me, "_") == "guest"
    assert entitled_namespace(me, "guest") == "guest"
    with pytest.raises(Forbidden):
        entitled_namespace(me, "other")


def test_the_home_invoker_is_stable_and_spreads_actions() -> None:
    invokers = [0, 1, 2, 3]
    homes = {home_invoker(invokers, "guest", f"guest/action{n}") for n in range(100)}
    assert homes == set(invokers)
    assert home_invoker(invokers, "guest", "guest/a") == home_invoker(invokers, "guest", "guest/a")
    with pytest.raises(ValueError):
        home_invoker([], "guest", "guest/a")
