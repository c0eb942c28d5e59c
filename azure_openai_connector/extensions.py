"""The connector's extension plugin manager: third-party auth and observer plugins.

Nothing is loaded at import time: entry points are read on first use, once per process. One
broken third-party plugin is reported and skipped; it never takes the connector down.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, List, Mapping, Optional, Tuple

import pluggy

from . import hookspecs
from .entra import entra_auth_headers, renew_entra_token
from .entry_points import EXTENSION_ENTRY_POINT_GROUP, entry_points_of
from .process_state import ProcessSingleton

if TYPE_CHECKING:
    from .connection import Connection

logger = logging.getLogger(__name__)

BUILTIN_ENTRA_PLUGIN = "azure_openai_connector.entra"

#: (entry point name, error text) for every extension plugin that failed to load.
plugin_load_errors: List[Tuple[str, str]] = []


class EntraAuthPlugin:
    """The built-in keyless auth (Microsoft Entra ID tokens), registered before any third-party
    plugin and marked `trylast`, so a plugin that answers for a connection takes precedence."""

    @hookspecs.hookimpl(trylast=True)
    def request_auth_headers(self, connection: "Connection") -> Optional[Mapping[str, str]]:
        return entra_auth_headers(connection)

    @hookspecs.hookimpl(trylast=True)
    def request_auth_refresh(self, connection: "Connection",
                             rejected_headers: Mapping[str, str]) -> Optional[bool]:
        return renew_entra_token(connection, rejected_headers)


def _build_extension_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.EXTENSION_PROJECT)
    manager.add_hookspecs(hookspecs.ExtensionSpecs)
    # Registered first and trylast: any third-party auth plugin is asked before it.
    manager.register(EntraAuthPlugin(), name=BUILTIN_ENTRA_PLUGIN)
    for entry_point in entry_points_of(EXTENSION_ENTRY_POINT_GROUP):
        try:
            manager.register(entry_point.load(), name=entry_point.name)
        except Exception as exc:  # noqa: BLE001 - any plugin bug must stay contained
            plugin_load_errors.append((entry_point.name, f"{type(exc).__name__}: {exc}"))
            logger.warning("skipping plugin %r: %s: %s", entry_point.name, type(exc).__name__, exc)
    return manager


#: The connector's own manager: auth and observer hooks from third-party plugins.
extension_manager = ProcessSingleton(_build_extension_manager)
