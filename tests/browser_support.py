"""Helpers for rendering the vendored forms bundle in headless Chromium.

Plain module (no pytest imports). Typical use in a test::

    from browser_support import Browser, chromium_available, new_page, render_form_page, submitted_data

    pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs Chromium + playwright")

    with Browser() as browser:
        page = new_page(browser)
        render_form_page(page, None, {"schema": schema, "uiSchema": {}, "formData": {}})
        page.click("button[type=submit]")
        assert submitted_data(page) == [...]

Uses the system Chromium (``/usr/bin/chromium``, or ``$CONNECTOR_CHROMIUM``) through the
``playwright`` package; ``playwright install`` is never needed. Pages made by :func:`new_page`
are in-memory and every network request is aborted, so nothing waits on the network (the
playground tests make their own context for the local server).

The vendored ``ConnectorForms`` bundle registers a JSON editor for ``"ui:field": "json"`` and shows
a root ``"ui:options": {"groups": [...]}`` as collapsible ``details.field-group`` sections, closed
until opened (:func:`open_groups`) or until one of their fields has an error.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE_PATH = REPO_ROOT / "azure_openai_connector" / "playground" / "static" / "forms.bundle.js"

#: Per-action timeout for pages made by :func:`new_page` / :func:`render_form_page` (ms).
DEFAULT_TIMEOUT_MS = 15_000
#: Timeout for starting Chromium (ms).
LAUNCH_TIMEOUT_MS = 30_000

#: Chromium flags needed on a machine with a closed network (it hangs without them).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: A little CSS so RJSF's bootstrap-3 class names look sane without bootstrap.
BASE_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; max-width: 640px; }
.form-group { margin: 0 0 10px; }
.control-label, legend { display: block; font-weight: 600; margin-bottom: 3px; }
.form-control { box-sizing: border-box; width: 100%; padding: 4px 6px; font: inherit; }
textarea.form-control { min-height: 4em; }
fieldset { border: 1px solid #ccc; padding: 8px 12px; margin: 0 0 10px; }
.field-description, .help-block { color: #666; font-size: 12px; margin: 2px 0; }
.text-danger, .required { color: #b00020; }
.error-detail { list-style: none; padding: 0; margin: 3px 0 0; }
.panel-danger { border: 1px solid #b00020; padding: 6px 10px; margin-bottom: 12px; }
.panel-title { font-size: 14px; margin: 0 0 4px; }
.list-group { margin: 0; padding-left: 18px; }
.hidden { display: none; }
.btn { padding: 6px 14px; font: inherit; }
"""

