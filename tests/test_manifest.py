"""The manifest: it loads, a broken one fails with path and reason, and it is compiled once."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from azure_openai_connector import actions
from azure_openai_connector.errors import ManifestError
from azure_openai_connector.manifest import load_manifest, parse_manifest

ROOT = Path(__file__).resolve().parent.parent
META_SCHEMA = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())
DOCUMENT = yaml.safe_load((ROOT / "connector.yaml").read_text())


def parse(document):
    return parse_manifest(yaml.safe_dump(document), source="connector.yaml", meta_schema=META_SCHEMA)


def test_the_shipped_manifest_loads_and_every_action_has_a_handler():
    manifest = load_manifest()
    assert set(manifest.actions) == set(actions.HANDLER_MODULES)
    assert manifest.connector["key"] == "azure_openai"
    assert (ROOT / manifest.connector["icon"]).read_text().lstrip().startswith("<svg")


def test_the_packaged_copy_is_the_repository_file():
    packaged = ROOT / "azure_openai_connector" / "data" / "connector.yaml"
    assert packaged.read_text() == (ROOT / "connector.yaml").read_text()


def test_loaded_once_and_validators_compiled_once():
    first, second = load_manifest(), load_manifest()
    assert first is second
    action = first.action("create_chat_completion")
    assert action.inputs.validator is second.action("create_chat_completion").inputs.validator


def test_seed_defaults_and_current_models():
    manifest = load_manifest()
    chat = manifest.action("create_chat_completion").inputs
    assert chat.default("model") == "gpt-5.1"
    assert manifest.action("create_image").inputs.default("model") == "gpt-image-2"
    assert [m["role"] for m in chat.default("messages")] == ["system", "user", "assistant", "user"]
    multiple = manifest.action("create_multiple_chat_completions").inputs
    assert len(multiple.default("prompts")) == 5
    assert manifest.action("raw_request").inputs.default("url") == "/v1/models"
    assert manifest.connection.default("api_version") == "v1"
    assert manifest.connection.fields["api_key"]["secret"] is True


def _broken(change):
    document = copy.deepcopy(DOCUMENT)
    change(document)
    return document


BROKEN = [
    (lambda d: d["actions"]["create_image"]["inputs"]["properties"]["n"].update(default=11),
     "actions.create_image.inputs.properties.n.default: 11 is greater than the maximum of 10"),
    (lambda d: d["actions"]["create_chat_completion"]["inputs"]["properties"]["temperature"].pop("title"),
     "actions.create_chat_completion.inputs.properties.temperature: 'title' is a required property"),
    (lambda d: d["connector"].pop("version"), "connector: 'version' is a required property"),
    (lambda d: d["actions"]["raw_request"]["inputs"]["properties"]["method"].update(type="strng"),
     "actions.raw_request.inputs.properties.method.type"),
    (lambda d: d["actions"]["summarize_text"]["ui"]["order"].append("nope"),
     "actions.summarize_text.ui.order: 'nope' is not a field"),
    (lambda d: d["actions"]["summarize_text"]["inputs"]["required"].append("ghost"),
     "actions.summarize_text.inputs.required: 'ghost' is not a field"),
    (lambda d: d["actions"].update({"Bad-Key": d["actions"]["raw_request"]}), "actions"),
]


@pytest.mark.parametrize("change,expected", BROKEN)
def test_a_broken_manifest_names_the_path_and_the_rule(change, expected):
    with pytest.raises(ManifestError) as caught:
        parse(_broken(change))
    assert expected in str(caught.value)
    assert str(caught.value).startswith("connector.yaml: ")


def test_not_yaml_at_all():
    with pytest.raises(ManifestError, match="not valid YAML"):
        parse_manifest("key: [unclosed", source="connector.yaml", meta_schema=META_SCHEMA)


def test_validated_inputs_name_what_the_user_chose():
    form = load_manifest().action("create_chat_completion").inputs
    values = form.validated({"model": "gpt-4o", "temperature": 0.5, "top_p": 1.0, "n": 2.0,
                             "seed": 7, "stop": None, "response_format": "text"})
    # top_p 1.0 and response_format "text" repeat the defaults (as a pre-filled form sends them);
    # stop None is unset; messages and presence_penalty were never given.
    assert values.given == frozenset({"model", "temperature", "n", "seed"})
    assert values == {**form.complete({}), "model": "gpt-4o", "temperature": 0.5, "top_p": 1.0,
                      "n": 2, "seed": 7, "response_format": "text"}
    assert type(values["n"]) is int


def test_validated_inputs_of_an_empty_step_hold_only_defaults():
    form = load_manifest().action("create_chat_completion").inputs
    values = form.validated(None)
    assert values.given == frozenset()
    assert values == dict(form.defaults)


def test_the_manifest_declares_the_package_version():
    from azure_openai_connector import __version__

    assert DOCUMENT["connector"]["version"] == __version__
    assert load_manifest().connector["version"] == __version__
