"""The Responses API: create, get and cancel, stored per emulated resource.

Answers are deterministic: a text reply naming the input (and the response it continues), a
function call when function tools are offered, JSON built from the schema for json_schema, the
tool's output echoed once a function_call_output comes back. A background run is `queued` when
created and moves on with each poll: `in_progress`, then `completed` on poll BACKGROUND_POLLS.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from . import responses, validation
from .call import Call
from .errors import ServiceRefusal, bad_request
from .handlers import refuse_streaming
from .reply import Reply, json_reply

BACKGROUND_POLLS = 3
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
REASONING_SUMMARIES = ("auto", "concise", "detailed")
TEXT_FORMATS = ("text", "json_object", "json_schema")
TOOL_CHOICES = ("none", "auto", "required")
ITEM_ROLES = ("user", "assistant", "system", "developer")
REASONING_TOKENS = 16
MIN_OUTPUT_TOKENS = 16
MAX_METADATA_PAIRS = 16
# Models that refuse sampling parameters, and models that have no reasoning.
REASONING_MODEL_PREFIXES = ("o1", "o3", "o4", "gpt-5")
NON_REASONING_MODEL_PREFIXES = ("gpt-4", "gpt-3.5")


@dataclass
class StoredResponse:
    """One stored response: its finished object, and how far a background run has got."""

    finished: Dict[str, Any]
    subject: str
    background: bool
    polls: int = 0
    cancelled: bool = False


@dataclass
class ResponseStore:
    """Responses kept by one emulated resource (for get, cancel and previous_response_id)."""

    _items: Dict[str, StoredResponse] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, response_id: str, stored: StoredResponse) -> None:
        with self._lock:
            self._items[response_id] = stored

    def get(self, response_id: str) -> Optional[StoredResponse]:
        with self._lock:
            return self._items.get(response_id)

    def poll(self, response_id: str) -> Dict[str, Any]:
        """The object as a poll sees it now (each poll moves a background run on)."""
        with self._lock:
            stored = self._found(response_id)
            if stored.background and not stored.cancelled:
                stored.polls += 1
            return _current(stored)

    def cancel(self, response_id: str) -> Dict[str, Any]:
        with self._lock:
            stored = self._found(response_id)
            if not stored.background:
                raise bad_request("Only responses created with background=true can be cancelled.")
            if _current(stored)["status"] not in ("completed", "failed", "incomplete"):
                stored.cancelled = True
            return _current(stored)

    def _found(self, response_id: str) -> StoredResponse:
        stored = self._items.get(response_id)
        if stored is None:
            raise ServiceRefusal(404, f"Response with id '{response_id}' not found.", param="response_id")
        return stored


def _current(stored: StoredResponse) -> Dict[str, Any]:
    answer = copy.deepcopy(stored.finished)
    if not stored.background:
        return answer
    if stored.cancelled:
        status = "cancelled"
    elif stored.polls >= BACKGROUND_POLLS:
        return answer
    else:
        status = "queued" if stored.polls == 0 else "in_progress"
    answer.update(status=status, output=[], usage=None, incomplete_details=None)
    return answer


def create_response(call: Call) -> Reply:
    body = call.body()
    refuse_streaming(body)
    model = str(validation.string(body, "model", required_field=True))
    items = input_items(validation.required(body, "input"))
    instructions = validation.string(body, "instructions")
    previous_id = validation.string(body, "previous_response_id")
    previous = call.responses.get(previous_id) if previous_id else None
    if previous_id and previous is None:
        raise bad_request(f"Previous response with id '{previous_id}' not found.", param="previous_response_id",
                          code="previous_response_not_found")
    tools = function_tools(body.get("tools"))
    tool_choice = check_tool_choice(body.get("tool_choice"), tools)
    text_format = check_text_format(body.get("text"))
    reasoning = check_reasoning(body.get("reasoning"), model)
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        if validation.number(body, name, low, high) is not None and model.startswith(REASONING_MODEL_PREFIXES):
            raise bad_request(f"Unsupported parameter: '{name}' is not supported with this model.", param=name,
                              code="unsupported_parameter")
    limit = validation.integer(body, "max_output_tokens", MIN_OUTPUT_TOKENS, None, None)
    store = _boolean(body, "store", True)
    background = _boolean(body, "background", False)
    if background and not store:
        raise bad_request("Background mode requires store=true.", param="background")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > MAX_METADATA_PAIRS
                                 or not all(isinstance(value, str) for value in metadata.values())):
        raise bad_request("Invalid 'metadata': expected at most 16 string values.", param="metadata")

    response_id = f"resp_emu{call.serial:012d}"
    subject = _subject(items)
    output, text = _output(call.serial, items, subject, previous, tools, tool_choice, text_format)
    reasoning_tokens = REASONING_TOKENS if reasoning or model.startswith(REASONING_MODEL_PREFIXES) else 0
    output_tokens = responses.estimate_tokens(len(text)) + reasoning_tokens
    status, incomplete = "completed", None
    if limit is not None and output_tokens > limit:
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
        _cut(output, max(0, (limit - reasoning_tokens) * 4))
        output_tokens = limit
    input_tokens = responses.estimate_tokens(len(json.dumps(items)) + len(instructions or ""))
    finished = {
        "id": response_id, "object": "response", "created_at": int(time.time()), "status": status,
        "background": background, "error": None, "incomplete_details": incomplete, "instructions": instructions,
        "max_output_tokens": limit, "model": model, "output": output, "parallel_tool_calls": True,
        "previous_response_id": previous_id, "reasoning": {"effort": reasoning.get("effort"),
                                                           "summary": reasoning.get("summary")},
        "store": store, "temperature": body.get("temperature", 1.0), "text": {"format": text_format},
        "tool_choice": tool_choice, "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0),
        "truncation": "disabled", "user": None, "metadata": metadata or {},
        "usage": {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                  "total_tokens": input_tokens + output_tokens},
    }
    stored = StoredResponse(finished, subject, background)
    if store:
        call.responses.add(response_id, stored)
    return json_reply(200, _current(stored))


def get_response(call: Call) -> Reply:
    return json_reply(200, call.responses.poll(call.params["response_id"]))


def cancel_response(call: Call) -> Reply:
    return json_reply(200, call.responses.cancel(call.params["response_id"]))


def input_items(value: Any) -> List[Dict[str, Any]]:
    """The input as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise bad_request("Invalid 'input': expected a string or a non-empty array of input items.", param="input")
    for position, item in enumerate(value):
        where = f"input[{position}]"
        if not isinstance(item, dict):
            raise bad_request(f"Invalid type for '{where}': expected an object.", param=where, code="invalid_type")
        kind = item.get("type", "message")
        if kind == "function_call_output":
            for name in ("call_id", "output"):
                validation.string(item, name, required_field=True)
        elif kind == "function_call":
            for name in ("call_id", "name", "arguments"):
                validation.string(item, name, required_field=True)
        elif kind == "message":
            validation.one_of(f"{where}.role", validation.required(item, "role"), ITEM_ROLES)
            if not isinstance(validation.required(item, "content"), (str, list)):
                raise bad_request(f"Invalid type for '{where}.content'.", param=f"{where}.content",
                                  code="invalid_type")
        else:
            raise bad_request(f"Invalid value: '{kind}'.", param=f"{where}.type", code="invalid_value")
    return value


