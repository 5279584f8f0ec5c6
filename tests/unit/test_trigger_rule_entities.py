"""Trigger and rule entities: OpenWhisk's JSON shapes, rule links kept in the trigger, and name parsing."""

from __future__ import annotations

import json

import pytest

from controller.api.triggers import rule_result
from whisk.entities.names import InvalidName
from whisk.entities.params import KeyValue
from whisk.entities.rule import ACTIVE, INACTIVE, PathName, RulePut, WhiskRule
from whisk.entities.trigger import TriggerPut, WhiskTrigger, is_valid_feed


def trigger(**extra: object) -> WhiskTrigger:
    return WhiskTrigger.model_validate({"namespace": "guest", "name": "events", **extra})


@pytest.mark.parametrize(("text", "path", "name"), [
    ("/guest/events", "guest", "events"),
    ("guest/events", "guest", "events"),
    ("/_/events", "alice", "events"),
    ("/_/pkg/hello", "alice/pkg", "hello"),
    ("/whisk.system/samples/greeting", "whisk.system/samples", "greeting"),
    ({"path": "_", "name": "hello"}, "alice", "hello"),
    ({"path": "guest/pkg", "name": "hello"}, "guest/pkg", "hello"),
])
def test_rule_references_are_fully_qualified_with_the_callers_namespace_for_underscore(
    text: object, path: str, name: str
) -> None:
    ref = PathName.parse(text, "alice")
    assert (ref.path, ref.name) == (path, name)


@pytest.mark.parametrize("text", ["events", "/events", "/a/b/c/d", "/guest/bad name ", "", "/guest/", 42, {"path": 1}])
def test_rule_references_without_a_namespace_or_with_bad_names_are_refused(text: object) -> None:
    with pytest.raises(InvalidName):
        PathName.parse(text, "alice")


def test_a_path_name_knows_its_document_id_and_its_fully_qualified_form() -> None:
    ref = PathName(path="guest/pkg", name="hello")
    assert ref.doc_id == "guest/pkg/hello"
    assert str(ref) == "/guest/pkg/hello"
    assert ref.namespace == "guest"
    assert ref.fqn.package == "pkg" and ref.fqn.doc_id() == "guest/pkg/hello"


def test_a_new_trigger_shows_openwhisk_fields_and_no_rules_map_until_a_rule_is_linked() -> None:
    shown = trigger(parameters=[{"key": "a", "value": 1}], updated=5).api()
    assert shown == {
        "namespace": "guest", "name": "events", "version": "0.0.1", "publish": False,
        "annotations": [], "parameters": [{"key": "a", "value": 1}], "limits": {}, "updated": 5,
    }


def test_linking_rules_keeps_their_action_and_status_by_rule_name() -> None:
    linked = (trigger()
              .with_rule("guest/r1", PathName(path="guest", name="a1"), ACTIVE)
              .with_rule("guest/r2", PathName(path="guest/pkg", name="a2"), INACTIVE))
    assert linked.api()["rules"] == {
        "guest/r1": {"action": {"path": "guest", "name": "a1"}, "status": "active"},
        "guest/r2": {"action": {"path": "guest/pkg", "name": "a2"}, "status": "inactive"},
    }
    assert linked.rule_status("guest/r1") == ACTIVE
    assert linked.rule_status("guest/r2") == INACTIVE
    assert linked.rule_status("guest/other") == INACTIVE
    assert linked.has_active_rule()


def test_changing_a_rules_status_replaces_its_link_and_unlinking_leaves_an_empty_map() -> None:
    action = PathName(path="guest", name="a")
    linked = trigger().with_rule("guest/r", action, ACTIVE)
    disabled = linked.with_rule("guest/r", action, INACTIVE)
    assert disabled.rule_status("guest/r") == INACTIVE and not disabled.has_active_rule()
    assert linked.rule_status("guest/r") == ACTIVE, "links are copied, never changed in place"
    assert disabled.without_rule("guest/r").api()["rules"] == {}
    assert trigger().without_rule("guest/r") == trigger()


def test_a_trigger_round_trips_through_its_stored_json() -> None:
    original = trigger(annotations=[{"key": "feed", "value": "/whisk.system/alarms/alarm"}]).with_rule(
        "guest/r", PathName(path="guest", name="a"), ACTIVE)
    stored = json.loads(json.dumps(original.model_dump(mode="json")))
    assert WhiskTrigger.model_validate(stored) == original
    assert original.annotation("feed") == "/whisk.system/alarms/alarm"


def test_the_trigger_list_form_has_no_parameters_limits_or_rules() -> None:
    listed = trigger(parameters=[{"key": "a", "value": 1}]).with_rule(
        "guest/r", PathName(path="guest", name="a"), ACTIVE).summary()
    assert set(listed) == {"namespace", "name", "version", "publish", "annotations", "updated"}


def test_a_trigger_put_body_ignores_rules_and_fields_it_does_not_know() -> None:
    put = TriggerPut.model_validate({"name": "t", "rules": {"x": {}}, "parameters": [{"key": "k", "value": "v"}]})
    assert put.parameters == [KeyValue(key="k", value="v")]
    assert put.annotations is None and put.limits is None


@pytest.mark.parametrize(("feed", "valid"), [
    ("/whisk.system/alarms/alarm", True), ("alarms/alarm", True), ("feed", True),
    ("/a/b/c/d", False), ("/", False), ("bad name /x", False), (42, False),
])
def test_feed_annotations_must_name_an_entity(feed: object, valid: bool) -> None:
    assert is_valid_feed(feed) is valid


def test_a_rule_shows_trigger_and_action_as_path_and_name_with_the_status_it_is_given() -> None:
    rule = WhiskRule(namespace="guest", name="r", trigger=PathName(path="guest", name="t"),
                     action=PathName(path="whisk.system/samples", name="greeting"), updated=7)
    assert rule.doc_id == "guest/r"
    assert rule.api(ACTIVE) == {
        "namespace": "guest", "name": "r", "version": "0.0.1", "publish": False, "annotations": [],
        "trigger": {"path": "guest", "name": "t"},
        "action": {"path": "whisk.system/samples", "name": "greeting"},
        "updated": 7, "status": "active",
    }
    assert "status" not in rule.api()
    assert WhiskRule.model_validate(json.loads(json.dumps(rule.model_dump(mode="json")))) == rule


def test_a_rule_put_body_accepts_names_as_strings_or_objects_and_ignores_status() -> None:
    put = RulePut.model_validate({"name": "r", "status": "", "trigger": "/_/t", "action": {"path": "_", "name": "a"}})
    assert put.trigger == "/_/t" and put.action == {"path": "_", "name": "a"}


def test_rule_outcomes_in_trigger_logs_have_openwhisks_fields_in_its_order() -> None:
    ok = rule_result("guest/r", "guest/a", 0, activation_id="a" * 32)
    assert json.dumps(ok, separators=(",", ":")) == (
        '{"statusCode":0,"success":true,"activationId":"' + "a" * 32 + '","rule":"guest/r","action":"guest/a"}')
    failed = rule_result("guest/r", "guest/a", 1, error="The requested resource does not exist.")
    assert failed == {"statusCode": 1, "success": False, "error": "The requested resource does not exist.",
                      "rule": "guest/r", "action": "guest/a"}
