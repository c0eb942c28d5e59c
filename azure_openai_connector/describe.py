"""Readable views of the manifest for `describe`: a table per action, one action in detail, or JSON."""

from __future__ import annotations

import json
import textwrap
from typing import Any, Dict, List, Optional

from .manifest import Action, Manifest

# Bounds at least this large are a type's extremes (int64), not a limit worth reading.
_EXTREME_BOUND = 2 ** 53
_HELP_WIDTH = 96


def describe_json(manifest: Manifest, action: Optional[str] = None) -> Dict[str, Any]:
    """Connector metadata and, per action, its inputs with type, default, range and help."""
    actions = [manifest.action(action)] if action else list(manifest.actions.values())
    return {
        "connector": manifest.connector,
        "actions": {spec.key: {"label": spec.label, "description": spec.description,
                               "inputs": _inputs(spec)} for spec in actions},
    }


def _inputs(action: Action) -> List[Dict[str, Any]]:
    """One row per input, required inputs first (each group in the manifest's order)."""
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
    return sorted(rows, key=lambda row: not row["required"])


def _type_text(field: Dict[str, Any]) -> str:
    """The JSON type(s) a field takes: its `type`, or those of its oneOf/anyOf branches."""
    kind = field.get("type")
    if kind is None:
        branches = field.get("oneOf") or field.get("anyOf") or ()
        kinds = [_type_text(branch) for branch in branches if isinstance(branch, dict)]
        return " or ".join(dict.fromkeys(k for k in kinds if k != "any")) or "any"
    return "|".join(kind) if isinstance(kind, list) else kind


def _limits(field: Dict[str, Any]) -> str:
    if "enum" in field:
        return ", ".join(map(str, field["enum"]))
    low = field.get("minimum", field.get("minLength", field.get("minItems")))
    high = field.get("maximum", field.get("maxLength", field.get("maxItems")))
    low = None if low is not None and abs(low) >= _EXTREME_BOUND else low
    high = None if high is not None and abs(high) >= _EXTREME_BOUND else high
    if low is None and high is None:
        return ""
    unit = " chars" if "maxLength" in field or "minLength" in field else (
        " items" if "maxItems" in field or "minItems" in field else "")
    return f"{'' if low is None else low}..{'' if high is None else high}{unit}"


def describe_text(manifest: Manifest, action: Optional[str] = None) -> str:
    """The same as describe_json for a terminal: one action in detail, or a table per action."""
    if action:
        return _action_detail(manifest, action)
    document = describe_json(manifest, action)
    lines = [f"{manifest.connector['label']} {manifest.connector['version']}: "
             f"{' '.join(manifest.connector['description'].split())}", ""]
    for key, spec in document["actions"].items():
        lines.append(f"{key}  ({spec['label']}): {' '.join(spec['description'].split())}")
        table = [("input", "type", "default", "allowed")]
        for row in spec["inputs"]:
            default = json.dumps(row["default"], ensure_ascii=False) if "default" in row else ""
            name = row["name"] + (" *" if row["required"] else "")
            table.append((name, row["type"], textwrap.shorten(default, 40, placeholder="..."),
                          textwrap.shorten(row.get("allowed", ""), 50, placeholder="...")))
        widths = [max(len(row[column]) for row in table) for column in range(4)]
        for row in table:
            lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        lines.append("")
    lines.append("* required. `describe ACTION` shows each input's help.")
    return "\n".join(lines) + "\n"


def _action_detail(manifest: Manifest, action: str) -> str:
    """One action: required inputs, then optional ones, each with its type, default, range and help."""
    spec = describe_json(manifest, action)["actions"][action]
    lines = [f"{action} ({spec['label']})", *_wrapped(spec["description"], "  ")]
    for title, required in (("Required inputs", True), ("Optional inputs", False)):
        rows = [row for row in spec["inputs"] if row["required"] is required]
        if not rows:
            continue
        lines += ["", f"{title}:"]
        for row in rows:
            facts = [row["type"]]
            if "default" in row:
                facts.append("default " + textwrap.shorten(json.dumps(row["default"], ensure_ascii=False), 60,
                                                           placeholder="..."))
            if row.get("allowed"):
                facts.append(("one of " if "," in row["allowed"] else "") + row["allowed"])
            lines.append(f"  {row['name']}  ({'; '.join(facts)})")
            lines += _wrapped(row["description"], "      ")
    return "\n".join(lines) + "\n"


def _wrapped(text: str, indent: str) -> List[str]:
    return textwrap.wrap(" ".join(text.split()), _HELP_WIDTH, initial_indent=indent, subsequent_indent=indent)
