"""Load connector.yaml, validate it, and compile its input validators, once per process.

The pipeline is fixed: parse (yaml.safe_load) -> validate against schemas/manifest.schema.json ->
check every embedded schema against the draft-07 meta-schema and every default against its own
field -> build the typed objects the rest of the package reads.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Tuple

from .errors import InputValidationError, ManifestError
from .process_state import ProcessSingleton
from .validation import SchemaValidator, json_value_problems

MANIFEST_FILE = "connector.yaml"
MANIFEST_SCHEMA_FILE = "manifest.schema.json"
#: Written beside the YAML when the package is built (setup.py): the manifest already parsed.
COMPILED_MANIFEST_FILE = "connector.json"


class ValidatedInputs(Dict[str, Any]):
    """A form's validated values with the manifest's defaults filled in, plus `given`: the names
    whose value is the user's own choice. A value equal to the field's default is not a choice (a
    form pre-filled with the manifest's defaults sends them all), so a handler sends what is in
    `given` and leaves the rest to the service's own defaults."""

    def __init__(self, values: Dict[str, Any], given: FrozenSet[str]) -> None:
        super().__init__(values)
        self.given = given


# Form, Action and Manifest are NamedTuples, not dataclasses: immutable all the same, and a
# worker's start pays a tenth of the time to create them (a frozen dataclass execs six methods).


class Form(NamedTuple):
    """A JSON Schema form (the connection, or one action's inputs) with its compiled validator."""

    schema: Dict[str, Any]
    ui: Dict[str, List[str]]
    validator: SchemaValidator
    default_by_name: Dict[str, Any]
    defaults: Tuple[Tuple[str, Any], ...] = ()
    #: Fields of type integer: JSON Schema counts 2.0 as an integer, the API does not.
    integer_fields: Tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Form(fields={list(self.fields)})"

    @property
    def fields(self) -> Dict[str, Dict[str, Any]]:
        return self.schema["properties"]

    def default(self, name: str) -> Any:
        """The manifest's default for one field (a copy, so callers may change it)."""
        return copy.deepcopy(self.fields[name].get("default"))

    def is_default(self, name: str, value: Any) -> bool:
        """Whether `value` equals the field's manifest default (False when it has none)."""
        if name not in self.default_by_name:
            return False
        default = self.default_by_name[name]
        return type(value) is type(default) and value == default or (
            isinstance(value, (int, float)) and not isinstance(value, bool)
            and isinstance(default, (int, float)) and value == default)

    def complete(self, values: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        """Drop unset values (None, or "" for optional fields) and fill in the defaults."""
        return self._with_defaults(self._set_values(values))

    def validated(self, values: Optional[Mapping[str, Any]], *, subject: str = "inputs",
                  prefix: str = "") -> ValidatedInputs:
        """The completed values with the names the user chose (`.given`), or InputValidationError
        listing every problem with its path."""
        set_values = self._set_values(values)
        unfit = json_value_problems(set_values, prefix)
        if unfit:
            # Checked first: jsonschema accepts NaN and recurses without bound.
            raise InputValidationError(unfit, subject=subject)
        completed = self._with_defaults(set_values)
        if self.validator.is_valid(completed):
            for name in self.integer_fields:
                value = completed.get(name)
                if type(value) is float:
                    # Valid means integral: send 2, not 2.0 (which the service refuses as a decimal).
                    completed[name] = int(value)
            given = frozenset(name for name in set_values if not self.is_default(name, completed[name]))
            return ValidatedInputs(completed, given)
        problems = self.validator.errors(completed) or [
            {"path": "", "message": "was refused by the fast check and accepted by jsonschema"}]
        if prefix:
            problems = [{"path": f"{prefix}/{p['path']}" if p["path"] else prefix,
                         "message": p["message"]} for p in problems]
        raise InputValidationError(problems, subject=subject)

    def _set_values(self, values: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        """The values the user set: without None, nor "" for optional fields."""
        if values is None:
            return {}
        if not isinstance(values, Mapping):
            raise InputValidationError([{"path": "", "message": "must be an object"}])
        required = self.schema.get("required", ())
        return {name: value for name, value in values.items()
                if value is not None and not (value == "" and name not in required)}

    def _with_defaults(self, set_values: Dict[str, Any]) -> Dict[str, Any]:
        completed = dict(set_values)
        for name, default in self.defaults:
            if name not in completed:
                completed[name] = copy.deepcopy(default) if isinstance(default, (list, dict)) else default
        return completed


class Action(NamedTuple):
    """One action of the manifest: its labels, input form and output schema."""

    key: str
    label: str
    description: str
    inputs: Form
    output: Dict[str, Any]

    def __repr__(self) -> str:
        return f"Action({self.key!r})"


class Manifest(NamedTuple):
    """The parsed, validated manifest."""

    raw: Dict[str, Any]
    connector: Dict[str, Any]
    connection: Form
    actions: Dict[str, Action]

    def __repr__(self) -> str:
        return f"Manifest(connector={self.connector.get('name')!r}, actions={list(self.actions)})"

    def action(self, key: str) -> Action:
        """The named action, or InputValidationError naming the known ones."""
        try:
            return self.actions[key]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self.actions))
            raise InputValidationError(
                [{"path": "action", "message": f"unknown action {key!r}; known actions: {known}"}],
                subject="action") from None


def _load_packaged_manifest() -> Manifest:
    data_dir = _package_data()
    compiled = data_dir / COMPILED_MANIFEST_FILE
    return load_packaged(
        (data_dir / MANIFEST_FILE).read_text(encoding="utf-8"),
        (data_dir / MANIFEST_SCHEMA_FILE).read_text(encoding="utf-8"),
        (data_dir / VALIDATED_DIGEST_FILE).read_text(encoding="utf-8").strip(),
        compiled.read_text(encoding="utf-8") if compiled.is_file() else None)


def _package_data() -> Any:
    """The package's data folder: a plain directory when installed as files (the usual case,
    without importlib.resources' import), else whatever importlib.resources finds."""
    here = Path(__file__).with_name("data")
    if here.is_dir():
        return here
    from importlib import resources  # a zipped or otherwise unusual install

    return resources.files(__package__) / "data"


# The packaged manifest is proven valid before it ships: the test suite runs the full check on it
# and fails unless VALIDATED_DIGEST_FILE holds the digest of exactly the bytes it checked. A start
# whose packaged bytes match that digest only parses and builds (no jsonschema import: about a third
# of a cold start), with or without a writable cache. Bytes that do not match (a manifest edited in a
# source checkout) take the full check, and a manifest a user loads from a file is always fully checked.
VALIDATED_DIGEST_FILE = "manifest.sha256"


def manifest_digest(text: str, meta_schema_text: str) -> str:
    """The sha256 of a manifest and its schema (each length-prefixed, so no two pairs collide)."""
    digest = hashlib.sha256()
    for part in (text.encode("utf-8"), meta_schema_text.encode("utf-8")):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def load_packaged(text: str, meta_schema_text: str, validated_digest: str,
                  compiled_text: Optional[str] = None) -> Manifest:
    """The packaged manifest: built at once when its bytes carry the digest the test suite
    validated (from the build's JSON parse of them when there is one, else from the YAML), else
    checked fully (`load_validated`, with the cache marker)."""
    if validated_digest and manifest_digest(text, meta_schema_text) == validated_digest:
        return _build(_compiled_document(compiled_text, text) or _parse_yaml(text, MANIFEST_FILE))
    return load_validated(text, meta_schema_text, source=MANIFEST_FILE, cache_dir=validated_cache_dir())


def _compiled_document(compiled_text: Optional[str], text: str) -> Optional[Dict[str, Any]]:
    """The build's parse of exactly this YAML text, or None: no JSON (a source checkout), or one
    made from other text (a YAML edited after the build), or one that cannot be read. Reading JSON
    instead of YAML is most of a worker's start-up saved: no YAML parser, a fortieth of the time."""
    if not compiled_text:
        return None
    try:
        compiled = json.loads(compiled_text)
    except ValueError:
        return None
    if not isinstance(compiled, dict) or compiled.get("source_sha256") != source_sha256(text):
        return None
    document = compiled.get("manifest")
    return document if isinstance(document, dict) else None


def source_sha256(text: str) -> str:
    """The hash a compiled manifest records of the YAML text it was parsed from (setup.py)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: The packaged manifest, loaded and compiled on first use and shared by every step.
load_manifest = ProcessSingleton(_load_packaged_manifest)


# Checking the manifest fully needs jsonschema (about a third of a worker's cold start: its import
# pulls in referencing and rpds) and gives the same answer for the same bytes every time. So the
# first start that finds the packaged manifest valid leaves a marker named by the sha256 of the
# manifest, its schema and the checking code (this file), and later starts with that marker only
# parse the YAML and build. Why a marker in the user's cache directory:
# - nothing is ever written into the installed package (site-packages may be read-only or shared);
# - the key is the content, so an edited connector.yaml or schema, or new checking rules, miss the
#   marker and are fully checked again: a broken manifest still fails with path and reason;
# - the marker cannot change what is loaded: the manifest is always read from the package and
#   built from its own text; a marker only vouches for bytes whose hash it carries (whoever could
#   plant a marker for a broken manifest could as well change the package itself);
# - no cache (unwritable or unset home, read-only file system, AZURE_OPENAI_CONNECTOR_CACHE_DIR
#   set to "") only means the full check on every start, as without this.
# A build-time stamp inside the package was the alternative; it goes stale whenever the manifest is
# edited in a source checkout and needs a build step to keep it true, so the checks would drift.
CACHE_DIR_ENV = "AZURE_OPENAI_CONNECTOR_CACHE_DIR"


def validated_cache_dir() -> Optional[Path]:
    """Where markers of already-validated manifests live: $AZURE_OPENAI_CONNECTOR_CACHE_DIR (empty:
    none), else $XDG_CACHE_HOME/azure-openai-connector, else ~/.cache/azure-openai-connector."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "azure-openai-connector" if os.path.isabs(base) else None


def load_validated(text: str, meta_schema_text: str, *, source: str, cache_dir: Optional[Path]) -> Manifest:
    """`parse_manifest`, skipping the full check when `cache_dir` holds the marker of these exact
    bytes (see above), and leaving that marker after a successful full check."""
    marker: Optional[Path] = None
    code = _checking_code() if cache_dir is not None else None
    if cache_dir is not None and code is not None:
        digest = hashlib.sha256()
        for part in (text.encode("utf-8"), meta_schema_text.encode("utf-8"), code):
            digest.update(len(part).to_bytes(8, "big") + part)
        marker = cache_dir / f"manifest-{digest.hexdigest()}.validated"
        if marker.is_file():
            return _build(_parse_yaml(text, source))
    manifest = parse_manifest(text, source=source, meta_schema=json.loads(meta_schema_text))
    if marker is not None:
        temporary = marker.with_name(f"{marker.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(f"{source} passed every manifest check\n", encoding="utf-8")
            os.replace(temporary, marker)  # atomic: a concurrent start sees no marker or a whole one
        except OSError:  # no writable cache: the next start checks fully again
            try:
                temporary.unlink()
            except OSError:
                pass
    return manifest


def _checking_code() -> Optional[bytes]:
    try:
        return Path(__file__).read_bytes()
    except OSError:
        return None  # no source to hash (a zipped or frozen install): always check fully


def load_manifest_file(path: Path) -> Manifest:
    """Load a manifest from a file path (no caching): for tests and connector authors."""
    data_dir = _package_data()
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
                if error.validator == "required":
                    continue  # a conditionally required field is the user's to fill, not a default's
                problems.append(f"{where}: the defaults together break a rule: {error.message}")
    return problems


def _form(schema: Dict[str, Any], ui: Dict[str, List[str]]) -> Form:
    defaults = tuple((name, spec["default"]) for name, spec in schema["properties"].items()
                     if "default" in spec)
    integer_fields = tuple(name for name, spec in schema["properties"].items() if spec.get("type") == "integer")
    return Form(schema=schema, ui=ui, validator=SchemaValidator(schema), defaults=defaults,
                default_by_name=dict(defaults), integer_fields=integer_fields)


def _build(document: Dict[str, Any]) -> Manifest:
    actions = {
        key: Action(key=key, label=spec["label"], description=spec["description"],
                    inputs=_form(spec["inputs"], spec.get("ui", {})), output=spec["output"])
        for key, spec in document["actions"].items()
    }
    connection = document["connection"]
    return Manifest(raw=document, connector=document["connector"],
                    connection=_form(connection["schema"], connection.get("ui", {})), actions=actions)
