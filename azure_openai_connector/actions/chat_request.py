"""Chat request rules shared by every chat action: the cross-field checks that run before anything
is sent (message roles, tools and their JSON Schemas, structured output, model families, Azure
API versions) and the request fields built from validated inputs."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from ..connection import Connection
from ..manifest import Form
from . import model_families

Problem = Dict[str, str]

# Sent only when changed from the manifest default (which is the API's own default): reasoning
# models refuse sampling parameters even at their default values.
SENT_WHEN_CHANGED = ("temperature", "top_p", "n", "presence_penalty", "frequency_penalty")
SENT_WHEN_SET = ("stop", "seed", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort",
                 "verbosity", "logprobs", "top_logprobs", "logit_bias", "user", "safety_identifier",
                 "store", "metadata", "service_tier", "prediction")

# Azure's dated API versions: what each first had (api-notes-2026 section 1; the vendored
# 2024-10-21 spec has none of NEWER_THAN_2024_10_21).
AZURE_FIRST_VERSION_WITH_DEVELOPER_ROLE = "2024-12-01"
AZURE_FIRST_VERSION_WITH_MAX_COMPLETION_TOKENS = "2024-09-01"
NEWER_THAN_2024_10_21 = ("reasoning_effort", "verbosity", "store", "metadata", "service_tier",
                         "safety_identifier", "prediction")
PARTS_NEWER_THAN_2024_10_21 = ("file", "input_audio")

PART_TYPES_BY_ROLE = {
    "user": ("text", "image_url", "file", "input_audio"),
    "assistant": ("text", "refusal"),
    "system": ("text",),
    "developer": ("text",),
    "tool": ("text",),
}
# Magic numbers of the image types the service reads, for bare base64 in `images`.
IMAGE_SIGNATURES = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
                    (b"RIFF", "image/webp"))


# --- checks ---------------------------------------------------------------------------------------


def was_set(form: Form, inputs: Mapping[str, Any], name: str) -> bool:
    """Whether the user set `name` (an input left at its manifest default counts as unset): the
    runtime's `given` when the inputs carry it, else a comparison with the manifest default."""
    given = getattr(inputs, "given", None)
    if given is not None:
        return name in given
    if name not in inputs:
        return False
    return not form.is_default(name, inputs[name])


def older_azure_version(connection: Connection, first_version: str) -> bool:
    """Whether the connection uses an Azure dated API version older than `first_version`."""
    return connection.deployment_in_path and connection.api_version < first_version


def message_problems(messages: Sequence[Mapping[str, Any]]) -> List[Problem]:
    """What each role requires and allows, and that the tool messages right after an assistant
    message with tool_calls answer each of its calls (the service refuses anything else)."""
    problems: List[Problem] = []
    pending: Dict[str, str] = {}  # tool call id -> the path of the call

    def unanswered() -> None:
        for path in pending.values():
            problems.append({"path": path, "message": "has no tool message answering it right after this message"})
        pending.clear()

    for index, message in enumerate(messages):
        role = message["role"]
        where = f"messages/{index}"
        content = message.get("content")
        # Which fields each role requires or refuses is the manifest's (if/then rules); here
        # what a schema cannot say: null content, and the order of tool calls and answers.
        if content is None and role != "assistant":
            problems.append({"path": f"{where}/content", "message": f"is required for a {role} message"})
        if role == "assistant" and content is None and not message.get("tool_calls") \
                and message.get("refusal") is None:
            problems.append({"path": f"{where}/content",
                             "message": "an assistant message needs content, tool_calls or refusal"})
        if role == "tool":
            call_id = message["tool_call_id"]
            if pending.pop(call_id, None) is None:
                problems.append({"path": f"{where}/tool_call_id",
                                 "message": f"{call_id!r} answers no tool call of the assistant message "
                                            "right before the tool messages"})
        else:
            unanswered()
        if role == "assistant":
            for position, call in enumerate(message.get("tool_calls", ())):
                pending[call["id"]] = f"{where}/tool_calls/{position}/id"
        if isinstance(content, list):
            allowed = PART_TYPES_BY_ROLE[role]
            for position, part in enumerate(content):
                if part["type"] not in allowed:
                    problems.append({"path": f"{where}/content/{position}/type",
                                     "message": f"a {role} message takes only {', '.join(allowed)} parts"})
                elif part["type"] == "file" and not ({"file_data", "file_id"} & set(part["file"])):
                    problems.append({"path": f"{where}/content/{position}/file",
                                     "message": "needs file_data (a data URL) or file_id"})
    unanswered()
    return problems


