"""The Batch API, shared by the four batch actions: the JSONL input file and the service's rules
for it, the batch status as a step returns it, and output lines mapped back to prompts.

Submit, status, results and cancel each return at once: the host's engine does the waiting
(docs/batch.md). Results need nothing kept by the caller but the batch id: the input file is read
back for the prompts, and answers are matched by `custom_id` (output order is not the input's).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from .. import errors
from ..connection import Connection
from ..http import HttpClient, Response, error_from_response
from .batch import total_usage
from .chat_api import checked_answer, first_content, user_messages

# Each line's request: its own path as OpenAI and Azure's docs write it in the input file.
LINE_URL = "/v1/chat/completions"
# The `endpoint` at create: OpenAI wants the lines' url; Azure's docs use the path without /v1
# (the service reads the file to decide).
OPENAI_ENDPOINT = "/v1/chat/completions"
AZURE_ENDPOINT = "/chat/completions"
COMPLETION_WINDOW = "24h"
INPUT_FILE_NAME = "batch_input.jsonl"
# Per input file (api-notes 7): Azure Global Batch 100,000 requests, OpenAI 50,000; 200 MB both.
AZURE_MAX_REQUESTS = 100_000
OPENAI_MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
CUSTOM_ID_DIGITS = 6
SECONDS_PER_DAY = 86_400
# Azure processes an upload before a batch may use it: look again, briefly, within these bounds.
FILE_READY_CHECKS = 20
FILE_READY_FIRST_WAIT = 0.5
FILE_READY_LONGEST_WAIT = 5.0
FILE_READY_TOTAL_WAIT = 60.0
FILE_READY = "processed"
FILE_BROKEN = ("error", "failed", "deleted", "deleting")

FINISHED = ("completed", "failed", "expired", "cancelled")
# Why a request without an answer never ran, by the batch's final status.
NOT_RUN = {"expired": "batch_expired", "cancelled": "batch_cancelled", "failed": "batch_failed"}
MOMENTS = ("created_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
           "cancelling_at", "cancelled_at", "expires_at")


# --- the input file -----------------------------------------------------------------------------------


def custom_id(index: int) -> str:
    """The id of the request for prompt `index`: the index, zero-padded so ids sort in order."""
    return f"{index:0{CUSTOM_ID_DIGITS}d}"


def input_lines(inputs: Mapping[str, Any], connection: Connection, given: Iterable[str]) -> List[bytes]:
    """One JSONL line per prompt (UTF-8, newline-terminated), every line for the same model.

    U+FEFF is written escaped: a byte order mark anywhere in the file, first of all at its start,
    fails Azure's validation with a misleading message about the deployment name."""
    shared: Dict[str, Any] = {}
    given = set(given)
    if "temperature" in given:
        shared["temperature"] = inputs["temperature"]
    if "max_completion_tokens" in inputs:
        shared["max_completion_tokens"] = inputs["max_completion_tokens"]
    if "response_format" in given:
        shared["response_format"] = {"type": inputs["response_format"]}
    lines = []
    for index, prompt in enumerate(inputs["prompts"]):
        # Azure's batch lines name the deployment in the body on every API version.
        body = {"model": inputs["model"], "messages": user_messages(prompt, inputs.get("system")), **shared}
        line = {"custom_id": custom_id(index), "method": "POST", "url": LINE_URL, "body": body}
        text = json.dumps(line, ensure_ascii=False, separators=(",", ":")).replace("\ufeff", "\\ufeff")
        lines.append(text.encode("utf-8") + b"\n")
    return lines


def rule_problems(inputs: Mapping[str, Any], connection: Connection, lines: List[bytes]) -> List[Dict[str, str]]:
    """The service's limits on one input file, checked before anything is uploaded."""
    problems = []
    limit = OPENAI_MAX_REQUESTS if connection.is_openai else AZURE_MAX_REQUESTS
    service = "OpenAI" if connection.is_openai else "Azure"
    if len(inputs["prompts"]) > limit:
        problems.append({"path": "prompts", "message": f"has {len(inputs['prompts'])} prompts; a {service} batch "
                                                       f"takes at most {limit}: split it into several batches"})
    size = sum(len(line) for line in lines)
    if size > MAX_FILE_BYTES:
        problems.append({"path": "prompts", "message": f"make a batch input file of {size} bytes; the most "
                                                       f"allowed is {MAX_FILE_BYTES} (200 MB): split the prompts "
                                                       "into several batches"})
    return problems


