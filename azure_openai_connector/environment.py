"""The connection the standard environment variables describe, for the CLI, the demo and the playground.

It sits below all three so that none of them imports another to read the environment.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from .connection import AZURE_ENDPOINT_VARIABLE, OPENAI_ENDPOINT_VARIABLE


def connection_from_env(environ: Mapping[str, str]) -> Optional[Dict[str, Any]]:
    """A connection from the standard environment variables (Azure first), or None."""
    if environ.get("AZURE_OPENAI_API_KEY"):
        values = {"api_key": environ["AZURE_OPENAI_API_KEY"],
                  "endpoint": environ.get(AZURE_ENDPOINT_VARIABLE),
                  "api_version": environ.get("OPENAI_API_VERSION")}
    elif environ.get("OPENAI_API_KEY"):
        values = {"api_key": environ["OPENAI_API_KEY"], "is_openai_key": True,
                  "endpoint": environ.get(OPENAI_ENDPOINT_VARIABLE),
                  "organization": environ.get("OPENAI_ORG_ID"),
                  "project": environ.get("OPENAI_PROJECT_ID")}
    else:
        return None
    return {name: value for name, value in values.items() if value}

