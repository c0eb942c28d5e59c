"""Celery tasks for a host's app (the optional extra ``[celery]``): run a step, fan a large
create_multiple_chat_completions out over many workers, merge it back in order, and wait for a
Batch API job by rescheduling itself (never holding a worker while the batch runs).

Tasks take and return the plain-JSON envelope (`envelope.py`), so Celery's default JSON
serializer keeps every error's type, status, code and request id; `unwrap` rebuilds the typed
error on the caller's side. A step is retried by Celery only where `retry_decision` says so, after
the server's retry-after. Pass connections by reference ("conn:NAME", resolved in the worker by
the `resolve_connection` hook): task arguments sit in the broker in plain text. The key of a
connection passed by value is still kept out of the argument repr that Celery logs, shows in
events and monitors, and stores in message headers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from celery import Task, chord
from celery.utils.saferepr import saferepr

from . import envelope, errors

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult

logger = logging.getLogger(__name__)

TASK_NAME_PREFIX = "azure_openai_connector"
# Engine-level retries come on top of the HTTP layer's own quick retries within a step.
MAX_ENGINE_RETRIES = 3
# Without a retry-after from the server: 2 s, 4 s, 8 s... at most 5 minutes.
FIRST_RETRY_DELAY = 2.0
MAX_RETRY_DELAY = 300.0
# Waiting for a batch: Azure asks for at most one status call a minute; a batch window is 24 h.
BATCH_POLL_SECONDS = 60.0
BATCH_MAX_POLLS = 26 * 60
# The error type of a wait that ran out of polls (not retried: the caller decides what next).
BATCH_WAIT_EXHAUSTED = errors.BatchWaitExhaustedError.kind
REDACTED = "***"


@dataclass(frozen=True)
class ConnectorTasks:
    """The tasks `register_tasks` put on a Celery app."""

    run_action: Task
    merge_fan_out: Task
    wait_for_batch: Task


class ConnectorTask(Task):
    """The base of the connector's tasks: argument reprs (logs, events, monitors, message headers)
    never show a connection's secret fields."""

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        # Celery's own reprs, of the arguments with the secrets replaced.
        amqp, levels = self.app.amqp, self.app.conf.task_repr_maxlevels
        if options.get("argsrepr") is None:
            options["argsrepr"] = saferepr(redacted_arguments(args or ()), amqp.argsrepr_maxsize,
                                           maxlevels=levels)
        if options.get("kwargsrepr") is None:
            options["kwargsrepr"] = saferepr(redacted_arguments(kwargs or {}), amqp.kwargsrepr_maxsize,
                                             maxlevels=levels)
        return super().apply_async(args, kwargs, **options)


