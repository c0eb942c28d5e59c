"""The emulator follows the service: v1 and preview routes, known deployments (404
DeploymentNotFound / model_not_found for others), real api-versions only, and models lists with
capabilities and lifecycle in the official shapes."""

from __future__ import annotations

import datetime
from typing import Any, Dict, Iterator, Optional

import pytest
import requests

from azure_openai_connector.emulator import Emulator
from azure_openai_connector.emulator.cli import environment_lines, parse_deployments
from azure_openai_connector.emulator.lifecycle import DEFAULT_DEPLOYMENTS

KEY = "emulator-test-key-0001"
TIMEOUT = 10
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
DEPLOYMENT_NOT_FOUND = {"error": {
    "code": "DeploymentNotFound",
    "message": "The API deployment for this resource does not exist. If you created the deployment within the "
               "last 5 minutes, please wait a moment and try again."}}


@pytest.fixture
def known() -> Iterator[Emulator]:
    with Emulator(api_key=KEY, deployments={"chat": "gpt-5.1", "gpt-image-2": "gpt-image-2"}) as emulator:
        yield emulator


def post(emulator: Emulator, path: str, body: Dict[str, Any], api_version: Optional[str] = None,
         azure: bool = True) -> requests.Response:
    headers = {"api-key": KEY} if azure else {"Authorization": f"Bearer {KEY}"}
    params = {"api-version": api_version} if api_version else None
    return requests.post(emulator.url + path, json=body, params=params, headers=headers, timeout=TIMEOUT)


def get(emulator: Emulator, path: str, api_version: Optional[str] = None, azure: bool = True) -> requests.Response:
    headers = {"api-key": KEY} if azure else {"Authorization": f"Bearer {KEY}"}
    params = {"api-version": api_version} if api_version else None
    return requests.get(emulator.url + path, params=params, headers=headers, timeout=TIMEOUT)


# --- deployments ----------------------------------------------------------------------------------------


def test_known_deployments_answer_on_dated_and_v1_routes(known):
    assert post(known, "/openai/deployments/chat/chat/completions", CHAT, "2024-10-21").status_code == 200
    assert post(known, "/openai/v1/chat/completions", {"model": "chat", **CHAT}).status_code == 200
    assert post(known, "/openai/v1/chat/completions", {"model": "chat", **CHAT}, "preview").status_code == 200
    assert post(known, "/v1/chat/completions", {"model": "chat", **CHAT}, azure=False).status_code == 200


def test_an_unknown_deployment_is_404_deployment_not_found_on_dated_and_v1_routes(known):
    dated = post(known, "/openai/deployments/gpt-4o-mini/chat/completions", CHAT, "2024-10-21")
    assert (dated.status_code, dated.json()) == (404, DEPLOYMENT_NOT_FOUND)
    v1 = post(known, "/openai/v1/chat/completions", {"model": "gpt-4o-mini", **CHAT})
    assert (v1.status_code, v1.json()) == (404, DEPLOYMENT_NOT_FOUND)
    completions = post(known, "/openai/deployments/nope/completions", {"prompt": "x"}, "2024-10-21")
    assert completions.status_code == 404 and completions.json()["error"]["code"] == "DeploymentNotFound"


def test_an_unknown_openai_model_is_404_model_not_found(known):
    answer = post(known, "/v1/chat/completions", {"model": "gpt-4o-mini", **CHAT}, azure=False)
    assert answer.status_code == 404
    assert answer.json() == {"error": {
        "message": "The model `gpt-4o-mini` does not exist or you do not have access to it.",
        "type": "invalid_request_error", "param": None, "code": "model_not_found"}}


def test_a_missing_model_is_still_the_handlers_400(known):
    answer = post(known, "/openai/v1/chat/completions", CHAT)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "model"


def test_any_deployment_is_accepted_when_none_are_configured():
    with Emulator(api_key=KEY) as emulator:
        assert emulator.deployments is None
        assert post(emulator, "/openai/deployments/anything/chat/completions", CHAT, "2024-10-21").status_code == 200
        assert post(emulator, "/openai/v1/chat/completions", {"model": "anything", **CHAT}).status_code == 200


def test_a_deployment_serves_the_model_it_is_mapped_to():
    with Emulator(api_key=KEY, deployments={"pictures": "gpt-image-2"}) as emulator:
        answer = post(emulator, "/openai/v1/images/generations",
                      {"model": "pictures", "prompt": "a red square", "size": "1536x1024"}, "preview")
        assert answer.status_code == 200 and "b64_json" in answer.json()["data"][0]
        refused = post(emulator, "/openai/v1/images/generations",
                       {"model": "pictures", "prompt": "a red square", "style": "vivid"}, "preview")
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "style"


