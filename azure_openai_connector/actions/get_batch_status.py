"""Get Batch Status: where a batch is (status, request counts, progress, times), at once."""

from __future__ import annotations

from typing import Any, Dict

from . import Step
from .batch_api import fetch_batch, status_view


def run(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    return status_view(fetch_batch(step.client, inputs["batch_id"], action=step.action.key))