def json_schema_problems(schema: Any, path: str, *, strict: bool) -> List[Problem]:
    """`schema` checked against its JSON Schema meta-schema, reporting the path inside it, then
    (with `strict`) against the strict mode's rules."""
    from jsonschema import Draft202012Validator, validators

    validator_class = validators.validator_for(schema, default=Draft202012Validator)
    problems = [{"path": _joined(path, error.absolute_path), "message": _short(error.message)}
                for error in validator_class(validator_class.META_SCHEMA).iter_errors(schema)]
    if not problems and strict:
        if schema.get("type") != "object":
            problems.append({"path": f"{path}/type", "message": "must be 'object' at the top in strict mode"})
        problems += list(_strict_problems(schema, path))
    return problems


def _strict_problems(schema: Any, path: str) -> Iterator[Problem]:
    """Structured outputs' strict mode: every object lists all its properties in `required` and
    sets `additionalProperties: false`, all the way down."""
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties")
    is_object = schema.get("type") == "object" or (isinstance(schema.get("type"), list) and "object" in schema["type"]) \
        or isinstance(properties, dict)
    if is_object:
        if schema.get("additionalProperties") is not False:
            yield {"path": f"{path}/additionalProperties", "message": "must be false in strict mode"}
        missing = [name for name in (properties or {}) if name not in schema.get("required", ())]
        if missing:
            yield {"path": f"{path}/required",
                   "message": "must list every property in strict mode; missing " + ", ".join(map(repr, missing))}
    for name, sub in (properties or {}).items() if isinstance(properties, dict) else ():
        yield from _strict_problems(sub, f"{path}/properties/{name}")
    if isinstance(schema.get("items"), dict):
        yield from _strict_problems(schema["items"], f"{path}/items")
    for keyword in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for position, sub in enumerate(schema.get(keyword, ()) if isinstance(schema.get(keyword), list) else ()):
            yield from _strict_problems(sub, f"{path}/{keyword}/{position}")
    for keyword in ("$defs", "definitions"):
        for name, sub in (schema.get(keyword) or {}).items() if isinstance(schema.get(keyword), dict) else ():
            yield from _strict_problems(sub, f"{path}/{keyword}/{name}")


def tool_problems(inputs: Mapping[str, Any]) -> List[Problem]:
    """Tools' names and parameter schemas, and tool_choice / parallel_tool_calls against them."""
    problems: List[Problem] = []
    tools = inputs.get("tools") or []
    names: Dict[str, int] = {}
    for index, tool in enumerate(tools):
        function = tool["function"]
        if function["name"] in names:
            problems.append({"path": f"tools/{index}/function/name",
                             "message": f"{function['name']!r} is already defined by tools/{names[function['name']]}"})
        names.setdefault(function["name"], index)
        if "parameters" in function:
            problems += json_schema_problems(function["parameters"], f"tools/{index}/function/parameters",
                                             strict=function.get("strict") is True)
    for name in ("tool_choice", "parallel_tool_calls"):
        if name in inputs and not tools:
            problems.append({"path": name, "message": "needs Tools"})
    choice = inputs.get("tool_choice")
    if isinstance(choice, dict) and tools and choice["function"]["name"] not in names:
        problems.append({"path": "tool_choice/function/name",
                         "message": f"{choice['function']['name']!r} names no function in Tools "
                                    f"(defined: {', '.join(names)})"})
    return problems


def response_format_problems(inputs: Mapping[str, Any]) -> List[Problem]:
    """A json_schema response format's schema: meta-schema, then strict mode's rules."""
    response_format = inputs.get("response_format")
    if not (isinstance(response_format, dict) and response_format.get("type") == "json_schema"):
        return []
    spec = response_format["json_schema"]
    return json_schema_problems(spec["schema"], "response_format/json_schema/schema",
                                strict=spec.get("strict") is True)


def family_problems(form: Form, inputs: Mapping[str, Any]) -> List[Problem]:
    """Inputs the model named in `model` refuses, when the user set them."""
    model = inputs["model"]
    return [{"path": name, "message": model_families.refusal_reason(model, name)}
            for name in model_families.refused_inputs(model) if was_set(form, inputs, name)]


