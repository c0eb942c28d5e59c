"""The plugin manager a host builds: the `workflow_connectors` project with our plugin found by its
entry point (or, in a source tree never installed, by module name)."""

from __future__ import annotations

import logging

import pluggy

from . import hookspecs
from .entry_points import HOST_ENTRY_POINT_GROUP, HOST_ENTRY_POINT_NAME, entry_points_of
from .process_state import ProcessSingleton

logger = logging.getLogger(__name__)


def _build_host_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.HOST_PROJECT)
    manager.add_hookspecs(hookspecs.HostSpecs)
    ours = [ep for ep in entry_points_of(HOST_ENTRY_POINT_GROUP) if ep.name == HOST_ENTRY_POINT_NAME]
    if ours:
        manager.register(ours[0].load(), name=HOST_ENTRY_POINT_NAME)
    else:
        # Running from a source tree that was never installed: same module, found by name.
        from . import host_hooks

        logger.debug("entry point %s:%s not installed; registering the host hooks module directly",
                     HOST_ENTRY_POINT_GROUP, HOST_ENTRY_POINT_NAME)
        manager.register(host_hooks, name=HOST_ENTRY_POINT_NAME)
    return manager


#: What a host builds: a manager for `workflow_connectors` with our plugin found by entry point.
host_plugin_manager = ProcessSingleton(_build_host_manager)
