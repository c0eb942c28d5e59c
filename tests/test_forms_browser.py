"""Every form, rendered by react-jsonschema-form in headless Chromium.

The forms come from `azure_openai_connector.forms` (as `azure-openai-connector form` prints them)
and are rendered with the vendored bundle of `@rjsf/core` + `@rjsf/validator-ajv8`; the last test
rebuilds that bundle with npm from the pinned package-lock.json and checks it is byte for byte
the vendored one. For each form: every field shows its title and default, submitting the defaults
gives data our own validator accepts, out-of-range values are refused by RJSF in the page and by
our validator, and the API key is a password input.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import browser_support as bs
from azure_openai_connector.errors import InputValidationError
from azure_openai_connector.forms import action_form, connection_form
from azure_openai_connector.manifest import load_manifest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not bs.chromium_available(),
                       reason="needs the playwright package and Chromium (apt-get install chromium)"),
]

MANIFEST = load_manifest()
RAW = MANIFEST.raw
ACTIONS = list(RAW["actions"])
FORM_KEYS = ["connection"] + ACTIONS
FRONTEND = bs.REPO_ROOT / "frontend"
STATIC = bs.REPO_ROOT / "azure_openai_connector" / "playground" / "static"
SAFE_INTEGER = 2 ** 53 - 1
BAD_TEXT = "not valid!"


def form_for(key: str) -> Dict[str, Any]:
    return connection_form(RAW) if key == "connection" else action_form(RAW, key)


def validator_for(key: str):
    return MANIFEST.connection if key == "connection" else MANIFEST.action(key).inputs


def our_errors(key: str, data: Dict[str, Any]) -> List[Dict[str, str]]:
    try:
        validator_for(key).validated(data)
    except InputValidationError as refused:
        return refused.errors
    return []


def out_of_range_cases() -> List[Tuple[str, str, Any]]:
    """(form, field, bad value): every bounded number, and the connection's patterned text fields."""
    cases = []
    for key in FORM_KEYS:
        for name, field in form_for(key)["schema"]["properties"].items():
            if field.get("type") in ("number", "integer"):
                low, high = field.get("minimum"), field.get("maximum")
                if high is not None and abs(high) < SAFE_INTEGER:
                    cases.append((key, name, high + 1))
                elif low is not None and abs(low) < SAFE_INTEGER:
                    cases.append((key, name, low - 1))
            elif key == "connection" and field.get("type") == "string" and "pattern" in field \
                    and not RAW["connection"]["schema"]["properties"][name].get("secret"):
                assert not re.search(field["pattern"], BAD_TEXT)
                cases.append((key, name, BAD_TEXT))
    return cases


OUT_OF_RANGE = out_of_range_cases()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with bs.Browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def page(browser):
    page = bs.new_page(browser)
    yield page
    page.context.close()


def render(page, key: str) -> Dict[str, Any]:
    form = form_for(key)
    bs.render_form_page(page, None, form)
    return form


SHOWN_JS = """
(id) => {
  const el = document.getElementById(id);
  if (!el) return null;
  return {tag: el.tagName, type: el.type || null, value: 'value' in el ? el.value : null,
          checked: el.type === 'checkbox' ? el.checked : null,
          selected: el.tagName === 'SELECT' && el.selectedIndex >= 0 ? el.options[el.selectedIndex].text : null,
          visible: """ + bs.IS_VISIBLE_JS + """};
}
"""


