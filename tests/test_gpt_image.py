"""Create Image for gpt-image models: the per-family rules (refused before sending, each naming its
rule), the preview route on Azure v1, everything the answer carries kept, and Azure's image filter
refusal as a typed content-filter error."""

from __future__ import annotations

import base64
from typing import Any, Dict

import pytest
from jsonschema import Draft7Validator

from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.errors import ContentFilterError, InputValidationError
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.runtime import Runtime

ACTION = "create_image"
FILTER_MESSAGE = "Your task failed as a result of our safety system."


def problems(error: InputValidationError) -> Dict[str, str]:
    return {problem["path"]: problem["message"] for problem in error.errors}


def test_gpt_image_answers_keep_usage_and_the_other_answer_fields(runtime: Runtime, emulator: Emulator,
                                                                   openai_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, openai_connection, {
        "model": "gpt-image-1.5", "n": 2, "size": "1536x1024", "quality": "high", "background": "transparent",
        "output_format": "webp", "output_compression": 70, "moderation": "low"})

    [request] = emulator.requests
    assert request.json == {"model": "gpt-image-1.5", "prompt": load_manifest().action(ACTION).inputs.default("prompt"),
                            "size": "1536x1024", "n": 2, "quality": "high", "background": "transparent",
                            "output_format": "webp", "output_compression": 70, "moderation": "low"}
    assert set(result["usage"]) >= {"input_tokens", "output_tokens", "total_tokens", "input_tokens_details"}
    assert (result["size"], result["quality"], result["background"], result["output_format"]) == (
        "1536x1024", "high", "transparent", "webp")
    assert len(result["images"]) == 2
    # The emulator's images are real pictures: a 64x64 PNG.
    picture = base64.b64decode(result["images"][0]["b64_json"])
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and picture[16:24] == (64).to_bytes(4, "big") * 2
    Draft7Validator(load_manifest().action(ACTION).output).validate(result)


def test_gpt_image_on_azure_v1_uses_the_preview_route(runtime: Runtime, emulator: Emulator,
                                                      azure_connection: Dict[str, Any]) -> None:
    result = runtime.run(ACTION, {**azure_connection, "api_version": "v1"},
                         {"model": "gpt-image-2", "size": "2048x1152", "output_format": "jpeg"})
    [request] = emulator.requests
    assert (request.path, request.query) == ("/openai/v1/images/generations", {"api-version": "preview"})
    assert request.json["model"] == "gpt-image-2" and request.json["size"] == "2048x1152"
    assert "usage" in result


def test_webp_on_an_azure_connection_is_refused_before_sending(runtime: Runtime, emulator: Emulator,
                                                               azure_connection: Dict[str, Any]) -> None:
    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, {**azure_connection, "api_version": "v1"}, {"model": "gpt-image-2", "output_format": "webp"})
    assert problems(raised.value) == {
        "output_format": "Azure OpenAI does not offer webp output; use png or jpeg (the Azure output_format rule)"}
    assert emulator.requests == []


@pytest.mark.parametrize("size, reason", [
    ("1000x1008", "both edges must be multiples of 16"),
    ("4096x1536", "the long edge may be at most 3840 pixels"),
    ("3840x1024", "the aspect ratio may be at most 3:1"),
    ("512x512", "the image must have 655,360 to 8,294,400 pixels (this size has 262,144)"),
])
def test_gpt_image_2_size_limits_name_the_rule(runtime: Runtime, emulator: Emulator,
                                               openai_connection: Dict[str, Any], size: str, reason: str) -> None:
    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, openai_connection, {"model": "gpt-image-2", "size": size})
    assert problems(raised.value) == {"size": f"{size}: {reason} (the gpt-image-2 size rule)"}
    assert emulator.requests == []


@pytest.mark.parametrize("size", ["3840x2160", "1024x1024", "1280x3840", "auto"])
def test_gpt_image_2_sizes_within_the_limits_are_sent(runtime: Runtime, emulator: Emulator,
                                                      openai_connection: Dict[str, Any], size: str) -> None:
    runtime.run(ACTION, openai_connection, {"model": "gpt-image-2", "size": size})
    assert emulator.requests[0].json["size"] == size


@pytest.mark.parametrize("inputs, path, rule", [
    ({"model": "gpt-image-1", "size": "2048x2048"}, "size", "gpt-image-1"),
    ({"model": "gpt-image-1-mini", "quality": "hd"}, "quality", "gpt-image"),
    ({"model": "gpt-image-1", "response_format": "url"}, "response_format", "gpt-image"),
    ({"model": "gpt-image-1", "background": "transparent", "output_format": "jpeg"}, "output_format",
     "transparent background"),
    ({"model": "gpt-image-1", "output_compression": 50, "output_format": "png"}, "output_format",
     "output_compression"),
    ({"model": "gpt-image-1", "output_compression": 50}, "output_format", None),
    ({"model": "dall-e-3", "background": "opaque"}, "background", "dall-e-3"),
    ({"model": "dall-e-2", "moderation": "low"}, "moderation", "dall-e-2"),
    ({"model": "gpt-image-1", "n": 11}, "n", None),
])
def test_family_rules_are_checked_before_sending(runtime: Runtime, emulator: Emulator,
                                                 openai_connection: Dict[str, Any], inputs: Dict[str, Any],
                                                 path: str, rule: Any) -> None:
    with pytest.raises(InputValidationError) as raised:
        runtime.run(ACTION, openai_connection, inputs)
    found = problems(raised.value)
    assert path in found, raised.value.errors
    if rule is not None:
        assert found[path].endswith(f"(the {rule} rule)")
    assert emulator.requests == []


def test_azure_image_filter_refusal_is_a_typed_content_filter_error(runtime: Runtime, emulator: Emulator,
                                                                    azure_connection: Dict[str, Any]) -> None:
    emulator.script(Fault.bad_request(FILTER_MESSAGE, code="contentFilter"))
    with pytest.raises(ContentFilterError) as raised:
        runtime.run(ACTION, {**azure_connection, "api_version": "v1"}, {"model": "gpt-image-2"})
    assert (raised.value.status, raised.value.code, raised.value.message) == (400, "contentFilter", FILTER_MESSAGE)
    assert raised.value.request_id == "req_0000000000000001"
    assert emulator.request_count == 1  # a filter refusal is never retried
