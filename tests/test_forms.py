"""The forms a host renders: JSON Schema + react-jsonschema-form UI schema, generated from the manifest.

Browser-free checks; tests/test_forms_browser.py renders the same forms with RJSF in Chromium.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Dict

import pytest
from jsonschema import Draft7Validator
from jsonschema.validators import validator_for

from azure_openai_connector import cli
from azure_openai_connector.errors import InputValidationError
from azure_openai_connector.forms import (ADVANCED_CLASS, JSON_SCHEMA_DIALECT, action_form, all_forms, form_fields,
                                          connection_form)
from azure_openai_connector.manifest import load_manifest

MANIFEST = load_manifest()
RAW = MANIFEST.raw
ACTIONS = list(RAW["actions"])
FORM_KEYS = ["connection"] + ACTIONS


def form_for(key: str, raw: Dict[str, Any] = RAW) -> Dict[str, Any]:
    return connection_form(raw) if key == "connection" else action_form(raw, key)


def spec_for(key: str, raw: Dict[str, Any] = RAW) -> Dict[str, Any]:
    if key == "connection":
        return {"inputs": raw["connection"]["schema"], "ui": raw["connection"].get("ui", {})}
    return raw["actions"][key]


@pytest.mark.parametrize("key", FORM_KEYS)
def test_each_schema_is_valid_under_its_declared_dialect(key):
    schema = form_for(key)["schema"]
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    cls = validator_for(schema, default=None)
    assert cls is Draft7Validator  # the dialect is recognised, not a fallback
    cls.check_schema(schema)  # raises SchemaError if invalid under the meta-schema
    assert not list(Draft7Validator(Draft7Validator.META_SCHEMA).iter_errors(schema))


@pytest.mark.parametrize("key", FORM_KEYS)
def test_the_schema_is_the_manifest_schema_with_title_and_description(key):
    form = form_for(key)
    spec = spec_for(key)
    schema = form["schema"]
    expected = without_x_keywords(copy.deepcopy(spec["inputs"]))
    for field in expected["properties"].values():
        field.pop("secret", None)
    if key == "connection":  # the auth types' own fields move into RJSF dependencies (tested below)
        expected = {k: v for k, v in expected.items() if k not in ("allOf", "additionalProperties")}
        expected["properties"] = {name: field for name, field in expected["properties"].items()
                                  if name in schema["properties"]}
        expected["dependencies"] = schema["dependencies"]
    assert {k: v for k, v in schema.items() if k not in ("$schema", "title", "description")} == expected
    label = RAW["connection"]["label"] if key == "connection" else spec["label"]
    assert schema["title"] == label
    for name, field in schema["properties"].items():
        assert field.get("title"), f"{key}.{name} has no title"
        assert field.get("description"), f"{key}.{name} has no help text"
        assert "secret" not in field  # not a JSON Schema keyword; the UI schema says "password"


def without_x_keywords(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_x_keywords(v) for k, v in value.items() if not k.startswith("x-")}
    if isinstance(value, list):
        return [without_x_keywords(v) for v in value]
    return value


def test_custom_keywords_are_left_out_so_rjsf_can_merge_the_rules():
    # json-schema-merge-allof (inside RJSF) drops a whole allOf over a keyword it does not know.
    raw = copy.deepcopy(RAW)
    inputs = raw["actions"]["create_image"]["inputs"]
    inputs["properties"]["prompt"]["x-note"] = "kept out"
    inputs["properties"]["x-rule"] = {"type": "string", "title": "A field named like a keyword"}
    inputs["allOf"] = [{"x-rule": "tiny", "if": {"properties": {"model": {"const": "tiny"}}},
                        "then": {"properties": {"size": {"enum": ["256x256"]}, "style": False}}}]
    schema = action_form(raw, "create_image")["schema"]
    assert schema["allOf"] == [{"if": {"properties": {"model": {"const": "tiny"}}},
                                "then": {"properties": {"size": {"enum": ["256x256"]}, "style": False}}}]
    assert "x-note" not in schema["properties"]["prompt"]
    assert schema["properties"]["x-rule"] == {"type": "string", "title": "A field named like a keyword"}
    assert "x-rule" not in json.dumps(schema["allOf"])


def test_help_text_with_a_web_address_links_it_and_shows_the_rest_as_is():
    ui = connection_form(RAW)["uiSchema"]
    assert ui["api_key"]["ui:enableMarkdownInDescription"] is True
    assert ui["api_key"]["ui:description"] == (
        "Generate an API key at [https://platform\\.openai\\.com/account/api\\-keys]"
        "(<https://platform.openai.com/account/api-keys>), or copy your Azure OpenAI key from the "
        "resource's \"Keys and Endpoint\" page\\.")
    # A template such as https://{organization}.openai.azure.com is not a link.
    assert "ui:description" not in ui.get("organization", {})
    assert "ui:description" not in action_form(RAW, "create_chat_completion")["uiSchema"].get("model", {})


@pytest.mark.parametrize("key", FORM_KEYS)
def test_form_data_holds_exactly_the_manifest_defaults(key):
    form = form_for(key)
    fields = spec_for(key)["inputs"]["properties"]
    assert form["formData"] == {name: f["default"] for name, f in fields.items() if "default" in f}


@pytest.mark.parametrize("key", ACTIONS)
def test_the_defaults_pass_our_own_validator(key):
    data = form_for(key)["formData"]
    inputs = MANIFEST.action(key).inputs
    # An input naming what an earlier step made (a batch id) has no default: only it is asked for.
    without_default = [name for name in inputs.schema.get("required", ()) if "default" not in inputs.fields[name]]
    if without_default:
        with pytest.raises(InputValidationError) as refused:
            inputs.validated(data)
        assert [e["path"] for e in refused.value.errors] == without_default
        data = {**data, **{name: inputs.fields[name]["examples"][0] for name in without_default}}
    assert inputs.validated(data) == inputs.complete(data)


def test_the_connection_defaults_need_only_an_api_key():
    data = form_for("connection")["formData"]
    with pytest.raises(InputValidationError) as refused:
        MANIFEST.connection.validated(data)
    assert [e["path"] for e in refused.value.errors] == ["api_key"]
    MANIFEST.connection.validated({**data, "api_key": "k"})


@pytest.mark.parametrize("key", FORM_KEYS)
def test_ui_schema_follows_the_manifest_ui_lists(key):
    form = form_for(key)
    ui = spec_for(key).get("ui", {})
    fields = form_fields(form["schema"])
    ui_schema = form["uiSchema"]
    assert ui_schema["ui:order"] == list(ui["order"]) + ["*"]
    for name in ui_schema:
        assert name.startswith("ui:") or name in fields, f"uiSchema names unknown field {name!r}"
    advanced = [name for name in ui["order"] if name in ui.get("advanced", ())]
    if advanced:
        [group] = ui_schema["ui:options"]["groups"]
        assert group == {"key": "advanced", "title": "Advanced", "collapsed": True, "fields": advanced}
    for name in fields:
        field_ui = ui_schema.get(name, {})
        assert (field_ui.get("ui:classNames") == ADVANCED_CLASS) == (name in ui.get("advanced", ()))
        assert (field_ui.get("ui:field") == "json") == (name in ui.get("json", ()))
        if "enum" in fields[name]:
            assert "ui:widget" not in field_ui  # RJSF renders enums as selects by itself


def test_widgets_of_the_connection_form():
    ui = connection_form(RAW)["uiSchema"]
    assert ui["api_key"]["ui:widget"] == "password"
    assert ui["api_key"]["ui:options"]["autocomplete"] == "off"
    secret = [name for name, f in RAW["connection"]["schema"]["properties"].items() if f.get("secret")]
    assert secret == ["api_key", "client_secret"]
    assert ui["client_secret"]["ui:widget"] == "password"
    assert all(ui.get(name, {}).get("ui:widget") != "password" for name in RAW["connection"]["schema"]["properties"]
               if name not in secret)


def test_multiline_fields_are_text_areas():
    chat = action_form(RAW, "create_chat_completion")["uiSchema"]
    assert chat["messages"]["items"]["content"]["anyOf"][0]["ui:widget"] == "textarea"  # text, or parts
    assert "role" not in chat["messages"]["items"]  # an enum: a select
    assert action_form(RAW, "summarize_text")["uiSchema"]["text"]["ui:widget"] == "textarea"
    assert action_form(RAW, "create_image")["uiSchema"]["prompt"]["ui:widget"] == "textarea"
    multiple = action_form(RAW, "create_multiple_chat_completions")["uiSchema"]
    assert multiple["prompts"]["items"]["ui:widget"] == "textarea"
    assert multiple["system"]["ui:widget"] == "textarea"


def test_objects_get_the_json_editor():
    ui = action_form(RAW, "raw_request")["uiSchema"]
    for name in ("data", "form_data", "file_data", "file_data_file_names", "query_params", "headers"):
        assert ui[name]["ui:field"] == "json"
    for key in FORM_KEYS:
        form = form_for(key)
        for name, field in form["schema"]["properties"].items():
            if field.get("type") == "object" or isinstance(field.get("type"), list):
                assert form["uiSchema"][name]["ui:field"] == "json", f"{key}.{name}"


def test_help_text_states_the_range_and_placeholders_come_from_examples():
    chat = action_form(RAW, "create_chat_completion")["uiSchema"]
    assert chat["temperature"]["ui:help"] == "Between 0 and 2."
    assert chat["n"]["ui:help"] == "Between 1 and 128."
    assert chat["stop"]["ui:help"] == "Between 1 and 4 items."
    assert chat["max_completion_tokens"]["ui:help"] == "Between 1 and 1,000,000."
    assert chat["seed"]["ui:help"] == "A 64-bit integer."
    assert chat["model"]["ui:placeholder"] == "gpt-5.1"
    assert action_form(RAW, "raw_request")["uiSchema"]["retry_delay_ms"]["ui:help"] == "Between 0 and 60,000."


def test_forms_are_generated_from_the_manifest_at_run_time():
    raw = copy.deepcopy(RAW)
    field = raw["actions"]["summarize_text"]["inputs"]["properties"]["chunk_size"]
    field.update(title="Piece Size", default=5000, maximum=7000)
    raw["actions"]["summarize_text"]["ui"]["order"].reverse()
    raw["actions"]["summarize_text"]["ui"]["advanced"] = ["model"]
    raw["actions"]["summarize_text"]["ui"]["multiline"] = ["instructions"]
    form = action_form(raw, "summarize_text")
    assert form["schema"]["properties"]["chunk_size"]["title"] == "Piece Size"
    assert form["formData"]["chunk_size"] == 5000
    assert form["uiSchema"]["chunk_size"]["ui:help"] == "Between 1,000 and 7,000."
    assert form["uiSchema"]["ui:order"][0] == "max_concurrency"
    assert form["uiSchema"]["ui:options"]["groups"][0]["fields"] == ["model"]
    assert "ui:widget" not in form["uiSchema"].get("text", {})
    assert form["uiSchema"]["instructions"]["ui:widget"] == "textarea"
    assert action_form(RAW, "summarize_text")["formData"]["chunk_size"] == 24000  # the original is untouched


def test_forms_do_not_share_state_with_the_manifest():
    form = action_form(RAW, "create_chat_completion")
    form["formData"]["messages"].clear()
    form["schema"]["properties"]["model"]["title"] = "changed"
    again = action_form(RAW, "create_chat_completion")
    assert len(again["formData"]["messages"]) == 4
    assert again["schema"]["properties"]["model"]["title"] == "Model / Deployment Name"


# --- the `form` command ---------------------------------------------------------------------


def run_cli(capsys, *argv: str):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("key", ACTIONS)
def test_form_command_prints_the_action_form(capsys, key):
    code, out, _ = run_cli(capsys, "form", key)
    assert code == 0
    assert json.loads(out) == action_form(RAW, key)


def test_form_command_prints_the_connection_form(capsys):
    code, out, _ = run_cli(capsys, "form", "--connection")
    assert code == 0
    document = json.loads(out)
    assert document == connection_form(RAW)
    assert document["uiSchema"]["api_key"]["ui:widget"] == "password"


def test_form_command_without_arguments_prints_every_form(capsys):
    code, out, _ = run_cli(capsys, "form")
    assert code == 0
    document = json.loads(out)
    assert document == all_forms(RAW)
    assert sorted(document["actions"]) == sorted(ACTIONS)


def test_form_command_refuses_an_unknown_action(capsys):
    code, out, err = run_cli(capsys, "form", "no_such_action")
    assert code == cli.EXIT_INVALID_INPUT
    assert out == ""
    error = json.loads(err)["error"]
    assert error["type"] == "invalid_input"
    assert error["errors"][0]["path"] == "action"


def test_form_command_takes_an_action_or_connection_not_both(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["form", "create_image", "--connection"])
    assert exited.value.code == 2
    assert "not allowed" in capsys.readouterr().err


def test_the_connection_form_shows_each_auth_type_its_own_fields():
    schema = connection_form(RAW)["schema"]
    assert list(schema["properties"]) == ["auth", "organization", "is_openai_key", "endpoint", "api_version",
                                          "project", "gateway_headers", "gateway_query"]
    branches = [(branch["properties"]["auth"], list(branch["properties"])[1:], branch.get("required"))
                for branch in schema["dependencies"]["auth"]["oneOf"]]
    assert branches == [
        ({"enum": ["api_key"]}, ["api_key"], ["api_key"]),
        ({"enum": ["entra_client_secret"]}, ["tenant_id", "client_id", "client_secret", "authority_host", "token_scope"],
         ["tenant_id", "client_id", "client_secret"]),
        ({"enum": ["managed_identity"]}, ["client_id", "token_scope"], None),
        ({"enum": ["azure_default_credential"]}, ["tenant_id", "client_id", "authority_host", "token_scope"], None),
    ]
    secret_branch = schema["dependencies"]["auth"]["oneOf"][1]["properties"]["client_secret"]
    assert "secret" not in secret_branch and secret_branch["title"] == "Client Secret"
    from jsonschema import Draft7Validator

    form_validator = Draft7Validator(schema)
    assert not list(form_validator.iter_errors({"auth": "managed_identity", "organization": "res"}))
    assert [e.message for e in form_validator.iter_errors({"auth": "api_key", "organization": "res"})] != []
