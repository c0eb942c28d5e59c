"""Deterministic success bodies (chat, legacy completions, images, models, files) shaped like the specs."""

from __future__ import annotations

import base64
import datetime
import json
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import schema_sample
from .lifecycle import AZURE_CAPABILITY_FLAGS, CATALOG, CatalogModel, find
# Every generated image is the same real, visible picture.
from .pictures import GENERATED_PNG_BASE64

AZURE_CHAT_MODEL = "gpt-4o-mini-2024-07-18"
AZURE_COMPLETION_MODEL = "gpt-35-turbo-instruct"
SYSTEM_FINGERPRINT = "fp_emulator"
QUOTED_CHARS = 200



def estimate_tokens(characters: int) -> int:
    """The usual rule of thumb: about four characters per token."""
    return -(-characters // 4)


def truncate_words(text: str, limit: Optional[int]) -> Tuple[str, bool]:
    """(text cut to `limit` words, whether it was cut)."""
    if limit is None:
        return text, False
    words = text.split()
    if len(words) <= limit:
        return text, False
    return " ".join(words[:limit]), True


def message_text(content: Any) -> str:
    """The text of a message's content, which may be a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def reply_subject(messages: Sequence[Dict[str, Any]]) -> str:
    """What the emulated model answers: the last user message, else the last message."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return message_text(messages[-1].get("content"))


def severity_results(filtered_category: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    results: Dict[str, Dict[str, Any]] = {}
    for category in ("hate", "self_harm", "sexual", "violence"):
        flagged = category == filtered_category
        results[category] = {"filtered": flagged, "severity": "high" if flagged else "safe"}
    return results


def prompt_filter_results(prompt_count: int = 1) -> List[Dict[str, Any]]:
    return [
        {
            "prompt_index": index,
            "content_filter_results": {**severity_results(), "jailbreak": {"filtered": False, "detected": False}},
        }
        for index in range(prompt_count)
    ]


def choice_filter_results(filtered_category: Optional[str] = None) -> Dict[str, Any]:
    return {
        **severity_results(filtered_category),
        "protected_material_code": {"filtered": False, "detected": False},
        "protected_material_text": {"filtered": False, "detected": False},
    }


def chat_completion(
    *,
    completion_id: str,
    model: str,
    messages: Sequence[Dict[str, Any]],
    n: int,
    word_limit: Optional[int],
    azure: bool,
    tools: Sequence[Dict[str, Any]] = (),
    tool_choice: Any = None,
    response_format: Optional[Dict[str, Any]] = None,
    call_prefix: str = "call_emu",
    reasoning_tokens: int = 0,
) -> Dict[str, Any]:
    called = chosen_function(messages, tools, tool_choice)
    subject = reply_text(messages)
    choices = []
    output_chars = 0
    for index in range(n):
        message: Dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if called is not None:
            arguments = json.dumps(schema_sample.sample(called.get("parameters") or {"type": "object"}))
            message["tool_calls"] = [{"id": f"{call_prefix}_{index}", "type": "function",
                                      "function": {"name": called["name"], "arguments": arguments}}]
            finish_reason = "tool_calls"
            output_chars += len(arguments)
        else:
            text = subject + (f" (choice {index})" if index else "")
            text, cut = truncate_words(text, word_limit)
            message["content"] = formatted(text, response_format) if not cut else text
            finish_reason = "length" if cut else "stop"
            output_chars += len(message["content"])
        if not azure:
            message["annotations"] = []
        choice: Dict[str, Any] = {"index": index, "message": message, "logprobs": None, "finish_reason": finish_reason}
        if azure:
            choice["content_filter_results"] = choice_filter_results()
        choices.append(choice)
    prompt_chars = sum(len(message_text(message.get("content"))) for message in messages)
    body: Dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage(prompt_chars, output_chars, reasoning_tokens),
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if azure:
        body["prompt_filter_results"] = prompt_filter_results()
    return body


def chosen_function(messages: Sequence[Dict[str, Any]], tools: Sequence[Dict[str, Any]],
                    tool_choice: Any) -> Optional[Dict[str, Any]]:
    """The function the emulated model calls: the named one, the first for `required`, and with
    `auto` (or no choice) one the last user message names, unless the conversation already ends
    with tool results (then the model answers in text)."""
    if not tools or tool_choice == "none" or messages[-1].get("role") == "tool":
        return None
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        return next((tool for tool in tools if tool["name"] == wanted), None)
    if tool_choice == "required":
        return tools[0]
    asked = reply_subject(messages).lower()
    return next((tool for tool in tools if tool["name"].lower() in asked), None)


def reply_text(messages: Sequence[Dict[str, Any]]) -> str:
    """The emulated answer: it quotes the last user message (and describes its images and files),
    or the tool results it was given."""
    if messages[-1].get("role") == "tool":
        results = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            results.insert(0, message_text(message.get("content")))
        return f"Emulated answer from the tool results: {' | '.join(results)[:QUOTED_CHARS]}"
    text = f"Emulated reply to: {reply_subject(messages)[:QUOTED_CHARS]}"
    for message in reversed(messages):
        if message.get("role") == "user":
            described = [part_description(part) for part in message.get("content") or () if isinstance(part, dict)
                         and part.get("type") != "text"] if isinstance(message.get("content"), list) else []
            return " ".join([text, *described])
    return text


def part_description(part: Dict[str, Any]) -> str:
    """How a non-text content part arrived: its type and what it carries."""
    kind = part.get("type")
    if kind == "image_url":
        url = str((part.get("image_url") or {}).get("url", ""))
        shown = url.split(",", 1)[0] + f",... ({len(url)} characters)" if url.startswith("data:") else url[:80]
        return f"[image_url {shown} detail={(part.get('image_url') or {}).get('detail', 'auto')}]"
    if kind == "file":
        file = part.get("file") or {}
        data = str(file.get("file_data", ""))
        media = data[5:].split(";", 1)[0] if data.startswith("data:") else "file_id"
        size = len(_decoded(data.split(",", 1)[1])) if "," in data else 0
        return f"[file {file.get('filename', file.get('file_id', ''))} {media} {size} bytes]"
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        return f"[input_audio {audio.get('format')} {len(_decoded(str(audio.get('data', ''))))} bytes]"
    return f"[{kind}]"


def formatted(text: str, response_format: Optional[Dict[str, Any]]) -> str:
    """The answer in the asked format: JSON for json_object, a value of the schema for json_schema."""
    kind = (response_format or {}).get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        return json.dumps(schema_sample.sample(schema))
    if kind == "json_object":
        return json.dumps({"reply": text})
    return text


def _decoded(data: str) -> bytes:
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4))
    except ValueError:
        return b""


