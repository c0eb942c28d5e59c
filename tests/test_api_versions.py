"""Where every action's requests go, per Azure api_version (v1 by default, preview, dated) and on
OpenAI: the exact path, query and body the emulator received."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest

from azure_openai_connector.errors import InputValidationError
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.runtime import Runtime

from support import API_KEY

KEY = "k" * 32
MANIFEST = load_manifest()


def sent(emulator: Any) -> List[Tuple[str, str, Dict[str, str]]]:
    return [(request.method, request.path, request.query) for request in emulator.requests]


def azure(emulator: Any, api_version: Any = None) -> Dict[str, Any]:
    connection = {"api_key": API_KEY, "endpoint": emulator.url}
    if api_version is not None:
        connection["api_version"] = api_version
    return connection


def test_the_manifest_defaults_to_the_v1_api_and_says_why():
    field = MANIFEST.connection.fields["api_version"]
    assert field["default"] == "v1"
    assert "default, v1" in field["description"] and "preview" in field["description"]
    assert "?api-version=preview" in field["description"]


# --- the connection's URL rules -----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint, base", [
    ("https://res.openai.azure.com", "https://res.openai.azure.com"),
    ("https://res.services.ai.azure.com/", "https://res.services.ai.azure.com"),
    ("https://res.cognitiveservices.azure.com/openai", "https://res.cognitiveservices.azure.com"),
    ("https://ai.contoso.example/openai/v1", "https://ai.contoso.example"),
], ids=["openai-azure", "services-ai", "cognitiveservices", "custom-domain"])
def test_every_azure_host_kind_reaches_the_v1_api(endpoint, base):
    connection = Runtime().connection({"api_key": KEY, "endpoint": endpoint})
    assert connection.operation_url("chat/completions", "gpt-5.1") == f"{base}/openai/v1/chat/completions"
    assert connection.request_body("gpt-5.1", {"a": 1}) == {"model": "gpt-5.1", "a": 1}
    assert connection.operation_url("images/generations", "img") == (
        f"{base}/openai/v1/images/generations?api-version=preview")
    assert connection.models_url() == f"{base}/openai/v1/models"


def test_organization_is_still_the_resource_name():
    connection = Runtime().connection({"api_key": KEY, "organization": "Contoso"})
    assert connection.operation_url("chat/completions", "gpt-5.1") == (
        "https://contoso.openai.azure.com/openai/v1/chat/completions")
    assert connection.default_headers() == {}


@pytest.mark.parametrize("version, chat, image, completions, models", [
    ("v1", "/openai/v1/chat/completions", "/openai/v1/images/generations?api-version=preview",
     "/openai/deployments/d/completions?api-version=2024-10-21", "/openai/v1/models"),
    ("preview", "/openai/v1/chat/completions?api-version=preview",
     "/openai/v1/images/generations?api-version=preview",
     "/openai/deployments/d/completions?api-version=2024-10-21", "/openai/v1/models?api-version=preview"),
    ("2024-10-21", "/openai/deployments/d/chat/completions?api-version=2024-10-21",
     "/openai/deployments/d/images/generations?api-version=2024-10-21",
     "/openai/deployments/d/completions?api-version=2024-10-21", "/openai/models?api-version=2024-10-21"),
])
def test_operation_urls_per_version(version, chat, image, completions, models):
    connection = Runtime().connection({"api_key": KEY, "organization": "r", "api_version": version})
    base = "https://r.openai.azure.com"
    assert connection.operation_url("chat/completions", "d") == base + chat
    assert connection.operation_url("images/generations", "d") == base + image
    assert connection.operation_url("completions", "d") == base + completions
    assert connection.models_url() == base + models
    in_body = version != "2024-10-21"
    assert connection.request_body("d", {}, "chat/completions") == ({"model": "d"} if in_body else {})
    assert connection.request_body("d", {}, "completions") == {}


@pytest.mark.parametrize("version, path, expected", [
    ("v1", "/v1/models", "/openai/v1/models"),
    ("preview", "/v1/models", "/openai/v1/models?api-version=preview"),
    ("v1", "/v1/images/generations?api-version=preview", "/openai/v1/images/generations?api-version=preview"),
    ("v1", "/deployments/d/chat/completions", "/openai/deployments/d/chat/completions?api-version=2024-10-21"),
    ("preview", "/deployments/d/chat/completions",
     "/openai/deployments/d/chat/completions?api-version=2024-10-21"),
    ("2025-04-01-preview", "/deployments/d/chat/completions",
     "/openai/deployments/d/chat/completions?api-version=2025-04-01-preview"),
    ("2025-04-01-preview", "/v1/models", "/openai/v1/models"),
])
def test_raw_paths_get_an_api_version_they_understand(version, path, expected):
    connection = Runtime().connection({"api_key": KEY, "organization": "r", "api_version": version})
    assert connection.raw_url(path) == "https://r.openai.azure.com" + expected


def test_unknown_version_words_are_refused_before_sending():
    with pytest.raises(InputValidationError) as caught:
        Runtime().connection({"api_key": KEY, "organization": "r", "api_version": "latest"})
    assert [error["path"] for error in caught.value.errors] == ["connection/api_version"]


# --- every action, on the wire ----------------------------------------------------------------------------

V1_CHAT = ("POST", "/openai/v1/chat/completions", {})
PREVIEW_CHAT = ("POST", "/openai/v1/chat/completions", {"api-version": "preview"})


def dated_chat(version: str, deployment: str = "gpt-5.1") -> Tuple[str, str, Dict[str, str]]:
    return ("POST", f"/openai/deployments/{deployment}/chat/completions", {"api-version": version})


@pytest.mark.parametrize("version, expected", [
    (None, V1_CHAT), ("v1", V1_CHAT), ("preview", PREVIEW_CHAT),
    ("2024-10-21", dated_chat("2024-10-21")), ("2025-04-01-preview", dated_chat("2025-04-01-preview")),
], ids=["default", "v1", "preview", "2024-10-21", "2025-04-01-preview"])
def test_create_chat_completion_per_version(emulator, runtime, version, expected):
    runtime.run("create_chat_completion", azure(emulator, version), {"messages": [{"role": "user", "content": "hi"}]})
    assert sent(emulator) == [expected]
    body = emulator.requests[0].json
    if expected[1].startswith("/openai/v1/"):
        assert body == {"model": "gpt-5.1", "messages": [{"role": "user", "content": "hi"}]}
    else:
        assert body == {"messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("version, expected_chat", [
    (None, V1_CHAT), ("preview", PREVIEW_CHAT), ("2024-10-21", dated_chat("2024-10-21")),
], ids=["v1", "preview", "2024-10-21"])
def test_summarize_text_per_version(emulator, runtime, version, expected_chat):
    runtime.run("summarize_text", azure(emulator, version), {"text": "One fact. Another fact."})
    assert sent(emulator) == [expected_chat]
    assert ("model" in emulator.requests[0].json) == expected_chat[1].startswith("/openai/v1/")


@pytest.mark.parametrize("version, expected_chat", [
    (None, V1_CHAT), ("preview", PREVIEW_CHAT), ("2024-10-21", dated_chat("2024-10-21")),
], ids=["v1", "preview", "2024-10-21"])
def test_multiple_chat_completions_per_version(emulator, runtime, version, expected_chat):
    runtime.run("create_multiple_chat_completions", azure(emulator, version), {"prompts": ["a", "b"]})
    assert sent(emulator) == [expected_chat, expected_chat]
    assert sorted(request.json.get("model", "-") for request in emulator.requests) == (
        ["gpt-5.1", "gpt-5.1"] if expected_chat[1].startswith("/openai/v1/") else ["-", "-"])


@pytest.mark.parametrize("version, expected_version", [
    (None, "2024-10-21"), ("preview", "2024-10-21"), ("2025-04-01-preview", "2025-04-01-preview"),
], ids=["v1", "preview", "dated"])
def test_legacy_completions_use_the_dated_route_on_every_version(emulator, runtime, version, expected_version):
    """Neither v1 spec has /completions: a v1 connection sends legacy completions to the dated
    route with the newest dated GA version, as the `api` input's help text says."""
    result = runtime.run("create_multiple_chat_completions", azure(emulator, version),
                         {"model": "my-instruct", "prompts": ["a", "b"], "api": "completions"})
    assert sent(emulator) == [("POST", "/openai/deployments/my-instruct/completions",
                               {"api-version": expected_version})]
    assert emulator.requests[0].json == {"prompt": ["a", "b"]}
    assert result["totals"]["succeeded"] == 2
    assert "2024-10-21" in MANIFEST.action("create_multiple_chat_completions").inputs.fields["api"]["description"]


