"""Create Chat Completion's tools, structured output, images and files, reasoning-model rules and
content filters, end to end against the emulator."""

from __future__ import annotations

import base64
import json

import pytest

from azure_openai_connector import InputValidationError, run_action
from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.errors import ContentFilterError, UnsupportedParameterError

from support import API_KEY

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.", "strict": True,
    "parameters": {"type": "object", "additionalProperties": False, "required": ["city", "unit"],
                   "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}}}}}
PERSON_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name", "age", "tags"],
                 "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18},
                                "tags": {"type": "array", "items": {"type": "string"}}}}
PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PDF_DATA_URL = "data:application/pdf;base64," + base64.b64encode(PDF_BYTES).decode()


def newest_api(connection):
    """The connection on Azure's v1 API (OpenAI connections as they are): the dated 2024-10-21 API
    has no file parts and no reasoning options."""
    return connection if connection.get("is_openai_key") else {**connection, "api_version": "v1"}


@pytest.fixture
def reasoning_emulator():
    """An Azure resource whose deployment `prod-chat` is backed by o4-mini."""
    with Emulator(api_key=API_KEY, deployment_models={"prod-chat": "o4-mini"}) as emulator:
        yield emulator


def test_a_tool_calling_round_trip_as_a_workflow_runs_it(emulator, connection):
    question = [{"role": "user", "content": "What is the weather in Oslo? Use get_weather."}]
    step_1 = run_action("create_chat_completion", connection,
                        {"messages": question, "tools": [WEATHER_TOOL], "tool_choice": "auto"})
    assert step_1["finish_reason"] == "tool_calls" and step_1["content"] is None
    [call] = step_1["tool_calls"]
    assert call["name"] == "get_weather"
    assert call["arguments"] == {"city": "sample", "unit": "celsius"}
    assert json.loads(call["raw_arguments"]) == call["arguments"] and call["arguments_error"] is None
    # Step 2: the host runs the tool and sends its result back, after the assistant's own message.
    tool_result = {"role": "tool", "tool_call_id": call["id"], "content": '{"temperature": 21}'}
    step_2 = run_action("create_chat_completion", connection,
                        {"messages": question + [step_1["assistant_message"], tool_result], "tools": [WEATHER_TOOL]})
    assert step_2["finish_reason"] == "stop" and step_2["tool_calls"] == []
    assert step_2["content"] == 'Emulated answer from the tool results: {"temperature": 21}'
    sent = emulator.requests[-1].json
    assert sent["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": call["id"], "type": "function", "function": {"name": "get_weather", "arguments": call["raw_arguments"]}}]}
    assert sent["messages"][2] == tool_result


def test_a_named_tool_choice_calls_that_function(emulator, openai_connection):
    other = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    result = run_action("create_chat_completion", openai_connection, {
        "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL, other],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}}, "parallel_tool_calls": False})
    assert [call["name"] for call in result["tool_calls"]] == ["lookup"]
    sent = emulator.requests[-1].json
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert sent["parallel_tool_calls"] is False


def test_invalid_tool_call_arguments_are_reported_not_raised():
    from azure_openai_connector.actions.chat_output import tool_call

    reported = tool_call({"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{oops"}})
    assert reported["arguments"] is None and reported["raw_arguments"] == "{oops"
    assert reported["arguments_error"].startswith("the model's arguments are not valid JSON")


def test_json_schema_strict_output_comes_back_parsed_and_valid(emulator, connection):
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True}}
    result = run_action("create_chat_completion", connection, {"response_format": response_format})
    assert result["parsed"] == {"name": "sample", "age": 18, "tags": ["sample"]}
    assert result["parse_errors"] == []
    assert json.loads(result["content"]) == result["parsed"]  # the raw text is kept
    assert emulator.requests[-1].json["response_format"] == response_format


def test_an_answer_that_misses_the_schema_is_reported_with_its_path(emulator, connection):
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[0-9]{3}$"}}}
    result = run_action("create_chat_completion", connection, {
        "response_format": {"type": "json_schema", "json_schema": {"name": "code", "schema": schema}}})
    assert result["parsed"] is None
    assert result["parse_errors"] == [{"path": "code", "message": "'sample' does not match '^[0-9]{3}$'"}]
    assert result["content"] == '{"code": "sample"}'


