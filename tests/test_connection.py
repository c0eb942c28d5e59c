"""Connection rules: where requests go for Azure and OpenAI, and what is refused before sending."""

from __future__ import annotations

import pytest

from azure_openai_connector.connection import is_loopback_host
from azure_openai_connector.errors import InputValidationError
from azure_openai_connector.runtime import Runtime

KEY = "k" * 32


@pytest.fixture(scope="module")
def rt():
    return Runtime()


def test_azure_url_from_the_resource_name(rt):
    connection = rt.connection({"api_key": KEY, "organization": "Contoso-East"})
    assert connection.operation_url("chat/completions", "gpt-4o") == (
        "https://contoso-east.openai.azure.com/openai/v1/chat/completions")
    dated = rt.connection({"api_key": KEY, "organization": "Contoso-East", "api_version": "2024-10-21"})
    assert dated.operation_url("chat/completions", "gpt-4o") == (
        "https://contoso-east.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
        "?api-version=2024-10-21")
    assert connection.api_key_headers() == {"api-key": KEY}
    assert connection.default_headers() == {}


def test_azure_endpoint_override_accepts_custom_domains_and_a_pasted_openai_suffix(rt):
    for endpoint in ("https://my.cognitiveservices.azure.com", "https://my.cognitiveservices.azure.com/",
                     "https://my.cognitiveservices.azure.com/openai"):
        connection = rt.connection({"api_key": KEY, "endpoint": endpoint, "api_version": "2025-04-01-preview"})
        assert connection.operation_url("images/generations", "dalle") == (
            "https://my.cognitiveservices.azure.com/openai/deployments/dalle/images/generations"
            "?api-version=2025-04-01-preview")


def test_openai_defaults_and_headers(rt):
    connection = rt.connection({"api_key": KEY, "is_openai_key": True, "organization": "org-1", "project": "proj_2"})
    assert connection.operation_url("chat/completions", "gpt-4o") == "https://api.openai.com/v1/chat/completions"
    assert connection.api_key_headers() == {"Authorization": f"Bearer {KEY}"}
    assert connection.default_headers() == {"OpenAI-Organization": "org-1", "OpenAI-Project": "proj_2"}
    assert connection.request_body("gpt-4o", {"a": 1}) == {"model": "gpt-4o", "a": 1}


def test_azure_without_resource_or_endpoint_is_refused_with_a_clear_path(rt):
    with pytest.raises(InputValidationError) as caught:
        rt.connection({"api_key": KEY})
    [error] = caught.value.errors
    assert error["path"] == "connection/organization"
    assert "is_openai_key" in error["message"]


@pytest.mark.parametrize("endpoint,reason", [
    ("http://example.com", "https"),
    ("http://10.0.0.5:8080", "https"),
    ("https://user:pw@example.com", "user name"),
    ("https://example.com/?x=1", "query"),
    ("ftp://example.com", None),
    ("https://", None),
    ("https://example.com:99999", None),
])
def test_bad_endpoints_are_refused(rt, endpoint, reason):
    with pytest.raises(InputValidationError) as caught:
        rt.connection({"api_key": KEY, "endpoint": endpoint})
    [error] = caught.value.errors
    assert error["path"] == "connection/endpoint"
    if reason:
        assert reason in error["message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "localhost", "[::1]"])
def test_plain_http_is_allowed_on_loopback_only(rt, host):
    connection = rt.connection({"api_key": KEY, "endpoint": f"http://{host}:8080"})
    assert connection.base_url == f"http://{host}:8080"
    assert is_loopback_host(host.strip("[]"))


def test_schema_rules_apply_to_the_connection(rt):
    with pytest.raises(InputValidationError) as caught:
        rt.connection({"api_key": "has space", "organization": "bad/name", "api_version": "yesterday",
                       "colour": "red"})
    assert {e["path"] for e in caught.value.errors} == {
        "connection/api_key", "connection/organization", "connection/api_version", "connection/colour"}


def test_blank_optional_fields_count_as_unset(rt):
    connection = rt.connection({"api_key": KEY, "organization": "res", "endpoint": "", "project": None})
    assert connection.base_url == "https://res.openai.azure.com"


def test_repr_never_shows_the_key(rt):
    connection = rt.connection({"api_key": KEY, "organization": "res"})
    assert KEY not in repr(connection) and KEY not in str(connection)
    assert KEY not in repr(rt.client(connection))