def assert_shown(page, path: List[str], value: Any, json_field: bool = False) -> None:
    """The widget at `path` displays `value` (recursing into lists and objects)."""
    field_id = "_".join(["root", *map(str, path)])
    if json_field:
        shown = page.evaluate(SHOWN_JS, field_id)
        assert shown and shown["visible"], f"{field_id} is not displayed"
        assert json.loads(shown["value"]) == value, field_id
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_shown(page, [*path, key], item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_shown(page, [*path, str(index)], item)
    else:
        shown = page.evaluate(SHOWN_JS, field_id)
        assert shown and shown["visible"], f"{field_id} is not displayed"
        if isinstance(value, bool):
            assert shown["checked"] is value, field_id
        elif shown["tag"] == "SELECT":
            assert shown["selected"] == str(value), field_id
        else:
            assert shown["value"] == str(value), f"{field_id}: {shown['value']!r} != {value!r}"


# --- per form ---------------------------------------------------------------------------------


def hidden_by_rules(schema: Dict[str, Any], data: Dict[str, Any]) -> set:
    """Fields the form's `allOf` if/then/else rules forbid (`false`) for these values: a person
    is not offered a field the chosen model refuses (gpt-image has no style, say)."""
    from jsonschema import Draft7Validator

    hidden = set()
    for rule in schema.get("allOf", ()):
        if "if" not in rule:
            continue
        branch = rule.get("then") if Draft7Validator(rule["if"]).is_valid(data) else rule.get("else")
        hidden |= {name for name, field in (branch or {}).get("properties", {}).items() if field is False}
    return hidden


@pytest.mark.parametrize("key", FORM_KEYS)
def test_every_field_shows_its_title_and_default(page, key):
    form = render(page, key)
    advanced = (form["uiSchema"].get("ui:options") or {}).get("groups", [{}])[0].get("fields", [])
    hidden = hidden_by_rules(form["schema"], form["formData"])
    # Advanced fields start folded away in their group; everything else is on show, but for the
    # fields the default values' rules forbid.
    for name in form["schema"]["properties"]:
        title = bs.field_title(page, name)
        assert (title is None) == (name in advanced or name in hidden), f"{key}.{name}: title {title!r}"
    assert bs.open_groups(page) == (1 if advanced else 0)
    for name, field in form["schema"]["properties"].items():
        if name in hidden:
            continue
        assert bs.field_title(page, name) == field["title"], f"{key}.{name}"
        if "default" in field:
            json_field = form["uiSchema"].get(name, {}).get("ui:field") == "json"
            assert_shown(page, [name], field["default"], json_field)
    assert bs.form_data(page) == form["formData"]  # RJSF added nothing of its own
    assert bs.page_errors(page) == []


@pytest.mark.parametrize("key", ACTIONS)
def test_submitting_the_defaults_gives_data_our_validator_accepts(page, key):
    form = render(page, key)
    inputs = RAW["actions"][key]["inputs"]
    # An input naming what an earlier step made (a batch id) has no default: typed in, as a person would.
    expected = dict(form["formData"])
    for name in inputs.get("required", ()):
        if "default" not in inputs["properties"][name]:
            expected[name] = inputs["properties"][name]["examples"][0]
            bs.input_for(page, name).fill(expected[name])
    bs.submit(page)
    [submitted] = bs.submitted_data(page)
    assert submitted == expected
    assert bs.visible_error_texts(page) == []
    assert our_errors(key, submitted) == []
    assert bs.page_errors(page) == []


def test_the_connection_form_needs_an_api_key_like_our_validator(page):
    form = render(page, "connection")
    bs.submit(page)
    assert bs.submitted_data(page) == []
    assert bs.field_error_texts(page, "api_key"), "no error next to API Key"
    assert [e["path"] for e in our_errors("connection", form["formData"])] == ["api_key"]
    bs.input_for(page, "api_key").fill("sk-test-0123456789")
    bs.submit(page)
    [submitted] = bs.submitted_data(page)
    assert submitted == {**form["formData"], "api_key": "sk-test-0123456789"}
    assert our_errors("connection", submitted) == []
    assert bs.page_errors(page) == []


@pytest.mark.parametrize("key,name,bad", OUT_OF_RANGE, ids=[f"{k}.{n}" for k, n, _ in OUT_OF_RANGE])
def test_an_out_of_range_value_is_refused_in_the_page_and_by_our_validator(page, key, name, bad):
    form = render(page, key)
    bs.open_groups(page)
    bs.input_for(page, name).fill(str(bad))
    bs.close_groups(page)
    bs.submit(page)
    assert bs.submitted_data(page) == []
    assert bs.wait_for_field_error(page, name)  # visible: a folded group opens for its errors
    assert f".{name}" in [e["property"] for e in bs.validate(page)["errors"]]
    # Our validator refuses the same value, at the same field ...
    refused = [e for e in our_errors(key, {**form["formData"], "api_key": "k", name: bad}) if e["path"] == name]
    assert refused, f"our validator accepts {key}.{name} = {bad!r}"
    # ... and its messages, as a host shows them, land next to that field too.
    bs.set_extra_errors(page, refused)
    assert refused[0]["message"] in bs.field_error_texts(page, name)
    assert bs.page_errors(page) == []


def test_the_api_key_is_a_password_input(page):
    render(page, "connection")
    api_key = bs.input_for(page, "api_key")
    assert api_key.get_attribute("type") == "password"
    assert api_key.get_attribute("autocomplete") == "off"
    passwords = page.evaluate("() => Array.from(document.querySelectorAll('input[type=password]')).map(e => e.id)")
    assert passwords == ["root_api_key"]


@pytest.mark.parametrize("key", FORM_KEYS)
def test_enums_are_selects_and_long_texts_are_text_areas(page, key):
    form = render(page, key)
    bs.open_groups(page)
    tags = page.evaluate("""() => Object.fromEntries(Array.from(
        document.querySelectorAll('#form-root input, #form-root select, #form-root textarea'))
        .map((e) => [e.id, e.tagName]))""")
    hidden = hidden_by_rules(form["schema"], form["formData"])
    for name, field in form["schema"]["properties"].items():
        if "enum" in field and name not in hidden:
            assert tags[f"root_{name}"] == "SELECT", name
    expected_textareas = {
        "create_chat_completion": ["messages_0_content", "messages_3_content"],
        "create_image": ["prompt"],
        "create_multiple_chat_completions": ["prompts_0", "prompts_4", "system"],
        "summarize_text": ["text", "instructions"],
        "raw_request": ["data", "form_data", "file_data", "file_data_file_names", "query_params", "headers"],
    }.get(key, [])
    for field_id in expected_textareas:
        assert tags[f"root_{field_id}"] == "TEXTAREA", field_id
    if key == "create_chat_completion":
        assert tags["root_messages_0_role"] == "SELECT"


def test_advanced_fields_are_in_one_collapsed_group_after_the_others(page):
    form = render(page, "create_chat_completion")
    group = page.locator("details.field-group")
    assert group.count() == 1
    assert group.get_attribute("open") is None
    assert group.locator("summary").inner_text() == "Advanced"
    ids = page.evaluate("""() => Array.from(document.querySelectorAll(
        'details.field-group > .field-group-body > .form-group')).map((e) => e.querySelector('input[id], select[id], textarea[id], fieldset[id]').id)""")
    assert ids == [f"root_{name}" for name in form["uiSchema"]["ui:options"]["groups"][0]["fields"]]
    group.locator("summary").click()
    assert bs.field_title(page, "seed") == "Seed"


# --- the JSON editor ("ui:field": "json") -------------------------------------------------------


def test_json_fields_edit_json_and_refuse_text_that_does_not_parse(page):
    render(page, "raw_request")
    headers = bs.input_for(page, "headers")
    assert headers.evaluate("e => e.tagName") == "TEXTAREA"
    assert headers.input_value() == ""
    headers.fill('{"X-Trace": "1"')
    errors = bs.field_error_texts(page, "headers")
    assert len(errors) == 1 and errors[0].startswith("is not valid JSON"), errors
    assert headers.input_value() == '{"X-Trace": "1"'  # the text is kept while it is wrong
    assert ".headers" in [e["property"] for e in bs.validate(page)["errors"]]
    bs.submit(page)
    assert bs.submitted_data(page) == []
    assert len(bs.field_error_texts(page, "headers")) == 1  # shown once, not twice

    headers.fill('{"X-Trace": "1"}')
    assert bs.field_error_texts(page, "headers") == []
    bs.input_for(page, "data").fill('{"model": "gpt-4o-mini", "n": 2}')
    bs.submit(page)
    [submitted] = bs.submitted_data(page)
    assert submitted["headers"] == {"X-Trace": "1"}
    assert submitted["data"] == {"model": "gpt-4o-mini", "n": 2}
    assert our_errors("raw_request", submitted) == []


def test_json_fields_show_schema_errors_inside_the_value(page):
    render(page, "raw_request")
    bs.input_for(page, "headers").fill("[1]")
    bs.input_for(page, "query_params").fill('{"limit": {"deep": 1}}')
    bs.submit(page)
    assert bs.submitted_data(page) == []
    assert bs.field_error_texts(page, "headers") == ["must be object"]
    assert any(text.startswith("limit: must be") for text in bs.field_error_texts(page, "query_params"))
    data = {**form_for("raw_request")["formData"], "headers": [1], "query_params": {"limit": {"deep": 1}}}
    assert {e["path"] for e in our_errors("raw_request", data)} >= {"headers", "query_params/limit"}


def test_json_fields_follow_set_form_data_and_empty_text_unsets(page):
    form = render(page, "raw_request")
    bs.set_form_data(page, {**form["formData"], "form_data": {"purpose": "fine-tune"}, "data": "plain text"})
    assert json.loads(bs.input_for(page, "form_data").input_value()) == {"purpose": "fine-tune"}
    assert bs.input_for(page, "form_data").input_value() == '{\n  "purpose": "fine-tune"\n}'
    assert bs.input_for(page, "data").input_value() == '"plain text"'
    bs.input_for(page, "data").fill("")
    bs.submit(page)
    [submitted] = bs.submitted_data(page)
    assert "data" not in submitted
    assert submitted["form_data"] == {"purpose": "fine-tune"}


def test_our_validator_paths_map_onto_the_fields(page):
    """InputValidationError paths (as `run_action` reports them) show next to nested fields."""
    form = render(page, "create_chat_completion")
    data = dict(form["formData"], messages=[{"role": "robot", "content": "hi"}])
    errors = our_errors("create_chat_completion", data)
    assert [e["path"] for e in errors] == ["messages/0/role"]
    bs.set_form_data(page, data)
    bs.set_extra_errors(page, errors)
    assert bs.field_error_texts(page, "messages/0/role") == [errors[0]["message"]]


# --- the bundle is built from the pinned lockfile ----------------------------------------------


def test_the_vendored_bundle_is_built_from_the_pinned_lockfile(tmp_path):
    package = json.loads((FRONTEND / "package.json").read_text())
    lock = json.loads((FRONTEND / "package-lock.json").read_text())
    pinned = {**package["dependencies"], **package["devDependencies"]}
    for name in ("@rjsf/core", "@rjsf/validator-ajv8", "react", "react-dom", "esbuild"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", pinned[name]), f"{name} is not pinned exactly: {pinned[name]}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == pinned[name]
    for where, entry in lock["packages"].items():
        if where:
            assert entry.get("integrity", "").startswith("sha512-"), f"{where} has no integrity hash"
    licenses = (STATIC / "THIRD_PARTY_LICENSES.txt").read_text()
    for name in ("@rjsf/core", "@rjsf/utils", "@rjsf/validator-ajv8", "ajv", "react", "react-dom"):
        assert f"  {name}@{lock['packages'][f'node_modules/{name}']['version']} (" in licenses, name

    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("needs node and npm to rebuild the bundle from the lockfile")
    work = tmp_path / "frontend"
    work.mkdir()
    for name in ("package.json", "package-lock.json", "build.mjs"):
        shutil.copy2(FRONTEND / name, work / name)
    shutil.copytree(FRONTEND / "src", work / "src")
    installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work,
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}\n{installed.stderr}"
    out = tmp_path / "out"
    built = subprocess.run(["node", "build.mjs"], cwd=work, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "CONNECTOR_FORMS_OUT_DIR": str(out)})
    assert built.returncode == 0, built.stderr
    for name in ("forms.bundle.js", "THIRD_PARTY_LICENSES.txt"):
        assert (out / name).read_bytes() == (STATIC / name).read_bytes(), (
            f"{name} differs from a build of the lockfile: run `bash frontend/build.sh`")


