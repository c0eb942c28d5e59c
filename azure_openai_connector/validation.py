"""Input validation: a fast compiled check for the happy path, jsonschema for complete error reports.

Valid inputs are by far the common case on a busy worker, so each schema is compiled once into
plain Python closures that answer "valid or not" in microseconds. Only when that answer is "not
valid" (or the schema uses a keyword the compiler does not know) is jsonschema asked for the full
list of errors, each with its field path.
"""

from __future__ import annotations

import operator
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

Check = Callable[[Any], bool]

# Keywords that describe a field for people and forms but never constrain a value.
_ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "secret", "$schema", "$id", "$comment",
    "readOnly", "writeOnly", "x-rule",
})


class UnsupportedSchema(Exception):
    """The schema uses a keyword the fast compiler does not implement; use jsonschema alone."""


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPE_CHECKS: Dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _always(value: Any) -> bool:
    return True


def compile_check(schema: Any) -> Check:
    """Compile a draft-07 schema (the subset the manifest uses) into a predicate."""
    if schema is True or schema == {}:
        return _always
    if schema is False:
        return lambda value: False
    if not isinstance(schema, dict):
        raise UnsupportedSchema(repr(schema))
    checks: List[Check] = []
    fused: frozenset = frozenset()
    kind = schema.get("type")
    if kind == "object" and "patternProperties" not in schema:
        checks.append(_object(schema))
        fused = _OBJECT_KEYWORDS
    elif isinstance(kind, str) and kind in _SCALAR_FUSIONS:
        check, fused = _SCALAR_FUSIONS[kind](schema)
        checks.append(check)
    for keyword, argument in schema.items():
        if keyword in _ANNOTATIONS or keyword.startswith("x-") or keyword in fused:
            continue
        builder = _BUILDERS.get(keyword)
        if builder is None:
            raise UnsupportedSchema(keyword)
        built = builder(argument, schema)
        if built is not None:
            checks.append(built)
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    return _every(tuple(checks))


def _every(checks: Tuple[Check, ...]) -> Check:
    # Valid inputs (the common case on a busy worker) run every check: two or three are chained
    # directly, more in a plain loop (`all()` over a generator costs a generator per value).
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)
    if len(checks) == 3:
        first, second, third = checks
        return lambda value: first(value) and second(value) and third(value)

    def check(value: Any) -> bool:
        for one in checks:
            if not one(value):
                return False
        return True
    return check


def _type(argument: Any, schema: Dict[str, Any]) -> Check:
    names = [argument] if isinstance(argument, str) else list(argument)
    tests = tuple(_TYPE_CHECKS[name] for name in names)
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(test(value) for test in tests)


def _enum(argument: Any, schema: Dict[str, Any]) -> Check:
    hashable = all(isinstance(item, (str, int, float, type(None))) and not isinstance(item, bool)
                   for item in argument)
    if hashable:
        allowed = frozenset(argument)
        # bool is an int subclass: True must not match an enum that holds 1.
        return lambda value: not isinstance(value, (bool, dict, list)) and value in allowed
    items = list(argument)
    return lambda value: any(_json_equal(value, item) for item in items)


def _const(argument: Any, schema: Dict[str, Any]) -> Check:
    return lambda value: _json_equal(value, argument)


def _json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return left == right


def _number_fusion(schema: Dict[str, Any]) -> Tuple[Check, frozenset]:
    """`type: number` or `integer` with its `minimum` and `maximum` in one test."""
    is_type = _TYPE_CHECKS[schema["type"]]
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        check: Check = lambda value: is_type(value) and low <= value <= high  # noqa: E731
    elif low is not None:
        check = lambda value: is_type(value) and low <= value  # noqa: E731
    elif high is not None:
        check = lambda value: is_type(value) and value <= high  # noqa: E731
    else:
        check = is_type
    return check, _NUMBER_KEYWORDS


