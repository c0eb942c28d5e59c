"""The plugin managers: the host's view (entry point `workflow_connectors`) and our extensions.

Nothing is loaded at import time: entry points are read on first use, once per process. One
broken third-party plugin is reported and skipped; it never takes the connector down.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Dict, List, Tuple

import pluggy

from . import hookspecs
from .process_state import ProcessSingleton

logger = logging.getLogger(__name__)

HOST_ENTRY_POINT_GROUP = "workflow_connectors"
HOST_ENTRY_POINT_NAME = "azure_openai"
EXTENSION_ENTRY_POINT_GROUP = "azure_openai_connector"

#: (entry point name, error text) for every extension plugin that failed to load.
plugin_load_errors: List[Tuple[str, str]] = []


def _entry_points(group: str) -> List[Any]:
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


def _build_host_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.HOST_PROJECT)
    manager.add_hookspecs(hookspecs.HostSpecs)
    ours = [ep for ep in _entry_points(HOST_ENTRY_POINT_GROUP) if ep.name == HOST_ENTRY_POINT_NAME]
    if ours:
        manager.register(ours[0].load(), name=HOST_ENTRY_POINT_NAME)
    else:
        # Running from a source tree that was never installed: same module, found by name.
        from . import plugin

        logger.debug("entry point %s:%s not installed; registering the plugin module directly",
                     HOST_ENTRY_POINT_GROUP, HOST_ENTRY_POINT_NAME)
        manager.register(plugin, name=HOST_ENTRY_POINT_NAME)
    return manager


def _build_extension_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.EXTENSION_PROJECT)
    manager.add_hookspecs(hookspecs.ExtensionSpecs)
    for entry_point in _entry_points(EXTENSION_ENTRY_POINT_GROUP):
        try:
            manager.register(entry_point.load(), name=entry_point.name)
        except Exception as exc:  # noqa: BLE001 - any plugin bug must stay contained
            plugin_load_errors.append((entry_point.name, f"{type(exc).__name__}: {exc}"))
            logger.warning("skipping plugin %r: %s: %s", entry_point.name, type(exc).__name__, exc)
    return manager


#: What a host builds: a manager for `workflow_connectors` with our plugin found by entry point.
host_plugin_manager = ProcessSingleton(_build_host_manager)
#: The connector's own manager: auth and observer hooks from third-party plugins.
extension_manager = ProcessSingleton(_build_extension_manager)
