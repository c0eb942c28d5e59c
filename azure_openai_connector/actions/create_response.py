"""Create Response: one Responses API request; in background mode the run is created, then polled
with backoff until it ends or the step's timeout passes (and cancelled then, if asked).

Polling waits on the HTTP client's injected clock and sleep, so tests run it on a fake clock.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from .. import errors
from ..connection import Connection
from ..http import CONTENT_FILTER_CODES, Response
from ..manifest import Action
from . import Step

OPERATION = "responses"
# Azure's dated API serves the Responses API (at /openai/responses) from this version on.
AZURE_OLDEST_VERSION_WITH_RESPONSES = "2025-04-01-preview"
FINISHED = frozenset({"completed", "failed", "cancelled", "incomplete"})
FIRST_POLL_DELAY = 1.0
MAX_POLL_DELAY = 8.0
# Beyond the polls the timeout allows, a few more, in case the clock does not move.
EXTRA_POLLS = 16
SENT_WHEN_SET = ("instructions", "previous_response_id", "tools", "tool_choice", "max_output_tokens", "metadata")
# Reasoning models refuse sampling parameters even at their default values.
SENT_WHEN_CHANGED = ("temperature", "top_p", "store")
MAX_METADATA_KEY = 64
FILTER_CODES = CONTENT_FILTER_CODES | {"image_content_policy_violation"}


def check(inputs: Dict[str, Any], connection: Connection, action: Action) -> List[Dict[str, str]]:
    """Metadata keys longer than the service takes, and a json_schema whose schema is no object."""
    problems = [{"path": f"metadata/{key}", "message": f"keys may have at most {MAX_METADATA_KEY} characters"}
                for key in inputs.get("metadata", {}) if len(key) > MAX_METADATA_KEY]
    if "json_schema" in inputs and not isinstance(inputs["json_schema"]["schema"], dict):
        problems.append({"path": "json_schema/schema", "message": "must be a JSON Schema object"})
    return problems


def run(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    """Create the response; in background mode poll it until it ends or the timeout passes."""
    client = step.client
    body = request_body(step, inputs)
    if not inputs["background"]:
        response = client.request("POST", _url(step, inputs, OPERATION), json_body=body,
                                  read_timeout=inputs["timeout"], action=step.action.key)
        return _result(response, inputs, timed_out=False)
    deadline = client.clock() + inputs["timeout"]
    response = client.request("POST", _url(step, inputs, OPERATION), json_body=body, action=step.action.key)
    answer = _answer(response)
    delay = FIRST_POLL_DELAY
    for _ in range(math.ceil(inputs["timeout"] / MAX_POLL_DELAY) + EXTRA_POLLS):
        left = deadline - client.clock()
        if answer["status"] in FINISHED or left <= 0:
            break
        client.sleep(min(delay, left))
        delay = min(delay * 2, MAX_POLL_DELAY)
        response = client.request("GET", _url(step, inputs, f"{OPERATION}/{quote(answer['id'], safe='')}"),
                                  action=step.action.key)
        answer = _answer(response)
    timed_out = answer["status"] not in FINISHED
    if timed_out and inputs["cancel_on_timeout"]:
        response = client.request("POST", _url(step, inputs, f"{OPERATION}/{quote(answer['id'], safe='')}/cancel"),
                                  action=step.action.key)
    return _result(response, inputs, timed_out=timed_out)


def request_body(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    """The create body: `model` always in it (Azure's Responses routes name no deployment)."""
    form = step.action.inputs
    body: Dict[str, Any] = {"model": inputs["model"], "input": inputs["input"]}
    body.update({name: inputs[name] for name in SENT_WHEN_SET if name in inputs})
    body.update({name: inputs[name] for name in SENT_WHEN_CHANGED if not form.is_default(name, inputs[name])})
    if inputs["text_format"] == "json_schema":
        body["text"] = {"format": {"type": "json_schema", **inputs["json_schema"]}}
    elif not form.is_default("text_format", inputs["text_format"]):
        body["text"] = {"format": {"type": inputs["text_format"]}}
    reasoning = {key: inputs[name] for key, name in (("effort", "reasoning_effort"), ("summary", "reasoning_summary"))
                 if name in inputs}
    if reasoning:
        body["reasoning"] = reasoning
    if inputs["background"]:
        body["background"] = True
    return body


def _url(step: Step, inputs: Dict[str, Any], operation: str) -> str:
    return step.connection.route_url(operation, inputs["model"], per_deployment=False,
                                     oldest_dated_version=AZURE_OLDEST_VERSION_WITH_RESPONSES)


def _answer(response: Response) -> Dict[str, Any]:
    answer = response.json()
    if not (isinstance(answer, dict) and isinstance(answer.get("id"), str) and isinstance(answer.get("status"), str)
            and isinstance(answer.get("output"), list)):
        raise errors.InvalidResponseError("The response object lacks its id, status or output",
                                          status=response.status, code="missing_output",
                                          request_id=response.request_id, attempts=response.attempts)
    return answer


def _result(response: Response, inputs: Dict[str, Any], *, timed_out: bool) -> Dict[str, Any]:
    """The response object as returned, plus what a workflow reads from it directly."""
    answer = _answer(response)
    if answer["status"] == "failed":
        raise _failure(answer, response)
    items = [item for item in answer["output"] if isinstance(item, dict)]
    output_text = "".join(part["text"] for item in items if item.get("type") == "message"
                          for part in item.get("content") or () if isinstance(part, dict)
                          and part.get("type") == "output_text" and isinstance(part.get("text"), str))
    result = {**answer, "output_text": output_text, "tool_calls": [_tool_call(item) for item in items
                                                                    if item.get("type") == "function_call"],
              "request_id": response.request_id, "timed_out": timed_out}
    if inputs["text_format"] != "text" and answer["status"] == "completed":
        result["parsed"] = _parsed(output_text)
    return result


def _tool_call(item: Dict[str, Any]) -> Dict[str, Any]:
    arguments = item.get("arguments")
    return {"call_id": str(item.get("call_id")), "name": str(item.get("name")),
            "arguments": _parsed(arguments) if isinstance(arguments, str) else arguments}


def _parsed(text: str) -> Optional[Any]:
    """The JSON a model wrote, or the text itself when it is not JSON (a model can stop mid-object)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _failure(answer: Dict[str, Any], response: Response) -> errors.ApiError:
    """The typed error for a run that ended `failed`, carrying the response id."""
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    code = error.get("code")
    code = None if code is None else str(code)
    if code in FILTER_CODES:
        error_class = errors.ContentFilterError
    elif code == "rate_limit_exceeded":
        error_class = errors.RateLimitError
    elif code == "server_error":
        error_class = errors.ServerError
    elif code and code.startswith("invalid"):
        error_class = errors.BadRequestError
    else:
        error_class = errors.ApiError
    return error_class(str(error.get("message") or "The response failed"), status=response.status, code=code,
                       request_id=response.request_id, attempts=response.attempts,
                       details={"response_id": answer["id"], "status": "failed"})
