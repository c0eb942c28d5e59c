"""The playground page in headless Chromium: one action of each kind clicked through to its
result, with client-side and server-side errors shown next to their fields.

Set CONNECTOR_PLAYGROUND_SCREENSHOT=path.png to save a screenshot of the page (docs/playground.png
was made this way).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, List

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


@pytest.fixture
def page(browser, playground):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(bs.DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    console = Console()
    page.on("console", console)
    page.on("pageerror", lambda error: console.problems.append(f"pageerror: {error}"))
    page.goto(playground.page_url)
    page.wait_for_selector("body[data-ready=true]")
    page.console = console
    yield page
    context.close()


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
        image = page.locator("#images img")
        assert image.count() == 1
        page.wait_for_function("() => document.querySelector('#images img').complete")
        assert image.evaluate("img => img.naturalWidth > 0")
    elif kind == "multiple":
        assert result["totals"]["succeeded"] == len(spec["inputs"]["properties"]["prompts"]["default"])
    elif kind == "raw":
        assert result["status"] == 200 and result["data"]["object"] == "list"
    elif kind == "summarize":
        assert result["summary"] and result["chunks"] == 1
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


def test_screenshot_for_the_readme(page):
    path = os.environ.get("CONNECTOR_PLAYGROUND_SCREENSHOT")
    if not path:
        pytest.skip("set CONNECTOR_PLAYGROUND_SCREENSHOT=path.png to save a screenshot")
    choose(page, "create_chat_completion")
    page.evaluate("document.getElementById('connection-section').open = false")
    assert run(page)["ok"]
    page.screenshot(path=path)
