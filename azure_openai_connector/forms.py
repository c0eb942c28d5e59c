"""Forms for hosts, generated from the manifest: a JSON Schema plus a react-jsonschema-form UI schema.

Nothing here is written by hand per field: titles, help, defaults and ranges come from
connector.yaml; the manifest's `ui` lists (order, advanced, multiline, json) pick the widgets.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping

JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
ADVANCED_CLASS = "advanced-field"


def connection_form(manifest: Mapping[str, Any]) -> Dict[str, Any]:
    """The connection's form: secret fields become password inputs."""
    connection = manifest["connection"]
    return _form(connection["schema"], connection.get("ui", {}), title=connection["label"],
                 description=connection.get("description"))


def action_form(manifest: Mapping[str, Any], action: str) -> Dict[str, Any]:
    """One action's form, with its defaults as the initial form data."""
    spec = manifest["actions"][action]
    return _form(spec["inputs"], spec.get("ui", {}), title=spec["label"], description=spec["description"])


def _form(inputs: Mapping[str, Any], ui: Mapping[str, List[str]], *, title: str,
          description: Any) -> Dict[str, Any]:
    schema = copy.deepcopy(dict(inputs))
    schema = {"$schema": JSON_SCHEMA_DIALECT, "title": title,
              **({"description": description} if description else {}), **schema}
    fields = schema["properties"]
    ui_schema: Dict[str, Any] = {"ui:order": list(ui.get("order", ())) + ["*"]}
    for name, field in fields.items():
        widget = _field_ui(name, field, ui)
        if field.pop("secret", False):
            widget["ui:widget"] = "password"
            widget["ui:options"] = {**widget.get("ui:options", {}), "autocomplete": "off"}
        if widget:
            ui_schema[name] = widget
    form_data = {name: copy.deepcopy(field["default"]) for name, field in fields.items() if "default" in field}
    return {"schema": schema, "uiSchema": ui_schema, "formData": form_data}


def _field_ui(name: str, field: Mapping[str, Any], ui: Mapping[str, List[str]]) -> Dict[str, Any]:
    widget: Dict[str, Any] = {}
    if name in ui.get("json", ()):
        widget["ui:field"] = "json"
    elif name in ui.get("multiline", ()):
        widget.update(_multiline(field))
    if field.get("examples"):
        widget["ui:placeholder"] = str(field["examples"][0])
    if name in ui.get("advanced", ()):
        widget["ui:classNames"] = ADVANCED_CLASS
    return widget


def _multiline(field: Mapping[str, Any]) -> Dict[str, Any]:
    textarea = {"ui:widget": "textarea", "ui:options": {"rows": 4}}
    if field.get("type") == "string":
        return textarea
    items = field.get("items", {})
    if items.get("type") == "string":
        return {"items": textarea}
    if items.get("type") == "object":
        # A list of messages: each message's text fields become text areas.
        return {"items": {name: textarea for name, sub in items.get("properties", {}).items()
                          if sub.get("type") == "string" and "enum" not in sub and name == "content"}}
    return {}