def _string_fusion(schema: Dict[str, Any]) -> Tuple[Check, frozenset]:
    """`type: string` with its `minLength` and `maxLength` in one test."""
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if high is not None:
        check: Check = lambda value: isinstance(value, str) and low <= len(value) <= high  # noqa: E731
    elif low:
        check = lambda value: isinstance(value, str) and low <= len(value)  # noqa: E731
    else:
        check = _TYPE_CHECKS["string"]
    return check, _STRING_KEYWORDS


_NUMBER_KEYWORDS = frozenset({"type", "minimum", "maximum"})
_STRING_KEYWORDS = frozenset({"type", "minLength", "maxLength"})
_SCALAR_FUSIONS: Dict[Any, Callable[[Dict[str, Any]], Tuple[Check, frozenset]]] = {
    "number": _number_fusion, "integer": _number_fusion, "string": _string_fusion}


def _bound(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Dict[str, Any]], Check]:
    def build(argument: Any, schema: Dict[str, Any]) -> Check:
        return lambda value: not _is_number(value) or compare(value, argument)
    return build


def _length(compare: Callable[[int, int], bool], kind: type) -> Callable[[Any, Dict[str, Any]], Check]:
    def build(argument: Any, schema: Dict[str, Any]) -> Check:
        return lambda value: not isinstance(value, kind) or compare(len(value), argument)
    return build


def ecma_regex(pattern: str) -> "re.Pattern[str]":
    """`pattern` compiled with ECMA-262 meaning, as JSON Schema defines it: `$` matches only at the
    very end (Python's `$` also matches before a final newline, so "key\\n" would pass
    "^[\\x21-\\x7e]+$"), and `\\d` and `\\w` are ASCII only (Python's match any script's digits)."""
    compiled = _ECMA_CACHE.get(pattern)
    if compiled is None:
        out: List[str] = []
        in_class = False
        position = 0
        while position < len(pattern):
            char = pattern[position]
            if char == "\\" and position + 1 < len(pattern):
                escape = pattern[position:position + 2]
                replacement = _ECMA_CLASS_ESCAPES.get(escape) if in_class else _ECMA_ESCAPES.get(escape)
                out.append(replacement or escape)
                position += 2
                continue
            if char == "[" and not in_class:
                in_class = True
            elif char == "]" and in_class:
                in_class = False
            out.append(r"\Z" if char == "$" and not in_class else char)
            position += 1
        compiled = _ECMA_CACHE[pattern] = re.compile("".join(out))
    return compiled


_ECMA_CACHE: Dict[str, "re.Pattern[str]"] = {}
_ECMA_ESCAPES = {r"\d": "[0-9]", r"\D": "[^0-9]", r"\w": "[A-Za-z0-9_]", r"\W": "[^A-Za-z0-9_]"}
_ECMA_CLASS_ESCAPES = {r"\d": "0-9", r"\w": "A-Za-z0-9_"}


def _pattern(argument: str, schema: Dict[str, Any]) -> Check:
    # Compiled on the first string it meets: most of a form's patterns (image URLs, file data,
    # tool names) never see a value in a given worker, and each costs a regex compile.
    def check(value: Any) -> bool:
        return not isinstance(value, str) or ecma_regex(argument).search(value) is not None
    return check


def _ecma_pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """jsonschema's `pattern` keyword with `ecma_regex`, so both validators agree."""
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        from jsonschema.exceptions import ValidationError

        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _items(argument: Any, schema: Dict[str, Any]) -> Check:
    if isinstance(argument, list):
        raise UnsupportedSchema("items as a tuple")
    item_check = compile_check(argument)

    def check(value: Any) -> bool:
        if isinstance(value, list):
            for item in value:
                if not item_check(item):
                    return False
        return True
    return check


def _unique_items(argument: bool, schema: Dict[str, Any]) -> Optional[Check]:
    if not argument:
        return None
    raise UnsupportedSchema("uniqueItems")


