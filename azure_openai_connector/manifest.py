"""Load connector.yaml, validate it, and compile its input validators, once per process.

The pipeline is fixed: parse (yaml.safe_load) -> validate against schemas/manifest.schema.json ->
check every embedded schema against the draft-07 meta-schema and every default against its own
field -> build the typed objects the rest of the package reads.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .errors import ConnectorError, InputValidationError
from .validation import SchemaValidator

MANIFEST_FILE = "connector.yaml"
MANIFEST_SCHEMA_FILE = "manifest.schema.json"


class ManifestError(ConnectorError):
    """connector.yaml is broken; the message names the file, the field path and the rule."""

    kind = "manifest_error"


@dataclass(frozen=True)
class Form:
    """A JSON Schema form (the connection, or one action's inputs) with its compiled validator."""

    schema: Dict[str, Any]
    ui: Dict[str, List[str]]
    validator: SchemaValidator = field(repr=False, compare=False)
    defaults: Tuple[Tuple[str, Any], ...] = ()

    @property
    def fields(self) -> Dict[str, Dict[str, Any]]:
        return self.schema["properties"]

    def default(self, name: str) -> Any:
        """The manifest's default for one field (a copy, so callers may change it)."""
        return copy.deepcopy(self.fields[name].get("default"))

    def is_default(self, name: str, value: Any) -> bool:
        """Whether `value` equals the field's manifest default (False when it has none)."""
        for field_name, default in self.defaults:
            if field_name == name:
                return type(value) is type(default) and value == default or (
                    isinstance(value, (int, float)) and not isinstance(value, bool)
                    and isinstance(default, (int, float)) and value == default)
        return False

    def complete(self, values: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        """Drop unset values (None, or "" for optional fields) and fill in the defaults."""
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise InputValidationError([{"path": "", "message": "must be an object"}])
        required = self.schema.get("required", ())
        completed = {name: value for name, value in values.items()
                     if value is not None and not (value == "" and name not in required)}
        for name, default in self.defaults:
            if name not in completed:
                completed[name] = copy.deepcopy(default) if isinstance(default, (list, dict)) else default
        return completed

    def validated(self, values: Optional[Mapping[str, Any]], *, subject: str = "inputs",
                  prefix: str = "") -> Dict[str, Any]:
        """The completed values, or InputValidationError listing every problem with its path."""
        completed = self.complete(values)
        if self.validator.is_valid(completed):
            return completed
        problems = self.validator.errors(completed)
        if prefix:
            problems = [{"path": f"{prefix}/{p['path']}" if p["path"] else prefix,
                         "message": p["message"]} for p in problems]
        raise InputValidationError(problems, subject=subject)


@dataclass(frozen=True)
class Action:
    """One action of the manifest: its labels, input form and output schema."""

    key: str
    label: str
    description: str
    inputs: Form
    output: Dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    """The parsed, validated manifest."""

    raw: Dict[str, Any] = field(repr=False)
    connector: Dict[str, Any]
    connection: Form
    actions: Dict[str, Action]

    def action(self, key: str) -> Action:
        """The named action, or InputValidationError naming the known ones."""
        try:
            return self.actions[key]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self.actions))
            raise InputValidationError(
                [{"path": "action", "message": f"unknown action {key!r}; known actions: {known}"}],
                subject="action") from None


_cache_lock = threading.Lock()
_cached: Optional[Manifest] = None


def load_manifest() -> Manifest:
    """The packaged manifest, loaded and compiled on first use and shared by every step."""
    global _cached
    if _cached is None:
        with _cache_lock:
            if _cached is None:
                data_dir = resources.files(__package__) / "data"
                _cached = parse_manifest(
                    (data_dir / MANIFEST_FILE).read_text(encoding="utf-8"),
                    source=MANIFEST_FILE,
                    meta_schema=json.loads((data_dir / MANIFEST_SCHEMA_FILE).read_text(encoding="utf-8")),
                )
    return _cached


def load_manifest_file(path: Path) -> Manifest:
    """Load a manifest from a file path (no caching): for tests and connector authors."""
    data_dir = resources.files(__package__) / "data"
    meta_schema = json.loads((data_dir / MANIFEST_SCHEMA_FILE).read_text(encoding="utf-8"))
    return parse_manifest(Path(path).read_text(encoding="utf-8"), source=str(path), meta_schema=meta_schema)


def parse_manifest(text: str, *, source: str, meta_schema: Dict[str, Any]) -> Manifest:
    """Run the whole pipeline on manifest text; ManifestError lists every problem found."""
    document = _parse_yaml(text, source)
    problems = _check_against_meta_schema(document, meta_schema)
    if not problems:
        problems = _check_embedded_schemas(document)
    if problems:
        raise ManifestError(f"{source}: " + f"\n{source}: ".join(problems))
    return _build(document)


def _parse_yaml(text: str, source: str) -> Dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        document = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestError(f"{source}: the manifest must be a mapping at the top level")
    return document


def _dotted(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(root)"


def _check_against_meta_schema(document: Dict[str, Any], meta_schema: Dict[str, Any]) -> List[str]:
    from jsonschema import Draft7Validator

    validator = Draft7Validator(meta_schema)
    return [f"{_dotted(error.absolute_path)}: {error.message}"
            for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]


def _check_embedded_schemas(document: Dict[str, Any]) -> List[str]:
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import SchemaError

    problems: List[str] = []
    forms = [("connection.schema", document["connection"]["schema"], document["connection"].get("ui", {}))]
    for key, action in document["actions"].items():
        forms.append((f"actions.{key}.inputs", action["inputs"], action.get("ui", {})))
        try:
            Draft7Validator.check_schema(action["output"])
        except SchemaError as exc:
            problems.append(f"actions.{key}.output.{_dotted(exc.absolute_path)}: {exc.message}")
    for where, schema, ui in forms:
        try:
            Draft7Validator.check_schema(schema)
        except SchemaError as exc:
            problems.append(f"{where}.{_dotted(exc.absolute_path)}: {exc.message}")
            continue
        fields = schema["properties"]
        for name in schema.get("required", ()):
            if name not in fields:
                problems.append(f"{where}.required: {name!r} is not a field")
        for list_name, names in ui.items():
            for name in names:
                if name not in fields:
                    problems.append(f"{where.rsplit('.', 1)[0]}.ui.{list_name}: {name!r} is not a field")
        for name, field_schema in fields.items():
            if "default" in field_schema:
                for error in Draft7Validator(field_schema).iter_errors(field_schema["default"]):
                    problems.append(f"{where}.properties.{name}.default: {error.message}")
        full = Draft7Validator(schema)
        defaults = {name: f["default"] for name, f in fields.items() if "default" in f}
        if all(name in defaults for name in schema.get("required", ())):
            for error in full.iter_errors(defaults):
                problems.append(f"{where}: the defaults together break a rule: {error.message}")
    return problems


def _form(schema: Dict[str, Any], ui: Dict[str, List[str]]) -> Form:
    defaults = tuple((name, spec["default"]) for name, spec in schema["properties"].items()
                     if "default" in spec)
    return Form(schema=schema, ui=ui, validator=SchemaValidator(schema), defaults=defaults)


def _build(document: Dict[str, Any]) -> Manifest:
    actions = {
        key: Action(key=key, label=spec["label"], description=spec["description"],
                    inputs=_form(spec["inputs"], spec.get("ui", {})), output=spec["output"])
        for key, spec in document["actions"].items()
    }
    connection = document["connection"]
    return Manifest(raw=document, connector=document["connector"],
                    connection=_form(connection["schema"], connection.get("ui", {})), actions=actions)
