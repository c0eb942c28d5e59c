"""Positive and negative controls proving Prism really validates against both official specs.

Also records, one test each, where the OpenAI spec is looser than the live service.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
import requests

import prism_support
from prism_support import PrismServer, PrismStartError, assert_conforms, assert_rejected, violations

pytestmark = pytest.mark.prism

OPENAI_AUTH = {"Authorization": "Bearer x"}
AZURE_AUTH = {"api-key": "x"}
AZURE_API_VERSION = "2024-10-21"
HTTP_TIMEOUT_S = 15
VALID_CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
AZURE_VALID_CHAT = {"messages": [{"role": "user", "content": "hi"}]}  # deployment is in the URL


def openai_post(
    server: PrismServer,
    path: str,
    body: Any,
    headers: Optional[Dict[str, str]] = None,
) -> requests.Response:
    sent_headers = dict(OPENAI_AUTH) if headers is None else headers
    return requests.post(f"{server.url}/v1{path}", json=body, headers=sent_headers, timeout=HTTP_TIMEOUT_S)


def azure_post(
    server: PrismServer,
    operation: str,
    body: Any,
    *,
    api_version: Optional[str] = AZURE_API_VERSION,
    headers: Optional[Dict[str, str]] = None,
    deployment: str = "dep",
) -> requests.Response:
    params = {"api-version": api_version} if api_version is not None else {}
    sent_headers = dict(AZURE_AUTH) if headers is None else headers
    return requests.post(
        f"{server.url}/openai/deployments/{deployment}/{operation}",
        params=params,
        json=body,
        headers=sent_headers,
        timeout=HTTP_TIMEOUT_S,
    )


# ---------------------------------------------------------------------------------------
# Preprocessing: why it exists, and that it never touches the originals


@pytest.mark.parametrize("spec_file", sorted(prism_support.SPEC_SHA256))
def test_source_specs_are_unchanged(spec_file: str) -> None:
    digest = prism_support.sha256_of(prism_support.spec_path(spec_file))
    assert digest == prism_support.SPEC_SHA256[spec_file]


@pytest.mark.parametrize(
    "spec_file, untyped_nullable_in_source, path_prefix, path_count",
    [
        (prism_support.OPENAI_SPEC_FILE, 24, "/v1/", 182),
        (prism_support.AZURE_SPEC_FILE, 4, "/openai/", 6),
    ],
)
def test_preprocessing_fixes_untyped_nullable_and_server_path(
    spec_file: str,
    untyped_nullable_in_source: int,
    path_prefix: str,
    path_count: int,
    tmp_path: Path,
) -> None:
    source = prism_support.spec_path(spec_file)
    original = prism_support.load_spec(source)
    # The counts from the specs README: each of these silently disables Prism's validation.
    assert prism_support.count_untyped_nullable(original) == untyped_nullable_in_source

    prepared_path = prism_support.preprocess_spec(source, tmp_path / "spec.prism.json")
    prepared = json.loads(prepared_path.read_text(encoding="utf-8"))

    assert prism_support.count_untyped_nullable(prepared) == 0
    assert len(prepared["paths"]) == path_count
    assert all(path.startswith(path_prefix) for path in prepared["paths"])
    assert "x-ms-examples" not in prepared_path.read_text(encoding="utf-8")
    assert prism_support.sha256_of(source) == prism_support.SPEC_SHA256[spec_file]


def test_untyped_nullable_silently_disables_azure_chat_validation(
    prism_executable: Path, tmp_path: Path
) -> None:
    # The trap the preprocessing exists for: same spec minus the nullable fix -> an empty
    # chat body is "valid", while images (no untyped nullable there) are still checked.
    source = prism_support.spec_path(prism_support.AZURE_SPEC_FILE)
    unfixed = prism_support.preprocess_spec(source, tmp_path / "unfixed.json", fix_nullable=False)
    with PrismServer.mock(unfixed, binary=prism_executable) as server:
        assert azure_post(server, "chat/completions", {}).status_code == 200
        assert azure_post(server, "images/generations", {"prompt": "otter", "n": 2}).status_code == 422


def test_raw_azure_spec_does_not_start_because_of_external_examples(
    prism_executable: Path,
) -> None:
    # Also proves PrismServer fails loudly (with Prism's log) instead of hanging.
    raw = prism_support.spec_path(prism_support.AZURE_SPEC_FILE)
    with pytest.raises(PrismStartError, match="ENOENT"):
        PrismServer.mock(raw, binary=prism_executable).start()


# ---------------------------------------------------------------------------------------
# OpenAI spec controls


def test_openai_valid_chat_request_conforms(prism_openai: PrismServer) -> None:
    response = openai_post(prism_openai, "/chat/completions", VALID_CHAT)
    assert_conforms(response)
    assert response.json()["choices"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"messages": None}, "messages"),  # None = drop the key
        ({"messages": []}, "messages"),
        ({"temperature": 5}, "temperature"),
        ({"n": 0}, "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
    ],
    ids=["messages-missing", "messages-empty", "temperature-5", "n-0", "stop-5", "role-wizard"],
)
def test_openai_invalid_chat_request_is_rejected(
    prism_openai: PrismServer, change: Dict[str, Any], field: str
) -> None:
    body = {**VALID_CHAT, **change}
    body = {key: value for key, value in body.items() if value is not None}
    assert_rejected(openai_post(prism_openai, "/chat/completions", body), field)


def test_openai_missing_auth_is_401(prism_openai: PrismServer) -> None:
    response = openai_post(prism_openai, "/chat/completions", VALID_CHAT, headers={})
    assert response.status_code == 401


def test_openai_prefer_code_429_carries_retry_after(prism_openai: PrismServer) -> None:
    response = openai_post(
        prism_openai, "/chat/completions", VALID_CHAT, headers={**OPENAI_AUTH, "Prefer": "code=429"}
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert set(response.json()["error"]) >= {"message", "type", "param", "code"}


def test_openai_validation_wins_over_prefer_code(prism_openai: PrismServer) -> None:
    # Prefer cannot force a status for an invalid request: Prism answers 422 first.
    response = openai_post(
        prism_openai, "/chat/completions", {"model": "m"}, headers={**OPENAI_AUTH, "Prefer": "code=429"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "content_type, expected_status",
    [("text/plain", 415), (None, 422), ("application/json; charset=utf-8", 200)],
    ids=["text-plain-415", "no-content-type-422", "json-charset-200"],
)
def test_openai_body_needs_json_content_type(
    prism_openai: PrismServer, content_type: Optional[str], expected_status: int
) -> None:
    # Prism insists on a JSON Content-Type: a wrong one is 415, none at all reads as
    # "body must be object" (422). requests' json= sets it; raw data= does not.
    headers = dict(OPENAI_AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = requests.post(
        f"{prism_openai.url}/v1/chat/completions",
        data=json.dumps(VALID_CHAT),
        headers=headers,
        timeout=HTTP_TIMEOUT_S,
    )
    assert response.status_code == expected_status, violations(response)


def test_openai_valid_image_request_conforms(prism_openai: PrismServer) -> None:
    body = {"model": "dall-e-3", "prompt": "a cute otter", "size": "1024x1024", "n": 1}
    response = openai_post(prism_openai, "/images/generations", body)
    assert_conforms(response)
    assert response.json()["data"]


def test_openai_image_n_above_10_is_rejected(prism_openai: PrismServer) -> None:
    body = {"model": "dall-e-2", "prompt": "otter", "n": 11}
    assert_rejected(openai_post(prism_openai, "/images/generations", body), "n")


def test_openai_legacy_completion_with_prompt_array_conforms(prism_openai: PrismServer) -> None:
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": ["Say a", "Say b"], "max_tokens": 5}
    response = openai_post(prism_openai, "/completions", body)
    assert_conforms(response)
    assert response.json()["choices"]


def test_openai_legacy_completion_without_prompt_is_rejected(prism_openai: PrismServer) -> None:
    body = {"model": "gpt-3.5-turbo-instruct"}
    assert_rejected(openai_post(prism_openai, "/completions", body), "prompt")


# ---------------------------------------------------------------------------------------
# Where the OpenAI spec is looser than the service. Prism accepts every request below,
# but the live API refuses it, so the connector's own validation must catch these.


def test_openai_spec_is_looser_than_service_dall_e_3_n_must_be_1(prism_openai: PrismServer) -> None:
    body = {"model": "dall-e-3", "prompt": "otter", "n": 2}
    assert_conforms(openai_post(prism_openai, "/images/generations", body))


def test_openai_spec_is_looser_than_service_image_size_is_a_free_string(
    prism_openai: PrismServer,
) -> None:
    # dall-e-3 only does 1024x1024 / 1792x1024 / 1024x1792; the spec allows any string.
    for size in ("256x256", "123x456", "banana"):
        body = {"model": "dall-e-3", "prompt": "otter", "size": size}
        assert_conforms(openai_post(prism_openai, "/images/generations", body))


def test_openai_spec_is_looser_than_service_image_prompt_length_is_unbounded(
    prism_openai: PrismServer,
) -> None:
    # Service limits: dall-e-2 1000, dall-e-3 4000, GPT image 32000 characters.
    body = {"model": "dall-e-3", "prompt": "o" * 5000}
    assert_conforms(openai_post(prism_openai, "/images/generations", body))


def test_openai_spec_is_looser_than_service_image_quality_is_not_tied_to_model(
    prism_openai: PrismServer,
) -> None:
    # dall-e-2 only supports "standard"; "hd" is dall-e-3, low/medium/high are GPT image.
    body = {"model": "dall-e-2", "prompt": "otter", "quality": "hd"}
    assert_conforms(openai_post(prism_openai, "/images/generations", body))


def test_openai_spec_is_looser_than_service_gpt_image_accepts_response_format(
    prism_openai: PrismServer,
) -> None:
    # GPT image models always return b64_json and reject response_format.
    body = {"model": "gpt-image-1", "prompt": "otter", "response_format": "url"}
    assert_conforms(openai_post(prism_openai, "/images/generations", body))


def test_openai_spec_is_looser_than_service_style_is_not_limited_to_dall_e_3(
    prism_openai: PrismServer,
) -> None:
    body = {"model": "gpt-image-1", "prompt": "otter", "style": "vivid"}
    assert_conforms(openai_post(prism_openai, "/images/generations", body))


def test_openai_spec_is_looser_than_service_model_is_a_free_string(prism_openai: PrismServer) -> None:
    # The model enum is only a hint (anyOf string); the service answers 404 model_not_found.
    body = {**VALID_CHAT, "model": "no-such-model"}
    assert_conforms(openai_post(prism_openai, "/chat/completions", body))


def test_openai_spec_is_looser_than_service_reasoning_models_accept_sampling_params(
    prism_openai: PrismServer,
) -> None:
    # o-series answer 400 unsupported_parameter for temperature and max_tokens.
    body = {**VALID_CHAT, "model": "o3-mini", "temperature": 0.5, "max_tokens": 5}
    assert_conforms(openai_post(prism_openai, "/chat/completions", body))


def test_openai_spec_is_looser_than_service_top_logprobs_without_logprobs(
    prism_openai: PrismServer,
) -> None:
    # The service requires logprobs=true whenever top_logprobs is set.
    body = {**VALID_CHAT, "top_logprobs": 5}
    assert_conforms(openai_post(prism_openai, "/chat/completions", body))


def test_openai_spec_is_looser_than_service_best_of_not_above_n(prism_openai: PrismServer) -> None:
    # Legacy completions: the service requires best_of > n.
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "x", "n": 3, "best_of": 2}
    assert_conforms(openai_post(prism_openai, "/completions", body))


# ---------------------------------------------------------------------------------------
# Azure spec controls


def test_azure_valid_chat_request_conforms(prism_azure: PrismServer) -> None:
    response = azure_post(prism_azure, "chat/completions", AZURE_VALID_CHAT)
    assert_conforms(response)
    assert response.json()["choices"]


def test_azure_entra_bearer_token_is_accepted(prism_azure: PrismServer) -> None:
    # The spec offers api-key OR Bearer (Entra ID), so both auth styles can be checked.
    response = azure_post(
        prism_azure, "chat/completions", AZURE_VALID_CHAT, headers={"Authorization": "Bearer t"}
    )
    assert_conforms(response)


def test_azure_missing_api_version_is_rejected(prism_azure: PrismServer) -> None:
    response = azure_post(prism_azure, "chat/completions", AZURE_VALID_CHAT, api_version=None)
    assert_rejected(response, "api-version")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 0}, "n"),
        ({"messages": []}, "messages"),
        # 2024-10-21 predates the developer role; it needs a newer api-version.
        ({"messages": [{"role": "developer", "content": "hi"}]}, "role"),
    ],
    ids=["role-wizard", "n-0", "messages-empty", "role-developer"],
)
def test_azure_invalid_chat_request_is_rejected(
    prism_azure: PrismServer, body: Dict[str, Any], field: str
) -> None:
    assert_rejected(azure_post(prism_azure, "chat/completions", body), field)


def test_azure_missing_auth_is_401(prism_azure: PrismServer) -> None:
    response = azure_post(prism_azure, "chat/completions", AZURE_VALID_CHAT, headers={})
    assert response.status_code == 401


def test_azure_prefer_code_429_has_no_retry_after(prism_azure: PrismServer) -> None:
    # The Azure spec declares no Retry-After header, so the connector must cope without one.
    response = azure_post(
        prism_azure, "chat/completions", AZURE_VALID_CHAT, headers={**AZURE_AUTH, "Prefer": "code=429"}
    )
    assert response.status_code == 429
    assert "Retry-After" not in response.headers


def test_azure_valid_image_request_conforms(prism_azure: PrismServer) -> None:
    body = {"prompt": "a cute otter", "size": "1792x1024", "quality": "hd", "n": 1}
    response = azure_post(prism_azure, "images/generations", body)
    assert_conforms(response)
    assert response.json()["data"]


def test_azure_mock_image_answer_breaks_its_own_schema(prism_azure: PrismServer) -> None:
    # The spec's example for `created` is the string "1676540381" although the type is
    # integer, so Prism's mock answer fails its own response check. Parsers must not rely
    # on the mock's `created` type; violations() hides this unless asked.
    response = azure_post(prism_azure, "images/generations", {"prompt": "otter"})
    assert response.status_code == 200 and violations(response) == []
    assert isinstance(response.json()["created"], str)
    flagged = violations(response, include_mock_response=True)
    assert flagged == ["response.body.created: Response body property created must be integer"]


@pytest.mark.parametrize(
    "change, field",
    [({"n": 2}, "n"), ({"size": "256x256"}, "size"), ({"prompt": ""}, "prompt")],
    ids=["n-2", "size-256", "prompt-empty"],
)
def test_azure_invalid_image_request_is_rejected(
    prism_azure: PrismServer, change: Dict[str, Any], field: str
) -> None:
    # The Azure spec encodes DALL-E 3's limits: n max 1, three sizes, prompt minLength 1.
    body = {"prompt": "otter", **change}
    assert_rejected(azure_post(prism_azure, "images/generations", body), field)


def test_azure_legacy_completion_with_prompt_array_conforms(prism_azure: PrismServer) -> None:
    response = azure_post(prism_azure, "completions", {"prompt": ["Say a", "Say b"], "max_tokens": 5})
    assert_conforms(response)
    assert response.json()["choices"]


def test_azure_spec_is_looser_than_service_api_version_is_a_free_string(
    prism_azure: PrismServer,
) -> None:
    # The service answers 404 "API version not supported" for unknown versions.
    response = azure_post(prism_azure, "chat/completions", AZURE_VALID_CHAT, api_version="1999-01-01")
    assert_conforms(response)
