"""Controls for Prism serving Azure's v1 GA and preview specs: validation is on (an invalid body
gets 422 naming the field), the v1 base path and `api-version` rules hold, and multipart uploads
are checked field by field. Without these, a conformance test on v1 could pass for the wrong reason."""
from __future__ import annotations

from typing import Any, Dict, Optional

import pytest
import requests

from prism_support import PrismServer, assert_conforms, assert_rejected

pytestmark = pytest.mark.prism

AUTH = {"api-key": "x"}
HTTP_TIMEOUT_S = 15
VALID_CHAT = {"model": "my-deployment", "messages": [{"role": "user", "content": "hi"}]}


def v1_post(server: PrismServer, route: str, body: Any, *, api_version: Optional[str] = None,
            headers: Optional[Dict[str, str]] = None) -> requests.Response:
    params = {"api-version": api_version} if api_version else {}
    return requests.post(f"{server.url}/openai/v1/{route}", params=params, json=body,
                         headers=AUTH if headers is None else headers, timeout=HTTP_TIMEOUT_S)


def test_v1_valid_chat_request_conforms(prism_azure_v1: PrismServer) -> None:
    assert_conforms(v1_post(prism_azure_v1, "chat/completions", VALID_CHAT))


@pytest.mark.parametrize("body, field", [
    ({**VALID_CHAT, "messages": []}, "messages"),
    ({**VALID_CHAT, "temperature": 9}, "temperature"),
    ({"messages": VALID_CHAT["messages"]}, "model"),
], ids=["messages-empty", "temperature-9", "no-model"])
def test_v1_invalid_chat_request_is_rejected(prism_azure_v1: PrismServer, body: Dict[str, Any],
                                             field: str) -> None:
    assert_rejected(v1_post(prism_azure_v1, "chat/completions", body), field)


@pytest.mark.parametrize("version, accepted", [("preview", True), ("v1", True),
                                               ("2024-10-21", False), ("2025-04-01-preview", False)])
def test_v1_api_version_is_v1_or_preview_only(prism_azure_v1: PrismServer, version: str,
                                              accepted: bool) -> None:
    response = v1_post(prism_azure_v1, "chat/completions", VALID_CHAT, api_version=version)
    if accepted:
        assert_conforms(response)
    else:
        assert_rejected(response, "api-version")


def test_v1_missing_auth_is_401(prism_azure_v1: PrismServer) -> None:
    assert v1_post(prism_azure_v1, "chat/completions", VALID_CHAT, headers={}).status_code == 401


def test_v1_bearer_token_is_accepted(prism_azure_v1: PrismServer) -> None:
    response = v1_post(prism_azure_v1, "chat/completions", VALID_CHAT,
                       headers={"Authorization": "Bearer t"})
    assert_conforms(response)


def test_v1_responses_and_embeddings_are_validated(prism_azure_v1: PrismServer) -> None:
    assert_conforms(v1_post(prism_azure_v1, "responses", {"model": "m", "input": "hi"}))
    assert_rejected(v1_post(prism_azure_v1, "responses", {"model": "m", "input": "hi",
                                                          "temperature": 9}), "temperature")
    assert_conforms(v1_post(prism_azure_v1, "embeddings", {"model": "m", "input": "hi"}))
    assert_rejected(v1_post(prism_azure_v1, "embeddings", {"model": "m"}), "input")


def test_v1_dated_deployment_route_does_not_exist(prism_azure_v1: PrismServer) -> None:
    response = requests.post(f"{prism_azure_v1.url}/openai/deployments/d/chat/completions",
                             params={"api-version": "2024-10-21"}, json=VALID_CHAT, headers=AUTH,
                             timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 404


def test_v1_ga_has_no_image_generation_but_preview_does(prism_azure_v1: PrismServer,
                                                        prism_azure_v1_preview: PrismServer) -> None:
    body = {"model": "gpt-image-2", "prompt": "a red square"}
    assert v1_post(prism_azure_v1, "images/generations", body, api_version="preview").status_code == 404
    assert_conforms(v1_post(prism_azure_v1_preview, "images/generations", body, api_version="preview"))
    assert_rejected(v1_post(prism_azure_v1_preview, "images/generations", {**body, "n": 11},
                            api_version="preview"), "n")


def test_v1_file_upload_checks_each_multipart_field(prism_azure_v1: PrismServer) -> None:
    def upload(purpose: str, with_expiry: bool = True) -> requests.Response:
        fields = {"purpose": (None, purpose)}
        if with_expiry:
            fields["expires_after"] = (None, '{"seconds": 1209600, "anchor": "created_at"}')
        return requests.post(f"{prism_azure_v1.url}/openai/v1/files", headers=AUTH, timeout=HTTP_TIMEOUT_S,
                             files={**fields, "file": ("in.jsonl", b"{}\n", "application/jsonl")})

    assert_conforms(upload("batch"))
    assert_rejected(upload("wizardry"), "purpose")
    assert_rejected(upload("batch", with_expiry=False), "expires_after")
