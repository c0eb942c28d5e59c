"""Create Response against the emulator: routes per service and version, background runs polled on
a fake clock (to completion, to a timeout, cancelled on timeout), chaining with
previous_response_id, a function tool round trip, json_schema output, model-family rules."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List

import pytest
from jsonschema import Draft7Validator

from azure_openai_connector.emulator import Emulator
from azure_openai_connector.errors import BadRequestError, ContentFilterError, InputValidationError, NotFoundError
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.runtime import Runtime

ACTION = "create_response"
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"], "additionalProperties": False},
                "strict": True}


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clocked_runtime(clock: FakeClock) -> Iterator[Runtime]:
    runtime = Runtime(sleep=clock.sleep, clock=clock)
    try:
        yield runtime
    finally:
        runtime.close()


def assert_matches_output_schema(result: Dict[str, Any]) -> None:
    Draft7Validator(load_manifest().action(ACTION).output).validate(result)


def test_defaults_on_openai(runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, openai_connection, {})

    [request] = emulator.requests
    assert request.path == "/v1/responses"
    assert request.json == {"model": "gpt-5-mini", "input": "Write a haiku about workflow automation."}
    assert result["status"] == "completed" and result["timed_out"] is False
    assert result["output_text"] == "Emulated reply to: Write a haiku about workflow automation."
    assert result["tool_calls"] == [] and "parsed" not in result
    assert result["usage"]["output_tokens_details"]["reasoning_tokens"] == 16
    assert result["request_id"] == "req_0000000000000001"
    assert_matches_output_schema(result)


@pytest.mark.parametrize("api_version, path, query", [
    ("v1", "/openai/v1/responses", {}),
    ("2025-04-01-preview", "/openai/responses", {"api-version": "2025-04-01-preview"}),
    # The route exists on dated versions from 2025-04-01-preview: older ones use that version for it.
    ("2024-10-21", "/openai/responses", {"api-version": "2025-04-01-preview"}),
])
def test_azure_routes_put_the_deployment_in_the_body(runtime: Runtime, emulator: Emulator,
                                                     azure_connection: Dict[str, Any], api_version: str,
                                                     path: str, query: Dict[str, str]) -> None:
    result = runtime.run(ACTION, {**azure_connection, "api_version": api_version},
                         {"model": "my-responses-deployment", "input": "hello"})

    [request] = emulator.requests
    assert (request.path, request.query) == (path, query)
    assert request.json["model"] == "my-responses-deployment"
    assert result["output_text"] == "Emulated reply to: hello"


def test_a_background_run_is_polled_to_completion(clocked_runtime: Runtime, clock: FakeClock, emulator: Emulator,
                                                  connection: Dict[str, Any]) -> None:
    result = clocked_runtime.run(ACTION, connection, {"input": "a long task", "background": True})

    methods = [(request.method, request.path.rsplit("/", 1)[-1]) for request in emulator.requests]
    assert methods == [("POST", "responses")] + [("GET", result["id"])] * 3
    assert emulator.requests[0].json["background"] is True
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert result["status"] == "completed" and result["timed_out"] is False
    assert result["output_text"] == "Emulated reply to: a long task"
    assert_matches_output_schema(result)


def test_a_background_run_that_times_out_returns_its_id_and_status(
        clocked_runtime: Runtime, clock: FakeClock, emulator: Emulator, openai_connection: Dict[str, Any]) -> None:
    result = clocked_runtime.run(ACTION, openai_connection, {"input": "slow", "background": True, "timeout": 2})

    assert clock.sleeps == [1.0, 1.0]  # the second wait is cut to what the timeout leaves
    assert [request.method for request in emulator.requests] == ["POST", "GET", "GET"]
    assert result["timed_out"] is True and result["status"] == "in_progress"
    assert result["id"].startswith("resp_") and result["output"] == [] and result["output_text"] == ""
    assert_matches_output_schema(result)
    # A later step picks it up where it is, with a raw request.
    later = clocked_runtime.run("raw_request", openai_connection, {"url": f"/v1/responses/{result['id']}"})
    assert later["data"]["status"] == "completed"


def test_cancel_on_timeout_cancels_the_run(clocked_runtime: Runtime, clock: FakeClock, emulator: Emulator,
                                           connection: Dict[str, Any]) -> None:
    result = clocked_runtime.run(ACTION, connection, {"input": "slow", "background": True, "timeout": 1,
                                                      "cancel_on_timeout": True})

    assert [(request.method, request.path.rsplit("/", 1)[-1]) for request in emulator.requests] == [
        ("POST", "responses"), ("GET", result["id"]), ("POST", "cancel")]
    assert result["timed_out"] is True and result["status"] == "cancelled"
    assert_matches_output_schema(result)


def test_previous_response_id_chains_two_steps(runtime: Runtime, emulator: Emulator,
                                               connection: Dict[str, Any]) -> None:
    first = runtime.run(ACTION, connection, {"input": "My name is Ada."})
    second = runtime.run(ACTION, connection, {"input": "What is my name?", "previous_response_id": first["id"]})

    assert emulator.requests[1].json["previous_response_id"] == first["id"]
    assert second["previous_response_id"] == first["id"]
    assert second["output_text"] == "Emulated reply to: What is my name? (continuing from: My name is Ada.)"


def test_an_unknown_previous_response_is_the_services_refusal(runtime: Runtime,
                                                              openai_connection: Dict[str, Any]) -> None:
    with pytest.raises(BadRequestError) as raised:
        runtime.run(ACTION, openai_connection, {"input": "hi", "previous_response_id": "resp_missing"})
    assert raised.value.status == 400 and raised.value.param == "previous_response_id"


def test_a_function_tool_round_trip(runtime: Runtime, emulator: Emulator, connection: Dict[str, Any]) -> None:
    asked = runtime.run(ACTION, connection, {"input": "Weather in Oslo?", "tools": [WEATHER_TOOL],
                                             "tool_choice": {"type": "function", "name": "get_weather"}})
    [call] = asked["tool_calls"]
    assert call == {"call_id": asked["output"][0]["call_id"], "name": "get_weather",
                    "arguments": {"city": "Weather in Oslo?"}}

    answered = runtime.run(ACTION, connection, {
        "previous_response_id": asked["id"], "tools": [WEATHER_TOOL],
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": '{"celsius": 7}'}]})
    assert emulator.requests[1].json["input"][0]["call_id"] == call["call_id"]
    assert answered["tool_calls"] == []
    assert answered["output_text"] == 'Emulated reply using the tool result: {"celsius": 7}'
    assert_matches_output_schema(answered)


def test_json_schema_output_is_parsed(runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}, "stars": {"type": "integer"}},
              "required": ["title", "stars"], "additionalProperties": False}
    result = runtime.run(ACTION, openai_connection, {
        "model": "gpt-4.1", "input": "Rate a film.", "text_format": "json_schema",
        "json_schema": {"name": "rating", "schema": schema, "strict": True}, "temperature": 0.2})

    assert emulator.requests[0].json["text"] == {"format": {"type": "json_schema", "name": "rating",
                                                            "schema": schema, "strict": True}}
    assert emulator.requests[0].json["temperature"] == 0.2
    assert result["parsed"] == {"title": "Rate a film.", "stars": 1}
    assert json.loads(result["output_text"]) == result["parsed"]


def test_every_option_is_sent_as_the_api_names_it(runtime: Runtime, emulator: Emulator,
                                                  openai_connection: Dict[str, Any]) -> None:
    runtime.run(ACTION, openai_connection, {
        "model": "o4-mini", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "instructions": "Be brief.", "reasoning_effort": "high", "reasoning_summary": "auto",
        "max_output_tokens": 500, "store": False, "metadata": {"run": "7"}, "text_format": "json_object",
        "tools": [{"type": "web_search"}], "tool_choice": "auto"})

    assert emulator.requests[0].json == {
        "model": "o4-mini", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "instructions": "Be brief.", "tools": [{"type": "web_search"}], "tool_choice": "auto",
        "max_output_tokens": 500, "metadata": {"run": "7"}, "store": False,
        "text": {"format": {"type": "json_object"}}, "reasoning": {"effort": "high", "summary": "auto"}}


def test_max_output_tokens_cuts_the_run_short(runtime: Runtime, openai_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, openai_connection, {"model": "gpt-4.1", "input": "x" * 400, "max_output_tokens": 16})
    assert result["status"] == "incomplete"
    assert result["incomplete_details"] == {"reason": "max_output_tokens"}
    assert len(result["output_text"]) == 64


@pytest.mark.parametrize("inputs, path", [
    ({"model": "gpt-5", "temperature": 0.5}, "temperature"),
    ({"model": "o3", "top_p": 0.5}, "top_p"),
    ({"model": "gpt-4o", "reasoning_effort": "low"}, "reasoning_effort"),
    ({"text_format": "json_schema"}, "json_schema"),
    ({"json_schema": {"name": "x", "schema": {}}}, "json_schema"),
    ({"background": True, "store": False}, "store"),
    ({"cancel_on_timeout": True}, "cancel_on_timeout"),
    ({"tools": [{"type": "function", "name": "f"}]}, "tools/0/parameters"),
    ({"input": [{"type": "function_call_output", "call_id": "c"}]}, "input/0/output"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"max_output_tokens": 8}, "max_output_tokens"),
    ({"text_format": "json_schema", "json_schema": {"name": "x", "schema": "an object"}}, "json_schema/schema"),
    ({"metadata": {"k" * 65: "v"}}, "metadata/" + "k" * 65),
])
def test_refused_before_sending(runtime: Runtime, emulator: Emulator, openai_connection: Dict[str, Any],
                                inputs: Dict[str, Any], path: str) -> None:
    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, openai_connection, inputs)
    assert path in [problem["path"] for problem in raised.value.errors], raised.value.errors
    assert emulator.requests == []


def test_azure_responses_filter_refusal_is_typed_with_its_details() -> None:
    """Azure's Responses refusal carries `content_filters` and no innererror."""
    from azure_openai_connector.http import error_from_response

    filters = [{"blocked": True, "source_type": "prompt",
                "content_filter_results": {"hate": {"filtered": True, "severity": "high"}}}]
    body = {"error": {"code": "content_filter", "message": "The prompt was filtered.", "content_filters": filters}}
    error = error_from_response(400, {}, json.dumps(body).encode(), attempts=1)
    assert isinstance(error, ContentFilterError) and error.details == {"content_filters": filters}


def test_get_of_an_unknown_response_is_not_found(runtime: Runtime, openai_connection: Dict[str, Any]) -> None:
    with pytest.raises(NotFoundError):
        runtime.run("raw_request", openai_connection, {"url": "/v1/responses/resp_nothing"})
