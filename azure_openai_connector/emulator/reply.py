"""The answer a request gets, before it is written to the socket."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

JSON_TYPE = "application/json"

# How the answer leaves the socket: whole, not at all, or cut short.
SEND_WHOLE = "whole"
SEND_NOTHING = "nothing"
SEND_TRUNCATED = "truncated"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: Dict[str, str] = field(default_factory=dict)
    delivery: str = SEND_WHOLE


def json_reply(status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> Reply:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Reply(status, body, JSON_TYPE, dict(headers or {}))