def register_tasks(app: "Celery", *, max_retries: int = MAX_ENGINE_RETRIES,
                   first_retry_delay: float = FIRST_RETRY_DELAY,
                   max_retry_delay: float = MAX_RETRY_DELAY,
                   name_prefix: str = TASK_NAME_PREFIX) -> ConnectorTasks:
    """Register the connector's tasks on `app` (once, where the app is built, in the workers and in
    the callers alike) and return them: `run_action(action, connection, inputs)` returns a step's
    envelope, `merge_fan_out(envelopes)` merges a fan-out's step envelopes into one, and
    `wait_for_batch(connection, batch_id, poll_seconds=60, max_polls=1560)` returns the envelope of
    get_batch_results once the batch is finished."""

    @app.task(bind=True, base=ConnectorTask, name=f"{name_prefix}.run_action", max_retries=max_retries)
    def run_action(task: Task, action: str, connection: Union[Mapping[str, Any], str, None],
                   inputs: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Run one step and return its envelope; a failure worth retrying goes back to the queue
        (after the server's retry-after) until the retries are spent, then its envelope returns."""
        logger.info("running %s on connection %s (attempt %d)", action,
                    saferepr(redacted_arguments(connection)), task.request.retries + 1)
        outcome = envelope.run_enveloped(action, connection, inputs)
        retry, after = envelope.retry_decision(outcome)
        if retry and task.request.retries < task.max_retries:
            countdown = after if after is not None else min(
                max_retry_delay, first_retry_delay * 2 ** task.request.retries)
            raise task.retry(countdown=countdown, exc=envelope.error_of(outcome))
        return outcome

    @app.task(base=ConnectorTask, name=f"{name_prefix}.merge_fan_out")
    def merge_fan_out(envelopes: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
        """The envelope of a whole fan-out from its steps' envelopes, in step order."""
        return envelope.merge_enveloped(envelopes)

    @app.task(bind=True, base=ConnectorTask, name=f"{name_prefix}.wait_for_batch", max_retries=None)
    def wait_for_batch(task: Task, connection: Union[Mapping[str, Any], str, None], batch_id: str,
                       poll_seconds: float = BATCH_POLL_SECONDS,
                       max_polls: int = BATCH_MAX_POLLS) -> Dict[str, Any]:
        """Poll a batch (one get_batch_status per run) and return the envelope of get_batch_results
        once it is finished. While it is not, the task goes back to the queue for `poll_seconds`
        (the worker is free meanwhile); a status failure worth retrying counts as a poll too.
        After `max_polls` polls, a `batch_wait_exhausted` failure (not retried) returns; any other
        failure's envelope returns at once."""
        poll = task.request.retries + 1
        logger.info("polling batch %s on connection %s (poll %d of %d)", batch_id,
                    saferepr(redacted_arguments(connection)), poll, max_polls)
        status = envelope.run_enveloped("get_batch_status", connection, {"batch_id": batch_id})
        if status["ok"] and status["result"]["finished"]:
            return envelope.run_enveloped("get_batch_results", connection, {"batch_id": batch_id})
        retry, after = envelope.retry_decision(status)
        if not status["ok"] and not retry:
            return status
        if poll >= max_polls:
            if not status["ok"]:
                return status
            exhausted = errors.BatchWaitExhaustedError(
                f"batch {batch_id} is still {status['result']['status']} after {poll} polls")
            exhausted.details = {"batch_id": batch_id, "status": status["result"]["status"], "polls": poll}
            return envelope.failure(exhausted)
        raise task.retry(countdown=after if after is not None else poll_seconds, max_retries=max_polls)

    return ConnectorTasks(run_action=run_action, merge_fan_out=merge_fan_out, wait_for_batch=wait_for_batch)


def connector_tasks(app_or_tasks: Union["Celery", ConnectorTasks],
                    name_prefix: str = TASK_NAME_PREFIX) -> ConnectorTasks:
    """The connector's tasks, given them or an app `register_tasks` was called on."""
    if isinstance(app_or_tasks, ConnectorTasks):
        return app_or_tasks
    try:
        return ConnectorTasks(run_action=app_or_tasks.tasks[f"{name_prefix}.run_action"],
                              merge_fan_out=app_or_tasks.tasks[f"{name_prefix}.merge_fan_out"],
                              wait_for_batch=app_or_tasks.tasks[f"{name_prefix}.wait_for_batch"])
    except KeyError:
        raise LookupError("the connector's tasks are not registered on this app: call "
                          "azure_openai_connector.celery.register_tasks(app) where the app is built") from None


def fan_out(app_or_tasks: Union["Celery", ConnectorTasks], connection: Union[Mapping[str, Any], str],
            inputs: Mapping[str, Any], max_prompts: Optional[int] = None,
            **options: Any) -> "AsyncResult":
    """Queue a create_multiple_chat_completions of any size as a chord: steps of at most
    `max_prompts` prompts (default: the manifest's limit) run on any workers, and their merge, in
    input order, is the chord's result: `unwrap(fan_out(...).get())` is what one step over the
    whole list would return. Bad inputs are refused here, before anything is queued. `options` go
    to the chord's `apply_async` (queue, priority...)."""
    tasks = connector_tasks(app_or_tasks)
    steps = envelope.split_fan_out(inputs, max_prompts)
    header = [tasks.run_action.s(envelope.FAN_OUT_ACTION, connection, step) for step in steps]
    return chord(header, tasks.merge_fan_out.s()).apply_async(**options)


def redacted_arguments(value: Any) -> Any:
    """`value` (task arguments) with every connection's secret fields, and those secrets wherever
    else they appear (a key pasted into an input), replaced: for reprs, never for running."""
    fields = _secret_fields()
    secrets: List[str] = []
    _collect_secrets(value, fields, secrets)
    return _redacted(value, fields, tuple(secrets))


def _secret_fields() -> Tuple[str, ...]:
    """The connection fields the manifest marks secret (`api_key`)."""
    from .manifest import load_manifest

    return tuple(name for name, field in load_manifest().connection.fields.items() if field.get("secret"))


def _collect_secrets(value: Any, fields: Tuple[str, ...], found: List[str]) -> None:
    if isinstance(value, Mapping):
        for name, item in value.items():
            if name in fields and isinstance(item, str) and item.strip():
                found.extend({item, item.strip()})
            else:
                _collect_secrets(item, fields, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_secrets(item, fields, found)


def _redacted(value: Any, fields: Tuple[str, ...], secrets: Tuple[str, ...]) -> Any:
    if isinstance(value, Mapping):
        return {name: REDACTED if name in fields and item is not None else _redacted(item, fields, secrets)
                for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_redacted(item, fields, secrets) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, str) and secrets:
        from .redaction import redact

        return redact(value, secrets)
    return value
