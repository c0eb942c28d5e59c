"""Chat request checks the way the service makes them: message roles and parts, tool calls and
their answers, tools and tool_choice, strict schemas, and what a model family refuses."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence

from .errors import ServiceRefusal, bad_request

PARTS_BY_ROLE = {
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "system": ("text",),
    "developer": ("text",),
    "tool": ("text",),
}
# Parameters reasoning models refuse, as the service lists them for o-series and gpt-5.
REASONING_REFUSES = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "logprobs",
                     "top_logprobs", "logit_bias", "max_tokens")


def is_reasoning(model: str) -> bool:
    """o-series and gpt-5 family names."""
    name = model.lower()
    return re.match(r"o\d", name) is not None or name.startswith("gpt-5")


def is_older_chat_model(model: str) -> bool:
    """Chat models from before reasoning (gpt-4*, gpt-3.5/35*)."""
    name = model.lower()
    return name.startswith(("gpt-4", "gpt-3.5", "gpt-35"))


# Reasoning tokens the emulated model "spends" per effort (deterministic, so tests can expect them).
REASONING_TOKENS = {"none": 0, "minimal": 8, "low": 16, "medium": 32, "high": 64, "xhigh": 128, "max": 256}


def reasoning_tokens(body: Dict[str, Any], model: str) -> int:
    """What a reasoning model spends thinking at the requested (or its default, medium) effort."""
    if not is_reasoning(model):
        return 0
    return REASONING_TOKENS.get(str(body.get("reasoning_effort") or "medium"), 32)


def effort_values(model: str) -> Sequence[str]:
    """The reasoning_effort values a reasoning model takes."""
    name = model.lower()
    if re.match(r"o\d", name):
        return ("low", "medium", "high")
    if re.match(r"gpt-5(-|$)", name):
        return ("minimal", "low", "medium", "high")
    return ("none", "low", "medium", "high")


def model_family(body: Dict[str, Any], model: str) -> None:
    """400 unsupported_parameter / unsupported_value for what the model behind the call refuses."""
    if is_reasoning(model):
        refused = REASONING_REFUSES + (("stop",) if model.lower().startswith(("o3", "o4")) else ())
        refused += () if model.lower().startswith("gpt-5") else ("verbosity",)
        for name in refused:
            if body.get(name) is not None:
                hint = " Use 'max_completion_tokens' instead." if name == "max_tokens" else ""
                raise _unsupported_parameter(name, hint)
        effort = body.get("reasoning_effort")
        allowed = effort_values(model)
        if effort is not None and effort not in allowed:
            quoted = [f"'{value}'" for value in allowed]
            listed = ", ".join(quoted[:-1]) + ", and " + quoted[-1]
            raise ServiceRefusal(400, f"Unsupported value: '{effort}' is not supported with the '{model}' model. "
                                f"Supported values are: {listed}.", param="reasoning_effort", code="unsupported_value")
    elif is_older_chat_model(model):
        for name in ("reasoning_effort", "verbosity"):
            if body.get(name) is not None:
                raise _unsupported_parameter(name, "")


def _unsupported_parameter(name: str, hint: str) -> ServiceRefusal:
    return ServiceRefusal(400, f"Unsupported parameter: '{name}' is not supported with this model.{hint}",
                    param=name, code="unsupported_parameter")


def messages(items: List[Dict[str, Any]]) -> None:
    """Content per role, part types per role, and tool messages answering earlier tool calls."""
    pending: Dict[str, int] = {}
    for position, message in enumerate(items):
        role = message["role"]
        where = f"messages[{position}]"
        content = message.get("content")
        if role == "assistant":
            if content is None and not message.get("tool_calls") and message.get("refusal") is None:
                raise bad_request(f"Invalid value for '{where}.content': expected a string, got null.",
                                  param=f"{where}.content", code="invalid_value")
        elif content is None:
            raise bad_request(f"Missing required parameter: '{where}.content'.", param=f"{where}.content",
                              code="missing_required_parameter")
        if role == "tool":
            if pending and message.get("tool_call_id") in pending:
                pending.pop(message["tool_call_id"])
            else:
                raise bad_request("Invalid parameter: messages with role 'tool' must be a response to a "
                                  "preceeding message with 'tool_calls'.", param=f"{where}.role")
        elif pending:
            raise _unanswered(pending)
        if role == "assistant":
            for call in message.get("tool_calls") or ():
                if not isinstance(call, dict) or not isinstance(call.get("id"), str):
                    raise bad_request(f"Missing required parameter: '{where}.tool_calls[0].id'.",
                                      param=f"{where}.tool_calls", code="missing_required_parameter")
                pending[call["id"]] = position
        if isinstance(content, list):
            _parts(content, role, where)
    if pending:
        raise _unanswered(pending)


def _unanswered(pending: Dict[str, int]) -> ServiceRefusal:
    return bad_request("An assistant message with 'tool_calls' must be followed by tool messages responding to "
                       "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                       + ", ".join(pending), param="messages", code="invalid_value")


def _parts(parts: List[Any], role: str, where: str) -> None:
    allowed = PARTS_BY_ROLE.get(role, ("text",))
    for index, part in enumerate(parts):
        place = f"{where}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            quoted = ", ".join(f"'{value}'" for value in allowed)
            raise bad_request(f"Invalid value: '{kind}'. Supported values are: {quoted}.",
                              param=f"{place}.type", code="invalid_value")
        if kind == "image_url":
            url = (part.get("image_url") or {}).get("url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:image/")):
                raise bad_request("Invalid image URL: expected an http(s) URL or a data:image/ URL.",
                                  param=f"{place}.image_url.url", code="invalid_value")
        if kind == "file":
            file = part.get("file") or {}
            if not (isinstance(file.get("file_data"), str) or isinstance(file.get("file_id"), str)):
                raise bad_request("Missing required parameter: one of 'file_data' or 'file_id'.",
                                  param=f"{place}.file", code="missing_required_parameter")


def tools(body: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The function tools, tool_choice and parallel_tool_calls checked; the tools returned."""
    value = body.get("tools")
    found: List[Dict[str, Any]] = []
    for index, tool in enumerate(value or ()):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            raise bad_request(f"Invalid value for 'tools[{index}]': expected a function tool.",
                              param=f"tools[{index}]", code="invalid_value")
        name = function.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise bad_request(f"Invalid 'tools[{index}].function.name': string does not match pattern.",
                              param=f"tools[{index}].function.name", code="invalid_value")
        if function.get("strict") is True and isinstance(function.get("parameters"), dict):
            strict_schema(function["parameters"], f"function '{name}'", f"tools[{index}].function.parameters")
        found.append(function)
    for name in ("tool_choice", "parallel_tool_calls"):
        if body.get(name) is not None and not found:
            raise bad_request(f"Invalid value for '{name}': '{name}' is only allowed when 'tools' are specified.",
                              param=name, code="invalid_value")
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        if wanted not in [function["name"] for function in found]:
            raise bad_request(f"Invalid value for 'tool_choice': function '{wanted}' is not among the tools.",
                              param="tool_choice", code="invalid_value")
    if body.get("top_logprobs") is not None and body.get("logprobs") is not True:
        raise bad_request("Invalid value for 'top_logprobs': 'logprobs' must be true when 'top_logprobs' is set.",
                          param="top_logprobs", code="invalid_value")
    return found


