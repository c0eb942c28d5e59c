"""Cancel Batch: ask the service to stop a batch. It goes `cancelling`, then `cancelled` with the
finished requests' answers kept (and billed); get_batch_results marks the rest not processed."""

from __future__ import annotations

from typing import Any, Dict

from . import Step
from .batch_api import cancel, status_view


def run(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    return status_view(cancel(step.client, inputs["batch_id"], action=step.action.key))