def test_an_image_data_url_and_a_pdf_arrive_as_the_specs_content_parts(emulator, connection):
    content = [{"type": "text", "text": "Compare these."},
               {"type": "image_url", "image_url": {"url": PNG_DATA_URL, "detail": "low"}},
               {"type": "file", "file": {"filename": "report.pdf", "file_data": PDF_DATA_URL}}]
    result = run_action("create_chat_completion", newest_api(connection),
                        {"messages": [{"role": "user", "content": content}]})
    assert emulator.requests[-1].json["messages"] == [{"role": "user", "content": content}]
    assert result["content"] == (f"Emulated reply to: Compare these. [image_url data:image/png;base64,... "
                                 f"({len(PNG_DATA_URL)} characters) detail=low] "
                                 f"[file report.pdf application/pdf {len(PDF_BYTES)} bytes]")


def test_images_are_attached_to_the_last_user_message(emulator, openai_connection):
    bare_png = PNG_DATA_URL.split(",", 1)[1]
    run_action("create_chat_completion", openai_connection, {
        "messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                     {"role": "user", "content": "What is in these?"}],
        "images": ["https://example.com/cat.png", bare_png], "image_detail": "high"})
    sent = emulator.requests[-1].json["messages"]
    assert sent[0] == {"role": "user", "content": "first"}
    assert sent[2]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL, "detail": "high"}}]


@pytest.mark.parametrize("inputs, path", [
    ({"temperature": 0.2}, "temperature"),
    ({"top_p": 0.5}, "top_p"),
    ({"logprobs": True}, "logprobs"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"stop": ["END"]}, "stop"),
    ({"verbosity": "low"}, "verbosity"),
])
def test_a_reasoning_model_named_as_such_refuses_what_it_rejects_before_sending(emulator, connection, inputs, path):
    with pytest.raises(InputValidationError) as caught:
        run_action("create_chat_completion", newest_api(connection), {"model": "o4-mini", **inputs})
    assert [problem["path"] for problem in caught.value.errors] == [path]
    assert "'o4-mini'" in caught.value.errors[0]["message"]
    assert emulator.request_count == 0


def test_defaults_are_not_sent_to_a_reasoning_model(emulator, openai_connection):
    run_action("create_chat_completion", openai_connection, {"model": "gpt-5-mini", "reasoning_effort": "minimal",
                                                             "verbosity": "low", "max_completion_tokens": 300})
    sent = emulator.requests[-1].json
    assert sent == {"model": "gpt-5-mini", "messages": sent["messages"], "reasoning_effort": "minimal",
                    "verbosity": "low", "max_completion_tokens": 300}


def test_an_opaque_deployment_gets_no_guess_and_its_400_names_the_input(reasoning_emulator):
    connection = {"api_key": API_KEY, "organization": "contoso", "endpoint": reasoning_emulator.url}
    with pytest.raises(UnsupportedParameterError) as caught:
        run_action("create_chat_completion", connection, {"model": "prod-chat", "temperature": 0.2})
    error = caught.value
    assert (error.status, error.code, error.field, error.param) == (400, "unsupported_parameter", "temperature", "temperature")
    assert "leave temperature unset" in error.message
    assert error.to_dict()["field"] == "temperature"
    assert reasoning_emulator.request_count == 1  # sent once, never retried


def test_an_unsupported_reasoning_effort_lists_the_values_the_model_takes(reasoning_emulator):
    connection = {"api_key": API_KEY, "organization": "contoso", "endpoint": reasoning_emulator.url,
                  "api_version": "v1"}
    with pytest.raises(UnsupportedParameterError) as caught:
        run_action("create_chat_completion", connection, {"model": "prod-chat", "reasoning_effort": "minimal"})
    error = caught.value
    assert (error.code, error.field) == ("unsupported_value", "reasoning_effort")
    assert error.details["allowed_values"] == ["low", "medium", "high"]
    assert "set reasoning_effort to one of low, medium, high" in error.message
    assert reasoning_emulator.request_count == 1


