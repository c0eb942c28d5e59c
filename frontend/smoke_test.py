#!/usr/bin/env python3
"""Smoke test for the vendored forms bundle (not part of the pytest suite).

    python frontend/smoke_test.py [--screenshot /tmp/forms_smoke.png]

Renders a small draft-07 schema in headless Chromium through tests/browser_support.py and
checks labels, defaults, submit, validation errors and server-side (extra) errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import browser_support as bs  # noqa: E402

SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "title": "Chat completion",
    "required": ["deployment", "temperature"],
    "properties": {
        "deployment": {"type": "string", "title": "Deployment", "default": "gpt-4o-mini"},
        "temperature": {"type": "number", "title": "Temperature", "minimum": 0, "maximum": 2, "default": 1},
        "role": {"type": "string", "title": "Role", "enum": ["system", "user", "assistant"], "default": "user"},
        "api_key": {"type": "string", "title": "API key", "default": "sk-test"},
        "prompt": {"type": "string", "title": "Prompt", "default": "Hello"},
        "retry": {
            "type": "object",
            "title": "Retry policy",
            "properties": {
                "max_attempts": {"type": "integer", "title": "Max attempts", "minimum": 1, "default": 3},
                "backoff": {"type": "string", "title": "Backoff", "enum": ["fixed", "exponential"],
                            "default": "exponential"},
            },
        },
    },
}
UI_SCHEMA = {
    "api_key": {"ui:widget": "password"},
    "prompt": {"ui:widget": "textarea"},
}
DEFAULTS = {
    "deployment": "gpt-4o-mini",
    "temperature": 1,
    "role": "user",
    "api_key": "sk-test",
    "prompt": "Hello",
    "retry": {"max_attempts": 3, "backoff": "exponential"},
}


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)
    print(f"ok  {what}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--screenshot", default="/tmp/forms_smoke.png")
    args = ap.parse_args()
    if not bs.chromium_available():
        print("SKIP: playwright or chromium missing", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    with bs.Browser() as browser:
        page = bs.new_page(browser)
        bs.render_form_page(page, None, {"schema": SCHEMA, "uiSchema": UI_SCHEMA, "formData": {},
                                         "submitLabel": "Run"})
        version = page.evaluate("window.ConnectorForms.version")
        check(version == "5.24.13", f"ConnectorForms.version == {version!r}")

        labels = bs.field_labels(page)
        for want in ("Deployment", "Temperature", "Role", "API key", "Prompt", "Max attempts", "Backoff"):
            check(want in labels, f"label {want!r} shown")
        check("Retry policy" in bs.legend_texts(page), "nested object title shown")

        check(bs.input_for(page, "deployment").input_value() == "gpt-4o-mini", "string default shown")
        check(bs.input_for(page, "temperature").input_value() == "1", "number default shown")
        check(bs.input_for(page, "temperature").get_attribute("type") == "number", "number input")
        check(bs.input_for(page, "role").evaluate("e => e.tagName") == "SELECT", "enum is a select")
        check(bs.selected_label(page, "role") == "user", "enum default selected")
        check(bs.input_for(page, "api_key").get_attribute("type") == "password", "password widget")
        check(bs.input_for(page, "prompt").evaluate("e => e.tagName") == "TEXTAREA", "textarea widget")
        check(bs.input_for(page, "prompt").input_value() == "Hello", "textarea default shown")
        check(bs.input_for(page, "retry/max_attempts").input_value() == "3", "nested default shown")
        check(page.locator("#form-root button[type=submit]").inner_text() == "Run", "submitLabel used")
        check(bs.form_data(page) == DEFAULTS, "getFormData() has the defaults")

        bs.submit(page)
        check(bs.submitted_data(page) == [DEFAULTS], "submitting defaults recorded in window.__submitted")
        check(bs.visible_error_texts(page) == [], "no errors after a valid submit")

        # out-of-range number -> RJSF (ajv) error text on submit, no submit recorded
        bs.input_for(page, "temperature").fill("5")
        bs.submit(page)
        errors = bs.visible_error_texts(page)
        check(any("must be <= 2" in e for e in errors), f"range error shown: {errors}")
        check(bs.field_error_texts(page, "temperature") == ["must be <= 2"], "error next to the field")
        check(len(bs.submitted_data(page)) == 1, "invalid submit not recorded")
        result = bs.validate(page)
        check([e["property"] for e in result["errors"]] == [".temperature"], "validate() returns the error")

        # fix it; typing also works for the nested field
        bs.input_for(page, "temperature").fill("0.5")
        bs.input_for(page, "retry/max_attempts").fill("5")
        bs.input_for(page, "role").select_option(label="system")
        bs.submit(page)
        last = bs.submitted_data(page)[-1]
        check(last["temperature"] == 0.5 and last["retry"]["max_attempts"] == 5
              and last["role"] == "system", "typed values submitted")
        check(bs.visible_error_texts(page) == [], "errors cleared after a valid submit")

        # server-side errors via errorSchemaFromPaths
        es = page.evaluate("""() => window.ConnectorForms.errorSchemaFromPaths([
            {path: "deployment", message: "deployment not found"},
            {path: "retry/max_attempts", message: "too many attempts"},
            {path: "", message: "request rejected"}])""")
        check(es == {"deployment": {"__errors": ["deployment not found"]},
                     "retry": {"max_attempts": {"__errors": ["too many attempts"]}},
                     "__errors": ["request rejected"]}, "errorSchemaFromPaths builds the ErrorSchema")
        bs.set_extra_errors(page, [{"path": "deployment", "message": "deployment not found"},
                                   {"path": "retry/max_attempts", "message": "too many attempts"},
                                   {"path": "", "message": "request rejected"}])
        check(bs.field_error_texts(page, "deployment") == ["deployment not found"], "extra error next to field")
        check(bs.field_error_texts(page, "retry/max_attempts") == ["too many attempts"], "nested extra error")
        check(any("request rejected" in e for e in bs.visible_error_texts(page)), "root extra error listed")
        check(bs.form_data(page)["temperature"] == 0.5, "setExtraErrors keeps typed data")
        page.screenshot(path=args.screenshot, full_page=True)
        print(f"screenshot: {args.screenshot}")
        bs.set_extra_errors(page, None)
        check(bs.visible_error_texts(page) == [], "setExtraErrors(null) clears them")

        # extraErrors given to render() up front; setFormData; handle.submit(); unmount
        bs.render_form_page(page, None, {
            "schema": SCHEMA, "uiSchema": UI_SCHEMA, "formData": {"deployment": "x"},
            "extraErrors": {"deployment": {"__errors": ["bad deployment"]}}, "idPrefix": "cfg"})
        check(bs.field_error_texts(page, "deployment", id_prefix="cfg") == ["bad deployment"],
              "extraErrors option shown (idPrefix honoured)")
        bs.set_form_data(page, dict(DEFAULTS, deployment="other"))
        check(bs.input_for(page, "deployment", id_prefix="cfg").input_value() == "other", "setFormData shows")
        page.evaluate("window.__form.submit()")
        page.wait_for_function("window.__submitted.length > 0")
        check(bs.submitted_data(page) == [dict(DEFAULTS, deployment="other")], "handle.submit() submits once")
        page.evaluate("window.__form.unmount()")
        check(page.locator("#form-root form").count() == 0, "unmount() removes the form")
        errs = [e for e in bs.page_errors(page)]
        check(errs == [], f"no page errors: {errs}")
    print(f"smoke test passed in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