_PAGE_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>ConnectorForms</title><style>{css}</style></head>
<body><div id="form-root"></div></body></html>"""

_CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> Optional[str]:
    """Path of the Chromium binary to use, or None if there is none."""
    env = os.environ.get("CONNECTOR_CHROMIUM")
    candidates = ([env] if env else []) + list(_CHROMIUM_CANDIDATES)
    for cand in candidates:
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_available() -> bool:
    """True if the ``playwright`` package imports and a Chromium binary is installed.

    Does not start the browser (cheap enough to call at import time in a test module).
    """
    try:
        import playwright.sync_api  # noqa: F401
    except Exception:
        return False
    return chromium_path() is not None


class Browser:
    """Context manager: starts Playwright + system Chromium, yields a Playwright ``Browser``.

    ::

        with Browser() as browser:
            page = new_page(browser)
    """

    def __init__(self, executable_path: Optional[str] = None, extra_args: Sequence[str] = ()):
        self.executable_path = executable_path or chromium_path()
        self.extra_args = tuple(extra_args)
        self._playwright = None
        self.browser = None

    def __enter__(self):
        if not self.executable_path:
            raise RuntimeError("Chromium not found (apt-get install -y chromium, or set CONNECTOR_CHROMIUM)")
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self.browser = self._playwright.chromium.launch(
                executable_path=self.executable_path,
                headless=True,
                args=list(CHROMIUM_ARGS + self.extra_args),
                timeout=LAUNCH_TIMEOUT_MS,
            )
        except BaseException:
            self._playwright.stop()
            self._playwright = None
            raise
        return self.browser

    def __exit__(self, *exc_info) -> None:
        try:
            if self.browser is not None:
                self.browser.close()
        finally:
            self.browser = None
            if self._playwright is not None:
                self._playwright.stop()
                self._playwright = None


def launch_browser(**kwargs) -> Browser:
    """Same as ``Browser(**kwargs)``; use as ``with launch_browser() as browser:``."""
    return Browser(**kwargs)


def new_page(browser, timeout_ms: int = DEFAULT_TIMEOUT_MS, viewport: Optional[Mapping[str, int]] = None):
    """A page in a fresh context with bounded timeouts; all network requests are aborted."""
    context = browser.new_context(viewport=dict(viewport or {"width": 800, "height": 900}))
    context.set_default_timeout(timeout_ms)
    context.set_default_navigation_timeout(timeout_ms)
    context.route("**/*", lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    return page


_RENDER_JS = """
(form) => {
  window.__submitted = [];
  window.__changes = [];
  window.__errors = [];
  const clone = (d) => (d === undefined ? null : JSON.parse(JSON.stringify(d)));
  const options = Object.assign({}, form, {
    onSubmit: (data) => { window.__submitted.push(clone(data)); },
    onChange: (data) => { window.__changes.push(clone(data)); },
  });
  window.__form = window.ConnectorForms.render(document.getElementById('form-root'), options);
  return window.ConnectorForms.version;
}
"""

_ERROR_CAPTURE_JS = """
() => {
  window.__errors = window.__errors || [];
  window.addEventListener('error', (e) => window.__errors.push(String(e.message || e)));
  window.addEventListener('unhandledrejection', (e) => window.__errors.push(String(e.reason)));
  const orig = console.error.bind(console);
  console.error = (...args) => { window.__errors.push(args.map(String).join(' ')); orig(...args); };
}
"""


def render_form_page(page, bundle_path: Union[str, Path, None], form: Mapping[str, Any]) -> None:
    """Load an in-memory page with the bundle and render ``form`` with ``ConnectorForms.render``.

    ``form`` is ``{"schema": ..., "uiSchema": ..., "formData": ...}`` and may also carry the other
    JSON-able render options (``extraErrors``, ``liveValidate``, ``submitLabel``, ``idPrefix``,
    ``disabled``, ``readonly``, ``noHtml5Validate``). ``bundle_path=None`` means the vendored bundle.

    Afterwards: ``window.__form`` is the handle, ``window.__submitted`` lists submitted formData,
    ``window.__changes`` lists formData from onChange, ``window.__errors`` collects page errors
    and ``console.error`` output.
    """
    path = Path(bundle_path) if bundle_path is not None else BUNDLE_PATH
    if not path.is_file():
        raise FileNotFoundError(f"forms bundle not found: {path} (run frontend/build.sh)")
    page.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page.set_content(_PAGE_HTML.format(css=BASE_CSS))
    page.evaluate(_ERROR_CAPTURE_JS)
    page.add_script_tag(path=str(path))
    page.evaluate(_RENDER_JS, dict(form))
    page.wait_for_selector("#form-root form", state="attached")


# --- small query helpers -------------------------------------------------------------------


def submitted_data(page) -> List[Any]:
    """formData of every submit that passed validation, oldest first."""
    return page.evaluate("window.__submitted || []")


def page_errors(page) -> List[str]:
    """Uncaught errors and console.error messages seen since render_form_page."""
    return page.evaluate("window.__errors || []")


def form_data(page) -> Any:
    """Current formData (``handle.getFormData()``)."""
    return page.evaluate("window.__form.getFormData()")


def set_form_data(page, data: Any) -> None:
    page.evaluate("(d) => window.__form.setFormData(d)", data)


def set_extra_errors(page, errors: Union[Mapping[str, Any], Sequence[Mapping[str, str]], None]) -> None:
    """Show server-side errors: an RJSF ErrorSchema dict, or a list of ``{"path", "message"}``."""
    page.evaluate(
        """(e) => window.__form.setExtraErrors(
             Array.isArray(e) ? window.ConnectorForms.errorSchemaFromPaths(e) : e)""",
        errors if errors is None or isinstance(errors, Mapping) else list(errors),
    )


def validate(page) -> Dict[str, Any]:
    """``handle.validate()``: shows errors in the form and returns ``{"errors": [...], "errorSchema": {...}}``."""
    return page.evaluate("window.__form.validate()")


def submit(page) -> None:
    """Click the form's submit button."""
    page.locator("#form-root button[type=submit]").click()


#: JS expression: is element ``el`` displayed? (``checkVisibility`` also sees into closed ``<details>``.)
IS_VISIBLE_JS = "(el.checkVisibility ? el.checkVisibility() : el.getClientRects().length > 0)"

_VISIBLE_TEXTS_JS = """
(selector) => Array.from(document.querySelectorAll(selector))
  .filter((el) => """ + IS_VISIBLE_JS + """)
  .map((el) => el.innerText.trim())
  .filter((t) => t)
"""


def visible_error_texts(page) -> List[str]:
    """Texts of visible RJSF errors: the top error list and the per-field error lists."""
    return page.evaluate(_VISIBLE_TEXTS_JS, "#form-root .text-danger:not(.required)")


