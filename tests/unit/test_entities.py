"""Unit tests of `whisk.entities`: names, limits, actions, activations, parameters, versions and keys."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest
from pydantic import ValidationError

from whisk.entities import params, semver
from whisk.entities.action import Exec, WhiskAction, looks_like_zip
from whisk.entities.activation import (
    APPLICATION_ERROR,
    DEVELOPER_ERROR,
    SUCCESS,
    WHISK_ERROR,
    ActivationResponse,
    WhiskActivation,
)
from whisk.entities.identity import KEY_LENGTH, generate_key, generate_uuid, hash_key, key_matches
from whisk.entities.limits import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LOGS_MB,
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_MS,
    ActionLimits,
    ActionLimitsPut,
)
from whisk.entities.names import (
    EntityPath,
    FullyQualifiedName,
    InvalidName,
    check_name,
    is_valid_name,
)
from whisk.entities.params import KeyValue


def kv(**values: object) -> list[KeyValue]:
    return params.from_dict(values)


# names


@pytest.mark.parametrize(
    "name", ["a", "_x", "a b", "hello-world", "a@b.c&d", "A9_", "x" * 256, "end.", "end@", "end&", "end-", "9lives"]
)
def test_valid_names_pass_the_name_rule(name: str) -> None:
    assert is_valid_name(name)
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", " a", "-a", "@a", ".a", "a ", "x" * 257, "a/b", "é", "naïve", "a\n", "a\tb", "a*b", "a b/"],
)
def test_invalid_names_break_the_name_rule(name: str) -> None:
    assert not is_valid_name(name)
    with pytest.raises(InvalidName):
        check_name(name)


def test_an_invalid_name_is_a_value_error() -> None:
    assert issubclass(InvalidName, ValueError)


@pytest.mark.parametrize(
    ("text", "namespace", "package", "name"),
    [
        ("hello", "_", None, "hello"),
        ("utils/hello", "_", "utils", "hello"),
        ("/guest/hello", "guest", None, "hello"),
        ("/guest/utils/hello", "guest", "utils", "hello"),
        ("/whisk.system/utils/echo", "whisk.system", "utils", "echo"),
    ],
)
def test_a_fully_qualified_name_parses_every_form_clients_write(
    text: str, namespace: str, package: str | None, name: str
) -> None:
    fqn = FullyQualifiedName.parse(text)

    assert (fqn.namespace, fqn.package, fqn.name) == (namespace, package, name)


def test_a_fully_qualified_name_prints_with_a_leading_slash_and_gives_its_doc_id() -> None:
    fqn = FullyQualifiedName.parse("/guest/utils/hello")

    assert str(fqn) == "/guest/utils/hello"
    assert fqn.doc_id() == "guest/utils/hello"
    assert FullyQualifiedName.parse("/guest/hello").doc_id() == "guest/hello"


def test_a_relative_name_takes_the_default_namespace_given() -> None:
    assert FullyQualifiedName.parse("pkg/hello", default_namespace="alice").doc_id() == "alice/pkg/hello"


@pytest.mark.parametrize("text", ["", "/", "/guest", "/a/b/c/d", "a/b/c", "/guest/bad name ", "/-guest/ok", "a//b"])
def test_a_malformed_fully_qualified_name_is_refused(text: str) -> None:
    with pytest.raises(InvalidName):
        FullyQualifiedName.parse(text)


def test_resolve_replaces_only_the_default_namespace() -> None:
    assert FullyQualifiedName.parse("utils/hello").resolve("alice") == FullyQualifiedName.of("alice", "hello", "utils")
    assert FullyQualifiedName.parse("/_/hello").resolve("alice") == FullyQualifiedName.of("alice", "hello")
    explicit = FullyQualifiedName.parse("/bob/hello")
    assert explicit.resolve("alice") is explicit


def test_an_entity_path_parses_a_namespace_or_a_package_path() -> None:
    assert EntityPath.parse("guest") == EntityPath("guest")
    assert EntityPath.parse("guest/utils") == EntityPath("guest", "utils")
    assert str(EntityPath.parse("guest/utils")) == "guest/utils"
    assert str(EntityPath("guest")) == "guest"
    assert EntityPath.parse("guest/utils").root == "guest"


@pytest.mark.parametrize("path", ["", "a/b/c", "guest/", "/guest", "bad name "])
def test_a_malformed_entity_path_is_refused(path: str) -> None:
    with pytest.raises(InvalidName):
        EntityPath.parse(path)


# limits


def test_action_limits_default_to_openwhisks() -> None:
    limits = ActionLimits()

    assert (limits.timeout, limits.memory, limits.logs, limits.concurrency) == (60_000, 256, 10, 1)
    assert (DEFAULT_TIMEOUT_MS, DEFAULT_MEMORY_MB, DEFAULT_LOGS_MB, DEFAULT_CONCURRENCY) == (60_000, 256, 10, 1)


@pytest.mark.parametrize(
    "values",
    [
        {"timeout": 100},
        {"timeout": 300_000},
        {"memory": 128},
        {"memory": 512},
        {"logs": 0},
        {"logs": 10},
        {"concurrency": 1},
    ],
)
def test_action_limits_accept_their_range_bounds(values: dict[str, int]) -> None:
    assert ActionLimits(**values).model_dump() | values == ActionLimits(**values).model_dump()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"timeout": 99}, "Time limit 99 milliseconds below allowed threshold of 100 milliseconds."),
        ({"timeout": 300_001}, "Time limit 300001 milliseconds exceeds allowed threshold of 300000 milliseconds."),
        ({"memory": 127}, "Memory limit 127 MB below allowed threshold of 128 MB."),
        ({"memory": 513}, "Memory limit 513 MB exceeds allowed threshold of 512 MB."),
        ({"logs": -1}, "Log size limit -1 MB below allowed threshold of 0 MB."),
        ({"logs": 11}, "Log size limit 11 MB exceeds allowed threshold of 10 MB."),
        ({"concurrency": 0}, "Concurrency limit 0 activations below allowed threshold of 1 activations."),
        ({"concurrency": 10}, "Concurrency limit 10 activations exceeds allowed threshold of 1 activations."),
    ],
)
def test_action_limits_out_of_range_say_which_limit_and_threshold(values: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ActionLimits(**values)

    assert message in str(caught.value)


def test_action_limits_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        ActionLimits.model_validate({"timeout": 1000, "cpu": 2})


def test_a_limits_update_changes_only_the_limits_it_names() -> None:
    current = ActionLimits(timeout=5_000, memory=512)

    updated = ActionLimitsPut(memory=128).apply_to(current)

    assert updated == ActionLimits(timeout=5_000, memory=128)
    assert ActionLimitsPut().apply_to(current) == current


def test_a_limits_update_out_of_range_is_refused() -> None:
    with pytest.raises(ValidationError, match="Time limit 50 milliseconds below"):
        ActionLimitsPut(timeout=50).apply_to(ActionLimits())


# actions


def zip_base64() -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__main__.py", "def main(args):\n    return args\n")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_base64_zip_is_detected_as_binary_code() -> None:
    assert Exec(kind="python:3.11", code=zip_base64()).is_binary()
    assert looks_like_zip(zip_base64())


@pytest.mark.parametrize(
    "code", [None, "", "def main(args):\n    return args\n", "UEsD", base64.b64encode(b"hello world").decode()]
)
def test_text_or_other_base64_is_not_binary(code: str | None) -> None:
    assert not Exec(kind="python:3.11", code=code).is_binary()


def test_an_explicit_binary_flag_wins_over_detection() -> None:
    assert Exec(kind="python:3.11", code="print(1)", binary=True).is_binary()
    assert not Exec(kind="python:3.11", code=zip_base64(), binary=False).is_binary()


def make_action() -> WhiskAction:
    return WhiskAction(
        namespace="guest/utils",
        name="hello",
        exec=Exec(kind="python:3.11", code="def main(args):\n    return args\n", main="main"),
        parameters=kv(name="Ada"),
        annotations=kv(**{"web-export": True}),
        updated=1_700_000_000_000,
    )


def test_an_action_without_code_keeps_everything_but_the_code() -> None:
    action = make_action()

    shown = action.api(with_code=False)

    assert shown["exec"] == {"kind": "python:3.11", "main": "main", "binary": False}
    assert shown["parameters"] == [{"key": "name", "value": "Ada"}]
    assert shown["annotations"] == [{"key": "web-export", "value": True}]
    assert shown["limits"] == {"timeout": 60_000, "memory": 256, "logs": 10, "concurrency": 1}
    assert (shown["namespace"], shown["name"], shown["version"], shown["publish"], shown["updated"]) == (
        "guest/utils",
        "hello",
        "0.0.1",
        False,
        1_700_000_000_000,
    )
    assert action.api()["exec"]["code"] == action.exec.code


def test_an_action_summary_has_no_code_and_no_parameters() -> None:
    summary = make_action().summary()

    assert summary["exec"] == {"binary": False}
    assert "parameters" not in summary
    assert summary["annotations"] == [{"key": "web-export", "value": True}]
    assert set(summary) == {"namespace", "name", "version", "publish", "exec", "annotations", "limits", "updated"}


def test_an_action_reads_its_annotations() -> None:
    assert make_action().annotation("web-export") is True
    assert make_action().annotation("missing", "fallback") == "fallback"


# activations


@pytest.mark.parametrize(
    ("response", "status", "success"),
    [
        (ActivationResponse.success({"ok": 1}), "success", True),
        (ActivationResponse.application_error("bad input"), "application error", False),
        (ActivationResponse.developer_error("no main"), "action developer error", False),
        (ActivationResponse.whisk_error("invoker lost"), "whisk internal error", False),
    ],
)
def test_an_activation_response_is_shown_with_status_and_success_never_a_status_code(
    response: ActivationResponse, status: str, success: bool
) -> None:
    shown = response.api()

    assert shown["status"] == status
    assert shown["success"] is success
    assert "statusCode" not in shown


def test_error_responses_wrap_the_error_and_keep_their_status_code() -> None:
    assert ActivationResponse.application_error("x", size=3).model_dump() == {
        "statusCode": APPLICATION_ERROR,
        "result": {"error": "x"},
        "size": 3,
    }
    assert ActivationResponse.developer_error("y").statusCode == DEVELOPER_ERROR
    assert ActivationResponse.whisk_error("z").statusCode == WHISK_ERROR
    assert ActivationResponse.success(None).statusCode == SUCCESS


def test_a_response_shows_result_and_size_only_when_present() -> None:
    assert ActivationResponse.success(None).api() == {"status": "success", "success": True}
    assert ActivationResponse.success({"a": 1}, size=7).api() == {
        "status": "success",
        "success": True,
        "result": {"a": 1},
        "size": 7,
    }


def make_activation(**overrides: object) -> WhiskActivation:
    fields: dict[str, object] = {
        "namespace": "guest",
        "name": "hello",
        "version": "0.0.1",
        "subject": "guest-subject",
        "activationId": "a" * 32,
        "start": 1_000,
        "end": 1_250,
        "response": ActivationResponse.application_error("boom"),
        "logs": ["line one"],
        "annotations": kv(path="guest/utils/hello", kind="python:3.11"),
    }
    return WhiskActivation.model_validate(fields | overrides)


def test_an_activation_summary_has_a_status_code_but_no_logs_or_response() -> None:
    summary = make_activation().summary()

    assert summary["statusCode"] == APPLICATION_ERROR
    assert "logs" not in summary
    assert "response" not in summary
    assert summary["duration"] == 250
    assert summary["annotations"] == [
        {"key": "path", "value": "guest/utils/hello"},
        {"key": "kind", "value": "python:3.11"},
    ]


def test_an_activation_shows_its_response_and_a_computed_or_given_duration() -> None:
    shown = make_activation().api()

    assert shown["response"] == {"status": "application error", "success": False, "result": {"error": "boom"}}
    assert shown["duration"] == 250
    assert "cause" not in shown
    assert make_activation(duration=3, cause="b" * 32).api()["duration"] == 3
    assert make_activation(cause="b" * 32).api()["cause"] == "b" * 32
    assert make_activation(end=0).api()["duration"] == 0


def test_an_activation_entity_path_comes_from_its_path_annotation() -> None:
    assert make_activation().entity_path == "utils/hello"
    assert make_activation(annotations=kv(path="guest/hello")).entity_path == "hello"
    assert make_activation(annotations=[]).entity_path == "hello"


def test_an_activation_store_form_keeps_the_status_code() -> None:
    stored = make_activation().model_dump()

    assert stored["response"]["statusCode"] == APPLICATION_ERROR
    assert WhiskActivation.model_validate(stored) == make_activation()


# versions and parameters


@pytest.mark.parametrize(
    ("version", "bumped"),
    [("0.0.1", "0.0.2"), ("1.2.9", "1.2.10"), ("3.0.99", "3.0.100"), ("bad", "0.0.1"), ("1.2", "0.0.1"), ("", "0.0.1")],
)
def test_a_version_bump_raises_the_patch_or_restarts_a_malformed_version(version: str, bumped: str) -> None:
    assert semver.bump(version) == bumped


def test_merging_parameters_overrides_keys_and_keeps_the_base_order_first() -> None:
    merged = params.merge(kv(a=1, b=2, c=3), kv(b=20, d=4))

    assert params.to_dict(merged) == {"a": 1, "b": 20, "c": 3, "d": 4}
    assert [pair.key for pair in merged] == ["a", "b", "c", "d"]
    assert params.merge([], []) == []


def test_parameters_are_read_and_removed_by_key() -> None:
    pairs = kv(a=1, b=None)

    assert params.get(pairs, "a") == 1
    assert params.get(pairs, "b", "default") is None
    assert params.get(pairs, "zzz", "default") == "default"
    assert params.without(pairs, ["a"]) == kv(b=None)


def test_a_parameter_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        KeyValue.model_validate({"key": "a", "value": 1, "init": True})


# keys


def test_a_key_hash_is_a_sha256_digest_that_only_its_key_matches() -> None:
    key = generate_key()
    digest = hash_key(key)

    assert digest.startswith("sha256:")
    assert key not in digest
    assert len(digest) == len("sha256:") + 64
    assert hash_key(key) == digest
    assert key_matches(key, digest)
    assert not key_matches(key + "x", digest)
    assert not key_matches("", digest)
    assert not key_matches(key, digest.upper())


def test_a_generated_key_is_64_random_alphanumeric_characters() -> None:
    keys = {generate_key() for _ in range(50)}

    assert len(keys) == 50
    for key in keys:
        assert len(key) == KEY_LENGTH == 64
        assert key.isascii()
        assert key.isalnum()


def test_a_generated_uuid_is_a_fresh_uuid4() -> None:
    first, second = generate_uuid(), generate_uuid()

    assert first != second
    assert len(first) == 36
    assert first[14] == "4"
