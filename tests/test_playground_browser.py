"""The playground page in headless Chromium: one action of each kind clicked through to its
result and its answer panel, client-side and server-side errors shown next to their fields (and
scrolled to), the per-model image rules applied as the model changes, and a 420 px wide window.

Set CONNECTOR_PLAYGROUND_SCREENSHOT=path.png to save a screenshot of the page (docs/playground.png
was made this way).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Iterator, List, Optional

import pytest

import browser_support as bs
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.playground import Playground

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not bs.chromium_available(),
                       reason="needs the playwright package and Chromium (apt-get install chromium)"),
]

RAW = load_manifest().raw
PAGE_KEY = "sk-page-key-77c1d2e3f4a5b6c7d8e9"
RESULT = "#result-meta.ok, #result-meta.failed"


@pytest.fixture(scope="module")
def playground() -> Iterator[Playground]:
    with Playground(environ={}) as pg:
        yield pg


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with bs.Browser() as launched:
        yield launched


class Console:
    def __init__(self) -> None:
        self.problems: List[str] = []

    def __call__(self, message: Any) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.problems.append(f"{message.type}: {message.text}")


def open_page(browser, playground, width: int = 1200, height: int = 800):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(bs.DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    console = Console()
    page.on("console", console)
    page.on("pageerror", lambda error: console.problems.append(f"pageerror: {error}"))
    page.goto(playground.page_url)
    page.wait_for_selector("body[data-ready=true]")
    page.console = console
    return page


@pytest.fixture
def page(browser, playground):
    page = open_page(browser, playground)
    yield page
    page.context.close()


@pytest.fixture
def narrow_page(browser, playground):
    """The page in a window 420 px wide, as on a phone or in a side panel."""
    page = open_page(browser, playground, width=420, height=760)
    yield page
    page.context.close()


def choose(page, action: str) -> None:
    page.click(f'#action-list button[data-action="{action}"]')
    page.wait_for_selector('#action-form [id="inputs"]')
    assert page.locator('#action-list button[aria-current="true"]').get_attribute("data-action") == action


def run(page) -> Dict[str, Any]:
    """Click Run and wait for the answer; returns what the page shows."""
    page.evaluate("() => { const m = document.getElementById('result-meta'); m.className = 'note'; }")
    page.click("#run")
    page.wait_for_selector(RESULT)
    return {"meta": page.inner_text("#result-meta"), "ok": "ok" in page.get_attribute("#result-meta", "class"),
            "result": json.loads(page.inner_text("#result"))}


def field_errors(page, form: str, path: str) -> List[str]:
    prefix = "connection" if form == "connection" else "inputs"
    return bs.field_error_texts(page, path, id_prefix=prefix)


def test_the_page_shows_the_connector_and_drops_the_token_from_the_address(page, playground):
    assert "token" not in page.url
    assert page.url.startswith(playground.url)
    icon = page.locator("#connector-icon")
    assert icon.is_visible() and icon.get_attribute("src").startswith("data:image/svg+xml;base64,")
    assert icon.evaluate("img => img.complete && img.naturalWidth > 0")
    assert RAW["connector"]["label"] in page.inner_text("#connector-label")
    assert page.inner_text("#connector-description") == RAW["connector"]["description"]
    labels = page.locator("#action-list button span").all_inner_texts()
    assert labels == [spec["label"] for spec in RAW["actions"].values()]
    assert page.locator('#connection-form input[id="connection_api_key"]').get_attribute("type") == "password"
    assert "emulator" in page.inner_text("#server-connection")
    assert page.console.problems == []


CASES = {
    "chat": "create_chat_completion",
    "image": "create_image",
    "multiple": "create_multiple_chat_completions",
    "raw": "raw_request",
    "summarize": "summarize_text",
}


@pytest.mark.parametrize("kind", list(CASES))
def test_one_action_of_each_kind_runs_from_the_page(page, playground, kind):
    action = CASES[kind]
    choose(page, action)
    spec = RAW["actions"][action]
    assert page.locator("#action-form legend").first.inner_text().strip() == spec["label"]
    for name, field in spec["inputs"]["properties"].items():
        if name not in spec["ui"].get("advanced", ()):
            assert bs.field_title(page, name, id_prefix="inputs") == field["title"], name
    before = playground.emulator.request_count
    shown = run(page)
    assert shown["ok"], shown
    assert playground.emulator.request_count > before
    assert shown["meta"].startswith("ok · ") and " ms · emulator (azure)" in shown["meta"]
    result = shown["result"]
    if kind == "chat":
        assert result["content"] == "Emulated reply to: Where was it played?"
    elif kind == "image":
        assert len(result["images"]) == 1 and result["errors"] == []
        image = page.locator("#answer img")
        assert image.count() == 1
        page.wait_for_function("() => document.querySelector('#answer img').complete")
        assert image.evaluate("img => img.naturalWidth > 0")
        assert image.evaluate("img => img.getBoundingClientRect().width") >= 100  # shown, not collapsed
        revised = result["images"][0].get("revised_prompt")
        if revised:  # DALL-E 3 rewrote prompts; gpt-image models answer with the image alone
            assert page.inner_text("#answer figcaption") == revised
        else:
            assert page.locator("#answer figcaption").count() == 0
    elif kind == "multiple":
        prompts = spec["inputs"]["properties"]["prompts"]["default"]
        assert result["totals"]["succeeded"] == len(prompts)
        assert page.locator("#answer .answer-prompt").all_inner_texts() == prompts
        assert page.locator("#answer .answer-text").all_inner_texts() == [
            item["content"] for item in result["results"]]
    elif kind == "raw":
        assert result["status"] == 200 and result["data"]["object"] == "list"
        assert page.inner_text("#answer") == "HTTP 200"
    elif kind == "summarize":
        assert result["summary"] and result["chunks"] == 1
        assert page.inner_text("#answer .answer-text") == result["summary"]
    if kind == "chat":
        assert page.inner_text("#answer .answer-text") == result["content"]
    # The answer panel comes before the raw JSON.
    assert page.evaluate("""() => !!(document.getElementById('answer').compareDocumentPosition(
        document.getElementById('result')) & Node.DOCUMENT_POSITION_FOLLOWING)""")
    assert page.console.problems == []


def test_out_of_range_values_are_caught_in_the_page_before_any_request(page, playground):
    choose(page, "create_chat_completion")
    bs.input_for(page, "temperature", id_prefix="inputs", scope="#action-form").fill("5")
    before = playground.emulator.request_count
    page.click("#run")
    assert field_errors(page, "inputs", "temperature") == ["must be <= 2"]
    assert "Fix the fields" in page.inner_text("#status")
    assert playground.emulator.request_count == before


def test_server_side_errors_show_next_to_their_fields_and_the_key_is_not_echoed(page, playground):
    choose(page, "create_chat_completion")
    page.fill("#connection_api_key", PAGE_KEY)
    shown = run(page)  # an Azure key without a resource name or endpoint
    assert not shown["ok"]
    assert shown["meta"].startswith("invalid_input: ")
    assert shown["result"]["error"]["errors"][0]["path"] == "connection/organization"
    [message] = field_errors(page, "connection", "organization")
    assert message.startswith("is required for Azure OpenAI")

    choose(page, "raw_request")
    page.fill("#inputs_headers", '{"Authorization": "Bearer x"}')
    page.fill("#connection_api_key", "")
    shown = run(page)
    assert shown["result"]["error"]["errors"][0]["path"] == "headers/Authorization"
    assert field_errors(page, "inputs", "headers") == [
        "Authorization: " + shown["result"]["error"]["errors"][0]["message"]]
    assert field_errors(page, "connection", "organization") == []  # old errors are cleared

    # A wrong key reaches the service: a typed API error, and the key is nowhere in the page.
    page.fill("#inputs_headers", "")
    page.fill("#connection_api_key", PAGE_KEY)
    page.click("#connection-form details.field-group > summary")
    page.fill("#connection_endpoint", playground.emulator.url)
    shown = run(page)
    assert shown["result"]["error"]["type"] == "authentication"
    assert shown["result"]["error"]["status"] == 401
    assert shown["meta"].startswith("authentication: ") and "page (azure)" in shown["meta"]
    # Only the API Key input itself holds it (React mirrors its value into the attribute).
    assert PAGE_KEY not in page.inner_text("body")
    assert PAGE_KEY not in page.evaluate("""() => {
        const copy = document.documentElement.cloneNode(true);
        copy.querySelector('#connection_api_key').removeAttribute('value');
        return copy.outerHTML; }""")


def test_json_fields_that_do_not_parse_stop_the_run(page, playground):
    choose(page, "raw_request")
    page.fill("#inputs_query_params", "{limit: 1}")
    before = playground.emulator.request_count
    page.click("#run")
    [error] = field_errors(page, "inputs", "query_params")
    assert error.startswith("is not valid JSON")
    assert playground.emulator.request_count == before
    page.fill("#inputs_query_params", '{"limit": 1}')
    assert run(page)["ok"]


def test_forms_keep_their_values_between_actions_and_reset_restores_defaults(page):
    choose(page, "summarize_text")
    text = bs.input_for(page, "text", id_prefix="inputs", scope="#action-form")
    text.fill("A short text.")
    choose(page, "create_image")
    choose(page, "summarize_text")
    assert text.input_value() == "A short text."
    page.click("#reset")
    assert text.input_value() == RAW["actions"]["summarize_text"]["inputs"]["properties"]["text"]["default"]
    choose(page, "raw_request")
    page.fill("#inputs_data", "{broken")
    page.click("#reset")
    assert page.input_value("#inputs_data") == ""
    assert field_errors(page, "inputs", "data") == []


# --- the answer panel: tool calls ------------------------------------------------------------------

TOOL_CALL_RESULT = {
    "content": None, "finish_reason": "tool_calls",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Lisbon","unit":"c"}'}}]}}],
}


def test_tool_calls_are_shown_by_name_with_their_arguments(browser):
    # A service answering with tool calls, as a host would pass it on (the runner is the step).
    with Playground(environ={}, runner=lambda action, connection, inputs: TOOL_CALL_RESULT) as tools:
        page = open_page(browser, tools)
        try:
            choose(page, "create_chat_completion")
            assert run(page)["result"] == TOOL_CALL_RESULT
            assert page.text_content("#answer h3") == "Tool calls"
            assert page.locator("#answer .tool-name").all_inner_texts() == ["get_weather"]
            assert page.inner_text("#answer .tool-arguments") == '{\n  "city": "Lisbon",\n  "unit": "c"\n}'
            assert page.console.problems == []
        finally:
            page.context.close()


# --- the per-model image rules ----------------------------------------------------------------------


def rule_for(model: str) -> Optional[Dict[str, Any]]:
    """What the manifest's create_image rules whose condition the model matches say of each field
    (their `then` properties merged, later rules adding to earlier ones), or None."""
    merged: Dict[str, Any] = {}
    for rule in RAW["actions"]["create_image"]["inputs"].get("allOf", ()):
        pattern = rule.get("if", {}).get("properties", {}).get("model", {}).get("pattern")
        if pattern and re.search(pattern, model):
            merged.update(rule["then"]["properties"])
    return merged or None


def options_of(page, name: str) -> List[str]:
    return page.evaluate("""(id) => Array.from(document.querySelectorAll(`#${id} option`))
        .map((o) => o.textContent).filter((t) => t !== '')""", f"inputs_{name}")


def shown(page, name: str) -> bool:
    return page.locator(f"#inputs_{name}").count() == 1


@pytest.mark.parametrize("model", ["dall-e-2", "gpt-image-1"])
def test_the_size_list_and_the_fields_follow_the_model(page, playground, model):
    choose(page, "create_image")
    page.click("#action-form details.field-group > summary")  # the advanced fields
    default_model = RAW["actions"]["create_image"]["inputs"]["properties"]["model"]["default"]
    default_rule = rule_for(default_model)
    # The default gpt-image-2 takes any size within its limits: typed, not picked from a list.
    assert "enum" not in default_rule.get("size", {})
    assert options_of(page, "size") == []
    assert sorted(options_of(page, "quality")) == sorted(default_rule["quality"]["enum"])
    assert not shown(page, "style")

    bs.input_for(page, "model", id_prefix="inputs", scope="#action-form").fill(model)
    rule = rule_for(model)
    assert rule is not None and rule["size"]["enum"]
    page.wait_for_function("([id, n]) => document.querySelectorAll(`#${id} option`).length >= n",
                           arg=["inputs_size", len(rule["size"]["enum"])])
    assert sorted(options_of(page, "size")) == sorted(rule["size"]["enum"])
    assert sorted(options_of(page, "quality")) == sorted(rule["quality"]["enum"])
    for name, allowed in rule.items():
        if allowed is False:
            assert not shown(page, name), name  # a field the model refuses is not offered

    page.select_option("#inputs_size", rule["size"]["enum"][-1])
    page.check("#connection_is_openai_key")
    before = playground.emulator.request_count
    answer = run(page)
    assert answer["ok"], answer
    sent = playground.emulator.requests[before].json
    assert (sent["model"], sent["size"]) == (model, rule["size"]["enum"][-1])
    assert "style" not in sent
    assert page.console.problems == []


# --- links, titles, errors in view, a narrow window ---------------------------------------------


def test_links_in_help_text_open_beside_the_page(page):
    link = page.locator("#connection-form a", has_text="platform.openai.com")
    assert link.get_attribute("href") == "https://platform.openai.com/account/api-keys"
    before = page.url
    # Answered here, so nothing leaves the machine.
    page.context.route("https://platform.openai.com/**",
                       lambda route: route.fulfill(status=200, content_type="text/html", body="<p>keys</p>"))
    with page.context.expect_page() as opened:
        link.click()
    opened.value.wait_for_load_state()
    assert opened.value.url == "https://platform.openai.com/account/api-keys"
    opened.value.close()
    assert page.url == before  # what was typed into the forms is still there


def test_prompts_are_titled_as_prompts(page):
    choose(page, "create_multiple_chat_completions")
    assert bs.field_title(page, "prompts", id_prefix="inputs") == "Prompts"


def in_view(page, selector: str) -> bool:
    return page.evaluate("""(selector) => { const r = document.querySelector(selector).getBoundingClientRect();
        return r.top >= -1 && r.bottom <= window.innerHeight + 1; }""", selector)


def test_the_page_brings_the_first_field_in_error_into_view(narrow_page):
    page = narrow_page
    choose(page, "create_chat_completion")
    page.fill("#connection_api_key", PAGE_KEY)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    shown_answer = run(page)  # an Azure key without a resource name: refused by the server
    assert shown_answer["result"]["error"]["errors"][0]["path"] == "connection/organization"
    assert page.evaluate("document.activeElement.id") == "connection_organization"
    assert in_view(page, "#connection_organization")

    page.fill("#connection_api_key", "")
    bs.input_for(page, "temperature", id_prefix="inputs", scope="#action-form").fill("5")
    page.evaluate("window.scrollTo(0, 0)")
    page.click("#run")  # refused in the page
    assert field_errors(page, "inputs", "temperature") == ["must be <= 2"]
    assert page.evaluate("document.activeElement.id") == "inputs_temperature"
    assert in_view(page, "#inputs_temperature")


def horizontal_overflow(page) -> List[str]:
    """Elements reaching past the window's right edge (none in a usable layout)."""
    return page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        const wide = document.documentElement.scrollWidth > width ? ['(the document scrolls sideways)'] : [];
        return wide.concat(Array.from(document.querySelectorAll('body *'))
          .filter((el) => el.getClientRects().length && el.getBoundingClientRect().right > width + 0.5)
          .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`)); }""")


def runs_with_its_defaults(action: str) -> bool:
    inputs = RAW["actions"][action]["inputs"]
    return all("default" in inputs["properties"][name] for name in inputs.get("required", ()))


def test_a_420_pixel_window_needs_no_horizontal_scrolling(narrow_page):
    page = narrow_page
    assert page.evaluate("document.documentElement.clientWidth") == 420
    assert horizontal_overflow(page) == []
    for action in RAW["actions"]:
        choose(page, action)
        page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
        assert horizontal_overflow(page) == [], action
        if not runs_with_its_defaults(action):
            continue  # (a batch id to ask for: the layout is checked, nothing to run)
        shown_answer = run(page)
        assert shown_answer["ok"], (action, shown_answer)
        assert horizontal_overflow(page) == [], action
        assert in_view(page, "#result-meta")  # the result is brought into view below the forms
    assert page.console.problems == []


def test_screenshot_for_the_readme(page):
    path = os.environ.get("CONNECTOR_PLAYGROUND_SCREENSHOT")
    if not path:
        pytest.skip("set CONNECTOR_PLAYGROUND_SCREENSHOT=path.png to save a screenshot")
    choose(page, "create_chat_completion")
    page.evaluate("document.getElementById('connection-section').open = false")
    assert run(page)["ok"]
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=path)


def model_options(page) -> List[Dict[str, str]]:
    """The datalist the model input points at: each option's value, label and lifecycle status."""
    page.wait_for_selector("body[data-options]")
    page.wait_for_function("""() => { const f = document.getElementById('inputs_model');
        return f && f.list && f.list.options.length > 0; }""")
    return page.evaluate("""() => Array.from(document.getElementById('inputs_model').list.options)
        .map((o) => ({ value: o.value, label: o.label, status: o.dataset.status || '' }))""")


@pytest.mark.parametrize("action,expected", [("create_chat_completion", {"gpt-5.1", "gpt-5-mini"}),
                                             ("create_image", {"gpt-image-2"})])
def test_the_model_input_offers_the_services_models_with_retired_ones_marked(page, action, expected):
    choose(page, action)
    field = page.locator('#action-form input[id="inputs_model"]')
    assert field.get_attribute("type") in (None, "text")  # still free text
    options = model_options(page)
    values = {option["value"] for option in options}
    assert expected <= values
    retired = [option for option in options if option["status"] == "retired"]
    assert retired and all("retired" in option["label"] for option in retired)
    assert all(option["label"].startswith(option["value"]) for option in options)
    # Free text still goes through: a model not in the list can be typed.
    field.fill("my-own-deployment")
    assert field.input_value() == "my-own-deployment"
    assert page.console.problems == []


def test_a_failed_options_fetch_leaves_a_plain_text_box(page):
    choose(page, "create_chat_completion")
    model_options(page)
    # A connection the server refuses (an endpoint that is not a URL): no list, a plain text box.
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    bs.input_for(page, "endpoint", id_prefix="connection", scope="#connection-form").fill("not a url")
    bs.input_for(page, "api_key", id_prefix="connection", scope="#connection-form").fill(PAGE_KEY)
    page.wait_for_function("""() => document.body.dataset.options &&
        !document.getElementById('inputs_model').hasAttribute('list')""")
    assert page.locator("datalist#options-model").count() == 0
