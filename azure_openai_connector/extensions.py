"""The connector's extension plugin manager: third-party auth and observer plugins.

Nothing is loaded at import time: entry points are read on first use, once per process. One
broken third-party plugin is reported and skipped; it never takes the connector down.
"""

from __future__ import annotations

import logging
from typing import List, Tuple

import pluggy

from . import hookspecs
from .entry_points import EXTENSION_ENTRY_POINT_GROUP, entry_points_of
from .process_state import ProcessSingleton

logger = logging.getLogger(__name__)

#: (entry point name, error text) for every extension plugin that failed to load.
plugin_load_errors: List[Tuple[str, str]] = []


def _build_extension_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.EXTENSION_PROJECT)
    manager.add_hookspecs(hookspecs.ExtensionSpecs)
    for entry_point in entry_points_of(EXTENSION_ENTRY_POINT_GROUP):
        try:
            manager.register(entry_point.load(), name=entry_point.name)
        except Exception as exc:  # noqa: BLE001 - any plugin bug must stay contained
            plugin_load_errors.append((entry_point.name, f"{type(exc).__name__}: {exc}"))
            logger.warning("skipping plugin %r: %s: %s", entry_point.name, type(exc).__name__, exc)
    return manager


#: The connector's own manager: auth and observer hooks from third-party plugins.
extension_manager = ProcessSingleton(_build_extension_manager)