def function_tools(value: Any) -> List[Dict[str, Any]]:
    """The function tools offered (built-in tools are accepted and not used)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request("Invalid type for 'tools': expected an array.", param="tools", code="invalid_type")
    found = []
    for position, tool in enumerate(value):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise bad_request(f"Missing required parameter: 'tools[{position}].type'.", param=f"tools[{position}].type",
                              code="missing_required_parameter")
        if tool["type"] == "function":
            validation.string(tool, "name", required_field=True)
            found.append(tool)
    return found


def check_tool_choice(value: Any, tools: List[Dict[str, Any]]) -> Any:
    if value is None:
        return "auto"
    if isinstance(value, str):
        return validation.one_of("tool_choice", value, TOOL_CHOICES)
    if isinstance(value, dict) and value.get("type") == "function":
        name = validation.string(value, "name", required_field=True)
        if name not in [tool["name"] for tool in tools]:
            raise bad_request(f"Tool choice '{name}' not found in 'tools' parameter.", param="tool_choice")
        return value
    raise bad_request("Invalid 'tool_choice'.", param="tool_choice", code="invalid_value")


def check_text_format(value: Any) -> Dict[str, Any]:
    text_format = value.get("format") if isinstance(value, dict) else None
    if text_format is None:
        return {"type": "text"}
    if not isinstance(text_format, dict):
        raise bad_request("Invalid type for 'text.format'.", param="text.format", code="invalid_type")
    validation.one_of("text.format.type", text_format.get("type"), TEXT_FORMATS)
    if text_format["type"] == "json_schema":
        validation.string(text_format, "name", required_field=True)
        if not isinstance(validation.required(text_format, "schema"), dict):
            raise bad_request("Invalid type for 'text.format.schema'.", param="text.format.schema", code="invalid_type")
    return text_format


def check_reasoning(value: Any, model: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request("Invalid type for 'reasoning'.", param="reasoning", code="invalid_type")
    for name, allowed in (("effort", REASONING_EFFORTS), ("summary", REASONING_SUMMARIES)):
        if value.get(name) is not None:
            if model.startswith(NON_REASONING_MODEL_PREFIXES):
                raise bad_request(f"Unsupported parameter: 'reasoning.{name}' is not supported with this model.",
                                  param=f"reasoning.{name}", code="unsupported_parameter")
            validation.one_of(f"reasoning.{name}", value[name], allowed)
    return value


def _boolean(body: Dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"Invalid type for '{name}': expected a boolean.", param=name, code="invalid_type")
    return value


def _subject(items: List[Dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            return _text(item.get("content"))[:responses.QUOTED_CHARS]
    return ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def _output(serial: int, items: List[Dict[str, Any]], subject: str, previous: Optional[StoredResponse],
            tools: List[Dict[str, Any]], tool_choice: Any, text_format: Dict[str, Any]) -> Tuple[List[Any], str]:
    """(output items, their text): the deterministic answer to this input."""
    tool_outputs = [item for item in items if item.get("type") == "function_call_output"]
    if tool_outputs:
        text = f"Emulated reply using the tool result: {tool_outputs[-1]['output'][:responses.QUOTED_CHARS]}"
    elif tools and tool_choice != "none":
        chosen = tools[0]
        if isinstance(tool_choice, dict):
            chosen = next(tool for tool in tools if tool["name"] == tool_choice["name"])
        arguments = json.dumps(sample(chosen.get("parameters") or {}, subject), separators=(",", ":"))
        call = {"type": "function_call", "id": f"fc_emu{serial:012d}", "call_id": f"call_emu{serial:012d}",
                "name": chosen["name"], "arguments": arguments, "status": "completed"}
        return [call], arguments
    elif text_format["type"] == "json_schema":
        text = json.dumps(sample(text_format["schema"], subject), separators=(",", ":"))
    elif text_format["type"] == "json_object":
        text = json.dumps({"reply": subject})
    else:
        text = f"Emulated reply to: {subject}"
        if previous is not None:
            text += f" (continuing from: {previous.subject})"
    message = {"type": "message", "id": f"msg_emu{serial:012d}", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": text, "annotations": []}]}
    return [message], text


def sample(schema: Any, subject: str, depth: int = 0) -> Any:
    """A value valid for simple JSON Schemas (types, enums, properties), the subject as text."""
    if not isinstance(schema, dict) or depth > 8:
        return subject
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = next((one for one in kind if one != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        return {name: sample(sub, subject, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [sample(schema.get("items"), subject, depth + 1)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), subject)


def _cut(output: List[Dict[str, Any]], characters: int) -> None:
    for item in output:
        for part in item.get("content") or ():
            part["text"] = part["text"][:characters]
