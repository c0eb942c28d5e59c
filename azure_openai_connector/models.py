"""The service's models list read as picker options: value, label, capabilities and lifecycle.

Three shapes come in: Azure's data plane (`capabilities{chat_completion, completion, embeddings,
...}`, `lifecycle_status`, `deprecation{inference}` in epoch seconds; dated `/openai/models` and, where
it carries them, `/openai/v1/models`), and OpenAI's (`shutdown_date` "YYYY-MM-DD" or null). Only
what the service says is reported: a list without capabilities gives none.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional, Tuple

# Azure capability flags, and the name each has in an option.
AZURE_CAPABILITIES: Tuple[Tuple[str, str], ...] = (
    ("chat_completion", "chat"),
    ("completion", "completion"),
    ("embeddings", "embeddings"),
    ("image_generation", "image"),
    ("responses", "responses"),
)
# Azure notifies at least 60 days before a GA model retires: from then on it is deprecated.
AZURE_RETIREMENT_NOTICE_DAYS = 60
STATUS_ORDER = ("available", "preview", "deprecated", "retired")


def options_from_models_list(body: Any, *, is_openai: bool,
                             today: Optional[datetime.date] = None) -> List[Dict[str, Any]]:
    """One option per model of a models-list answer, in the service's order; entries without an
    id are skipped. `today` decides what has retired (default: today, UTC)."""
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    entries = body.get("data") if isinstance(body, dict) else None
    options = []
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
            read = _openai_option if is_openai else _azure_option
            options.append(read(entry, today))
    return options


def _azure_option(entry: Dict[str, Any], today: datetime.date) -> Dict[str, Any]:
    flags = entry.get("capabilities") if isinstance(entry.get("capabilities"), dict) else {}
    capabilities = [name for flag, name in AZURE_CAPABILITIES if flags.get(flag) is True]
    deprecation = entry.get("deprecation") if isinstance(entry.get("deprecation"), dict) else {}
    retirement = _date_from_epoch(deprecation.get("inference"))
    stage = str(entry.get("lifecycle_status") or "").lower()
    if retirement is not None and retirement <= today:
        status = "retired"
    elif "deprecat" in stage or (retirement is not None and
                                 (retirement - today).days <= AZURE_RETIREMENT_NOTICE_DAYS):
        status = "deprecated"
    elif stage == "preview":
        status = "preview"
    else:
        status = "available"
    lifecycle = {"status": status, "retirement_date": _iso(retirement),
                 "lifecycle_status": entry.get("lifecycle_status")}
    return _option(entry["id"], capabilities, lifecycle, known_capabilities=bool(flags))


def _openai_option(entry: Dict[str, Any], today: datetime.date) -> Dict[str, Any]:
    shutdown = _date_from_iso(entry.get("shutdown_date"))
    if shutdown is None:
        status = "available"
    else:
        # OpenAI sets a shutdown date only once it has deprecated the model.
        status = "retired" if shutdown <= today else "deprecated"
    lifecycle = {"status": status, "retirement_date": _iso(shutdown)}
    return _option(entry["id"], [], lifecycle, known_capabilities=False)


def _option(model_id: str, capabilities: List[str], lifecycle: Dict[str, Any], *,
            known_capabilities: bool) -> Dict[str, Any]:
    notes = []
    if capabilities:
        notes.append(", ".join(capabilities))
    if lifecycle["status"] == "retired":
        notes.append(f"retired {lifecycle['retirement_date']}")
    elif lifecycle["status"] == "deprecated":
        notes.append(f"deprecated, retires {lifecycle['retirement_date']}"
                     if lifecycle["retirement_date"] else "deprecated")
    elif lifecycle["status"] == "preview":
        notes.append("preview")
    label = f"{model_id} ({'; '.join(notes)})" if notes else model_id
    return {"value": model_id, "label": label, "capabilities": capabilities,
            "capabilities_known": known_capabilities, "lifecycle": lifecycle}


def suits(option: Dict[str, Any], wanted: Tuple[str, ...]) -> bool:
    """Whether an option may serve an input wanting one of `wanted` capabilities: only a service
    that states capabilities, and states none of these, rules a model out."""
    if not wanted or not option["capabilities_known"]:
        return True
    if any(name in option["capabilities"] for name in wanted):
        return True
    # Azure's data plane states no image capability: an image model shows as "no chat, no
    # completion, no embeddings", so for images only models stating another use are ruled out.
    return "image" in wanted and not option["capabilities"]


def _date_from_epoch(value: Any) -> Optional[datetime.date]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).date()
    except (OverflowError, OSError, ValueError):
        return None


def _date_from_iso(value: Any) -> Optional[datetime.date]:
    if not isinstance(value, str):
        return None
    try:
        return datetime.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _iso(value: Optional[datetime.date]) -> Optional[str]:
    return value.isoformat() if value is not None else None
