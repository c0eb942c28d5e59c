"""Create Image against the emulator: request shapes per service, the DALL-E 3 fan-out, per-model rules."""

from __future__ import annotations

import base64
from typing import Any, Dict

import pytest
from jsonschema import Draft7Validator

import azure_openai_connector
from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.errors import BadRequestError, ContentFilterError, InputValidationError
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.runtime import Runtime

ACTION = "create_image"


@pytest.fixture
def azure_connection(emulator: Emulator) -> Dict[str, Any]:
    """The dated 2024-10-21 API, whose per-deployment DALL-E 3 rule this module tests (the v1
    API's routes and gpt-image rule are in test_api_versions)."""
    from support import API_KEY

    return {"api_key": API_KEY, "organization": "contoso", "endpoint": emulator.url, "api_version": "2024-10-21"}


def assert_matches_output_schema(result: Dict[str, Any]) -> None:
    Draft7Validator(load_manifest().action(ACTION).output).validate(result)


def paths(error: InputValidationError) -> set:
    return {problem["path"] for problem in error.errors}


def test_dated_azure_puts_the_deployment_in_the_url(runtime: Runtime, emulator: Emulator,
                                                    azure_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, azure_connection, {"model": "my-images"})

    [request] = emulator.requests
    assert request.path == "/openai/deployments/my-images/images/generations"
    assert request.query["api-version"] == "2024-10-21"
    assert "model" not in request.json
    form = load_manifest().action(ACTION).inputs
    assert request.json == {name: form.default(name) for name in ("prompt", "size", "n")}
    assert len(result["images"]) == 1 and result["images"][0]["url"].startswith("http")
    assert result["errors"] == []
    assert "content_filter_results" in result["images"][0]
    assert result["prompt_filter_results"][0]["content_filter_results"]
    assert_matches_output_schema(result)


def test_defaults_on_openai_send_the_model_in_the_body(emulator: Emulator,
                                                       openai_connection: Dict[str, Any]) -> None:
    result = azure_openai_connector.run_action(ACTION, openai_connection, {})

    [request] = emulator.requests
    assert request.path == "/v1/images/generations"
    assert request.json["model"] == load_manifest().action(ACTION).inputs.default("model")
    assert not {"quality", "style", "response_format"} & set(request.json)
    assert isinstance(result["created"], int) and len(result["images"]) == 1
    assert "prompt_filter_results" not in result
    assert_matches_output_schema(result)


def test_dall_e_3_makes_one_request_per_image(runtime: Runtime, emulator: Emulator,
                                              connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, connection, {"model": "dall-e-3", "n": 3, "style": "natural"})

    assert emulator.request_count == 3
    assert [request.json["n"] for request in emulator.requests] == [1, 1, 1]
    assert all(request.json["style"] == "natural" for request in emulator.requests)
    assert len(result["images"]) == 3 and result["errors"] == []
    assert all(image["revised_prompt"] for image in result["images"])


def test_one_failed_image_request_keeps_the_other_images(runtime: Runtime, emulator: Emulator,
                                                         connection: Dict[str, Any]) -> None:
    emulator.script(Fault.bad_request("Emulated refusal."), times=1)

    result = runtime.run(ACTION, connection, {"model": "dall-e-3", "n": 3})

    assert emulator.request_count == 3
    assert len(result["images"]) == 2
    [failure] = result["errors"]
    assert failure["index"] in (0, 1, 2)
    assert failure["error"]["type"] == "bad_request" and failure["error"]["status"] == 400
    assert_matches_output_schema(result)


def test_all_image_requests_failing_raises_the_typed_error(runtime: Runtime, emulator: Emulator,
                                                           openai_connection: Dict[str, Any]) -> None:
    emulator.script(Fault.bad_request("Emulated refusal."), times=None)

    with pytest.raises(BadRequestError):
        runtime.run(ACTION, openai_connection, {"model": "dall-e-3", "n": 2})
    assert emulator.request_count == 2


def test_other_models_ask_for_every_image_in_one_request(runtime: Runtime, emulator: Emulator,
                                                         openai_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, openai_connection, {"model": "dall-e-2", "n": 4, "size": "256x256"})

    [request] = emulator.requests
    assert request.json["n"] == 4
    assert len(result["images"]) == 4


