"""Forms for hosts, generated from the manifest: a JSON Schema plus a react-jsonschema-form UI schema.

Nothing here is written by hand per field: titles, help, defaults and ranges come from
connector.yaml; the manifest's `ui` lists (order, advanced, multiline, json) pick the widgets.

Each form is ``{"schema", "uiSchema", "formData"}`` in the conventions of react-jsonschema-form
(RJSF 5): the schema is the manifest's own (JSON Schema draft-07, with ``$schema``, the form's
title and description), ``formData`` holds the defaults, and the UI schema carries

- ``ui:order``: the manifest's field order;
- ``ui:widget: password`` (autocomplete off) for secret fields such as ``api_key``;
- ``ui:widget: textarea`` for the manifest's multiline fields (for a list of strings, its items;
  for a list of messages, each message's content);
- ``ui:field: json`` for the manifest's JSON fields (a JSON editor; the bundled ``ConnectorForms``
  registers it);
- ``ui:placeholder`` from a field's first example, ``ui:help`` stating its allowed range;
- ``ui:description`` in Markdown with ``ui:enableMarkdownInDescription`` where a field's help
  holds a web address, so the address is a link (the rest of the text is escaped, shown as is);
- advanced fields: ``ui:classNames: advanced-field`` on each, and on the root
  ``ui:options.groups = [{"key": "advanced", "title": "Advanced", "fields": [...], "collapsed": true}]``,
  which the bundle's ObjectFieldTemplate shows as a collapsible section (plain RJSF ignores the
  option and shows the fields in order). The form data stays flat: the manifest's input object.

A field whose manifest schema has ``x-fields`` (value -> the fields that value uses, such as the
connection's ``auth``) becomes an RJSF ``dependencies``/``oneOf``: each value's fields move into
its branch, with the manifest's ``if``/``then`` required fields for that value, so the form shows
only what the chosen value needs. (The form's root then allows extra properties: a field defined
in a branch is not one of the root's ``properties``.)

Enums need nothing: RJSF renders them as selects. The manifest's own keywords (``x-...``, such as
the ``x-rule`` naming each per-model rule) are left out of the form's schema: RJSF merges
``allOf`` with json-schema-merge-allof, which gives up on keywords it does not know and then
drops the whole ``allOf``. Without them RJSF applies the ``if``/``then`` rules as the data
changes: a ``then`` that narrows an ``enum`` narrows the select, one that sets a field to
``false`` hides the field. Render with RJSF's
``experimental_defaultFormStateBehavior={"arrayMinItems": {"populate": "requiredOnly"}}`` (the
bundle's default) so an optional list with a ``minItems`` (such as ``stop``) starts empty.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Dict, List, Mapping, Optional

JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
ADVANCED_CLASS = "advanced-field"
ADVANCED_GROUP = {"key": "advanced", "title": "Advanced", "collapsed": True}
# Numbers beyond this lose precision in a browser (IEEE doubles), so their range is not spelled out.
_SAFE_INTEGER = 2 ** 53 - 1
CUSTOM_KEYWORD_PREFIX = "x-"
# A web address a person can open: no template braces ({organization}), no trailing punctuation.
_WEB_ADDRESS = re.compile(r"https?://[^\s{}<>\"'`]+[^\s{}<>\"'`.,;:!?)]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~])")


def connection_form(manifest: Mapping[str, Any]) -> Dict[str, Any]:
    """The connection's form: secret fields become password inputs."""
    connection = manifest["connection"]
    return _form(connection["schema"], connection.get("ui", {}), title=connection["label"],
                 description=connection.get("description"))


def action_form(manifest: Mapping[str, Any], action: str) -> Dict[str, Any]:
    """One action's form, with its defaults as the initial form data."""
    spec = manifest["actions"][action]
    return _form(spec["inputs"], spec.get("ui", {}), title=spec["label"], description=spec["description"])


def all_forms(manifest: Mapping[str, Any]) -> Dict[str, Any]:
    """The connection form and every action's form: ``{"connection": ..., "actions": {key: ...}}``."""
    return {"connection": connection_form(manifest),
            "actions": {key: action_form(manifest, key) for key in manifest["actions"]}}


def _form(inputs: Mapping[str, Any], ui: Mapping[str, List[str]], *, title: str,
          description: Any) -> Dict[str, Any]:
    schema = _without_custom_keywords(copy.deepcopy(dict(inputs)))
    schema = {"$schema": JSON_SCHEMA_DIALECT, "title": title,
              **({"description": description} if description else {}), **schema}
    fields = schema["properties"]
    ui_schema: Dict[str, Any] = {"ui:order": list(ui.get("order", ())) + ["*"]}
    advanced = [name for name in ui.get("order", fields) if name in ui.get("advanced", ())]
    advanced += [name for name in ui.get("advanced", ()) if name not in advanced]
    if advanced:
        ui_schema["ui:options"] = {"groups": [{**ADVANCED_GROUP, "fields": advanced}]}
    for name, field in fields.items():
        widget = _field_ui(name, field, ui)
        if field.pop("secret", False):
            widget["ui:widget"] = "password"
            widget["ui:options"] = {**widget.get("ui:options", {}), "autocomplete": "off"}
        if widget:
            ui_schema[name] = widget
    form_data = {name: copy.deepcopy(field["default"]) for name, field in fields.items() if "default" in field}
    _dependent_fields(schema, inputs)
    return {"schema": schema, "uiSchema": ui_schema, "formData": form_data}


def form_fields(schema: Mapping[str, Any]) -> Dict[str, Any]:
    """Every field of a form's schema, those inside dependency branches included (name -> schema)."""
    fields = dict(schema["properties"])
    for name, dependency in schema.get("dependencies", {}).items():
        for branch in dependency.get("oneOf", ()):
            fields.update((field, sub) for field, sub in branch.get("properties", {}).items() if field != name)
    return fields


