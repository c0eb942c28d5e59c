"""Action handlers: one small module per action, each `run(step, inputs) -> dict`.

`inputs` is the manifest form's `ValidatedInputs` (defaults filled in; `.given` names what the user
chose), and `step.connection` is the connection. A handler module may also define
`check(inputs, connection, action) -> list` for rules that need the connection: the Runtime runs it
once, before `run`, and refuses the step on any problem. Modules are imported on first use only.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Callable, Dict, NamedTuple, Optional

from ..connection import Connection
from ..http import HttpClient
from ..manifest import Action

HANDLER_MODULES: Dict[str, str] = {
    "create_chat_completion": "create_chat_completion",
    "create_image": "create_image",
    "create_multiple_chat_completions": "create_multiple_chat_completions",
    "raw_request": "raw_request",
    "summarize_text": "summarize_text",
    "submit_batch": "submit_batch",
    "get_batch_status": "get_batch_status",
    "get_batch_results": "get_batch_results",
    "cancel_batch": "cancel_batch",
    "create_response": "create_response",
    "create_embeddings": "create_embeddings",
    "edit_image": "edit_image",
}


class Step(NamedTuple):
    """What a handler gets besides its inputs: the manifest entry, the connection and its client."""

    action: Action
    connection: Connection
    client: HttpClient
    #: Makes the pacer of one batch (`max_concurrency` -> Pacer); None: the deployment's shared
    #: QuotaPacer. The Runtime passes its own, so tests can run batches on a fake clock.
    pacer_factory: Optional[Callable[[int], Any]] = None
    #: The Runtime's endpoint policy ("open" or "public"), which downloads an action makes follow too.
    endpoint_policy: str = "open"

    def new_pacer(self, max_concurrency: int, deployment: str = "") -> Any:
        """The pacer every request of one batch shares (see `pacing.batch_pacer`)."""
        from .pacing import batch_pacer

        return batch_pacer(self, deployment, max_concurrency)


def handler(action: str) -> ModuleType:
    """The handler module for an action key declared in the manifest."""
    return importlib.import_module(f"{__name__}.{HANDLER_MODULES[action]}")