@pytest.mark.parametrize("inputs, field", [
    ({"model": "dall-e-3", "size": "256x256"}, "size"),
    ({"model": "dall-e-2", "prompt": "x" * 1001}, "prompt"),
    ({"model": "dall-e-3", "prompt": "x" * 4001}, "prompt"),
    ({"model": "gpt-image-1", "response_format": "url"}, "response_format"),
    ({"model": "dall-e-2", "style": "vivid"}, "style"),
    ({"model": "dall-e-2", "quality": "hd"}, "quality"),
])
def test_model_rules_refuse_before_sending(runtime: Runtime, emulator: Emulator, connection: Dict[str, Any],
                                           inputs: Dict[str, Any], field: str) -> None:
    with pytest.raises(InputValidationError) as refused:
        runtime.run(ACTION, connection, inputs)

    assert field in paths(refused.value)
    assert emulator.request_count == 0


@pytest.mark.parametrize("inputs, field", [
    ({"size": "256x256"}, "size"),
    ({"prompt": "x" * 4001}, "prompt"),
    ({"quality": "low"}, "quality"),
])
def test_azure_custom_deployment_follows_dall_e_3_rules(runtime: Runtime, emulator: Emulator,
                                                        azure_connection: Dict[str, Any],
                                                        inputs: Dict[str, Any], field: str) -> None:
    with pytest.raises(InputValidationError) as refused:
        runtime.run(ACTION, azure_connection, {"model": "my-images", **inputs})

    assert field in paths(refused.value)
    assert "dall-e-3" in str(refused.value)
    assert emulator.request_count == 0


def test_azure_custom_deployment_gets_one_request_per_image(runtime: Runtime, emulator: Emulator,
                                                            azure_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, azure_connection, {"model": "my-images", "n": 2, "quality": "hd"})

    assert [request.path for request in emulator.requests] == [
        "/openai/deployments/my-images/images/generations"] * 2
    assert [request.json["n"] for request in emulator.requests] == [1, 1]
    assert len(result["images"]) == 2


def test_custom_name_on_openai_is_left_to_the_service(runtime: Runtime, emulator: Emulator,
                                                      openai_connection: Dict[str, Any]) -> None:
    # Only Azure's dated API gives deployment names; OpenAI decides itself which models exist.
    with pytest.raises(BadRequestError):
        runtime.run(ACTION, openai_connection, {"model": "my-images", "size": "256x256"})
    assert emulator.request_count == 1


def test_gpt_image_needs_a_newer_azure_api_version(runtime: Runtime, emulator: Emulator,
                                                   azure_connection: Dict[str, Any]) -> None:
    with pytest.raises(InputValidationError) as refused:
        runtime.run(ACTION, azure_connection, {"model": "gpt-image-1"})

    assert paths(refused.value) == {"model"}
    assert "2025-04-01" in str(refused.value)
    assert emulator.request_count == 0

    runtime.run(ACTION, {**azure_connection, "api_version": "2025-04-01-preview"}, {"model": "gpt-image-1"})
    assert emulator.requests[0].path == "/openai/deployments/gpt-image-1/images/generations"


def test_b64_json_round_trip(runtime: Runtime, emulator: Emulator, connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, connection, {"model": "dall-e-3", "response_format": "b64_json"})

    assert emulator.requests[0].json["response_format"] == "b64_json"
    [image] = result["images"]
    assert "url" not in image
    assert base64.b64decode(image["b64_json"]).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("spec_shape", [False, True])
def test_content_filter_refusal(runtime: Runtime, emulator: Emulator, azure_connection: Dict[str, Any],
                                spec_shape: bool) -> None:
    emulator.script(Fault.content_filter_prompt(spec_shape=spec_shape))

    with pytest.raises(ContentFilterError) as refused:
        runtime.run(ACTION, azure_connection, {"model": "my-images"})

    error = refused.value
    assert error.status == 400 and error.code == "content_filter"
    assert error.details["content_filter_results"]["hate"]["filtered"] is True
    assert emulator.request_count == 1  # a content-filter refusal is never retried


def test_content_filtered_image_in_a_fan_out_is_reported(runtime: Runtime, emulator: Emulator,
                                                         azure_connection: Dict[str, Any]) -> None:
    emulator.script(Fault.content_filter_prompt())

    result = runtime.run(ACTION, azure_connection, {"model": "my-images", "n": 2})

    assert len(result["images"]) == 1
    [failure] = result["errors"]
    assert failure["error"]["type"] == "content_filter"
    assert failure["error"]["details"]["content_filter_results"]