def upload_input(client: HttpClient, data: bytes, expiry_days: int, *, action: str) -> Dict[str, Any]:
    """Upload the input file with purpose `batch`, and wait (briefly, bounded) until it is usable."""
    connection = client.connection
    form = {"purpose": "batch"}
    if not connection.is_openai:
        seconds = str(expiry_days * SECONDS_PER_DAY)
        # Azure reads the dotted fields (its REST docs; Azure/azure-sdk-for-net#59716); the JSON part
        # is the spec's spelling of the required `expires_after`, which the service accepts as well.
        form.update({"expires_after.anchor": "created_at", "expires_after.seconds": seconds,
                     "expires_after": json.dumps({"anchor": "created_at", "seconds": int(seconds)})})
    response = client.request("POST", connection.resource_url("files"), data=form,
                              files={"file": (INPUT_FILE_NAME, data, "application/jsonl")}, action=action)
    uploaded = _object(response)
    if connection.is_openai:
        return uploaded  # usable at once; OpenAI's file status field is deprecated
    return _wait_until_processed(client, uploaded, response, action=action)


def _wait_until_processed(client: HttpClient, uploaded: Dict[str, Any], response: Response, *,
                          action: str) -> Dict[str, Any]:
    file_id = str(uploaded.get("id"))
    waited = 0.0
    wait = FILE_READY_FIRST_WAIT
    for check in range(FILE_READY_CHECKS + 1):
        status = str(uploaded.get("status") or FILE_READY).lower()
        if status == FILE_READY:
            return uploaded
        if status in FILE_BROKEN:
            raise errors.BadRequestError(
                f"The service could not use the batch input file {file_id} ({status}): "
                f"{uploaded.get('status_details') or 'no details given'}",
                status=response.status, code="file_not_processed", request_id=response.request_id)
        if check == FILE_READY_CHECKS or waited + wait > FILE_READY_TOTAL_WAIT:
            break
        client.sleep(wait)
        waited += wait
        wait = min(wait * 2, FILE_READY_LONGEST_WAIT)
        response = client.request("GET", client.connection.resource_url("files", file_id), action=action)
        uploaded = _object(response)
    raise errors.ApiTimeoutError(f"The batch input file {file_id} was still {status} after {waited:.1f} s; "
                                 "submit the batch again later", attempts=FILE_READY_CHECKS)


def create_batch(client: HttpClient, input_file_id: str, metadata: Optional[Dict[str, str]], *,
                 action: str) -> Dict[str, Any]:
    """Start the batch on an uploaded input file, with the 24 h completion window."""
    connection = client.connection
    body: Dict[str, Any] = {"input_file_id": input_file_id,
                            "endpoint": OPENAI_ENDPOINT if connection.is_openai else AZURE_ENDPOINT,
                            "completion_window": COMPLETION_WINDOW}
    if metadata:
        body["metadata"] = metadata
    return _object(client.request("POST", connection.resource_url("batches"), json_body=body, action=action))


# --- the batch's status --------------------------------------------------------------------------------


def fetch_batch(client: HttpClient, batch_id: str, *, action: str) -> Dict[str, Any]:
    """The batch object as the service reports it now."""
    return _object(client.request("GET", client.connection.resource_url("batches", batch_id), action=action))


def cancel(client: HttpClient, batch_id: str, *, action: str) -> Dict[str, Any]:
    """Ask the service to stop the batch; the answer is the batch object (usually `cancelling`)."""
    url = client.connection.resource_url("batches", batch_id, "cancel")
    return _object(client.request("POST", url, action=action))


def status_view(batch: Mapping[str, Any]) -> Dict[str, Any]:
    """What a step reports about a batch: its status (lowercase: Azure's REST examples capitalise
    it), whether it is finished, the request counts and progress as a fraction, and its times
    (epoch seconds, or ISO text as some Azure answers give them)."""
    status = str(batch.get("status") or "").lower()
    counts = batch.get("request_counts") if isinstance(batch.get("request_counts"), Mapping) else {}
    total, completed, failed = (_count(counts, name) for name in ("total", "completed", "failed"))
    finished = status in FINISHED
    progress = (completed + failed) / total if total else (1.0 if finished else 0.0)
    problems = batch.get("errors").get("data") if isinstance(batch.get("errors"), Mapping) else None
    return {
        "batch_id": batch.get("id"),
        "status": status,
        "finished": finished,
        "progress": round(min(progress, 1.0), 4),
        "request_counts": {"total": total, "completed": completed, "failed": failed},
        "input_file_id": batch.get("input_file_id"),
        "output_file_id": batch.get("output_file_id"),
        "error_file_id": batch.get("error_file_id"),
        "errors": problems if isinstance(problems, list) else [],
        "times": {name[:-3]: batch.get(name) for name in MOMENTS},
    }


def _count(counts: Mapping[str, Any], name: str) -> int:
    value = counts.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- results -----------------------------------------------------------------------------------------------