def _properties(argument: Dict[str, Any], schema: Dict[str, Any]) -> Check:
    if argument and all(sub is False for sub in argument.values()):  # "these fields must not be set"
        forbidden = frozenset(argument)
        return lambda value: not isinstance(value, dict) or forbidden.isdisjoint(value)
    property_checks = {name: compile_check(sub) for name, sub in argument.items()}
    listed = tuple(property_checks.items())
    if len(listed) == 1:  # a rule about one field (the role of a message, say)
        [(only_name, only_check)] = listed

        def check_one(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            item = value.get(only_name, _ABSENT)
            return item is _ABSENT or only_check(item)
        return check_one

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        if len(value) < len(listed):  # an input sets few of many fields: go over what it sets
            for name, item in value.items():
                property_check = property_checks.get(name)
                if property_check is not None and not property_check(item):
                    return False
        else:  # a rule about one or two fields of a larger object
            for name, property_check in listed:
                if name in value and not property_check(value[name]):
                    return False
        return True
    return check


_ABSENT = object()
_OBJECT_KEYWORDS = frozenset({"type", "required", "properties", "additionalProperties"})


def _object(schema: Dict[str, Any]) -> Check:
    """`type: object` with its `required`, `properties` and `additionalProperties` in one pass over
    the value's members: the shape of every form and message, checked on every step."""
    property_checks = {name: compile_check(sub) for name, sub in schema.get("properties", {}).items()}
    required = frozenset(schema.get("required", ()))
    additional = schema.get("additionalProperties", True)
    closed = additional is False
    extra_check = None if closed else compile_check(additional)
    open_to_anything = extra_check is _always

    def check(value: Any) -> bool:
        if not isinstance(value, dict) or not required.issubset(value.keys()):
            return False
        for name, item in value.items():
            property_check = property_checks.get(name)
            if property_check is None:
                if closed or not (open_to_anything or extra_check(item)):  # type: ignore[misc]
                    return False
            elif not property_check(item):
                return False
        return True
    return check


def _required(argument: List[str], schema: Dict[str, Any]) -> Check:
    names = frozenset(argument)
    return lambda value: not isinstance(value, dict) or names.issubset(value.keys())


def _additional_properties(argument: Any, schema: Dict[str, Any]) -> Check:
    if "patternProperties" in schema:
        raise UnsupportedSchema("patternProperties")
    known = frozenset(schema.get("properties", ()))
    if argument is False:
        return lambda value: not isinstance(value, dict) or known.issuperset(value)
    extra_check = compile_check(argument)

    def check(value: Any) -> bool:
        if isinstance(value, dict):
            for name, item in value.items():
                if name not in known and not extra_check(item):
                    return False
        return True
    return check


def _property_names(argument: Any, schema: Dict[str, Any]) -> Check:
    name_check = compile_check(argument)
    return lambda value: not isinstance(value, dict) or all(name_check(name) for name in value)


def _all_of(argument: List[Any], schema: Dict[str, Any]) -> Check:
    return _every(tuple(compile_check(sub) for sub in argument))


def _one_of(argument: List[Any], schema: Dict[str, Any]) -> Check:
    branches = tuple(compile_check(sub) for sub in argument)

    def check(value: Any) -> bool:
        passed = 0
        for branch in branches:
            if branch(value):
                passed += 1
                if passed > 1:
                    return False
        return passed == 1
    return check


def _any_of(argument: List[Any], schema: Dict[str, Any]) -> Check:
    branches = tuple(compile_check(sub) for sub in argument)

    def check(value: Any) -> bool:
        for branch in branches:  # a loop: any() over a generator costs a generator per value
            if branch(value):
                return True
        return False
    return check


def _not(argument: Any, schema: Dict[str, Any]) -> Check:
    inner = compile_check(argument)
    return lambda value: not inner(value)


def _if(argument: Any, schema: Dict[str, Any]) -> Check:
    condition = compile_check(argument)
    then = compile_check(schema.get("then", True))
    otherwise = compile_check(schema.get("else", True))
    return lambda value: then(value) if condition(value) else otherwise(value)


_BUILDERS: Dict[str, Callable[[Any, Dict[str, Any]], Optional[Check]]] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "minimum": _bound(operator.ge),
    "maximum": _bound(operator.le),
    "exclusiveMinimum": _bound(operator.gt),
    "exclusiveMaximum": _bound(operator.lt),
    "minLength": _length(operator.ge, str),
    "maxLength": _length(operator.le, str),
    "minItems": _length(operator.ge, list),
    "maxItems": _length(operator.le, list),
    "minProperties": _length(operator.ge, dict),
    "maxProperties": _length(operator.le, dict),
    "pattern": _pattern,
    "items": _items,
    "uniqueItems": _unique_items,
    "properties": _properties,
    "required": _required,
    "additionalProperties": _additional_properties,
    "propertyNames": _property_names,
    "allOf": _all_of,
    "oneOf": _one_of,
    "anyOf": _any_of,
    "not": _not,
    "if": _if,
    "then": lambda argument, schema: None,  # compiled together with "if"
    "else": lambda argument, schema: None,
}


