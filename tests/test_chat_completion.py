"""Create Chat Completion end to end against the emulator: exact URLs, headers and bodies."""

from __future__ import annotations

import pytest

from azure_openai_connector import InputValidationError, run_action
from azure_openai_connector.emulator import Fault
from azure_openai_connector.errors import ContentFilterError, InvalidResponseError
from azure_openai_connector.manifest import load_manifest

from support import API_KEY

DEFAULT_MESSAGES = load_manifest().action("create_chat_completion").inputs.default("messages")


def test_azure_request_is_exactly_what_the_dated_api_expects(emulator, azure_connection):
    result = run_action("create_chat_completion", {**azure_connection, "api_version": "2024-10-21"}, {})
    [request] = emulator.requests
    assert request.method == "POST"
    assert request.path == "/openai/deployments/gpt-5.1/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers.get("api-key") == API_KEY
    assert request.headers.get("authorization") is None
    assert request.headers.get("content-type") == "application/json"
    # No model in the Azure body, and defaults the API already applies are not repeated.
    assert request.json == {"messages": DEFAULT_MESSAGES}
    assert result["content"] == "Emulated reply to: Where was it played?"
    assert result["finish_reason"] == "stop"
    assert result["object"] == "chat.completion"
    assert result["request_id"].startswith("req_")


def test_openai_request_carries_model_bearer_and_organization(emulator, openai_connection):
    connection = {**openai_connection, "organization": "org-abc123", "project": "proj_xyz"}
    result = run_action("create_chat_completion", connection,
                        {"model": "gpt-4.1", "temperature": 0.2, "max_completion_tokens": 50, "stop": ["\n"],
                         "seed": 7, "response_format": "json_object", "n": 2})
    [request] = emulator.requests
    assert request.path == "/v1/chat/completions"
    assert request.query == {}
    assert request.headers.get("authorization") == f"Bearer {API_KEY}"
    assert request.headers.get("api-key") is None
    assert request.headers.get("openai-organization") == "org-abc123"
    assert request.headers.get("openai-project") == "proj_xyz"
    assert request.json == {"model": "gpt-4.1", "messages": DEFAULT_MESSAGES, "temperature": 0.2,
                            "n": 2, "max_completion_tokens": 50, "stop": ["\n"], "seed": 7,
                            "response_format": {"type": "json_object"}}
    assert len(result["choices"]) == 2


def test_azure_v1_api_puts_the_deployment_in_the_body(emulator, azure_connection):
    run_action("create_chat_completion", {**azure_connection, "api_version": "v1"}, {"model": "my-deploy"})
    [request] = emulator.requests
    assert request.path == "/openai/v1/chat/completions"
    assert request.json["model"] == "my-deploy"


def test_developer_role_needs_a_newer_azure_api_version(emulator, azure_connection):
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    with pytest.raises(InputValidationError) as caught:
        run_action("create_chat_completion", {**azure_connection, "api_version": "2024-10-21"}, {"messages": messages})
    assert [e["path"] for e in caught.value.errors] == ["messages/0/role"]
    assert emulator.request_count == 0
    run_action("create_chat_completion", {**azure_connection, "api_version": "2025-04-01-preview"},
               {"messages": messages})
    assert emulator.request_count == 1


INVALID_INPUTS = [
    ({"temperature": "hot"}, {"temperature"}),
    ({"temperature": 2.5, "top_p": -0.1}, {"temperature", "top_p"}),
    ({"n": 0}, {"n"}),
    ({"n": 1.5}, {"n"}),
    ({"messages": []}, {"messages"}),
    ({"messages": [{"role": "wizard", "content": "x"}]}, {"messages/0/role"}),
    ({"messages": [{"role": "user"}]}, {"messages/0/content"}),
    ({"messages": [{"role": "user", "content": "x", "colour": "red"}]}, {"messages/0/colour"}),
    ({"unknown_field": 1, "model": ""}, {"unknown_field", "model"}),
    ({"stop": ["a", "b", "c", "d", "e"]}, {"stop"}),
    ({"model": "../../etc"}, {"model"}),
]


@pytest.mark.parametrize("inputs,paths", INVALID_INPUTS)
def test_invalid_inputs_list_every_problem_and_send_nothing(emulator, connection, inputs, paths):
    with pytest.raises(InputValidationError) as caught:
        run_action("create_chat_completion", connection, inputs)
    assert {error["path"] for error in caught.value.errors} == paths
    assert all(error["message"] for error in caught.value.errors)
    assert emulator.request_count == 0


def test_connection_and_input_problems_are_reported_together(emulator):
    with pytest.raises(InputValidationError) as caught:
        run_action("create_chat_completion", {"api_key": ""}, {"n": 0})
    paths = {error["path"] for error in caught.value.errors}
    assert paths == {"connection/api_key", "n"}
    assert emulator.request_count == 0


def test_output_filter_becomes_a_content_filter_error(emulator, azure_connection):
    emulator.script(Fault.content_filter_output())
    with pytest.raises(ContentFilterError) as caught:
        run_action("create_chat_completion", azure_connection, {})
    assert caught.value.status == 200
    assert caught.value.details["content_filter_results"]
    assert emulator.request_count == 1


def test_missing_choices_is_an_invalid_response(emulator, azure_connection):
    emulator.script(Fault.missing_choices())
    with pytest.raises(InvalidResponseError) as caught:
        run_action("create_chat_completion", azure_connection, {})
    assert caught.value.code == "missing_choices"