def download_lines(client: HttpClient, file_id: Optional[str], *, action: str) -> List[Dict[str, Any]]:
    """The JSON lines of a file the service holds (none for a missing file id)."""
    if not file_id:
        return []
    response = client.request("GET", client.connection.resource_url("files", file_id, "content"), action=action)
    lines = []
    for number, text in enumerate(response.content.decode("utf-8", errors="replace").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            raise errors.InvalidResponseError(f"Line {number} of file {file_id} is not JSON",
                                              status=response.status, code="invalid_json",
                                              request_id=response.request_id) from None
        if isinstance(line, dict):
            lines.append(line)
    return lines


def prompts_and_model(input_lines: List[Dict[str, Any]]) -> Tuple[Dict[int, str], str]:
    """The prompt of each request of an input file, by index, and the model they went to."""
    prompts: Dict[int, str] = {}
    model = ""
    for line in input_lines:
        index = index_of(line.get("custom_id"))
        body = line.get("body") if isinstance(line.get("body"), dict) else {}
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        users = [message.get("content") for message in messages
                 if isinstance(message, dict) and message.get("role") == "user"]
        if index is not None:
            prompts[index] = users[-1] if users and isinstance(users[-1], str) else ""
        model = model or str(body.get("model") or "")
    return prompts, model


def index_of(identifier: Any) -> Optional[int]:
    """The prompt index a `custom_id` of ours stands for (None for anyone else's)."""
    if isinstance(identifier, str) and identifier.isdigit() and identifier == custom_id(int(identifier)):
        return int(identifier)
    return None


def results(prompts: Dict[int, str], answers: List[Dict[str, Any]], batch_status: str,
            secrets: Tuple[str, ...]) -> List[Dict[str, Any]]:
    """One item per prompt, in input order, shaped as create_multiple_chat_completions' items."""
    by_index: Dict[int, Dict[str, Any]] = {}
    for answer in answers:
        index = index_of(answer.get("custom_id"))
        if index is not None and index in prompts:
            by_index[index] = answer
    items = []
    for index in sorted(prompts):
        answer = by_index.get(index)
        try:
            items.append(_item(index, prompts[index], _answer_body(answer, batch_status, secrets)))
        except errors.ConnectorError as error:
            items.append({"index": index, "prompt": prompts[index], "content": None, "finish_reason": None,
                          "usage": None, "error": error.to_dict(), "parsed": None, "parse_errors": [],
                          "content_filter_results": None})
    return items


def totals(items: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Succeeded and failed counts and the summed usage, as create_multiple_chat_completions gives them."""
    failed = sum(1 for item in items if item["error"] is not None)
    return {"succeeded": len(items) - failed, "failed": failed,
            **total_usage(item["usage"] for item in items)}


def _answer_body(answer: Optional[Dict[str, Any]], batch_status: str, secrets: Tuple[str, ...]) -> Dict[str, Any]:
    """The chat.completion of one output line, or the typed error the line stands for."""
    if answer is None:
        code = NOT_RUN.get(batch_status, "missing_from_output")
        raise errors.NotProcessedError(f"Not processed: the batch ended {batch_status} before this request "
                                       "ran; submit it again", code=code)
    response = answer.get("response")
    if isinstance(response, dict):
        status = response.get("status_code")
        request_id = response.get("request_id")
        body = response.get("body")
        if isinstance(status, int) and status < 300:
            return checked_answer(body, status=status, request_id=request_id, attempts=1)
        content = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
        raise error_from_response(status if isinstance(status, int) else 500,
                                  {"x-request-id": request_id} if request_id else {}, content,
                                  attempts=1, secrets=secrets)
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    code = str(error.get("code") or "unknown_error")
    message = str(error.get("message") or "The batch gave no answer for this request")
    if code in NOT_RUN.values():
        raise errors.NotProcessedError(f"Not processed: {message}", code=code)
    if code == "request_timeout":
        raise errors.ApiTimeoutError(f"The service did not answer this batch request in time ({message})")
    raise errors.ApiError(message, code=code)


def _item(index: int, prompt: str, answer: Dict[str, Any]) -> Dict[str, Any]:
    usage = answer.get("usage")
    # The keys of create_multiple_chat_completions' items; the response format of the batch's
    # requests is not known here, so nothing is parsed.
    return {"index": index, "prompt": prompt, "content": first_content(answer),
            "finish_reason": answer["choices"][0].get("finish_reason"),
            "usage": usage if isinstance(usage, dict) else None, "error": None, "parsed": None,
            "parse_errors": [], "content_filter_results": answer["choices"][0].get("content_filter_results")}


def _object(response: Response) -> Dict[str, Any]:
    answer = response.json()
    if not isinstance(answer, dict) or not answer.get("id"):
        raise errors.InvalidResponseError("The service's answer is not an object with an id",
                                          status=response.status, code="missing_id",
                                          request_id=response.request_id, attempts=response.attempts)
    return answer