def _dependent_fields(schema: Dict[str, Any], manifest_schema: Mapping[str, Any]) -> None:
    """Move the fields named by a field's ``x-fields`` (in the manifest's schema; the form's has no
    ``x-`` keywords) into RJSF dependency branches, one per value."""
    fields = schema["properties"]
    for name in list(fields):
        shown_by_value = manifest_schema["properties"][name].get("x-fields") if name in fields else None
        if not shown_by_value:
            continue
        moved = {field: fields.pop(field) for field in list(fields)
                 if any(field in shown for shown in shown_by_value.values())}
        branches = []
        for value, shown in shown_by_value.items():
            required = _required_when(schema, name, value)
            branch: Dict[str, Any] = {"properties": {name: {"enum": [value]},
                                                     **{field: moved[field] for field in shown}}}
            if required:
                branch["required"] = required
            branches.append(branch)
        schema.setdefault("dependencies", {})[name] = {"oneOf": branches}
        schema["allOf"] = [rule for rule in schema.get("allOf", ()) if _condition_value(rule, name) is None]
        if not schema["allOf"]:
            del schema["allOf"]
        schema.pop("additionalProperties", None)


def _condition_value(rule: Mapping[str, Any], name: str) -> Any:
    """The value an ``if: {properties: {name: {const: value}}}`` rule tests, or None."""
    condition = rule.get("if", {}).get("properties", {}).get(name, {}) if isinstance(rule, Mapping) else {}
    return condition.get("const")


def _required_when(schema: Mapping[str, Any], name: str, value: Any) -> List[str]:
    return [field for rule in schema.get("allOf", ()) if _condition_value(rule, name) == value
            for field in rule.get("then", {}).get("required", ())]


def _field_ui(name: str, field: Mapping[str, Any], ui: Mapping[str, List[str]]) -> Dict[str, Any]:
    widget: Dict[str, Any] = {}
    if name in ui.get("json", ()):
        widget["ui:field"] = "json"
    elif name in ui.get("multiline", ()):
        widget.update(_multiline(field))
    if field.get("examples"):
        widget["ui:placeholder"] = str(field["examples"][0])
    help_text = _help(field)
    if help_text:
        widget["ui:help"] = help_text
    linked = _linked_description(field.get("description"))
    if linked:
        widget.update({"ui:description": linked, "ui:enableMarkdownInDescription": True})
    if name in ui.get("advanced", ()):
        widget["ui:classNames"] = ADVANCED_CLASS
    return widget


def _without_custom_keywords(schema: Any) -> Any:
    """`schema` without the manifest's ``x-`` keywords, at any depth (property names are kept)."""
    if isinstance(schema, list):
        return [_without_custom_keywords(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept = {}
    for key, value in schema.items():
        if key.startswith(CUSTOM_KEYWORD_PREFIX):
            continue
        if key in ("properties", "patternProperties", "definitions") and isinstance(value, dict):
            kept[key] = {name: _without_custom_keywords(sub) for name, sub in value.items()}
        else:
            kept[key] = _without_custom_keywords(value)
    return kept


def _linked_description(description: Any) -> Optional[str]:
    """The help text as Markdown with its web addresses as links, or None when it has none."""
    if not isinstance(description, str) or not _WEB_ADDRESS.search(description):
        return None
    text = " ".join(description.split())
    parts, position = [], 0
    for match in _WEB_ADDRESS.finditer(text):
        address = match.group()
        parts += [_escape_markdown(text[position:match.start()]), f"[{_escape_markdown(address)}](<{address}>)"]
        position = match.end()
    parts.append(_escape_markdown(text[position:]))
    return "".join(parts)


def _escape_markdown(text: str) -> str:
    """`text` shown as is by a Markdown renderer (every special character backslash-escaped)."""
    return _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(1), text)


def _multiline(field: Mapping[str, Any]) -> Dict[str, Any]:
    textarea = {"ui:widget": "textarea", "ui:options": {"rows": 4}}
    if field.get("type") == "string":
        return textarea
    items = field.get("items", {})
    if items.get("type") == "string":
        return {"items": textarea}
    if items.get("type") == "object":
        # A list of messages: each message's text fields become text areas.
        # Content may also be a list of parts (anyOf): the text option gets the text area
        # (RJSF takes per-option UI under "anyOf"; on the field itself it would hit the option picker).
        widgets: Dict[str, Any] = {}
        for name, sub in items.get("properties", {}).items():
            if name != "content" or "enum" in sub:
                continue
            if sub.get("type") == "string":
                widgets[name] = textarea
            elif (sub.get("anyOf") or [{}])[0].get("type") == "string":
                widgets[name] = {"anyOf": [textarea] + [{} for _ in sub["anyOf"][1:]]}
        return {"items": widgets}
    return {}


def _help(field: Mapping[str, Any]) -> Optional[str]:
    """The allowed range of a number or a list, in words ("Between 0 and 2.")."""
    if field.get("type") in ("number", "integer"):
        low, high = field.get("minimum"), field.get("maximum")
        if any(abs(bound) > _SAFE_INTEGER for bound in (low, high) if bound is not None):
            return "A 64-bit integer." if field.get("type") == "integer" else None
        return _range(low, high, "")
    if field.get("type") == "array":
        return _range(field.get("minItems"), field.get("maxItems"), " items")
    return None


def _range(low: Any, high: Any, unit: str) -> Optional[str]:
    if low is not None and high is not None:
        return f"Between {_number(low)} and {_number(high)}{unit}."
    if low is not None:
        return f"At least {_number(low)}{unit}."
    if high is not None:
        return f"At most {_number(high)}{unit}."
    return None


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 1000 else str(value)
