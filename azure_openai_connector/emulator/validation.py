"""Request parameter checks that fail the way the service does: 400, a message, and the `param` named."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from .errors import ServiceRefusal, bad_request

INVALID_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)

_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string", list: "an array",
               dict: "an object", type(None): "null"}


def json_object(parsed_ok: bool, value: Any) -> Dict[str, Any]:
    if not parsed_ok:
        raise bad_request(INVALID_JSON_MESSAGE)
    if not isinstance(value, dict):
        raise bad_request(
            f"Invalid type for request body: expected an object, but got {_type_name(value)} instead.",
            code="invalid_type",
        )
    return value


def required(body: Dict[str, Any], name: str) -> Any:
    if body.get(name) is None:
        raise bad_request(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    return body[name]


def string(body: Dict[str, Any], name: str, default: Optional[str] = None, required_field: bool = False) -> Optional[str]:
    value = required(body, name) if required_field else body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _invalid_type(name, value, str)
    return value


def integer(body: Dict[str, Any], name: str, low: Optional[int], high: Optional[int], default: Optional[int]) -> Optional[int]:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_type(name, value, int)
    _check_range(name, value, low, high, "integer")
    return value


def number(body: Dict[str, Any], name: str, low: float, high: float) -> Optional[float]:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid_type(name, value, float)
    _check_range(name, value, low, high, "decimal")
    return float(value)


def one_of(name: str, value: Any, allowed: Iterable[str]) -> str:
    choices = list(allowed)
    if value not in choices:
        raise bad_request(
            f"Invalid value: {_quote(value)}. Supported values are: {_english_list(choices)}.",
            param=name,
            code="invalid_value",
        )
    return value


def max_length(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise bad_request(
            f"Invalid '{name}': string too long. Expected a string with maximum length {limit}, "
            f"but got a string with length {len(value)} instead.",
            param=name,
            code="string_above_max_length",
        )


def unknown_parameter(name: str) -> ServiceRefusal:
    return bad_request(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")


def messages(body: Dict[str, Any], allowed_roles: Iterable[str]) -> List[Dict[str, Any]]:
    value = required(body, "messages")
    if not isinstance(value, list):
        raise _invalid_type("messages", value, list)
    if not value:
        raise bad_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    roles = list(allowed_roles)
    for position, message in enumerate(value):
        where = f"messages[{position}]"
        if not isinstance(message, dict):
            raise _invalid_type(where, message, dict)
        if message.get("role") is None:
            raise bad_request(
                f"Missing required parameter: '{where}.role'.", param=f"{where}.role", code="missing_required_parameter"
            )
        one_of(f"{where}.role", message["role"], roles)
    return value


def _check_range(name: str, value: float, low: Optional[float], high: Optional[float], kind: str) -> None:
    if low is not None and value < low:
        raise bad_request(
            f"Invalid '{name}': {kind} below minimum value. Expected a value >= {low}, but got {value} instead.",
            param=name,
            code=f"{kind}_below_min_value",
        )
    if high is not None and value > high:
        raise bad_request(
            f"Invalid '{name}': {kind} above maximum value. Expected a value <= {high}, but got {value} instead.",
            param=name,
            code=f"{kind}_above_max_value",
        )


def _invalid_type(name: str, value: Any, expected: type) -> ServiceRefusal:
    return bad_request(
        f"Invalid type for '{name}': expected {_TYPE_NAMES[expected]}, but got {_type_name(value)} instead.",
        param=name,
        code="invalid_type",
    )


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), "a value")


def _quote(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _english_list(items: List[str]) -> str:
    quoted = [f"'{item}'" for item in items]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]
