"""The fast validator's oneOf/anyOf/not/propertyNames agree with jsonschema, and a failed
alternative is reported as the problems of the branch the value meant, with their paths."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from azure_openai_connector.validation import SchemaValidator, compile_check

PART = {"oneOf": [
    {"type": "object", "additionalProperties": False, "required": ["type", "text"],
     "properties": {"type": {"const": "text"}, "text": {"type": "string"}}},
    {"type": "object", "additionalProperties": False, "required": ["type", "image_url"],
     "properties": {"type": {"const": "image_url"}, "image_url": {"type": "object", "required": ["url"]}}},
]}
SCHEMA = {"type": "object", "properties": {
    "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": PART}, {"type": "null"}]},
    "choice": {"oneOf": [{"type": "string", "enum": ["auto", "none"]},
                         {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}]},
    "bias": {"type": "object", "propertyNames": {"pattern": "^[0-9]+$"}, "additionalProperties": {"type": "integer"}},
    "not_five": {"not": {"const": 5}},
    "either": {"oneOf": [{"type": "integer"}, {"minimum": 3}]},  # 4 is valid under both: not oneOf
}}
VALUES = [
    {"content": "hi"}, {"content": None}, {"content": 3}, {"content": [{"type": "text", "text": "x"}]},
    {"content": [{"type": "image_url", "image_url": {}}]}, {"content": [{"type": "audio"}]},
    {"content": [{"text": "x"}]}, {"content": [{"type": "text", "text": "x", "extra": 1}]},
    {"choice": "auto"}, {"choice": "sometimes"}, {"choice": {"name": "f"}}, {"choice": {}}, {"choice": 2},
    {"bias": {"123": 1}}, {"bias": {"abc": 1}}, {"bias": {"1": "x"}},
    {"not_five": 4}, {"not_five": 5}, {"either": 4}, {"either": 2}, {"either": 2.5},
]


@pytest.mark.parametrize("value", VALUES)
def test_the_compiled_check_agrees_with_jsonschema(value):
    assert compile_check(SCHEMA)(value) == Draft7Validator(SCHEMA).is_valid(value)
    assert (SchemaValidator(SCHEMA).errors(value) == []) == Draft7Validator(SCHEMA).is_valid(value)


@pytest.mark.parametrize("value, expected", [
    ({"content": [{"type": "image_url", "image_url": {}}]}, [("content/0/image_url/url", "is required")]),
    ({"content": [{"type": "audio"}]}, [("content/0/type", "'audio' is not one of 'text', 'image_url'")]),
    ({"content": [{"text": "x"}]}, [("content/0/type", "is required")]),
    ({"content": [{"type": "text", "text": "x", "extra": 1}]}, [("content/0/extra", "is not a known field")]),
    ({"content": 3}, [("content", "must be of type array or null or string")]),
    ({"choice": "sometimes"}, [("choice", "'sometimes' is not one of ['auto', 'none']")]),
    ({"choice": {}}, [("choice/name", "is required")]),
    ({"bias": {"abc": 1}}, [("bias", "'abc' does not match '^[0-9]+$'")]),
])
def test_a_failed_alternative_names_the_field_inside_it(value, expected):
    assert [(item["path"], item["message"]) for item in SchemaValidator(SCHEMA).errors(value)] == expected


# The shapes the compiler fuses or specialises (an object's keywords in one pass, a scalar's type
# with its bounds, a rule on one field, fields that must not be set), against jsonschema itself.
FUSED = {
    "type": "object", "required": ["role"], "additionalProperties": {"type": ["string", "integer"]},
    "properties": {
        "role": {"type": "string", "enum": ["user", "tool"], "minLength": 3, "maxLength": 4},
        "n": {"type": "integer", "minimum": 1, "maximum": 3},
        "t": {"type": "number", "minimum": 0},
        "top": {"type": "number", "maximum": 1},
        "name": {"type": "string", "minLength": 2},
        "any": {"type": "string"},
        "parts": {"type": "array", "items": {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "null"}]}},
    },
    "allOf": [
        {"if": {"properties": {"role": {"const": "tool"}}}, "then": {"required": ["name"]},
         "else": {"properties": {"name": False, "parts": False}}},
    ],
}
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 5), st.floats(-1, 4, allow_nan=False),
                     st.sampled_from(["", "a", "ab", "user", "tool", "tools", "x" * 5]))
# Mostly near the boundaries, so that both answers come up often.
_values = st.fixed_dictionaries({}, optional={
    "role": st.sampled_from(["user", "tool", "tools", "us", "", 3, None]),
    "n": st.integers(0, 4) | st.sampled_from([1.0, 2.5, True, "2"]),
    "t": st.floats(-1, 2, allow_nan=False) | st.integers(-1, 2),
    "top": st.floats(0, 2, allow_nan=False) | st.sampled_from([False, "1"]),
    "name": st.sampled_from(["", "a", "ab", 3]),
    "any": st.sampled_from(["x", 1]),
    "parts": st.lists(st.sampled_from(["", "ab", "abc", None, 1]), max_size=3) | st.sampled_from(["ab"]),
    "extra": st.sampled_from(["s", 1, 1.5, None, True]),
}) | _scalars


@settings(max_examples=500, deadline=None)
@given(value=_values)
def test_the_fused_and_specialised_checks_agree_with_jsonschema(value):
    assert compile_check(FUSED)(value) == Draft7Validator(FUSED).is_valid(value)


_BOUNDARY_CASES = [
    ({"type": "integer", "minimum": 1, "maximum": 3}, [0, 1, 3, 4, 2.0, 2.5, True, "2", None]),
    ({"type": "number", "minimum": 0}, [-1, 0, 0.5, 10 ** 20, True, "0"]),
    ({"type": "number", "maximum": 1}, [-5, 1, 1.5, False, None]),
    ({"type": "number"}, [1, 1.5, True, "1"]),
    ({"type": "string", "minLength": 2, "maxLength": 4}, ["", "a", "ab", "abcd", "abcde", 3, None]),
    ({"type": "string", "minLength": 2}, ["a", "ab", 2]),
    ({"type": "string", "maxLength": 1}, ["", "a", "ab"]),
    ({"properties": {"a": False, "b": False}}, [{}, {"a": 1}, {"b": None}, {"c": 1}, 3, [1]]),
    ({"properties": {"role": {"const": "tool"}}}, [{}, {"role": "tool"}, {"role": "x"}, {"role": None}, "tool"]),
    ({"properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
     [{}, {"a": 1}, {"a": "1"}, {"a": 1, "b": "x", "c": 3}, {"b": 2}, {"c": 1, "d": 2, "e": 3, "b": 1}]),
    ({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}},
      "additionalProperties": {"type": "string"}}, [{}, {"a": 1}, {"a": 1, "x": "s"}, {"a": 1, "x": 2}, {"a": "1"}, []]),
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
     [{}, {"a": 1}, {"b": 1}, {"a": 1, "b": 1}, "a"]),
    ({"type": "object", "properties": {"a": {}}}, [{}, {"a": None}, {"z": 1}, 1]),
    ({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "null"}]}, ["ab", "abc", None, 1]),
]


@pytest.mark.parametrize("schema, values", _BOUNDARY_CASES)
def test_each_fused_or_specialised_shape_agrees_with_jsonschema_at_its_boundaries(schema, values):
    check, reference = compile_check(schema), Draft7Validator(schema)
    assert [check(value) for value in values] == [reference.is_valid(value) for value in values]
