"""The installed entry points of the connector's two groups, read once per process, never at import."""

from __future__ import annotations

import functools
from typing import Any, Dict, List, Tuple

HOST_ENTRY_POINT_GROUP = "workflow_connectors"
HOST_ENTRY_POINT_NAME = "azure_openai"
EXTENSION_ENTRY_POINT_GROUP = "azure_openai_connector"


def entry_points_of(group: str) -> List[Any]:
    """The installed entry points of one of the two groups above."""
    return list(_installed_entry_points().get(group, ()))


@functools.lru_cache(maxsize=1)
def _installed_entry_points() -> Dict[str, Tuple[Any, ...]]:
    """Both groups' entry points from one read: every read parses the entry_points.txt of every
    installed distribution (milliseconds on a worker's cold start), and the first step needs both."""
    from importlib.metadata import entry_points

    groups = (HOST_ENTRY_POINT_GROUP, EXTENSION_ENTRY_POINT_GROUP)
    everything = entry_points()
    if hasattr(everything, "select"):  # Python 3.10+
        return {group: tuple(everything.select(group=group)) for group in groups}
    return {group: tuple(everything.get(group, ())) for group in groups}  # Python 3.9: a dict
