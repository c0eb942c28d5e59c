"""The connection the standard environment variables describe, for the CLI, the demo and the playground.

It sits below all three so that none of them imports another to read the environment.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from .connection import AZURE_ENDPOINT_VARIABLE, OPENAI_ENDPOINT_VARIABLE
from .entra import AZURE_DEFAULT_CREDENTIAL, ENTRA_CLIENT_SECRET, MANAGED_IDENTITY


def connection_from_env(environ: Mapping[str, str]) -> Optional[Dict[str, Any]]:
    """A connection from the standard environment variables (Azure first), or None."""
    if environ.get("AZURE_OPENAI_API_KEY"):
        values = {"api_key": environ["AZURE_OPENAI_API_KEY"],
                  "endpoint": environ.get(AZURE_ENDPOINT_VARIABLE),
                  "api_version": environ.get("OPENAI_API_VERSION")}
    elif environ.get(AZURE_ENDPOINT_VARIABLE) and keyless_fields_from_env(environ):
        values = {**(keyless_fields_from_env(environ) or {}), "endpoint": environ[AZURE_ENDPOINT_VARIABLE],
                  "api_version": environ.get("OPENAI_API_VERSION")}
    elif environ.get("OPENAI_API_KEY"):
        values = {"api_key": environ["OPENAI_API_KEY"], "is_openai_key": True,
                  "endpoint": environ.get(OPENAI_ENDPOINT_VARIABLE),
                  "organization": environ.get("OPENAI_ORG_ID"),
                  "project": environ.get("OPENAI_PROJECT_ID")}
    else:
        return None
    return {name: value for name, value in values.items() if value}


def keyless_fields_from_env(environ: Mapping[str, str]) -> Optional[Dict[str, Any]]:
    """The auth fields the Azure SDKs' environment variables describe, or None when they describe
    none: a service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, and
    AZURE_AUTHORITY_HOST for sovereign clouds), a managed identity (IDENTITY_ENDPOINT with
    IDENTITY_HEADER, or MSI_ENDPOINT; AZURE_CLIENT_ID for a user-assigned one), or workload
    identity (AZURE_FEDERATED_TOKEN_FILE, through DefaultAzureCredential)."""
    tenant, client, secret = (environ.get(name) for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID",
                                                                "AZURE_CLIENT_SECRET"))
    fields: Dict[str, Any]
    if tenant and client and secret:
        fields = {"auth": ENTRA_CLIENT_SECRET, "tenant_id": tenant, "client_id": client, "client_secret": secret,
                  "authority_host": environ.get("AZURE_AUTHORITY_HOST")}
    elif (environ.get("IDENTITY_ENDPOINT") and environ.get("IDENTITY_HEADER")) or environ.get("MSI_ENDPOINT"):
        fields = {"auth": MANAGED_IDENTITY, "client_id": client}
    elif environ.get("AZURE_FEDERATED_TOKEN_FILE"):
        fields = {"auth": AZURE_DEFAULT_CREDENTIAL, "client_id": client, "tenant_id": tenant,
                  "authority_host": environ.get("AZURE_AUTHORITY_HOST")}
    else:
        return None
    return {name: value for name, value in fields.items() if value}
