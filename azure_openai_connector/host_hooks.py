"""The connector as a host sees it: the hook implementations behind the `workflow_connectors` entry
point, and the process-wide runtime they run steps on (wired to the extension plugins)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Dict, List

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


@host_hookimpl
def input_options(action: str, input: str, connection: Dict[str, Any],  # noqa: A002 - the hook's name
                  refresh: bool = False) -> List[Dict[str, Any]]:
    from .options import input_options as live_options

    return live_options(action, input, connection, refresh=refresh, runtime=default_runtime())


def _wired_runtime() -> "Runtime":
    from .extensions import extension_manager
    from .runtime import Runtime

    return Runtime(hooks=extension_manager().hook)


#: The process-wide runtime the host hooks use, wired to the extension plugins.
default_runtime = ProcessSingleton(_wired_runtime)
