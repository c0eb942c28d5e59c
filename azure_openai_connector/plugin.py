"""The connector as a host sees it: the hook implementations behind the `workflow_connectors` entry point."""

from __future__ import annotations

import copy
from typing import Any, Dict

from . import hookspecs  # noqa: F401 - a host adds `plugin.hookspecs.HostSpecs` to its manager
from .hookspecs import host_hookimpl


@host_hookimpl
def connector_manifest() -> Dict[str, Any]:
    from .manifest import load_manifest

    return copy.deepcopy(load_manifest().raw)


@host_hookimpl
def execute_action(action: str, connection: Dict[str, Any], inputs: Dict[str, Any]) -> Dict[str, Any]:
    from .runtime import default_runtime

    return default_runtime().run(action, connection, inputs)