def test_the_default_deployments_hold_the_manifests_defaults():
    from azure_openai_connector.manifest import load_manifest

    manifest = load_manifest()
    defaults = {manifest.action(action).inputs.default("model")
                for action in ("create_chat_completion", "create_image", "create_multiple_chat_completions",
                               "summarize_text")}
    assert defaults <= set(DEFAULT_DEPLOYMENTS)


def test_the_cli_flag_reads_names_mappings_and_any():
    assert parse_deployments("a, b=gpt-5.1,") == {"a": "a", "b": "gpt-5.1"}
    assert parse_deployments("any") is None


def test_environment_lines_name_v1_and_the_openai_base_with_v1():
    assert environment_lines("http://127.0.0.1:5000", "key") == (
        "export AZURE_OPENAI_ENDPOINT=http://127.0.0.1:5000\n"
        "export AZURE_OPENAI_API_KEY=key\n"
        "export OPENAI_API_VERSION=v1\n"
        "export OPENAI_BASE_URL=http://127.0.0.1:5000/v1\n"
        "export OPENAI_API_KEY=key\n")


# --- api versions ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1999-01-01", "2024-10-22", "v1", "preview", "latest"])
def test_dated_routes_refuse_unknown_versions(known, version):
    answer = post(known, "/openai/deployments/chat/chat/completions", CHAT, version)
    assert (answer.status_code, answer.json()) == (
        400, {"error": {"code": "BadRequest", "message": "API version not supported"}})


@pytest.mark.parametrize("version", ["2024-02-01", "2024-06-01", "2024-10-21", "2024-12-01-preview",
                                     "2025-01-01-preview", "2025-03-01-preview", "2025-04-01-preview"])
def test_dated_routes_take_the_real_versions(known, version):
    assert post(known, "/openai/deployments/chat/chat/completions", CHAT, version).status_code == 200


@pytest.mark.parametrize("version, status", [(None, 200), ("v1", 200), ("preview", 200), ("latest", 400),
                                             ("2024-10-21", 400)])
def test_v1_routes_take_v1_and_preview_only(known, version, status):
    assert post(known, "/openai/v1/chat/completions", {"model": "chat", **CHAT}, version).status_code == status


@pytest.mark.parametrize("version, status", [(None, 404), ("v1", 404), ("preview", 200)])
def test_v1_image_generation_exists_in_preview_only(known, version, status):
    answer = post(known, "/openai/v1/images/generations", {"model": "gpt-image-2", "prompt": "otter"}, version)
    assert answer.status_code == status, answer.text


# --- models lists -----------------------------------------------------------------------------------------------


def epoch(day: str) -> int:
    return int(datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.timezone.utc).timestamp())


@pytest.mark.parametrize("path, version", [("/openai/v1/models", None), ("/openai/models", "2024-10-21")])
def test_azure_models_list_has_capabilities_and_lifecycle(known, path, version):
    answer = get(known, path, version)
    assert answer.status_code == 200
    models = {entry["id"]: entry for entry in answer.json()["data"]}
    assert models["gpt-5.1"] == {
        "id": "gpt-5.1", "object": "model", "created": 1762905600, "owned_by": "system",
        "created_at": 1762905600, "status": "succeeded",
        "capabilities": {"fine_tune": False, "inference": True, "completion": False, "chat_completion": True,
                         "embeddings": False},
        "lifecycle_status": "generally-available", "deprecation": {"inference": epoch("2027-05-15")}}
    # A retired entry (dall-e-3) and one retiring within Azure's 60-day notice (gpt-5.2).
    assert models["dall-e-3"]["deprecation"] == {"inference": epoch("2026-03-04")}
    assert models["gpt-5.2"]["deprecation"] == {"inference": epoch("2026-12-12")}
    assert models["gpt-35-turbo-instruct"]["capabilities"]["completion"] is True
    assert "deprecation" not in models["gpt-35-turbo-instruct"]
    assert models["text-embedding-3-small"]["capabilities"]["embeddings"] is True


def test_openai_models_list_has_shutdown_dates(known):
    answer = get(known, "/v1/models", azure=False)
    models = {entry["id"]: entry for entry in answer.json()["data"]}
    assert models["gpt-5.1"] == {"id": "gpt-5.1", "object": "model", "created": 1762905600, "owned_by": "system",
                                 "shutdown_date": None}
    assert models["dall-e-3"]["shutdown_date"] == "2026-05-12"
    assert models["gpt-5-mini"]["shutdown_date"] == "2026-12-11"
    assert "gpt-3.5-turbo-instruct" in models and "gpt-35-turbo-instruct" not in models


def test_retrieving_one_model_uses_each_services_name(known):
    assert get(known, "/openai/v1/models/gpt-35-turbo-instruct").json()["capabilities"]["completion"] is True
    assert get(known, "/v1/models/gpt-35-turbo-instruct", azure=False).status_code == 404
    assert get(known, "/v1/models/gpt-3.5-turbo-instruct", azure=False).json()["shutdown_date"] is None
