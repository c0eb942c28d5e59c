"""Readable views of the manifest for `describe`: a table per action, or the same as JSON."""

from __future__ import annotations

import json
import textwrap
from typing import Any, Dict, List, Optional

from .manifest import Action, Manifest


def describe_json(manifest: Manifest, action: Optional[str] = None) -> Dict[str, Any]:
    """Connector metadata and, per action, its inputs with type, default, range and help."""
    actions = [manifest.action(action)] if action else list(manifest.actions.values())
    return {
        "connector": manifest.connector,
        "actions": {spec.key: {"label": spec.label, "description": spec.description,
                               "inputs": _inputs(spec)} for spec in actions},
    }


def _inputs(action: Action) -> List[Dict[str, Any]]:
    required = set(action.inputs.schema.get("required", ()))
    rows = []
    for name, field in action.inputs.fields.items():
        row = {"name": name, "title": field["title"], "type": _type_text(field),
               "required": name in required, "description": " ".join(field["description"].split())}
        if "default" in field:
            row["default"] = field["default"]
        limits = _limits(field)
        if limits:
            row["allowed"] = limits
        rows.append(row)
    return rows


def _type_text(field: Dict[str, Any]) -> str:
    kind = field.get("type", "any")
    return "|".join(kind) if isinstance(kind, list) else kind


def _limits(field: Dict[str, Any]) -> str:
    if "enum" in field:
        return ", ".join(map(str, field["enum"]))
    low = field.get("minimum", field.get("minLength", field.get("minItems")))
    high = field.get("maximum", field.get("maxLength", field.get("maxItems")))
    if low is None and high is None:
        return ""
    unit = " chars" if "maxLength" in field or "minLength" in field else (
        " items" if "maxItems" in field or "minItems" in field else "")
    return f"{'' if low is None else low}..{'' if high is None else high}{unit}"


def describe_text(manifest: Manifest, action: Optional[str] = None) -> str:
    """The same as describe_json, as aligned text tables for a terminal."""
    document = describe_json(manifest, action)
    lines = [f"{manifest.connector['label']} {manifest.connector['version']}: "
             f"{' '.join(manifest.connector['description'].split())}", ""]
    for key, spec in document["actions"].items():
        lines.append(f"{key}  ({spec['label']}): {' '.join(spec['description'].split())}")
        table = [("input", "type", "default", "allowed")]
        for row in spec["inputs"]:
            default = json.dumps(row["default"], ensure_ascii=False) if "default" in row else (
                "(required)" if row["required"] else "")
            table.append((row["name"], row["type"], textwrap.shorten(default, 40, placeholder="..."),
                          textwrap.shorten(row.get("allowed", ""), 50, placeholder="...")))
        widths = [max(len(row[column]) for row in table) for column in range(4)]
        for row in table:
            lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        lines.append("")
    return "\n".join(lines)
