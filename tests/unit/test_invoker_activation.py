"""How answers of the runtime proxy become activation responses, and the records built from them."""

from invoker.activation import Execution, fallback_record, init_response, record, run_response, timed_out_message
from invoker.containers import RunResult
from whisk.entities.action import Exec, WhiskAction
from whisk.entities.activation import ActivationResponse
from whisk.entities.identity import Identity
from whisk.entities.limits import MAX_PAYLOAD_BYTES
from whisk.messages import ActionRef, ActivationMessage, ControllerRef


def answer(status: int, body: bytes, size: int | None = None) -> RunResult:
    return RunResult(status, body, len(body) if size is None else size, 0, 1)


def test_an_object_is_a_success_with_its_size():
    response = run_response(answer(200, b'{"greeting": "hi"}'))
    assert (response.statusCode, response.result, response.size) == (0, {"greeting": "hi"}, 18)


def test_an_array_is_a_success():
    assert run_response(answer(200, b"[1, 2]")).result == [1, 2]


def test_an_object_with_error_is_an_application_error_keeping_the_object():
    response = run_response(answer(200, b'{"error": "nope", "code": 7}'))
    assert (response.statusCode, response.result) == (1, {"error": "nope", "code": 7})


def test_a_failure_with_an_error_field_is_a_developer_error():
    response = run_response(answer(502, b'{"error": "An error has occurred: boom"}'))
    assert (response.statusCode, response.result) == (2, {"error": "An error has occurred: boom"})


def test_anything_else_is_an_invalid_json_response():
    for status, body in ((200, b"not json"), (200, b'"a string"'), (500, b"[1]"), (502, b'{"no": 1}')):
        response = run_response(answer(status, body))
        assert response.statusCode == 2
        assert response.result == {"error": f"The action did not produce a valid JSON response: {body.decode()}"}
    assert run_response(answer(502, b"")).result == {"error": "The action did not produce a valid JSON response."}


def test_a_result_over_the_payload_limit_is_an_application_error():
    response = run_response(answer(200, b'{"x": "', size=MAX_PAYLOAD_BYTES + 10))
    assert response.statusCode == 1
    assert response.result == {
        "error": f"The action produced a response that exceeded the allowed length: "
        f"{MAX_PAYLOAD_BYTES + 10} > {MAX_PAYLOAD_BYTES} bytes."
    }


def test_a_successful_init_has_no_response_and_a_failed_one_is_a_developer_error():
    assert init_response(answer(200, b'{"ok": true}')) is None
    assert init_response(answer(502, b'{"error": "no main"}')).result == {"error": "no main"}
    assert init_response(answer(500, b"oops")).result == {"error": "The action failed during initialization: oops"}


def test_time_limit_messages():
    assert timed_out_message(1000) == "The action exceeded its time limits of 1000 milliseconds."
    assert timed_out_message(1000, init=True).endswith("1000 milliseconds during initialization.")


def _message() -> ActivationMessage:
    return ActivationMessage(
        transid=("tid1", 1_000),
        action=ActionRef(path="guest/pkg", name="hello", version="0.0.2", revision="1-x"),
        user=Identity(subject="alice", namespace="caller", uuid="u"),
        activationId="a" * 32,
        rootControllerIndex=ControllerRef(asString="0"),
        blocking=True,
        cause="c" * 32,
    )


def _action() -> WhiskAction:
    return WhiskAction(namespace="guest/pkg", name="hello", version="0.0.2", exec=Exec(kind="python:3.11", code="x"))


def test_a_record_carries_openwhisk_annotations_and_times():
    execution = Execution(ActivationResponse.success({}), 1_250, 1_400, 30, False, ["l"], True)
    activation = record(_message(), _action(), execution)
    assert (activation.namespace, activation.subject, activation.name, activation.version) == (
        "caller",
        "alice",
        "hello",
        "0.0.2",
    )
    assert (activation.start, activation.end, activation.duration, activation.cause) == (1_250, 1_400, 150, "c" * 32)
    annotations = {a.key: a.value for a in activation.annotations}
    assert annotations == {
        "path": "guest/pkg/hello",
        "waitTime": 250,
        "kind": "python:3.11",
        "timeout": False,
        "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
        "initTime": 30,
    }
    assert activation.logs == ["l"]


def test_a_warm_record_has_no_init_time():
    execution = Execution(ActivationResponse.success({}), 1_250, 1_400, None, False, [], True)
    assert "initTime" not in {a.key for a in record(_message(), _action(), execution).annotations}


def test_a_fallback_record_without_the_action_uses_the_message():
    activation = fallback_record(_message(), ActivationResponse.application_error("gone"))
    assert (activation.name, activation.version, activation.response.statusCode) == ("hello", "0.0.2", 1)
    assert activation.annotation("path") == "guest/pkg/hello"
