"""The fast validator's oneOf/anyOf/not/propertyNames agree with jsonschema, and a failed
alternative is reported as the problems of the branch the value meant, with their paths."""

from __future__ import annotations

import pytest
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