def field_error_texts(page, field_path: Union[str, Sequence[str]], id_prefix: str = "root") -> List[str]:
    """Errors shown next to one field, e.g. ``"model"`` or ``"messages/0/role"``.

    Includes a JSON field's own messages (text that does not parse, errors inside its value).
    """
    parts = [field_path] if isinstance(field_path, str) and "/" not in field_path else (
        field_path.split("/") if isinstance(field_path, str) else list(field_path))
    field_id = "_".join([id_prefix, *[str(p) for p in parts]])
    return page.evaluate(_VISIBLE_TEXTS_JS,
                         f'[id="{field_id}__error"] li, .json-field:has(> [id="{field_id}"]) .json-field-errors li')


def field_labels(page) -> List[str]:
    """Label texts in document order (required ``*`` marker stripped); object titles are not labels."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#form-root label')).map((label) => {
             const c = label.cloneNode(true);
             c.querySelectorAll('.required').forEach((r) => r.remove());
             c.querySelectorAll('input, select, textarea').forEach((r) => r.remove());
             return c.textContent.trim();
           }).filter((t) => t)"""
    )


def legend_texts(page) -> List[str]:
    """Titles of nested objects/arrays (RJSF renders them as ``<legend>``)."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#form-root legend')).map((l) => {
             const c = l.cloneNode(true);
             c.querySelectorAll('.required').forEach((r) => r.remove());
             return c.textContent.trim();
           }).filter((t) => t)"""
    )


def input_for(page, field_name: str, id_prefix: str = "root", scope: str = "#form-root"):
    """Locator of RJSF's input/select/textarea for a top-level field (id ``root_<field>``).

    ``field_name`` may be a slash path (``"nested/inner"``) for nested object fields; ``scope`` is
    the CSS selector of the element the form was rendered into.
    """
    field_id = "_".join([id_prefix, *field_name.split("/")])
    return page.locator(f'{scope} [id="{field_id}"]')


def field_title(page, field_name: str, id_prefix: str = "root", visible_only: bool = True) -> Optional[str]:
    """The title a field shows (its label, a checkbox's text, or an array's legend), without the
    required marker; None when the field has none, or (``visible_only``) it is not displayed."""
    field_id = "_".join([id_prefix, *field_name.split("/")])
    return page.evaluate(
        """([id, visibleOnly]) => {
             const field = document.getElementById(id);
             if (!field) return null;
             const el = field.tagName === 'FIELDSET' ? field.querySelector(':scope > legend')
               : document.querySelector(`label[for="${CSS.escape(id)}"]`) || field.closest('label');
             if (!el || (visibleOnly && !""" + IS_VISIBLE_JS + """)) return null;
             const node = el;
             const c = node.cloneNode(true);
             c.querySelectorAll('.required, input, select, textarea').forEach((r) => r.remove());
             return c.textContent.trim();
           }""",
        [field_id, visible_only])


def open_groups(page, open: bool = True) -> int:
    """Open (or close) every collapsible field group (``details.field-group``) and wait until the
    page has seen each ``toggle`` event; returns how many groups there are."""
    return page.evaluate(
        """async (open) => {
             const groups = Array.from(document.querySelectorAll('details.field-group'));
             await Promise.all(groups.filter((d) => d.open !== open).map((d) => new Promise((done) => {
               d.addEventListener('toggle', done, {once: true});
               d.open = open;
             })));
             return groups.length;
           }""", open)


def close_groups(page) -> int:
    """Close every collapsible field group (see :func:`open_groups`)."""
    return open_groups(page, open=False)


def wait_for_field_error(page, field_path: str, id_prefix: str = "root") -> List[str]:
    """Wait (bounded by the page's timeout) until an error shows next to the field; returns them."""
    field_id = "_".join([id_prefix, *field_path.split("/")])
    page.wait_for_function(
        """(id) => Array.from(document.querySelectorAll(`[id="${id}__error"] li`))
             .some((el) => """ + IS_VISIBLE_JS + """ && el.innerText.trim())""", arg=field_id)
    return field_error_texts(page, field_path, id_prefix)


def selected_label(page, field_name: str, id_prefix: str = "root") -> str:
    """Text of the selected option of an enum ``<select>``.

    RJSF uses option *indexes* as ``<option value>``, so ``input_value()`` gives ``"1"``, not the enum
    value; choose options by label: ``input_for(page, "role").select_option(label="user")``.
    """
    return input_for(page, field_name, id_prefix).evaluate(
        "e => (e.selectedIndex >= 0 ? e.options[e.selectedIndex].text : '')")
