"""The playground page's logic, without HTTP: the connector document, running a step, the static files.

`PlaygroundApp` answers what the page asks for; the HTTP handler (handler.py) only routes and
guards, and the server (server.py) binds the socket and owns the emulator.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from importlib import resources
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..errors import ConnectorError
from ..redaction import redact_json

LOG = logging.getLogger(__name__)


STATIC_FILES = {
    "forms.bundle.js": "text/javascript; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
    "THIRD_PARTY_LICENSES.txt": "text/plain; charset=utf-8",
}

Runner = Callable[[str, Optional[Mapping[str, Any]], Optional[Mapping[str, Any]]], Dict[str, Any]]


class PlaygroundError(Exception):
    """A request the playground refuses before running anything: (status, type, message)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


class PlaygroundApp:
    """What the page asks for: the connector document, step runs, static files, the icon.

    `env_connection` is the environment's connection (or None); without it, steps with no API key
    run on the emulator at `emulator_url` with `emulator_key`. `runner` runs a step (default:
    `azure_openai_connector.run_action`, the path a host takes).
    """

    def __init__(self, *, env_connection: Optional[Dict[str, Any]], emulator_url: Optional[str] = None,
                 emulator_key: str = "", runner: Optional[Runner] = None) -> None:
        self._env_connection = env_connection
        self._emulator_url = emulator_url
        self._emulator_key = emulator_key
        self._runner = runner
        self._static: Dict[str, bytes] = {}
        self._connector_document: Optional[bytes] = None

    @property
    def server_connection(self) -> Dict[str, Any]:
        """Where a step without an API key runs (no secrets): source, service, note."""
        if self._env_connection is not None:
            service = "openai" if self._env_connection.get("is_openai_key") else "azure"
            variable = "OPENAI_API_KEY" if service == "openai" else "AZURE_OPENAI_API_KEY"
            name = "OpenAI" if service == "openai" else "Azure OpenAI"
            return {"source": "environment", "service": service,
                    "note": f"Leave API Key empty to use the {name} credentials from {variable}; "
                            f"the other connection fields then come from the environment too."}
        return {"source": "emulator", "service": None,
                "note": "No credentials in the environment: leave API Key empty to run against the "
                        "built-in emulator (Is OpenAI Key picks its OpenAI or Azure flavour)."}

    # --- the API -----------------------------------------------------------------

    def connector_document(self) -> bytes:
        """GET /api/connector: icon, label, description, the connection form, every action's form."""
        if self._connector_document is None:
            self._connector_document = json.dumps(self._describe(), ensure_ascii=False).encode("utf-8")
        return self._connector_document

    def _describe(self) -> Dict[str, Any]:
        from ..forms import action_form, connection_form
        from ..manifest import load_manifest

        raw = load_manifest().raw
        connector = raw["connector"]
        connection = connection_form(raw)
        # The server can supply the key, so the page's form may leave it empty.
        for part in [connection["schema"], *connection["schema"].get("dependencies", {}).get("auth", {}).get("oneOf", ())]:
            part["required"] = [name for name in part.get("required", ()) if name != "api_key"]
        placeholder = ("(empty: the environment's key)" if self._env_connection is not None
                       else "(empty: the built-in emulator)")
        connection["uiSchema"].setdefault("api_key", {})["ui:placeholder"] = placeholder
        return {
            "connector": {**{key: connector.get(key) for key in ("key", "label", "description", "version",
                                                                 "documentation_url")},
                          "icon": _icon_data_url(connector.get("icon"))},
            "connection": {"label": raw["connection"]["label"], "form": connection},
            "actions": [{"key": key, "label": spec["label"], "description": spec["description"],
                         "form": action_form(raw, key), "option_inputs": _option_inputs(spec)}
                        for key, spec in raw["actions"].items()],
            "server_connection": self.server_connection,
        }

    def run(self, request: Any) -> Dict[str, Any]:
        """POST /api/run: run one step for the page; the answer never contains an API key."""
        if not isinstance(request, dict):
            raise PlaygroundError(400, "invalid_request", "the body must be a JSON object")
        action = request.get("action")
        connection = request.get("connection")
        connection = {} if connection is None else connection
        inputs = request.get("inputs")
        inputs = {} if inputs is None else inputs
        if not isinstance(action, str) or not action:
            raise PlaygroundError(400, "invalid_request", "'action' must be an action key")
        if not isinstance(connection, dict):
            raise PlaygroundError(400, "invalid_request", "'connection' must be an object")
        if not isinstance(inputs, dict):
            raise PlaygroundError(400, "invalid_request", "'inputs' must be an object")
        secrets_seen = [self._emulator_key, *(values.get(name) for values in (self._env_connection or {}, connection)
                                              for name in ("api_key", "client_secret"))]
        connection, ran_on = self._resolve_connection(connection)
        runner = self._runner
        if runner is None:
            import azure_openai_connector

            runner = azure_openai_connector.run_action
        started = time.perf_counter()
        answer: Dict[str, Any]
        try:
            answer = {"ok": True, "result": runner(action, connection, inputs)}
        except ConnectorError as error:
            answer = {"ok": False, "error": error.to_dict()}
        except Exception as error:  # noqa: BLE001 - the page shows it instead of a dropped request
            answer = {"ok": False, "error": {"type": "internal_error",
                                             "message": f"{type(error).__name__}: {error}"}}
            LOG.error("step %s failed unexpectedly: %s", action,
                      redact_json(f"{type(error).__name__}: {error}", secrets_seen))
        answer["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        answer["ran_on"] = ran_on
        return redact_json(answer, secrets_seen)

    def options(self, request: Any) -> Dict[str, Any]:
        """POST /api/options: the live options of one input (`x-options` in the manifest) on the
        page's connection, resolved as `run` resolves it; the answer never contains an API key."""
        if not isinstance(request, dict):
            raise PlaygroundError(400, "invalid_request", "the body must be a JSON object")
        action = request.get("action")
        input_name = request.get("input")
        connection = request.get("connection")
        connection = {} if connection is None else connection
        refresh = request.get("refresh", False)
        if not isinstance(action, str) or not action:
            raise PlaygroundError(400, "invalid_request", "'action' must be an action key")
        if not isinstance(input_name, str) or not input_name:
            raise PlaygroundError(400, "invalid_request", "'input' must be an input name")
        if not isinstance(connection, dict):
            raise PlaygroundError(400, "invalid_request", "'connection' must be an object")
        if not isinstance(refresh, bool):
            raise PlaygroundError(400, "invalid_request", "'refresh' must be true or false")
        secrets_seen = [self._emulator_key, (self._env_connection or {}).get("api_key"), connection.get("api_key")]
        connection, ran_on = self._resolve_connection(connection)
        from ..host_manager import host_plugin_manager

        answer: Dict[str, Any]
        try:
            options = host_plugin_manager().hook.input_options(
                action=action, input=input_name, connection=connection, refresh=refresh)
            answer = {"ok": True, "options": list(options or [])}
        except ConnectorError as error:
            answer = {"ok": False, "error": error.to_dict()}
        except Exception as error:  # noqa: BLE001 - the page keeps a plain text box instead
            answer = {"ok": False, "error": {"type": "internal_error",
                                             "message": f"{type(error).__name__}: {error}"}}
            LOG.error("options of %s.%s failed unexpectedly: %s", action, input_name,
                      redact_json(f"{type(error).__name__}: {error}", secrets_seen))
        answer["ran_on"] = ran_on
        return redact_json(answer, secrets_seen)

    def _resolve_connection(self, page: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        if page.get("api_key") not in (None, "") or page.get("auth") not in (None, "", "api_key"):
            service = "openai" if page.get("is_openai_key") else "azure"
            return page, {"source": "page", "service": service}
        if self._env_connection is not None:
            service = "openai" if self._env_connection.get("is_openai_key") else "azure"
            return dict(self._env_connection), {"source": "environment", "service": service}
        if self._emulator_url is None:
            raise PlaygroundError(409, "no_connection", "no API key given and no server connection")
        openai = page.get("is_openai_key") is True
        connection = {name: value for name, value in page.items()
                      if name not in ("api_key", "endpoint") and value not in (None, "")}
        connection.update(api_key=self._emulator_key,
                          endpoint=self._emulator_url + ("/v1" if openai else ""))
        return connection, {"source": "emulator", "service": "openai" if openai else "azure"}

    # --- static files ------------------------------------------------------------

    def load_static(self) -> None:
        """Read the page and its static files once, so a missing file fails at start."""
        base = resources.files(__package__) / "static"
        for name in list(STATIC_FILES) + ["index.html"]:
            self._static[name] = (base / name).read_bytes()

    def static(self, name: str) -> Optional[bytes]:
        return self._static.get(name)

    def icon(self) -> Optional[Tuple[str, bytes]]:
        """The connector's icon: (content type, bytes), or None."""
        from ..manifest import load_manifest

        return _icon(load_manifest().raw["connector"].get("icon"))


def _option_inputs(spec: Mapping[str, Any]) -> List[str]:
    """The inputs of an action whose manifest field names an options source (`x-options`): the
    form's schema leaves `x-` keywords out, so the page learns them from this list."""
    fields = ((spec.get("inputs") or {}).get("properties") or {})
    return [name for name, field in fields.items() if isinstance(field, dict) and field.get("x-options")]


def _icon(icon_path: Optional[str]) -> Optional[Tuple[str, bytes]]:
    """The manifest's icon (packaged in data/ under its file name): (content type, bytes), or None."""
    if not icon_path:
        return None
    name = icon_path.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        content = (resources.files("azure_openai_connector") / "data" / name).read_bytes()
    except (FileNotFoundError, OSError):
        return None
    kind = {"svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}.get(
        name.rsplit(".", 1)[-1].lower(), "application/octet-stream")
    return kind, content


def _icon_data_url(icon_path: Optional[str]) -> Optional[str]:
    """The manifest's icon as a data: URL, or None."""
    icon = _icon(icon_path)
    if icon is None:
        return None
    return f"data:{icon[0]};base64,{base64.b64encode(icon[1]).decode('ascii')}"
