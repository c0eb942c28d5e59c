"""Hypothesis strategies derived from the manifest's JSON Schemas (import as `strategies`).

`valid(schema)` draws values that satisfy a schema's types, enums, consts, ranges, lengths,
patterns, required fields and `additionalProperties`; the `if/then` model rules are ignored on
purpose (the validator under test is what applies them). `invalid(schema)` draws a valid value
and breaks it in exactly one place: a wrong type, a number out of range, a string or list of the
wrong length, a value outside its enum, a string that misses its pattern (a trailing line break
included, which Python's `$` would let through), an unknown field, or a required field removed.

`oracle_errors(schema, value)` is the independent judge: jsonschema's Draft7Validator with
ECMA-262 `$` (as JSON Schema defines patterns), after the manifest's completion rule (unset
optional values dropped, defaults filled in), written here rather than imported from the package.

Sizes are capped (strings <= MAX_STRING characters, lists <= MAX_ITEMS items) so a fuzz run stays
fast: a 20 MB summary text proves nothing a 2 KB one does not.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from hypothesis import strategies as st
from jsonschema import Draft7Validator, validators
from jsonschema.exceptions import ValidationError

MAX_STRING = 2000
MAX_ITEMS = 4
MAX_EXTRA_KEYS = 3
MAX_LENGTH_MUTATION = 5000  # longer maxLength limits are not broken by building a huge string
SAFE_INTEGER = 2 ** 53

JSON_SCALARS = (st.none() | st.booleans() | st.integers(-10 ** 6, 10 ** 6)
                | st.floats(allow_nan=False, allow_infinity=False, width=32) | st.text(max_size=20))
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
# One sample of every JSON type, for wrong-type mutations.
SAMPLES_BY_TYPE: Dict[str, Any] = {
    "string": "not-the-right-type",
    "integer": 7,
    "number": 2.5,
    "boolean": True,
    "array": ["x"],
    "object": {"x": 1},
    "null": None,
}


# --- the oracle ------------------------------------------------------------------------------------


def _ecma_search(pattern: str, text: str) -> bool:
    # JSON Schema patterns are ECMA-262: `$` (outside a class) is the very end of the input and
    # `\d` means [0-9] only.
    translated = re.sub(r"(?<!\\)\$", r"\\Z", pattern).replace("\\d", "[0-9]")
    return re.search(translated, text) is not None


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    if validator.is_type(instance, "string") and not _ecma_search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_OracleValidator = validators.extend(Draft7Validator, {"pattern": _pattern_keyword})


def completed(schema: Mapping[str, Any], values: Any) -> Any:
    """What a host's inputs become before validation: None (and "" for optional fields) mean
    unset, unset fields take their default (README: "missing inputs take the manifest's defaults")."""
    if not isinstance(values, dict):
        return values
    required = schema.get("required", ())
    result = {name: value for name, value in values.items()
              if value is not None and not (value == "" and name not in required)}
    for name, field in schema.get("properties", {}).items():
        if name not in result and "default" in field:
            result[name] = copy.deepcopy(field["default"])
    return result


def oracle_errors(schema: Mapping[str, Any], values: Any) -> List[str]:
    """Every reason jsonschema (with ECMA patterns) refuses the completed values."""
    return [error.message for error in _OracleValidator(dict(schema)).iter_errors(completed(schema, values))]


# --- valid values ------------------------------------------------------------------------------------


def valid(schema: Any, *, overrides: Optional[Mapping[str, Any]] = None, top_level: bool = True) -> Any:
    """A strategy for values valid under `schema` (if/then rules ignored). `overrides` maps a
    top-level property name to the strategy to use for it instead."""
    if schema is True or schema == {}:
        return JSON_VALUES
    if schema is False:
        return st.nothing()
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for keyword in ("oneOf", "anyOf"):
        if keyword in schema and "type" not in schema:
            # The manifest's alternatives are disjoint (a const discriminator or distinct types),
            # so a value drawn from one branch is valid under exactly that one.
            return st.one_of([valid(branch, top_level=False) for branch in schema[keyword]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([valid({**schema, "type": one}, top_level=False) for one in kind])
    if kind is None:
        kind = "object" if "properties" in schema else None
    if kind is None:
        return JSON_VALUES
    if kind == "object":
        return _object(schema, overrides or {}, top_level)
    return _BUILDERS[kind](schema)


def _string(schema: Mapping[str, Any]) -> Any:
    low = schema.get("minLength", 0)
    high = max(low, min(schema.get("maxLength", MAX_STRING), MAX_STRING))
    pattern = schema.get("pattern")
    if pattern is None:
        return st.text(min_size=low, max_size=high)
    # ECMA-262's \d is ASCII; Python's would draw digits of every script.
    generating = pattern.replace("\\d", "[0-9]")
    if generating.startswith("^") and generating.endswith("$") and not generating.endswith("\\$"):
        strings = st.from_regex(generating[1:-1], fullmatch=True)
    else:
        strings = st.from_regex(generating)
    strings = strings.filter(lambda text: _ecma_search(pattern, text))
    return strings.filter(lambda text: low <= len(text) <= high)


def _integer(schema: Mapping[str, Any]) -> Any:
    integers = st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    # JSON Schema counts 3.0 as an integer, and hosts written in JavaScript may well send one.
    integral_floats = integers.filter(lambda value: abs(value) < SAFE_INTEGER).map(float)
    return st.one_of(integers, integers, integers, integral_floats)


def _number(schema: Mapping[str, Any]) -> Any:
    low, high = schema.get("minimum"), schema.get("maximum")
    floats = st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    ints = st.integers(min_value=None if low is None else int(low) + (low != int(low)),
                       max_value=None if high is None else int(high))
    return st.one_of(floats, ints)


def _array(schema: Mapping[str, Any]) -> Any:
    low = schema.get("minItems", 0)
    high = max(low, min(schema.get("maxItems", MAX_ITEMS), MAX_ITEMS))
    return st.lists(valid(schema.get("items", {}), top_level=False), min_size=low, max_size=high)


def _object(schema: Mapping[str, Any], overrides: Mapping[str, Any], top_level: bool) -> Any:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))

    def field(name: str) -> Any:
        strategy = overrides[name] if name in overrides else valid(properties[name], top_level=False)
        if top_level and name not in required:
            # A host may send an optional field as null or "" to mean "not set".
            strategy = st.one_of(strategy, strategy, strategy, st.none(), st.just(""))
        return strategy

    fixed = st.fixed_dictionaries(
        {name: field(name) for name in properties if name in required},
        optional={name: field(name) for name in properties if name not in required})
    extra = schema.get("additionalProperties", True)
    if not isinstance(extra, dict):
        return fixed
    names = schema.get("propertyNames")
    extra_keys = (valid({"type": "string", **names}, top_level=False) if isinstance(names, dict)
                  else st.text(min_size=1, max_size=12)).filter(lambda key: key not in properties)
    extras = st.dictionaries(extra_keys, valid(extra, top_level=False),
                             max_size=min(MAX_EXTRA_KEYS, schema.get("maxProperties", MAX_EXTRA_KEYS)))
    return st.tuples(fixed, extras).map(lambda pair: {**pair[1], **pair[0]})


_BUILDERS = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": lambda schema: st.booleans(),
    "null": lambda schema: st.none(),
    "array": _array,
}


# --- invalid values ----------------------------------------------------------------------------------


Mutation = Tuple[str, Any]


def invalid(schema: Mapping[str, Any], *, overrides: Optional[Mapping[str, Any]] = None) -> Any:
    """A strategy for (description, value) pairs: a valid value broken in exactly one place.
    Draws whose break the oracle does not see (a "wrong" type the schema allows after all) are
    discarded, so every value drawn is invalid."""

    @st.composite
    def broken(draw: Any) -> Mutation:
        value = draw(valid(schema, overrides=overrides))
        candidates = mutations(schema, value, top_level=True)
        description, mutated = candidates[draw(st.integers(0, len(candidates) - 1))]
        return description, mutated

    return broken().filter(lambda pair: bool(oracle_errors(schema, pair[1])))


def mutations(schema: Any, value: Any, *, top_level: bool = False, where: str = "") -> List[Mutation]:
    """Every single-place break of `value` this schema allows us to make."""
    found: List[Mutation] = []
    if not isinstance(schema, dict):
        return found
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    found += _wrong_types(schema, kinds, top_level, where)
    if "enum" in schema:
        found.append((f"{where}: outside the enum", "not-one-of-the-options"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            found.append((f"{where}: below minimum", schema["minimum"] - 1))
        if "maximum" in schema:
            found.append((f"{where}: above maximum", schema["maximum"] + 1))
    if isinstance(value, str):
        if schema.get("minLength", 0) > 0 and not top_level:
            found.append((f"{where}: too short", ""))
        if 0 < schema.get("maxLength", MAX_LENGTH_MUTATION + 1) <= MAX_LENGTH_MUTATION:
            found.append((f"{where}: too long", "a" * (schema["maxLength"] + 1)))
        if "pattern" in schema:
            found.append((f"{where}: misses the pattern", "no match!"))
            found.append((f"{where}: trailing line break", value + "\n"))
    if isinstance(value, list):
        if schema.get("minItems", 0) > 0:
            found.append((f"{where}: too few items", []))
        if value and schema.get("maxItems", MAX_ITEMS + 100) <= 50:
            found.append((f"{where}: too many items", value + [value[0]] * (schema["maxItems"] + 1 - len(value))))
        if value:
            for description, item in mutations(schema.get("items", {}), value[0], where=f"{where}/0"):
                found.append((description, [item] + value[1:]))
    if isinstance(value, dict):
        found += _object_mutations(schema, value, top_level, where)
    return found


def _wrong_types(schema: Mapping[str, Any], kinds: List[str], top_level: bool, where: str) -> List[Mutation]:
    if not kinds:
        return []
    allowed = set(kinds)
    if "number" in allowed:
        allowed.add("integer")
    found = []
    for kind, sample in SAMPLES_BY_TYPE.items():
        if kind in allowed or (kind == "null" and top_level):
            continue  # a top-level null means "not set", never a wrong type
        found.append((f"{where}: {kind} instead of {'/'.join(kinds)}", copy.deepcopy(sample)))
    return found


def _object_mutations(schema: Mapping[str, Any], value: Dict[str, Any], top_level: bool,
                      where: str) -> List[Mutation]:
    found: List[Mutation] = []
    properties = schema.get("properties", {})
    if schema.get("additionalProperties", True) is False:
        found.append((f"{where}: unknown field", {**value, "zz_unknown_field": 1}))
    for name in schema.get("required", ()):
        # Without its default a required field can be left out; with one it is filled back in.
        if name in value and not (top_level and "default" in properties.get(name, {})):
            found.append((f"{where}/{name}: required but missing",
                          {key: item for key, item in value.items() if key != name}))
    for name, field in properties.items():
        current = value.get(name)
        if current is None or (top_level and current == "" and name not in schema.get("required", ())):
            current = field.get("default")
        if current is None:
            # Not set: a wrong type or an out-of-range value can still be given.
            for description, broken in _wrong_types(field, _kinds(field), True, f"{where}/{name}"):
                found.append((description, {**value, name: broken}))
            continue
        for description, broken in mutations(field, current, where=f"{where}/{name}"):
            if top_level and name not in schema.get("required", ()) and broken in (None, ""):
                continue  # the host's way of saying "not set"
            found.append((description, {**value, name: broken}))
    return found


def _kinds(schema: Mapping[str, Any]) -> List[str]:
    kinds = schema.get("type")
    return [kinds] if isinstance(kinds, str) else list(kinds or [])