_NOT_COMPILED = object()


class SchemaValidator:
    """One schema, compiled once: `errors(value)` is empty for valid values, and lists every
    problem as ``{"path": "messages/0/role", "message": ...}`` otherwise."""

    def __init__(self, schema: Dict[str, Any]) -> None:
        self.schema = schema
        # Compiled on first use: a worker starting up builds every form and validates one or two.
        self._fast_check: Any = _NOT_COMPILED
        self._full = None  # the jsonschema validator, built on first need

    def _compiled(self) -> Optional[Check]:
        check = self._fast_check
        if check is _NOT_COMPILED:  # two threads may both compile: the same result, either kept
            try:
                check = compile_check(self.schema)
            except UnsupportedSchema:
                check = None
            self._fast_check = check
        return check

    def is_valid(self, value: Any) -> bool:
        check = self._compiled()
        if check is not None:
            return check(value)
        return not self.errors(value)

    def errors(self, value: Any) -> List[Dict[str, str]]:
        check = self._compiled()
        if check is not None and check(value):
            return []
        if self._full is None:
            from jsonschema import Draft7Validator, validators  # imported only when something is wrong

            self._full = validators.extend(Draft7Validator, {"pattern": _ecma_pattern_keyword})(self.schema)
        found = [item for error in self._full.iter_errors(value)
                 for item in describe_error(error, self.schema, value)]
        found.sort(key=lambda item: item["path"])
        return found


def describe_error(error: Any, root_schema: Any, root_value: Any) -> List[Dict[str, str]]:
    """Turn one jsonschema error into field-path entries with a message a person can act on."""
    path = "/".join(str(part) for part in error.absolute_path)
    rule = _rule_name(root_schema, error.absolute_schema_path)
    suffix = f" (the {rule} rule)" if rule else ""
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [{"path": _join(path, missing), "message": "is required"}]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        return [{"path": _join(path, name), "message": "is not a known field"}
                for name in error.instance if name not in known]
    if error.validator is None:  # a `false` schema: the field may not be set at all
        return [{"path": _join(path, name), "message": f"is not accepted{suffix}"}
                for name in _forbidden_fields(root_schema, error, root_value)] or [
                    {"path": path, "message": f"is not accepted{suffix}"}]
    if error.validator in ("oneOf", "anyOf"):
        return _describe_alternatives(error, root_schema, root_value, path, suffix)
    if error.validator in _SIZE_MESSAGES:
        # Never echo the value: a 1 MB prompt must not become a 1 MB error message.
        size = len(error.instance) if hasattr(error.instance, "__len__") else "?"
        message = _SIZE_MESSAGES[error.validator].format(limit=error.validator_value, size=size)
        return [{"path": path, "message": message + suffix}]
    if isinstance(error.schema, dict) and error.schema.get("secret") is True:
        # jsonschema's messages quote the value; a malformed key is usually the real key with a
        # stray space or line break, and must not reach logs, CLI output or step results.
        rule = f"{error.validator} {_shorten(repr(error.validator_value), 80)}"
        return [{"path": path, "message": f"breaks the rule {rule} (the value is secret and not shown)"}]
    return [{"path": path, "message": _shorten(error.message) + suffix}]


