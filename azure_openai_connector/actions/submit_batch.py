"""Submit Batch: the prompts as one Batch API job (half the price of live calls, done within 24 h).

Builds the JSONL input file, checks the service's limits before uploading it, uploads it with
purpose `batch` and starts the batch. Returns at once: poll with get_batch_status.
"""

from __future__ import annotations

from typing import Any, Dict, List

from ..connection import Connection
from ..manifest import Action
from . import Step
from .batch_api import create_batch, input_lines, rule_problems, upload_input

# Sent only when changed from the manifest default: reasoning models refuse temperature even at
# its default value, and text is the API's own default format.
SENT_WHEN_CHANGED = ("temperature", "response_format")


def check(inputs: Dict[str, Any], connection: Connection, action: Action) -> List[Dict[str, str]]:
    """Refuse, before uploading, what the service would fail the batch for: too many requests or
    too big a file for one batch."""
    return rule_problems(inputs, connection, input_lines(inputs, connection, _changed(inputs, action)))


def run(step: Step, inputs: Dict[str, Any]) -> Dict[str, Any]:
    lines = input_lines(inputs, step.connection, _changed(inputs, step.action))
    data = b"".join(lines)
    uploaded = upload_input(step.client, data, inputs["input_file_expiry_days"], action=step.action.key)
    batch = create_batch(step.client, str(uploaded["id"]), inputs.get("metadata"), action=step.action.key)
    return {"batch_id": batch["id"], "status": str(batch.get("status") or "").lower(),
            "input_file_id": uploaded["id"], "model": inputs["model"], "requests": len(lines),
            "input_bytes": len(data), "created_at": batch.get("created_at"),
            "expires_at": batch.get("expires_at")}


def _changed(inputs: Dict[str, Any], action: Action) -> List[str]:
    return [name for name in SENT_WHEN_CHANGED if not action.inputs.is_default(name, inputs[name])]