def response_format(body: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The response format checked (type, json_schema name, strict schema rules), or None."""
    value = body.get("response_format")
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in ("text", "json_object", "json_schema"):
        raise bad_request("Invalid value for 'response_format.type'.", param="response_format.type",
                          code="invalid_value")
    if value["type"] == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(spec.get("name", ""))):
            raise bad_request("Invalid 'response_format.json_schema.name'.", param="response_format.json_schema.name",
                              code="invalid_value")
        if spec.get("strict") is True and isinstance(spec.get("schema"), dict):
            strict_schema(spec["schema"], f"response_format '{spec['name']}'", "response_format")
    return value


def strict_schema(schema: Any, subject: str, param: str, context: str = "()") -> None:
    """Strict mode: every object requires all its properties and forbids others."""
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else None
    if schema.get("type") == "object" or properties is not None:
        if schema.get("additionalProperties") is not False:
            raise bad_request(f"Invalid schema for {subject}: In context={context}, 'additionalProperties' is "
                              "required to be supplied and to be false.", param=param, code="invalid_value")
        missing = [name for name in properties or {} if name not in (schema.get("required") or ())]
        if missing:
            raise bad_request(f"Invalid schema for {subject}: In context={context}, 'required' is required to be "
                              "supplied and to be an array including every key in properties. Missing "
                              f"'{missing[0]}'.", param=param, code="invalid_value")
    for name, sub in (properties or {}).items():
        strict_schema(sub, subject, param, f"('properties', '{name}')")
    if isinstance(schema.get("items"), dict):
        strict_schema(schema["items"], subject, param, "('items',)")
    for keyword in ("anyOf", "$defs", "definitions"):
        subs = schema.get(keyword)
        for sub in (subs.values() if isinstance(subs, dict) else subs if isinstance(subs, list) else ()):
            strict_schema(sub, subject, param, f"('{keyword}',)")
