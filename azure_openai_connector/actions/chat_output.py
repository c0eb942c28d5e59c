"""Flat conveniences from a chat answer for the next workflow step: content, tool calls with their
arguments parsed, structured output parsed and checked. What the model got wrong (arguments that
are not JSON, an answer that misses the schema) is reported in the result, never raised: the
answer was paid for, and the workflow decides what to do with it."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Tuple

Problem = Dict[str, str]


def conveniences(choice: Mapping[str, Any], response_format: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """content, finish_reason, refusal, tool_calls, assistant_message, parsed and parse_errors of
    one choice; `response_format` is the one sent (None: text)."""
    message = choice.get("message") or {}
    content = message.get("content")
    parsed, parse_errors = parsed_output(content if isinstance(content, str) else None, response_format)
    return {
        "content": content,
        "finish_reason": choice.get("finish_reason"),
        "refusal": message.get("refusal"),
        "tool_calls": [tool_call(call) for call in message.get("tool_calls") or () if isinstance(call, dict)],
        "assistant_message": assistant_message(message),
        "parsed": parsed,
        "parse_errors": parse_errors,
    }


def tool_call(call: Mapping[str, Any]) -> Dict[str, Any]:
    """One tool call with its arguments parsed; arguments that are not JSON are reported."""
    function = call.get("function") or {}
    raw = function.get("arguments")
    arguments: Any = None
    error: Optional[str] = None
    if isinstance(raw, str):
        try:
            arguments = json.loads(raw)
        except ValueError as problem:
            error = f"the model's arguments are not valid JSON: {problem}"
    else:
        error = "the tool call has no arguments string"
    return {"id": call.get("id"), "type": call.get("type"), "name": function.get("name"),
            "arguments": arguments, "raw_arguments": raw if isinstance(raw, str) else None,
            "arguments_error": error}


def assistant_message(message: Mapping[str, Any]) -> Dict[str, Any]:
    """The answer as a request message (role, content, tool_calls, refusal), to append to the
    conversation of the next step as it is."""
    result: Dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    calls = [{"id": call.get("id"), "type": "function",
              "function": {"name": (call.get("function") or {}).get("name"),
                           "arguments": (call.get("function") or {}).get("arguments")}}
             for call in message.get("tool_calls") or () if isinstance(call, dict)]
    if calls:
        result["tool_calls"] = calls
    if message.get("refusal") is not None:
        result["refusal"] = message["refusal"]
    return result


def parsed_output(content: Optional[str], response_format: Optional[Mapping[str, Any]]) -> Tuple[Any, List[Problem]]:
    """(the JSON answer, []) or (None, problems with their paths) for JSON response formats;
    (None, []) for text or when there is no content (tool calls, refusals)."""
    kind = (response_format or {}).get("type")
    if content is None or kind not in ("json_object", "json_schema"):
        return None, []
    try:
        value = json.loads(content)
    except ValueError as problem:
        return None, [{"path": "", "message": f"the answer is not valid JSON: {problem}"}]
    if kind == "json_object":
        return value, []
    schema = (response_format.get("json_schema") or {}).get("schema")
    problems = schema_mismatches(value, schema) if isinstance(schema, dict) else []
    return (None, problems) if problems else (value, [])


def schema_mismatches(value: Any, schema: Mapping[str, Any]) -> List[Problem]:
    """Where `value` breaks `schema` (checked before sending, so it is a valid schema)."""
    from jsonschema import Draft202012Validator, validators

    validator = validators.validator_for(schema, default=Draft202012Validator)(schema)
    found = [{"path": "/".join(str(part) for part in error.absolute_path),
              "message": error.message if len(error.message) <= 300 else error.message[:297] + "..."}
             for error in validator.iter_errors(value)]
    return sorted(found, key=lambda problem: problem["path"])