@pytest.mark.parametrize("version, expected", [
    (None, ("POST", "/openai/v1/images/generations", {"api-version": "preview"})),
    ("preview", ("POST", "/openai/v1/images/generations", {"api-version": "preview"})),
    ("2025-04-01-preview", ("POST", "/openai/deployments/gpt-image-2/images/generations",
                            {"api-version": "2025-04-01-preview"})),
], ids=["v1", "preview", "dated"])
def test_create_image_per_version(emulator, runtime, version, expected):
    """Image generation is preview-only on Azure's v1 API: a v1 connection asks for preview."""
    result = runtime.run("create_image", azure(emulator, version), {"prompt": "a red square"})
    assert sent(emulator) == [expected]
    body = emulator.requests[0].json
    assert body == ({"model": "gpt-image-2", "prompt": "a red square", "size": "1024x1024", "n": 1}
                    if version != "2025-04-01-preview" else {"prompt": "a red square", "size": "1024x1024", "n": 1})
    assert len(result["images"]) == 1
    assert "?api-version=preview" in MANIFEST.action("create_image").description


def test_create_image_default_is_refused_on_the_2024_10_21_api(emulator, runtime):
    with pytest.raises(InputValidationError) as caught:
        runtime.run("create_image", azure(emulator, "2024-10-21"), {})
    assert [error["path"] for error in caught.value.errors] == ["model"]
    assert "2025-04-01-preview" in caught.value.errors[0]["message"]
    assert emulator.request_count == 0


