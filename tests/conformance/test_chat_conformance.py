"""The new chat inputs conform to the official specs: Azure's v1 GA spec and the OpenAI spec (Prism
as the judge, through the recording proxy of test_actions_conformance), with a negative control per
family of inputs showing the judge refuses a broken request, and our own refusals before sending."""

from __future__ import annotations

import base64
from typing import Any, Dict, Iterator

import pytest

from azure_openai_connector import errors
from prism_support import PrismServer
from test_actions_conformance import PRISM_KEY, RecordingProxy, run_step

pytestmark = pytest.mark.prism

PDF = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
TOOL = {"type": "function", "function": {"name": "get_weather", "strict": True, "parameters": {
    "type": "object", "additionalProperties": False, "required": ["city"], "properties": {"city": {"type": "string"}}}}}
STRICT_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
    "type": "object", "additionalProperties": False, "required": ["a"], "properties": {"a": {"type": "string"}}}}}
CONVERSATION = [
    {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
    {"role": "user", "content": [{"type": "text", "text": "Read these."},
                                 {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                                 {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF}},
                                 {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "21 C"}]},
    {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}], "refusal": "No."},
    {"role": "user", "content": "Answer in JSON."},
]
CASES = {
    "conversation-tools-format": {"messages": CONVERSATION, "tools": [TOOL], "tool_choice": "auto",
                                  "parallel_tool_calls": True, "response_format": STRICT_FORMAT,
                                  "images": ["https://example.com/cat.png"], "image_detail": "high"},
    "named-tool": {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    "logprobs-and-more": {"logprobs": True, "top_logprobs": 3, "logit_bias": {"50256": -100}, "user": "u-1",
                          "store": True, "metadata": {"team": "a"}, "prediction": "old text", "seed": 1},
    "reasoning": {"model": "o4-mini", "reasoning_effort": "high", "max_completion_tokens": 400},
}


@pytest.fixture(scope="module")
def chat_judges(prism_openai: PrismServer, prism_azure_v1: PrismServer) -> Iterator[Dict[str, RecordingProxy]]:
    with RecordingProxy(prism_openai.url) as openai_judge, RecordingProxy(prism_azure_v1.url) as azure_judge:
        yield {"openai": openai_judge, "azure-v1": azure_judge}


def connection_for(service: str, url: str) -> Dict[str, Any]:
    if service == "openai":
        return {"api_key": PRISM_KEY, "is_openai_key": True, "endpoint": url + "/v1"}
    return {"api_key": PRISM_KEY, "organization": "contoso", "endpoint": url, "api_version": "v1"}


@pytest.mark.parametrize("service", ["openai", "azure-v1"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_spec_accepts_each_new_input(service, case, chat_judges, quick_runtime):
    judge = chat_judges[service]
    judge.reset()
    _, error = run_step(quick_runtime, "create_chat_completion", connection_for(service, judge.url),
                        {"model": "gpt-4o", **CASES[case]})
    [exchange] = judge.exchanges
    assert exchange["status"] == 200 and exchange["violations"] == [], (exchange["violations"],
                                                                        exchange["request_body"][:800])
    assert not isinstance(error, errors.ApiError), error


BROKEN_BODIES = {
    "tools": ({"tools": [{"type": "function"}]}, "function"),
    "tool_choice": ({"tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice"),
    # Azure's v1 spec states content parts and response formats as discriminated unions, which
    # Prism does not resolve: an unknown `type` is what both specs refuse.
    "content-part": ({"messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]}, "content"),
    "response_format": ({"response_format": {"type": "xml"}}, "response_format"),
    "reasoning_effort": ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    "top_logprobs": ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
}


@pytest.mark.parametrize("service", ["openai", "azure-v1"])
@pytest.mark.parametrize("family", sorted(BROKEN_BODIES))
def test_negative_control_the_judge_refuses_a_broken_input_of_each_family(service, family, chat_judges,
                                                                          quick_runtime):
    judge = chat_judges[service]
    judge.reset()
    change, field = BROKEN_BODIES[family]
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **change}
    path = "/v1/chat/completions"
    run_step(quick_runtime, "raw_request", connection_for(service, judge.url),
             {"url": path, "method": "POST", "data": body})
    [exchange] = judge.exchanges
    assert exchange["status"] == 422, exchange
    assert any(field in violation for violation in exchange["violations"]), exchange["violations"]


@pytest.mark.parametrize("inputs, path", [
    ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
     "tool_choice/function/name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                                                                             "properties": {"x": {"type": 5}}}}}]},
     "tools/0/function/parameters/properties/x/type"),
    ({"model": "o4-mini", "temperature": 0.2}, "temperature"),
])
def test_we_refuse_before_sending_what_the_spec_cannot_see(inputs, path, chat_judges, quick_runtime):
    judge = chat_judges["azure-v1"]
    judge.reset()
    _, error = run_step(quick_runtime, "create_chat_completion", connection_for("azure-v1", judge.url), inputs)
    assert isinstance(error, errors.InputValidationError)
    assert [problem["path"] for problem in error.errors] == [path]
    assert judge.exchanges == []


def test_the_azure_2024_10_21_spec_alone_wants_a_type_inside_json_schema(prism_azure, prism_openai,
                                                                         prism_azure_v1, quick_runtime):
    """A quirk of the dated spec, not of the service: its ResponseFormatJsonSchema requires `type`
    inside `json_schema` as well. The OpenAI and Azure v1 specs (and the SDKs) have no such field,
    so the connector sends their shape, and Prism on the dated spec refuses exactly that field."""
    body = {"messages": [{"role": "user", "content": "hi"}], "response_format": STRICT_FORMAT}
    with RecordingProxy(prism_azure.url) as dated, RecordingProxy(prism_azure_v1.url) as v1, \
            RecordingProxy(prism_openai.url) as openai:
        for judge, connection, path in (
                (dated, {"api_key": PRISM_KEY, "organization": "contoso", "endpoint": dated.url},
                 "/deployments/d/chat/completions"),
                (v1, connection_for("azure-v1", v1.url), "/v1/chat/completions"),
                (openai, connection_for("openai", openai.url), "/v1/chat/completions")):
            data = body if judge is dated else {"model": "gpt-4o", **body}
            run_step(quick_runtime, "raw_request", connection, {"url": path, "method": "POST", "data": data})
        [refused], [accepted_v1], [accepted_openai] = dated.exchanges, v1.exchanges, openai.exchanges
    assert refused["status"] == 422
    assert "request.body.response_format.json_schema: Request body property response_format.json_schema " \
           "must have required property 'type'" in refused["violations"]
    assert (accepted_v1["status"], accepted_openai["status"]) == (200, 200)