def azure_version_problems(form: Form, inputs: Mapping[str, Any], connection: Connection) -> List[Problem]:
    """What an Azure dated API version older than 2024-12-01-preview does not have."""
    if not older_azure_version(connection, AZURE_FIRST_VERSION_WITH_DEVELOPER_ROLE):
        return []
    newer = (f"is not in Azure's {connection.api_version} API (the 2024-10-21 API and older lack it); "
             "use api_version v1, which has every option, or a newer preview")
    problems = [{"path": name, "message": newer} for name in NEWER_THAN_2024_10_21 if was_set(form, inputs, name)]
    for index, message in enumerate(inputs.get("messages") or ()):
        if message["role"] == "developer":
            problems.append({"path": f"messages/{index}/role",
                             "message": f"'developer' needs Azure api_version {AZURE_FIRST_VERSION_WITH_DEVELOPER_ROLE}"
                                        f"-preview or newer, or v1 (this connection uses {connection.api_version}); "
                                        "use 'system'"})
        for position, part in enumerate(message.get("content") if isinstance(message.get("content"), list) else ()):
            if part["type"] in PARTS_NEWER_THAN_2024_10_21:
                problems.append({"path": f"messages/{index}/content/{position}/type",
                                 "message": f"a {part['type']} part {newer}"})
    return problems


def chat_problems(form: Form, inputs: Mapping[str, Any], connection: Connection) -> List[Problem]:
    """Every cross-field rule of a chat request, before anything is sent."""
    return (family_problems(form, inputs) + azure_version_problems(form, inputs, connection)
            + tool_problems(inputs) + response_format_problems(inputs)
            + ([{"path": "top_logprobs", "message": "needs Log Probabilities set to true"}]
               if "top_logprobs" in inputs and inputs.get("logprobs") is not True else []))


# --- the request ----------------------------------------------------------------------------------


def max_tokens_field(connection: Connection) -> str:
    """max_completion_tokens, or max_tokens for Azure dated versions that predate it."""
    if older_azure_version(connection, AZURE_FIRST_VERSION_WITH_MAX_COMPLETION_TOKENS):
        return "max_tokens"
    return "max_completion_tokens"


def response_format_field(form: Form, inputs: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The API's response_format object, or None when the input is at its default."""
    value = inputs.get("response_format")
    if value is None or form.is_default("response_format", value):
        return None
    return {"type": value} if isinstance(value, str) else dict(value)


def sampling_fields(form: Form, inputs: Mapping[str, Any], connection: Connection,
                    names: Sequence[str] = SENT_WHEN_CHANGED + SENT_WHEN_SET) -> Dict[str, Any]:
    """The optional request fields among `names` the user set, plus the token limit and format."""
    fields: Dict[str, Any] = {name: inputs[name] for name in names if was_set(form, inputs, name)}
    if "prediction" in fields:
        fields["prediction"] = {"type": "content", "content": fields["prediction"]}
    if "logit_bias" in fields:
        # Valid means integral, and JSON Schema counts 2.0 as an integer; the service does not.
        fields["logit_bias"] = {token: int(bias) for token, bias in fields["logit_bias"].items()}
    if "max_completion_tokens" in inputs:
        fields[max_tokens_field(connection)] = inputs["max_completion_tokens"]
    response_format = response_format_field(form, inputs)
    if response_format is not None:
        fields["response_format"] = response_format
    return fields


def with_images(messages: List[Dict[str, Any]], images: Sequence[str],
                detail: Optional[str]) -> List[Dict[str, Any]]:
    """A copy of `messages` with `images` appended as image_url parts to the last user message."""
    last_user = max(index for index, message in enumerate(messages) if message["role"] == "user")
    message = dict(messages[last_user])
    content = message.get("content")
    parts: List[Dict[str, Any]] = list(content) if isinstance(content, list) else (
        [{"type": "text", "text": content}] if content else [])
    for image in images:
        image_url: Dict[str, Any] = {"url": image_url_of(image)}
        if detail is not None:
            image_url["detail"] = detail
        parts.append({"type": "image_url", "image_url": image_url})
    message["content"] = parts
    return [*messages[:last_user], message, *messages[last_user + 1:]]


def image_url_of(image: str) -> str:
    """An https or data URL as given; bare base64 as a data URL of the type its bytes reveal."""
    if image.startswith(("https://", "data:")):
        return image
    try:
        head = base64.b64decode(image[:16] + "=" * (-len(image[:16]) % 4))
    except (binascii.Error, ValueError):
        head = b""
    mime = next((kind for signature, kind in IMAGE_SIGNATURES if head.startswith(signature)), "image/png")
    return f"data:{mime};base64,{image}"


def images_problems(inputs: Mapping[str, Any]) -> List[Problem]:
    """Images need a user message to ride on; Image Detail needs Images."""
    problems: List[Problem] = []
    if inputs.get("images") and not any(message["role"] == "user" for message in inputs["messages"]):
        problems.append({"path": "images", "message": "needs a user message in Messages to attach to"})
    if "image_detail" in inputs and not inputs.get("images"):
        problems.append({"path": "image_detail", "message": "needs Images"})
    return problems


def _joined(path: str, parts: Any) -> str:
    return "/".join([path, *(str(part) for part in parts)])


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."

