"""Get Batch Results: a finished batch's answers in exactly the shape create_multiple_chat_completions
returns: one item per prompt in input order, failed requests as the same typed errors, requests
the batch never ran (it expired, was cancelled or failed) as `not_processed` errors.

Needs only the batch id: the prompts are read back from the batch's input file, and the output
and error files' lines are matched to them by `custom_id`.
"""

from __future__ import annotations

from typing import Any, Dict

from ..errors import BatchNotFinishedError
from . import Step
from .batch_api import FINISHED, download_lines, fetch_batch, prompts_and_model, results, totals


def run(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    client, action = step.client, step.action.key
    batch = fetch_batch(client, inputs["batch_id"], action=action)
    status = str(batch.get("status") or "").lower()
    if status not in FINISHED:
        raise BatchNotFinishedError(
            f"Batch {batch['id']} is {status or 'in an unknown state'}: its results come once it has "
            "finished (get_batch_status says finished: true)", code=status or None)
    prompts, model = prompts_and_model(download_lines(client, batch.get("input_file_id"), action=action))
    answers = (download_lines(client, batch.get("output_file_id"), action=action)
               + download_lines(client, batch.get("error_file_id"), action=action))
    items = results(prompts, answers, status, step.connection.secrets)
    return {"model": model, "results": items, "totals": totals(items)}
