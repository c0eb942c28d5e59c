"""A small generator of JSON values that satisfy a JSON Schema: the emulated model's structured
output and tool-call arguments. It covers what structured outputs allow (objects with every
property, arrays, enums, consts, anyOf, $ref to $defs) and never raises on anything else."""

from __future__ import annotations

from typing import Any, Dict, Optional

MAX_DEPTH = 12


def sample(schema: Any, root: Optional[Dict[str, Any]] = None, depth: int = 0) -> Any:
    """A deterministic value valid under `schema` (best effort outside the structured-output subset)."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None if schema is False else {}
    root = schema if root is None else root
    if isinstance(schema.get("$ref"), str):
        return sample(_resolve(root, schema["$ref"]), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for keyword in ("anyOf", "oneOf"):
        if isinstance(schema.get(keyword), list) and schema[keyword]:
            return sample(schema[keyword][0], root, depth + 1)
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        merged: Dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged.update(part)
        return sample({**merged, **{k: v for k, v in schema.items() if k != "allOf"}}, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((one for one in kind if one != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        return {name: sample(sub, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 1
        return [sample(schema.get("items", {}), root, depth + 1) for _ in range(max(1, min(count, 5)))]
    if kind == "string":
        text = "sample"
        low = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
        return text + "x" * max(0, low - len(text))
    if kind in ("integer", "number"):
        low = schema.get("minimum")
        high = schema.get("maximum")
        value = low if isinstance(low, (int, float)) else (min(0, high) if isinstance(high, (int, float)) else 0)
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return True
    return None


def _resolve(root: Dict[str, Any], reference: str) -> Any:
    if not reference.startswith("#/"):
        return {}
    node: Any = root
    for part in reference[2:].split("/"):
        if not isinstance(node, dict):
            return {}
        node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
    return node
