"""Azure OpenAI / OpenAI connector for workflow platforms: a manifest, pluggy hooks, one HTTP layer.

The public surface: `run_action`, `hookimpl` (for extension plugins) and the error classes.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from .errors import (  # noqa: F401 - re-exported
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    ConnectorError,
    ContentFilterError,
    EntraTokenError,
    InputValidationError,
    InvalidResponseError,
    ManifestError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RedirectNotFollowedError,
    ServerError,
    UnsupportedParameterError,
)
from .hookspecs import hookimpl  # noqa: F401 - re-exported for plugins
from .version import __version__  # noqa: F401 - re-exported

__all__ = [
    "run_action", "hookimpl", "__version__",
    "ConnectorError", "InputValidationError", "ApiError", "BadRequestError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "RateLimitError", "QuotaExceededError",
    "ContentFilterError", "ServerError", "InvalidResponseError", "RedirectNotFollowedError",
    "ApiConnectionError", "ApiTimeoutError", "ManifestError", "UnsupportedParameterError",
]


def run_action(action: str, connection: Optional[Mapping[str, Any]],
               inputs: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Run one step exactly as a host does: find the plugin through its entry point, validate
    the connection and inputs against the manifest (missing inputs take its defaults), call the
    service, and return plain JSON. Raises a `ConnectorError` subclass on failure."""
    from .host_manager import host_plugin_manager

    return host_plugin_manager().hook.execute_action(
        action=action, connection=connection, inputs={} if inputs is None else inputs)