def filter_output(body: Dict[str, Any], azure: bool) -> Dict[str, Any]:
    """Turn a chat or text completion into one whose output the content filter stopped."""
    for choice in body.get("choices", []):
        choice["finish_reason"] = "content_filter"
        if "message" in choice:
            choice["message"]["content"] = ""
        else:
            choice["text"] = ""
        choice["content_filter_results"] = choice_filter_results(filtered_category="violence")
    if "usage" in body:
        body["usage"]["completion_tokens"] = 0
        body["usage"]["total_tokens"] = body["usage"]["prompt_tokens"]
    if azure and "prompt_filter_results" not in body:
        body["prompt_filter_results"] = prompt_filter_results()
    return body


def filter_not_run(body: Dict[str, Any]) -> Dict[str, Any]:
    """A completion whose output the content filter could not check (Azure: filtering did not run)."""
    for choice in body.get("choices", []):
        choice["content_filter_results"] = {
            "error": {"code": "content_filter_error", "message": "The contents are not filtered"}}
    return body


def break_tool_arguments(body: Dict[str, Any]) -> Dict[str, Any]:
    """A completion whose tool calls' arguments are cut off mid-JSON."""
    for choice in body.get("choices", []):
        for call in (choice.get("message") or {}).get("tool_calls") or ():
            call["function"]["arguments"] = call["function"]["arguments"][:-1]
    return body


def text_completion(
    *,
    completion_id: str,
    model: str,
    prompts: Sequence[str],
    n: int,
    word_limit: int,
    azure: bool,
) -> Dict[str, Any]:
    choices = []
    output_chars = 0
    for prompt_index, prompt in enumerate(prompts):
        for copy in range(n):
            words = f"Emulated completion of: {prompt[:QUOTED_CHARS]}" + (f" (choice {copy})" if copy else "")
            words, cut = truncate_words(words, word_limit)
            text = " " + words if words else ""
            output_chars += len(text)
            choice: Dict[str, Any] = {
                "text": text,
                "index": prompt_index * n + copy,
                "logprobs": None,
                "finish_reason": "length" if cut else "stop",
            }
            if azure:
                choice["content_filter_results"] = choice_filter_results()
            choices.append(choice)
    body: Dict[str, Any] = {
        "id": completion_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage(sum(len(prompt) for prompt in prompts), output_chars),
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if azure:
        body["prompt_filter_results"] = prompt_filter_results(len(prompts))
    return body


def usage(prompt_chars: int, output_chars: int, reasoning_tokens: int = 0) -> Dict[str, Any]:
    """Token counts estimated from characters; reasoning tokens count as completion tokens, as billed."""
    prompt_tokens = estimate_tokens(prompt_chars)
    completion_tokens = estimate_tokens(output_chars) + reasoning_tokens
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def image_item(
    *, image_url: Optional[str], revised_prompt: Optional[str], azure: bool
) -> Dict[str, Any]:
    item: Dict[str, Any] = {"url": image_url} if image_url else {"b64_json": GENERATED_PNG_BASE64}
    if revised_prompt is not None:
        item["revised_prompt"] = revised_prompt
    if azure:
        item["content_filter_results"] = severity_results()
        item["prompt_filter_results"] = {
            **severity_results(),
            "profanity": {"filtered": False, "detected": False},
            "jailbreak": {"filtered": False, "detected": False},
        }
    return item


def images_response(items: List[Dict[str, Any]], extras: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {"created": int(time.time()), "data": items, **(extras or {})}


def model_object(model: CatalogModel, azure: bool) -> Dict[str, Any]:
    """One models-list entry: OpenAI's shape (with `shutdown_date`), or on Azure the same core
    fields plus the data plane's `status`, `capabilities`, `lifecycle_status`, `deprecation`."""
    body: Dict[str, Any] = {"id": model.id_for(azure), "object": "model", "created": model.created,
                            "owned_by": "system"}
    if not azure:
        body["shutdown_date"] = model.openai_shutdown
        return body
    retirement = model.retirement(azure=True)
    body.update({
        "created_at": model.created,
        "status": "succeeded",
        "capabilities": {flag: flag in model.capabilities for flag in AZURE_CAPABILITY_FLAGS},
        "lifecycle_status": model.lifecycle_status,
    })
    if retirement is not None:
        moment = datetime.datetime(retirement.year, retirement.month, retirement.day,
                                   tzinfo=datetime.timezone.utc)
        body["deprecation"] = {"inference": int(moment.timestamp())}
    return body


def model_list(azure: bool) -> Dict[str, Any]:
    return {"object": "list", "data": [model_object(model, azure) for model in CATALOG]}


def find_model(model_id: str, azure: bool) -> Optional[Dict[str, Any]]:
    model = find(model_id)
    if model is None or model.id_for(azure) != model_id:
        return None
    return model_object(model, azure)