@pytest.mark.parametrize("inputs, paths", [
    ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
     ["tool_choice/function/name"]),
    ({"tool_choice": "required"}, ["tool_choice"]),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"type": "strin"}}}}}]},
     ["tools/0/function/parameters/properties/x/type"]),
    ({"tools": [{"type": "function", "function": {"name": "f", "strict": True, "parameters": {
        "type": "object", "required": ["x"], "properties": {"x": {"type": "object", "properties": {"y": {"type": "string"}}}}}}}]},
     ["tools/0/function/parameters/additionalProperties", "tools/0/function/parameters/properties/x/additionalProperties",
      "tools/0/function/parameters/properties/x/required"]),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "p", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}}}}},
     ["response_format/json_schema/schema/required"]),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "bad name", "schema": {}}}},
     ["response_format/json_schema/name"]),
    ({"messages": [{"role": "tool", "tool_call_id": "call_1", "content": "x"}]}, ["messages/0/tool_call_id"]),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "hi"}]}, ["messages/0/tool_calls/0/id"]),
    ({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]}]},
     ["messages/0/content/0/type"]),
    ({"model": "gpt-4.1", "top_logprobs": 3}, ["top_logprobs"]),
    ({"images": ["https://example.com/a.png"], "messages": [{"role": "system", "content": "x"}]}, ["images"]),
])
def test_cross_field_rules_refuse_before_sending_with_every_path(emulator, openai_connection, inputs, paths):
    with pytest.raises(InputValidationError) as caught:
        run_action("create_chat_completion", openai_connection, inputs)
    assert sorted(problem["path"] for problem in caught.value.errors) == paths
    assert emulator.request_count == 0


def test_the_2024_10_21_api_refuses_what_it_does_not_have(emulator, azure_connection):
    pdf = {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF_DATA_URL}}
    with pytest.raises(InputValidationError) as caught:
        run_action("create_chat_completion", {**azure_connection, "api_version": "2024-10-21"}, {
            "model": "my-deployment", "reasoning_effort": "low", "store": True,
            "messages": [{"role": "user", "content": [pdf]}]})
    assert sorted(problem["path"] for problem in caught.value.errors) == [
        "messages/0/content/0/type", "reasoning_effort", "store"]
    assert emulator.request_count == 0


def test_max_completion_tokens_goes_as_max_tokens_only_to_versions_before_it(emulator, azure_connection):
    # A deployment whose name reveals no model (the service would refuse max_tokens for a reasoning one).
    inputs = {"model": "team-chat", "max_completion_tokens": 9}
    run_action("create_chat_completion", {**azure_connection, "api_version": "2024-06-01"}, inputs)
    run_action("create_chat_completion", azure_connection, inputs)
    old, new = (request.json for request in emulator.requests)
    assert (old.get("max_tokens"), "max_completion_tokens" in old) == (9, False)
    assert (new.get("max_completion_tokens"), "max_tokens" in new) == (9, False)


def test_every_new_option_is_sent_as_the_api_spells_it(emulator, openai_connection):
    inputs = {"logprobs": True, "top_logprobs": 2, "logit_bias": {"50256": -100.0}, "user": "u-1",
              "safety_identifier": "s-1", "store": True, "metadata": {"team": "a"}, "service_tier": "flex",
              "prediction": "old text", "seed": 3}
    # logprobs and logit_bias are for models that sample (a reasoning model refuses them).
    run_action("create_chat_completion", openai_connection, {"model": "gpt-4.1", **inputs})
    sent = emulator.requests[-1].json
    assert {name: sent[name] for name in inputs} == {**inputs, "prediction": {"type": "content", "content": "old text"}}
    assert '"logit_bias":{"50256":-100}' in emulator.requests[-1].text  # an integer, as the API wants


def test_an_output_filter_keeps_the_billed_answers_id_usage_and_prompt_results(emulator, azure_connection):
    emulator.script(Fault.content_filter_output())
    with pytest.raises(ContentFilterError) as caught:
        run_action("create_chat_completion", azure_connection, {})
    details = caught.value.details
    assert details["id"].startswith("chatcmpl-emu")
    assert details["usage"]["completion_tokens"] == 0 and details["usage"]["prompt_tokens"] > 0
    assert details["prompt_filter_results"][0]["prompt_index"] == 0
    assert details["content_filter_results"][0]["violence"] == {"filtered": True, "severity": "high"}


