"""The plain-JSON envelope a workflow engine moves between processes, and what engines do with it.

A step's outcome is `{"ok": true, "result": ...}` or `{"ok": false, "error": error.to_dict()}`:
any serializer and any queue carry it, and `unwrap` rebuilds the typed error on the other side.
`retry_decision` says whether an engine-level retry is worth it and after how long. A fan-out
larger than one step may take is split into steps (`split_fan_out`) whose results merge back
into exactly what one `create_multiple_chat_completions` step returns (`merge_fan_out`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import ConnectorError, InputValidationError, from_dict

Envelope = Dict[str, Any]

FAN_OUT_ACTION = "create_multiple_chat_completions"
# Error types an engine should try again later: the condition passes by itself (a batch asked
# for its results too early finishes by itself too).
RETRYABLE_TYPES = frozenset({"rate_limit", "server_error", "connection_error", "timeout",
                             "batch_not_finished"})
# A plain ApiError (a status without a class of its own) is retried on the statuses that mean
# "not now": request timeout and conflict; 429 and 5xx have classes of their own.
RETRYABLE_PLAIN_STATUSES = frozenset({408, 409})


def success(result: Any) -> Envelope:
    """The envelope of a step that returned `result`."""
    return {"ok": True, "result": result}


def failure(error: ConnectorError) -> Envelope:
    """The envelope of a step that raised `error`."""
    return {"ok": False, "error": error.to_dict()}


def run_enveloped(action: str, connection: Union[Mapping[str, Any], str, None],
                  inputs: Optional[Mapping[str, Any]], *, runtime: Any = None) -> Envelope:
    """Run one step as a host does (`run_action`, or `runtime.run` when given) and wrap its
    outcome; an error that is not a ConnectorError is a bug and propagates."""
    try:
        if runtime is not None:
            result = runtime.run(action, connection, {} if inputs is None else inputs)
        else:
            from . import run_action

            result = run_action(action, connection, inputs)
    except ConnectorError as error:
        return failure(error)
    return success(result)


def error_of(envelope: Mapping[str, Any]) -> Optional[ConnectorError]:
    """The typed error a failed envelope describes, rebuilt; None for a success."""
    _check_envelope(envelope)
    return None if envelope["ok"] else from_dict(envelope["error"])


def unwrap(envelope: Mapping[str, Any]) -> Any:
    """The result of a successful envelope; raises the typed error of a failed one."""
    error = error_of(envelope)
    if error is not None:
        raise error
    return envelope["result"]


def retry_decision(outcome: Union[Mapping[str, Any], ConnectorError]) -> Tuple[bool, Optional[float]]:
    """(retry, after_seconds) for an envelope, an error's `to_dict()` or an error: rate limits,
    5xx, connection failures and timeouts are retried, after the server's retry-after when it
    gave one (None: the engine's own backoff); a success, invalid input, auth, permission,
    content filter, quota, not found and the rest are not."""
    if isinstance(outcome, ConnectorError):
        described: Mapping[str, Any] = outcome.to_dict()
    elif "ok" in outcome:
        _check_envelope(outcome)
        if outcome["ok"]:
            return False, None
        described = outcome["error"]
    else:
        described = outcome
    kind = described.get("type")
    retry = kind in RETRYABLE_TYPES or (
        kind == "api_error" and described.get("status") in RETRYABLE_PLAIN_STATUSES)
    if not retry:
        return False, None
    after = described.get("retry_after")
    return True, (float(after) if isinstance(after, (int, float)) and not isinstance(after, bool) else None)


# --- fan-outs larger than one step ------------------------------------------------------------


def max_prompts_per_step() -> int:
    """The most prompts one create_multiple_chat_completions step takes (the manifest's limit)."""
    from .manifest import load_manifest

    return int(load_manifest().action(FAN_OUT_ACTION).inputs.fields["prompts"]["maxItems"])


def split_fan_out(inputs: Mapping[str, Any], max_prompts: Optional[int] = None) -> List[Dict[str, Any]]:
    """The inputs of the steps that together do `inputs` (a create_multiple_chat_completions fan-out
    of any size): the same inputs with the prompts split, in order, into steps of at most
    `max_prompts` (default: the manifest's limit) and of sizes as even as possible. The steps are
    checked against the manifest first, so a bad prompt is refused at its path in the whole list
    (`prompts/1503`) before anything is queued; checks that need the connection run in the step."""
    limit = max_prompts_per_step()
    max_prompts = limit if max_prompts is None else max_prompts
    if isinstance(max_prompts, bool) or not isinstance(max_prompts, int) or not 1 <= max_prompts <= limit:
        raise ValueError(f"max_prompts must be an integer from 1 to {limit}, not {max_prompts!r}")
    prompts = inputs.get("prompts") if isinstance(inputs, Mapping) else None
    if not isinstance(prompts, list) or len(prompts) <= max_prompts:
        steps = [dict(inputs) if isinstance(inputs, Mapping) else inputs]
    else:
        count = -(-len(prompts) // max_prompts)
        size, larger = divmod(len(prompts), count)
        steps, start = [], 0
        for number in range(count):
            end = start + size + (1 if number < larger else 0)
            steps.append({**inputs, "prompts": prompts[start:end]})
            start = end
    _refuse_invalid_steps(steps)
    return steps


def _refuse_invalid_steps(steps: Sequence[Any]) -> None:
    """InputValidationError with every problem of every step, prompt paths counted in the whole list."""
    from .manifest import load_manifest

    form = load_manifest().action(FAN_OUT_ACTION).inputs
    problems: List[Dict[str, str]] = []
    offset = 0
    for step in steps:
        try:
            form.validated(step)
        except InputValidationError as refused:
            for problem in refused.errors:
                shifted = {**problem, "path": _shifted_prompt_path(problem["path"], offset)}
                if shifted not in problems:  # a shared input's problem is every step's
                    problems.append(shifted)
        prompts = step.get("prompts") if isinstance(step, Mapping) else None
        offset += len(prompts) if isinstance(prompts, list) else 0
    if problems:
        raise InputValidationError(problems)


def _shifted_prompt_path(path: str, offset: int) -> str:
    head, _, rest = path.partition("/")
    if head != "prompts" or not rest:
        return path
    index, slash, tail = rest.partition("/")
    return f"prompts/{int(index) + offset}{slash}{tail}" if index.isdigit() else path


def merge_fan_out(results: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """One create_multiple_chat_completions result from its steps' results (in step order): the
    items in input order with their index in the whole list, and the totals summed."""
    if not results:
        raise ValueError("merge_fan_out needs the result of at least one step")
    items: List[Dict[str, Any]] = []
    totals: Dict[str, Any] = {}
    for result in results:
        offset = len(items)
        items.extend({**item, "index": offset + item["index"]} for item in result["results"])
        for name, value in result["totals"].items():
            totals[name] = totals.get(name, 0) + value
    return {**results[0], "results": items, "totals": totals}


def merge_enveloped(envelopes: Sequence[Mapping[str, Any]]) -> Envelope:
    """The envelope of a whole fan-out from its steps' envelopes: the merged result, or the first
    failed step's error (a step fails as a whole only when refused, as the whole list would be)."""
    for envelope in envelopes:
        _check_envelope(envelope)
        if not envelope["ok"]:
            return dict(envelope)
    return success(merge_fan_out([envelope["result"] for envelope in envelopes]))


def _check_envelope(envelope: Any) -> None:
    if not isinstance(envelope, Mapping) or not isinstance(envelope.get("ok"), bool) or (
            "result" if envelope["ok"] else "error") not in envelope:
        raise ValueError('not an envelope: expected {"ok": true, "result": ...} or '
                         '{"ok": false, "error": {...}}')
