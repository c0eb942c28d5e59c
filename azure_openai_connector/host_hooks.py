"""The connector as a host sees it: the hook implementations behind the `workflow_connectors` entry
point, and the process-wide runtime they run steps on (wired to the extension plugins)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Dict

from . import hookspecs  # noqa: F401 - a host adds `host_hooks.hookspecs.HostSpecs` to its manager
from .hookspecs import host_hookimpl
from .process_state import ProcessSingleton

if TYPE_CHECKING:
    from .runtime import Runtime


@host_hookimpl
def connector_manifest() -> Dict[str, Any]:
    from .manifest import load_manifest

    return copy.deepcopy(load_manifest().raw)


@host_hookimpl
def execute_action(action: str, connection: Dict[str, Any], inputs: Dict[str, Any]) -> Dict[str, Any]:
    return default_runtime().run(action, connection, inputs)


def _wired_runtime() -> "Runtime":
    from .extensions import extension_manager
    from .runtime import Runtime

    return Runtime(hooks=extension_manager().hook)


#: The process-wide runtime the host hooks use, wired to the extension plugins.
default_runtime = ProcessSingleton(_wired_runtime)