@pytest.mark.parametrize("version, url, expected", [
    (None, "/v1/models", ("GET", "/openai/v1/models", {})),
    ("preview", "/v1/models", ("GET", "/openai/v1/models", {"api-version": "preview"})),
    ("2024-10-21", "/deployments/d/chat/completions",
     ("POST", "/openai/deployments/d/chat/completions", {"api-version": "2024-10-21"})),
    (None, "/deployments/d/chat/completions",
     ("POST", "/openai/deployments/d/chat/completions", {"api-version": "2024-10-21"})),
], ids=["v1-models", "preview-models", "dated-chat", "v1-connection-dated-path"])
def test_raw_request_per_version(emulator, runtime, version, url, expected):
    inputs: Dict[str, Any] = {"url": url, "method": expected[0]}
    if expected[0] == "POST":
        inputs["data"] = {"messages": [{"role": "user", "content": "hi"}]}
    result = runtime.run("raw_request", azure(emulator, version), inputs)
    assert sent(emulator) == [expected]
    assert result["status"] == 200


def test_openai_routes_are_unchanged(emulator, runtime, openai_connection):
    for action in ("create_chat_completion", "create_image", "create_multiple_chat_completions",
                   "raw_request", "summarize_text"):
        runtime.run(action, openai_connection, {"prompts": ["a"]} if action == "create_multiple_chat_completions" else {})
    assert [path for _, path, _ in sent(emulator)] == [
        "/v1/chat/completions", "/v1/images/generations", "/v1/chat/completions", "/v1/models",
        "/v1/chat/completions"]
    assert all(query == {} for _, _, query in sent(emulator))
    models = [request.json.get("model") for request in emulator.requests if request.method == "POST"]
    assert models == ["gpt-5.1", "gpt-image-2", "gpt-5.1", "gpt-5.1"]


def test_openai_api_version_variable_still_selects_the_version(emulator):
    from azure_openai_connector.cli import connection_from_env

    connection = connection_from_env({"AZURE_OPENAI_API_KEY": API_KEY, "AZURE_OPENAI_ENDPOINT": emulator.url,
                                      "OPENAI_API_VERSION": "2024-10-21"})
    runtime = Runtime()
    try:
        runtime.run("create_chat_completion", connection, {})
        without = connection_from_env({"AZURE_OPENAI_API_KEY": API_KEY, "AZURE_OPENAI_ENDPOINT": emulator.url})
        runtime.run("create_chat_completion", without, {})
    finally:
        runtime.close()
    assert sent(emulator) == [dated_chat("2024-10-21"), V1_CHAT]