def test_every_batch_item_gets_parsed_and_keeps_its_filter_results(emulator, azure_connection):
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True}}
    result = run_action("create_multiple_chat_completions", azure_connection, {
        "prompts": ["a", "b"], "response_format": response_format, "max_completion_tokens": 40})
    for item in result["results"]:
        assert item["parsed"] == {"name": "sample", "age": 18, "tags": ["sample"]} and item["parse_errors"] == []
        assert item["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    assert all(request.json["response_format"] == response_format and request.json["max_completion_tokens"] == 40
               for request in emulator.requests)


def test_batch_family_rules_and_the_old_token_limit_name(emulator, openai_connection):
    with pytest.raises(InputValidationError) as caught:
        run_action("create_multiple_chat_completions", openai_connection,
                   {"model": "o4-mini", "prompts": ["a"], "temperature": 0.2, "max_tokens": 5, "max_completion_tokens": 5})
    assert sorted(problem["path"] for problem in caught.value.errors) == ["max_tokens", "temperature"]
    result = run_action("create_multiple_chat_completions", openai_connection,
                        {"model": "o4-mini", "prompts": ["a"], "reasoning_effort": "high", "max_tokens": 5})
    assert result["totals"]["succeeded"] == 1
    sent = emulator.requests[-1].json
    assert (sent["reasoning_effort"], sent["max_completion_tokens"], "max_tokens" in sent) == ("high", 5, False)


def test_a_long_texts_final_summary_alone_takes_the_format(emulator, openai_connection):
    text = "\n\n".join(f"Paragraph {number} states one plain fact about otters. " * 20 for number in range(3))
    response_format = {"type": "json_schema", "json_schema": {"name": "summary", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["points"],
        "properties": {"points": {"type": "array", "items": {"type": "string"}}}}}}
    result = run_action("summarize_text", openai_connection, {
        "text": text, "chunk_size": 1100, "system": "The readers are biologists.", "reasoning_effort": "low",
        "model": "gpt-5-mini", "response_format": response_format, "max_summary_tokens": 64})
    assert result["chunks"] == 3 and result["parsed"] == {"points": ["sample"]} and result["parse_errors"] == []
    *parts, final = [request.json for request in emulator.requests]
    assert len(parts) == 3 and all("response_format" not in part for part in parts)
    assert final["response_format"] == response_format
    assert all(body["messages"][0] == {"role": "system", "content": "The readers are biologists."}
               and body["reasoning_effort"] == "low" and body["max_completion_tokens"] == 64
               for body in parts + [final])


def test_summarize_refuses_reasoning_effort_for_a_model_without_reasoning(emulator, openai_connection):
    with pytest.raises(InputValidationError) as caught:
        run_action("summarize_text", openai_connection, {"model": "gpt-4.1-mini", "reasoning_effort": "low"})
    assert [problem["path"] for problem in caught.value.errors] == ["reasoning_effort"]
    assert emulator.request_count == 0


def test_batch_items_keep_the_filter_error_when_filtering_did_not_run(emulator, azure_connection):
    emulator.script(Fault.content_filter_not_run(), times=1)
    result = run_action("create_multiple_chat_completions", azure_connection, {"prompts": ["a"]})
    [item] = result["results"]
    assert item["error"] is None and item["content"] == "Emulated reply to: a"
    assert item["content_filter_results"] == {
        "error": {"code": "content_filter_error", "message": "The contents are not filtered"}}


def test_arguments_that_are_not_json_are_reported_in_the_result(emulator, openai_connection):
    emulator.script(Fault.invalid_tool_arguments())
    result = run_action("create_chat_completion", openai_connection, {
        "messages": [{"role": "user", "content": "get_weather for Oslo"}], "tools": [WEATHER_TOOL]})
    [call] = result["tool_calls"]
    assert call["arguments"] is None and call["raw_arguments"] == '{"city": "sample", "unit": "celsius"'
    assert call["arguments_error"].startswith("the model's arguments are not valid JSON")


def test_usage_keeps_its_details_reasoning_tokens_included(emulator, openai_connection):
    result = run_action("create_chat_completion", openai_connection, {"model": "o4-mini", "reasoning_effort": "high"})
    details = result["usage"]["completion_tokens_details"]
    assert details["reasoning_tokens"] == 64
    # The visible answer (39 characters, about 10 tokens) plus the reasoning, as billed.
    assert result["content"] == "Emulated reply to: Where was it played?"
    assert result["usage"]["completion_tokens"] == 10 + 64
    assert result["usage"]["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