def _describe_alternatives(error: Any, root_schema: Any, root_value: Any, path: str,
                           suffix: str) -> List[Dict[str, str]]:
    """A oneOf/anyOf failure as the problems of the branch the value meant, so that a message
    with a wrong field says which field (`messages/0/content: is required`), not only "is not
    valid under any of the given schemas". The branch is picked by a discriminator (a property
    every object branch fixes with `const`, such as `role` or `type`), else by the JSON type."""
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    instance = error.instance
    chosen: Optional[int] = None
    discriminator = _discriminator(branches)
    if discriminator is not None and isinstance(instance, dict):
        allowed = [branch["properties"][discriminator]["const"] for branch in branches
                   if _fixes(branch, discriminator)]
        if discriminator not in instance:
            return [{"path": _join(path, discriminator), "message": "is required"}]
        matching = [index for index, branch in enumerate(branches)
                    if _fixes(branch, discriminator)
                    and _json_equal(branch["properties"][discriminator]["const"], instance[discriminator])]
        if not matching:
            listed = ", ".join(repr(value) for value in allowed)
            return [{"path": _join(path, discriminator),
                     "message": f"{_shorten(repr(instance[discriminator]), 80)} is not one of {listed}{suffix}"}]
        chosen = matching[0]
    else:
        typed = [index for index, branch in enumerate(branches) if _type_accepts(branch, instance)]
        if len(typed) == 1:
            chosen = typed[0]
        elif not typed:
            kinds = sorted({kind for branch in branches for kind in _declared_types(branch)})
            if kinds:
                return [{"path": path, "message": f"must be of type {' or '.join(kinds)}{suffix}"}]
    if chosen is not None:
        found = [item for sub in error.context if sub.schema_path and sub.schema_path[0] == chosen
                 for item in describe_error(sub, root_schema, root_value)]
        if found:
            return found
    if error.context:
        from jsonschema.exceptions import best_match

        return describe_error(best_match(error.context), root_schema, root_value)
    return [{"path": path, "message": _shorten(error.message) + suffix}]


def _fixes(branch: Any, name: str) -> bool:
    return isinstance(branch, dict) and "const" in branch.get("properties", {}).get(name, {})


def _discriminator(branches: List[Any]) -> Optional[str]:
    """The property every object branch fixes with `const` (None when there is none)."""
    objects = [branch for branch in branches if isinstance(branch, dict) and "properties" in branch]
    if not objects:
        return None
    for name in objects[0]["properties"]:
        if all(_fixes(branch, name) for branch in objects):
            return name
    return None


def _declared_types(branch: Any) -> List[str]:
    if not isinstance(branch, dict):
        return []
    kind = branch.get("type")
    if kind is None:
        return ["object"] if "properties" in branch else []
    return [kind] if isinstance(kind, str) else list(kind)


def _type_accepts(branch: Any, value: Any) -> bool:
    kinds = _declared_types(branch)
    if not kinds:
        return True
    return any(_TYPE_CHECKS[kind](value) for kind in kinds if kind in _TYPE_CHECKS)


_SIZE_MESSAGES = {
    "maxLength": "is {size} characters long; the most allowed is {limit}",
    "minLength": "is {size} characters long; at least {limit} required",
    "maxItems": "has {size} items; the most allowed is {limit}",
    "minItems": "has {size} items; at least {limit} required",
}


def _forbidden_fields(root_schema: Any, error: Any, root_value: Any) -> List[str]:
    # jsonschema reports a `false` property schema without the property's name in either path,
    # so find which forbidden properties the object at the error's path actually carries.
    node = root_schema
    for part in error.absolute_schema_path:
        node = node[part]
    container = root_value
    for part in error.absolute_path:
        container = container[part]
    if not (isinstance(node, dict) and isinstance(container, dict)):
        return []
    return [name for name, sub in node.items() if sub is False and name in container]


def _join(parent: str, child: str) -> str:
    return f"{parent}/{child}" if parent else child


