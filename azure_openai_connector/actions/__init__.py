"""Action handlers: one small module per action, each `run(step, inputs) -> dict`.

A handler module may also define `check(inputs, connection, action) -> list` for rules that need
the connection (refused before any request). Modules are imported on first use only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Dict

from ..connection import Connection
from ..http import HttpClient
from ..manifest import Action

HANDLER_MODULES: Dict[str, str] = {
    "create_chat_completion": "create_chat_completion",
    "create_image": "create_image",
    "create_multiple_chat_completions": "create_multiple_chat_completions",
    "raw_request": "raw_request",
    "summarize_text": "summarize_text",
}


@dataclass(frozen=True)
class Step:
    """What a handler gets besides its inputs: the manifest entry, the connection and its client."""

    action: Action
    connection: Connection
    client: HttpClient


def handler(action: str) -> ModuleType:
    """The handler module for an action key declared in the manifest."""
    return importlib.import_module(f"{__name__}.{HANDLER_MODULES[action]}")
