"""The live model picker: the `input_options` host hook and the `options` command against the
emulator's models list (capabilities and lifecycle marked), its cache, the unknown-model hint, and
defaults that name no retired model."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from typing import Any, Dict, Iterator, List

import pluggy
import pytest

from azure_openai_connector import errors
from azure_openai_connector.emulator import Emulator
from azure_openai_connector.emulator.lifecycle import CATALOG, DEFAULT_DEPLOYMENTS, find
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.models import options_from_models_list
from azure_openai_connector.host_hooks import default_runtime
from azure_openai_connector.options import ModelsListCache, models_list_cache
from azure_openai_connector.options import input_options as live_options
from azure_openai_connector.runtime import Runtime

from support import API_KEY

MANIFEST = load_manifest()
# A fixed day, so lifecycle statuses in these tests do not move with the calendar.
DAY = datetime.date(2026, 11, 30)
MODEL_ACTIONS = ("create_chat_completion", "create_image", "create_multiple_chat_completions", "summarize_text",
                 "submit_batch")


@pytest.fixture
def known() -> Iterator[Emulator]:
    """An emulator that knows only its default deployments (the connector's defaults among them)."""
    with Emulator(api_key=API_KEY, deployments=DEFAULT_DEPLOYMENTS) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    models_list_cache().clear()
    yield
    models_list_cache().clear()


def input_options(*args: Any, **kwargs: Any) -> List[Dict[str, Any]]:
    """The options through the shared runtime, as the host hook gets them."""
    return live_options(*args, runtime=default_runtime(), **kwargs)


def azure(emulator: Emulator, api_version: str = "v1") -> Dict[str, Any]:
    return {"api_key": API_KEY, "endpoint": emulator.url, "api_version": api_version}


def openai(emulator: Emulator) -> Dict[str, Any]:
    return {"api_key": API_KEY, "is_openai_key": True, "endpoint": emulator.url + "/v1"}


def by_value(options: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {option["value"]: option for option in options}


# --- the manifest marks its options sources ------------------------------------------------------


def test_every_actions_model_input_names_the_models_source():
    marked = {(key, name) for key, action in MANIFEST.actions.items()
              for name, field in action.inputs.fields.items() if "x-options" in field}
    assert marked == {(action, "model") for action in MODEL_ACTIONS}
    assert all(MANIFEST.action(action).inputs.fields["model"]["x-options"] == "models" for action in MODEL_ACTIONS)


def test_the_manifest_schema_refuses_an_unknown_options_source():
    from azure_openai_connector.manifest import _check_against_meta_schema

    document = json.loads(json.dumps(MANIFEST.raw))
    meta = json.loads(open(os.path.join(os.path.dirname(__file__), "..", "schemas",
                                        "manifest.schema.json")).read())
    assert _check_against_meta_schema(document, meta) == []
    document["actions"]["create_image"]["inputs"]["properties"]["model"]["x-options"] = "deployments"
    problems = _check_against_meta_schema(document, meta)
    assert len(problems) == 1 and "x-options" in problems[0], problems


# --- the hook, as a host calls it -------------------------------------------------------------------


def host_hook() -> Any:
    from azure_openai_connector import host_hooks, hookspecs

    manager = pluggy.PluginManager(hookspecs.HOST_PROJECT)
    manager.add_hookspecs(hookspecs.HostSpecs)
    manager.register(host_hooks, name="azure_openai")
    return manager.hook


def test_the_hook_lists_azure_models_with_capabilities_and_lifecycle(known):
    options = host_hook().input_options(action="create_chat_completion", input="model",
                                        connection=azure(known), refresh=False)
    found = by_value(options)
    # Chat models only: the service says embeddings, image and completion models cannot chat.
    assert list(found) == ["gpt-5.1", "gpt-5.2", "gpt-5-mini", "gpt-4.1-mini", "gpt-4o-mini", "gpt-4o"]
    assert found["gpt-5.1"]["capabilities"] == ["chat"]
    assert found["gpt-5.1"]["lifecycle"]["retirement_date"] == "2027-05-15"
    assert found["gpt-4o-mini"]["lifecycle"] == {"status": "retired", "retirement_date": "2026-10-01",
                                                 "lifecycle_status": "generally-available"}
    assert found["gpt-4o-mini"]["label"] == "gpt-4o-mini (chat; retired 2026-10-01)"
    assert [request.path for request in known.requests] == ["/openai/v1/models"]


def test_the_hook_answers_on_every_route_the_connection_uses(known):
    dated = input_options("create_multiple_chat_completions", "model", azure(known, "2024-10-21"), today=DAY)
    assert (known.requests[-1].path, known.requests[-1].query) == ("/openai/models", {"api-version": "2024-10-21"})
    # Completion models suit this action too.
    assert by_value(dated)["gpt-35-turbo-instruct"]["capabilities"] == ["completion"]
    input_options("create_image", "model", azure(known, "preview"), today=DAY)
    assert (known.requests[-1].path, known.requests[-1].query) == ("/openai/v1/models", {"api-version": "preview"})


def test_lifecycle_is_marked_per_service(known):
    azure_images = by_value(input_options("create_image", "model", azure(known), today=DAY))
    assert azure_images["dall-e-3"]["lifecycle"]["status"] == "retired"
    assert azure_images["gpt-image-2"]["lifecycle"]["status"] == "available"
    # Azure notifies 60 days ahead: gpt-5.2 retires on 2026-12-12.
    azure_chat = by_value(input_options("create_chat_completion", "model", azure(known), today=DAY))
    assert azure_chat["gpt-5.2"]["lifecycle"]["status"] == "deprecated"
    assert azure_chat["gpt-5.2"]["label"] == "gpt-5.2 (chat; deprecated, retires 2026-12-12)"

    openai_models = by_value(input_options("create_image", "model", openai(known), today=DAY))
    # OpenAI lists no capabilities: nothing is ruled out, nothing claimed.
    assert "text-embedding-3-small" in openai_models
    assert openai_models["gpt-image-2"] == {
        "value": "gpt-image-2", "label": "gpt-image-2", "capabilities": [], "capabilities_known": False,
        "lifecycle": {"status": "available", "retirement_date": None}}
    assert openai_models["gpt-5-mini"]["lifecycle"] == {"status": "deprecated", "retirement_date": "2026-12-11"}
    assert openai_models["dall-e-3"]["lifecycle"] == {"status": "retired", "retirement_date": "2026-05-12"}


def test_an_input_without_an_options_source_has_none(known):
    assert input_options("create_image", "size", azure(known)) == []
    assert known.request_count == 0


def test_unknown_actions_and_inputs_are_refused(known):
    with pytest.raises(errors.InputValidationError) as caught:
        input_options("create_image", "colour", azure(known))
    assert caught.value.errors[0]["path"] == "colour"
    with pytest.raises(errors.InputValidationError):
        input_options("paint", "model", azure(known))
    with pytest.raises(errors.InputValidationError) as caught:
        input_options("create_image", "model", {"api_key": API_KEY})
    assert caught.value.errors[0]["path"] == "connection/organization"
    assert known.request_count == 0


def test_a_refused_connection_never_quotes_the_key(known):
    key = "sk-pasted-0123456789abcdef"
    with pytest.raises(errors.InputValidationError) as caught:
        input_options("create_image", "model", {"api_key": key, "organization": key + "!"})
    assert [problem["path"] for problem in caught.value.errors] == ["connection/organization"]
    assert key not in str(caught.value.to_dict())


def test_a_refused_list_is_a_typed_error_without_the_key(known):
    with pytest.raises(errors.AuthenticationError) as caught:
        input_options("create_image", "model", {**azure(known), "api_key": "wrong-key-000000"})
    assert caught.value.status == 401
    assert "wrong-key-000000" not in str(caught.value.to_dict())


# --- the cache ----------------------------------------------------------------------------------------------


def test_options_are_cached_per_connection_and_refreshed_on_demand(known):
    for action in MODEL_ACTIONS:
        input_options(action, "model", azure(known))
    assert known.request_count == 1
    input_options("create_image", "model", openai(known))
    assert known.request_count == 2
    input_options("create_image", "model", azure(known), refresh=True)
    assert known.request_count == 3


def test_the_cache_expires_after_its_lifetime():
    now = [100.0]
    cache = ModelsListCache(ttl=300.0, clock=lambda: now[0])
    answers = iter(["first", "second", "third"])
    assert cache.get(("c",), lambda: next(answers)) == "first"
    now[0] += 299.0
    assert cache.get(("c",), lambda: next(answers)) == "first"
    now[0] += 2.0
    assert cache.get(("c",), lambda: next(answers)) == "second"
    assert cache.get(("c",), lambda: next(answers), refresh=True) == "third"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_uses_the_cache_with_a_fresh_lock(known):
    input_options("create_image", "model", azure(known))
    cache = models_list_cache()
    cache._lock.acquire()  # held at the moment of the fork, as another thread might
    try:
        pid = os.fork()
        if pid == 0:  # the child: the inherited answer, and a lock nobody holds
            code = 1
            try:
                found = input_options("create_image", "model", azure(known))
                code = 0 if "gpt-image-2" in by_value(found) else 1
            finally:
                os._exit(code)
    finally:
        cache._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert known.request_count == 1


# --- the CLI ------------------------------------------------------------------------------------------


def run_cli(*args: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("AZURE_OPENAI_", "OPENAI_"))}
    return subprocess.run([sys.executable, "-m", "azure_openai_connector.cli", *args], capture_output=True,
                          text=True, timeout=60, env={**environment, **env})


def test_the_options_command_prints_a_table(known):
    done = run_cli("options", "create_image", "model",
                   env={"AZURE_OPENAI_API_KEY": API_KEY, "AZURE_OPENAI_ENDPOINT": known.url})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["VALUE", "STATUS", "RETIRES", "CAPABILITIES"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["dall-e-3"] == ["retired", "2026-03-04", "-"]
    assert rows["gpt-image-2"][1:] == ["2027-04-21", "-"]
    assert "text-embedding-3-small" not in rows
    assert API_KEY not in done.stdout + done.stderr


def test_the_options_command_prints_json(known):
    connection = json.dumps(openai(known))
    done = run_cli("options", "create_chat_completion", "model", "--json", "--connection", connection, env={})
    assert done.returncode == 0, done.stderr
    found = by_value(json.loads(done.stdout))
    assert found["dall-e-3"]["lifecycle"] == {"status": "retired", "retirement_date": "2026-05-12"}
    assert found["gpt-5.1"]["lifecycle"]["retirement_date"] is None
    assert [request.path for request in known.requests] == ["/v1/models"]


def test_the_options_command_exits_2_for_an_unknown_input(known):
    done = run_cli("options", "create_image", "colour", "--connection", json.dumps(azure(known)), env={})
    assert done.returncode == 2
    assert json.loads(done.stderr)["error"]["errors"][0]["path"] == "colour"
    assert known.request_count == 0


# --- the unknown-model hint -----------------------------------------------------------------------------


@pytest.mark.parametrize("service, api_version, code", [
    ("azure", "v1", "DeploymentNotFound"), ("azure", "2024-10-21", "DeploymentNotFound"),
    ("openai", None, "model_not_found"),
])
# Actions that call a model at once (a batch names its model inside its input file).
@pytest.mark.parametrize("action", MODEL_ACTIONS[:4])
def test_an_unknown_model_names_the_field_and_the_options_command(known, service, api_version, code, action):
    connection = azure(known, api_version) if service == "azure" else openai(known)
    inputs: Dict[str, Any] = {"model": "no-such-model"}
    if action == "create_image":
        inputs["model"] = "gpt-image-9"  # a name the dated API's image rules accept
        if api_version == "2024-10-21":
            connection["api_version"] = "2025-04-01-preview"
    runtime = Runtime(sleep=lambda seconds: None)
    try:
        if action == "create_multiple_chat_completions":
            result = runtime.run(action, connection, {**inputs, "prompts": ["a"]})
            error = result["results"][0]["error"]
        else:
            with pytest.raises(errors.NotFoundError) as caught:
                runtime.run(action, connection, inputs)
            error = caught.value.to_dict()
            assert caught.value.param == "model"
    finally:
        runtime.close()
    if action == "summarize_text":
        assert error["message"].startswith(f"The model or deployment {inputs['model']!r} does not exist")
    assert error["status"] == 404 and error["code"] == code
    assert error["param"] == "model"
    assert error["details"]["field"] == "model"
    assert error["details"]["list_options"] == f"azure-openai-connector options {action} model"
    assert f"`azure-openai-connector options {action} model` lists the available ones" in error["message"]


def test_other_404s_keep_their_own_words(emulator, runtime, azure_connection):
    from azure_openai_connector.emulator import Fault

    emulator.script(Fault.status(404, "Resource not found"))
    with pytest.raises(errors.NotFoundError) as caught:
        runtime.run("create_chat_completion", azure_connection, {})
    assert caught.value.message == "Resource not found" and caught.value.param is None


@pytest.mark.parametrize("service", ["azure", "openai"])
def test_a_retired_model_says_so_names_the_field_and_keeps_the_services_words(
        emulator, runtime, azure_connection, openai_connection, service):
    from azure_openai_connector.emulator import Fault

    emulator.script(Fault.status(410, "The model has been deprecated and is no longer available."))
    connection = azure_connection if service == "azure" else openai_connection
    with pytest.raises(errors.ApiError) as caught:
        runtime.run("create_chat_completion", connection, {"model": "legacy-chat"})
    error = caught.value
    assert (error.status, error.param, error.details["field"]) == (410, "model", "model")
    assert error.message.startswith("The model behind 'legacy-chat' is retired")
    assert "`azure-openai-connector options create_chat_completion model` lists the available ones" in error.message
    assert error.message.endswith("The service said: The model has been deprecated and is no longer available.")
    assert len(emulator.requests) == 1  # a retired model is not retried


# --- defaults that do not rot ---------------------------------------------------------------------------------


def test_no_default_or_example_names_a_retired_model():
    """Fails when a default or an example has retired on either service, by the emulator's
    lifecycle table, and already 60 days before (Azure's notice period), so that the manifest
    moves on before users meet the retirement."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    for action in MODEL_ACTIONS:
        field = MANIFEST.action(action).inputs.fields["model"]
        for name in [field["default"], *field.get("examples", [])]:
            model = find(name)
            assert model is not None, f"{action}: {name!r} is not in the emulator's lifecycle table"
            for on_azure in (True, False):
                service = "azure" if on_azure else "openai"
                assert not model.retired(on_azure, today), (action, name, service, "retired")
                retirement = model.retirement(on_azure)
                assert retirement is None or (retirement - today).days > 60, (action, name, service, retirement)
        # Nor does the help text suggest a model that has retired.
        for model in CATALOG:
            if model.retired(True, today) or model.retired(False, today):
                assert model.model_id not in field["description"], (action, model.model_id)


def test_the_defaults_run_against_the_emulators_default_deployments(known):
    runtime = Runtime()
    try:
        for action in ("create_chat_completion", "create_image", "create_multiple_chat_completions",
                       "raw_request", "summarize_text"):
            runtime.run(action, azure(known), {})
            runtime.run(action, openai(known), {})
    finally:
        runtime.close()
    assert all(request.path.endswith("models") or request.json.get("model") in DEFAULT_DEPLOYMENTS
               for request in known.requests)


def test_no_user_facing_text_mentions_the_seed():
    text = json.dumps(MANIFEST.raw)
    assert "the seed" not in text.lower() and "seed's" not in text.lower()


def test_options_from_a_models_list_skip_malformed_entries():
    body = {"data": [{"id": "ok"}, {"id": ""}, {"no": "id"}, "text",
                     {"id": "azure", "capabilities": {"chat_completion": True, "embeddings": "yes"},
                      "lifecycle_status": "preview", "deprecation": {"inference": "soon"}}]}
    assert [o["value"] for o in options_from_models_list(body, is_openai=True, today=DAY)] == ["ok", "azure"]
    azure_option = options_from_models_list(body, is_openai=False, today=DAY)[1]
    assert azure_option["capabilities"] == ["chat"]
    assert azure_option["lifecycle"] == {"status": "preview", "retirement_date": None, "lifecycle_status": "preview"}
    assert options_from_models_list({"data": "x"}, is_openai=True) == []
    assert options_from_models_list(None, is_openai=False) == []