def _shorten(message: str, limit: int = 300) -> str:
    # jsonschema quotes the whole offending value; a 1 MB prompt must not become a 1 MB message.
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _rule_name(schema: Any, schema_path: Any) -> Optional[str]:
    node = schema
    name = None
    for part in schema_path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and "x-rule" in node:
            name = node["x-rule"]
    return name


#: Deeper values are refused: Python's own JSON, copy and repr recurse, and stop near 1,000.
MAX_JSON_DEPTH = 100
#: Python refuses to turn a longer integer into text (sys.get_int_max_str_digits's default).
MAX_INTEGER_DIGITS = 4300
_INTEGER_LIMIT = 10 ** MAX_INTEGER_DIGITS


def json_value_problems(value: Any, prefix: str = "") -> List[Dict[str, str]]:
    """Every part of `value` that cannot travel as strict JSON text in UTF-8, with its path: NaN
    and infinities, lone surrogates, integers too long to print, non-string object keys, and
    nesting deeper than MAX_JSON_DEPTH. Iterative, so a hostile depth cannot exhaust the stack;
    the schema check runs after this one and may then recurse safely."""
    return [] if fits_json(value) else json_problems_walk(value, prefix)


def json_problems_walk(value: Any, prefix: str = "") -> List[Dict[str, str]]:
    """The walk behind `json_value_problems`, building every member's path as it goes."""
    problems: List[Dict[str, str]] = []
    pending: List[Tuple[str, Any, int]] = [(prefix, value, 0)]
    while pending:
        path, item, depth = pending.pop()
        if isinstance(item, str):
            if _has_lone_surrogate(item):
                problems.append({"path": path, "message": "holds a lone surrogate (not valid Unicode text)"})
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) >= _INTEGER_LIMIT:
                problems.append({"path": path, "message": f"is an integer longer than {MAX_INTEGER_DIGITS} digits"})
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                problems.append({"path": path, "message": "must be a finite number (NaN and Infinity are not JSON)"})
        elif isinstance(item, (dict, list, tuple)):
            if depth >= MAX_JSON_DEPTH:
                problems.append({"path": path, "message": f"is nested more than {MAX_JSON_DEPTH} levels deep"})
                continue
            if isinstance(item, dict):
                for key, member in item.items():
                    if not isinstance(key, str):
                        problems.append({"path": path, "message": f"has a key that is not a string ({type(key).__name__})"})
                        continue
                    shown_key = key if not _has_lone_surrogate(key) else key.encode("utf-8", "backslashreplace").decode()
                    if shown_key != key:
                        problems.append({"path": _join(path, shown_key), "message": "has a key holding a lone surrogate"})
                    pending.append((_join(path, shown_key), member, depth + 1))
            else:
                pending.extend((_join(path, str(index)), member, depth + 1) for index, member in enumerate(item))
    problems.sort(key=lambda problem: problem["path"])
    return problems


def fits_json(value: Any) -> bool:
    """True only when `value` surely has none of the problems `json_value_problems` lists: the
    same walk without building a path for every member, on exact types (a subclass, or anything
    unusual, answers False and the full walk decides). Valid inputs take this path on every step."""
    pending: List[Tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii() and _has_lone_surrogate(item):
                return False
        elif kind is dict or kind is list:
            if depth >= MAX_JSON_DEPTH:
                return False
            members = item.values() if kind is dict else item
            if kind is dict:
                for key in item:
                    if type(key) is not str or (not key.isascii() and _has_lone_surrogate(key)):
                        return False
            for member in members:
                member_kind = type(member)
                if member_kind is str:
                    if not member.isascii() and _has_lone_surrogate(member):
                        return False
                elif member_kind is bool or member is None:
                    continue
                else:
                    pending.append((member, depth + 1))
        elif kind is int:
            if not -_INTEGER_LIMIT < item < _INTEGER_LIMIT:
                return False
        elif kind is float:
            if item != item or item in (_INFINITY, -_INFINITY):
                return False
        elif not (kind is bool or item is None):
            return False
    return True


_INFINITY = float("inf")


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