def test_the_bundle_reports_the_pinned_versions(page):
    lock = json.loads((FRONTEND / "package-lock.json").read_text())["packages"]
    render(page, "summarize_text")
    assert page.evaluate("window.ConnectorForms.version") == lock["node_modules/@rjsf/core"]["version"]
    assert page.evaluate("window.ConnectorForms.reactVersion") == lock["node_modules/react"]["version"]
    assert sorted(page.evaluate("Object.keys(window.ConnectorForms.fields)")) == ["json"]


AUTH_FIELDS = RAW["connection"]["schema"]["properties"]["auth"]["x-fields"]
AUTH_ONLY_FIELDS = sorted({name for names in AUTH_FIELDS.values() for name in names})


@pytest.mark.parametrize("auth", list(AUTH_FIELDS))
def test_the_connection_form_shows_the_fields_of_the_chosen_auth_type(page, auth):
    form = render(page, "connection")
    bs.input_for(page, "auth").select_option(label=auth)
    bs.open_groups(page)
    shown = [name for name in AUTH_ONLY_FIELDS if bs.field_title(page, name) is not None]
    assert shown == sorted(AUTH_FIELDS[auth])
    if "client_secret" in shown:
        assert bs.input_for(page, "client_secret").get_attribute("type") == "password"
    data = bs.form_data(page)
    assert data["auth"] == auth
    # Submitting with nothing typed in: the page and our validator ask for the same fields.
    bs.submit(page)
    expected = sorted(e["path"] for e in our_errors("connection", {**form["formData"], "auth": auth}))
    assert expected == {"api_key": ["api_key"], "entra_client_secret": ["client_id", "client_secret", "tenant_id"]
                        }.get(auth, [])
    if expected:
        assert bs.submitted_data(page) == []
        assert sorted(e["property"].lstrip(".") for e in bs.validate(page)["errors"]
                      if e["name"] == "required") == expected
    else:
        [submitted] = bs.submitted_data(page)
        assert submitted["auth"] == auth and our_errors("connection", submitted) == []
    assert bs.page_errors(page) == []
