"""Handlers for chat, legacy completions, models and files: validate like the service, then answer."""

from __future__ import annotations

from typing import Any, Dict, List

from . import chat_checks, responses, validation
from .call import Call
from .errors import AZURE, ServiceRefusal, bad_request
from .files import UPLOAD_PURPOSES, upload_expiry, upload_status
from .multipart import is_multipart
from .reply import Reply, json_reply

CHAT_ROLES = ("system", "user", "assistant", "tool", "function", "developer")
CHAT_ROLES_WITHOUT_DEVELOPER = ("system", "user", "assistant", "tool", "function")
# The 2024-10-21 spec has no developer role; later dated versions do.
LAST_VERSION_WITHOUT_DEVELOPER = "2024-10-21"


def create_chat_completion(call: Call) -> Reply:
    body = call.body()
    model = None if call.azure_dated else validation.string(body, "model", required_field=True)
    roles = CHAT_ROLES
    if call.azure_dated and (call.api_version or "")[:10] <= LAST_VERSION_WITHOUT_DEVELOPER:
        roles = CHAT_ROLES_WITHOUT_DEVELOPER
    messages = validation.messages(body, roles)
    chat_checks.messages(messages)
    n = validation.integer(body, "n", 1, 128, 1)
    validation.number(body, "temperature", 0, 2)
    validation.number(body, "top_p", 0, 1)
    limits = [
        validation.integer(body, "max_tokens", 1, None, None),
        validation.integer(body, "max_completion_tokens", 1, None, None),
    ]
    validation.integer(body, "top_logprobs", 0, 20, None)
    tools = chat_checks.tools(body)
    response_format = chat_checks.response_format(body)
    # The deployment (Azure) or model (OpenAI) named, and the model the resource says backs it.
    named = call.params.get("deployment") if call.azure_dated else str(model)
    backing_model = call.model_behind(named)
    chat_checks.model_family(body, backing_model)
    refuse_streaming(body)
    azure = call.dialect == AZURE
    answer = responses.chat_completion(
        completion_id=f"chatcmpl-emu{call.serial:012d}",
        model=responses.AZURE_CHAT_MODEL if azure else str(model),
        messages=messages,
        n=n or 1,
        word_limit=min((limit for limit in limits if limit is not None), default=None),
        azure=azure,
        tools=tools,
        tool_choice=body.get("tool_choice"),
        response_format=response_format,
        call_prefix=f"call_emu{call.serial:08d}",
        reasoning_tokens=chat_checks.reasoning_tokens(body, backing_model),
    )
    return json_reply(200, answer)


def create_completion(call: Call) -> Reply:
    body = call.body()
    model = None if call.azure_dated else validation.string(body, "model", required_field=True)
    prompts = prompt_texts(validation.required(body, "prompt"))
    n = validation.integer(body, "n", 1, 128, 1)
    validation.integer(body, "best_of", 0, 20, None)
    validation.number(body, "temperature", 0, 2)
    validation.number(body, "top_p", 0, 1)
    max_tokens = validation.integer(body, "max_tokens", 0, None, 16)
    refuse_streaming(body)
    azure = call.dialect == AZURE
    answer = responses.text_completion(
        completion_id=f"cmpl-emu{call.serial:012d}",
        model=responses.AZURE_COMPLETION_MODEL if azure else str(model),
        prompts=prompts,
        n=n or 1,
        word_limit=16 if max_tokens is None else max_tokens,
        azure=azure,
    )
    return json_reply(200, answer)


def prompt_texts(prompt: Any) -> List[str]:
    """A legacy prompt as a list of strings (token arrays become their numbers as text)."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(item, str) for item in prompt):
            return list(prompt)
        if all(isinstance(item, int) and not isinstance(item, bool) for item in prompt):
            return [" ".join(str(token) for token in prompt)]
        if all(isinstance(item, list) and item and all(isinstance(t, int) for t in item) for item in prompt):
            return [" ".join(str(token) for token in item) for item in prompt]
    if isinstance(prompt, list) and not prompt:
        raise bad_request(
            "Invalid 'prompt': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="prompt",
            code="empty_array",
        )
    raise bad_request(
        "Invalid type for 'prompt': expected a string, an array of strings, or an array of token arrays.",
        param="prompt",
        code="invalid_type",
    )


def refuse_streaming(body: Dict[str, Any]) -> None:
    if body.get("stream") is True:
        raise bad_request("The emulator does not stream; send 'stream': false.", param="stream", code="unsupported_value")


def list_models(call: Call) -> Reply:
    return json_reply(200, responses.model_list(azure=call.dialect == AZURE))


def retrieve_model(call: Call) -> Reply:
    model_id = call.params["model"]
    found = responses.find_model(model_id, azure=call.dialect == AZURE)
    if found is None:
        raise ServiceRefusal(
            404, f"The model '{model_id}' does not exist", param="model", code="model_not_found"
        )
    return json_reply(200, found)


def upload_file(call: Call) -> Reply:
    request = call.request
    content_type = request.headers.get("content-type", "")
    if not is_multipart(content_type):
        raise bad_request(f"Invalid Content-Type header ({content_type or 'none'}), expected multipart/form-data.")
    purpose = request.form.get("purpose")
    if purpose is None:
        raise bad_request("Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter")
    validation.one_of("purpose", purpose, UPLOAD_PURPOSES)
    if not request.files:
        raise bad_request("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    azure = call.dialect == AZURE
    expiry = upload_expiry(request.form, azure)
    stored = [call.files.add(part["filename"], purpose, part["data"], status=upload_status(purpose, azure),
                             expires_after=expiry) for part in request.files]
    primary = next((s for s, part in zip(stored, request.files) if part["field"] == "file"), stored[0])
    return json_reply(200, primary.as_object())


def list_files(call: Call) -> Reply:
    purpose = call.request.query.get("purpose")
    objects = [f.as_object() for f in call.files.all() if purpose is None or f.purpose == purpose]
    return json_reply(
        200,
        {
            "object": "list",
            "data": objects,
            "first_id": objects[0]["id"] if objects else "",
            "last_id": objects[-1]["id"] if objects else "",
            "has_more": False,
        },
    )


def retrieve_file(call: Call) -> Reply:
    _stored_file(call)
    return json_reply(200, call.files.look(call.params["file_id"]).as_object())


def delete_file(call: Call) -> Reply:
    file_id = _stored_file(call).file_id
    call.files.delete(file_id)
    return json_reply(200, {"id": file_id, "object": "file", "deleted": True})


def download_file(call: Call) -> Reply:
    stored = _stored_file(call)
    return Reply(200, stored.data, stored.content_type)


def _stored_file(call: Call) -> Any:
    file_id = call.params["file_id"]
    stored = call.files.get(file_id)
    if stored is None:
        raise ServiceRefusal(404, f"No such File object: {file_id}", param="id")
    return stored
