"""Keyless connections: Microsoft Entra ID tokens from real azure-identity code against the emulator's
token endpoint (managed identity over http, client secret over TLS), one refresh after a revoked
token, gateway headers and query parameters, and the connection rules for each auth type."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import azure_openai_connector
from azure_openai_connector.emulator import Emulator
from azure_openai_connector.errors import InputValidationError
from azure_openai_connector.manifest import load_manifest
from azure_openai_connector.runtime import Runtime

STEPS = str(Path(__file__).with_name("keyless_steps.py"))
CHILD_SECONDS = 240
SCOPE_RESOURCE = "https://cognitiveservices.azure.com"
# The child must find only what the test gives it: no credentials of the machine running the suite.
_AZURE_ENV_PREFIXES = ("AZURE_", "MSI_", "IDENTITY_", "IMDS_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def child_environment(**extra: str) -> Dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith(_AZURE_ENV_PREFIXES)}
    environment.update(extra)
    return environment


class Child:
    """keyless_steps.py in a subprocess: one JSON line per phase; stopped by its pid in any case."""

    def __init__(self, connection: Dict[str, Any], environment: Dict[str, str], *mode: str) -> None:
        self.process = subprocess.Popen([sys.executable, STEPS, json.dumps(connection), *mode],
                                        env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)

    def phase(self) -> Dict[str, Any]:
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            _, errors = self.process.communicate(timeout=CHILD_SECONDS)
            raise AssertionError(f"the child ended early:\n{errors[-4000:]}")
        return json.loads(line)

    def finish(self) -> Tuple[List[Dict[str, Any]], str]:
        """Say go on; the remaining phases and everything the child wrote on stderr."""
        output, errors = self.process.communicate("go\n", timeout=CHILD_SECONDS)
        assert self.process.returncode == 0, errors[-4000:]
        return [json.loads(line) for line in output.splitlines()], errors

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def child_processes() -> Iterator[List[Child]]:
    started: List[Child] = []
    yield started
    for child in started:
        child.stop()


def token_requests(emulator: Emulator) -> List[Any]:
    return [r for r in emulator.requests if r.path == "/msi/token" or r.path.endswith("/oauth2/v2.0/token")]


def api_requests(emulator: Emulator) -> List[Any]:
    return [r for r in emulator.requests if r.path.startswith("/openai/")]


def assert_bearer_only(emulator: Emulator) -> None:
    issued = {token.value for token in emulator.tokens.issued}
    requests = api_requests(emulator)
    assert requests
    assert [r.path for r in requests if "api-key" in r.headers] == []
    presented = {r.headers.get("authorization", "") for r in requests}
    assert {value.partition(" ")[0] for value in presented} == {"Bearer"}
    assert {value.partition(" ")[2] for value in presented} <= issued


@pytest.mark.slow
def test_managed_identity_runs_every_action_on_one_token_and_refreshes_once(
        emulator: Emulator, child_processes: List[Child]) -> None:
    environment = child_environment(IDENTITY_ENDPOINT=f"{emulator.url}/msi/token",
                                    IDENTITY_HEADER=emulator.tokens.identity_header)
    child = Child({"auth": "managed_identity", "endpoint": emulator.url}, environment)
    child_processes.append(child)

    assert child.phase() == {"phase": "actions", "ran": list(load_manifest().raw["actions"])}
    assert child.phase() == {"phase": "threads", "answered": 200}
    fetched = token_requests(emulator)
    assert len(fetched) == 1
    assert fetched[0].query == {"api-version": "2019-08-01", "resource": SCOPE_RESOURCE}
    assert_bearer_only(emulator)

    assert emulator.tokens.expire() == 1
    phases, _ = child.finish()
    assert phases == [{"phase": "after_expiry", "answered": 32}]
    assert len(token_requests(emulator)) == 2  # exactly one refresh for 16 threads
    assert_bearer_only(emulator)


@pytest.fixture
def tls_emulator(tmp_path: Path) -> Iterator[Tuple[Emulator, str]]:
    """The emulator over https with a certificate from a CA made for this test; its CA bundle path."""
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    with Emulator(tls=context) as emulator:
        yield emulator, str(bundle)


def client_secret_connection(emulator: Emulator) -> Dict[str, Any]:
    tokens = emulator.tokens
    return {"auth": "entra_client_secret", "endpoint": emulator.url, "authority_host": emulator.url,
            "tenant_id": tokens.tenant, "client_id": tokens.client_id, "client_secret": tokens.client_secret}


@pytest.mark.slow
def test_client_secret_credential_over_tls_fetches_one_token(
        tls_emulator: Tuple[Emulator, str], child_processes: List[Child]) -> None:
    emulator, bundle = tls_emulator
    assert emulator.url.startswith("https://127.0.0.1:")
    # The certificate is checked against the test's CA: azure-core and the connector read the bundle.
    child = Child(client_secret_connection(emulator), child_environment(REQUESTS_CA_BUNDLE=bundle))
    child_processes.append(child)

    assert child.phase()["phase"] == "actions"
    assert child.phase() == {"phase": "threads", "answered": 200}
    posts = token_requests(emulator)
    assert [(r.method, r.path) for r in posts] == [("POST", f"/{emulator.tokens.tenant}/oauth2/v2.0/token")]
    form = dict(part.split("=", 1) for part in posts[0].text.split("&"))
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "https%3A%2F%2Fcognitiveservices.azure.com%2F.default"
    assert_bearer_only(emulator)
    secret = emulator.tokens.client_secret
    assert [r.path for r in api_requests(emulator) if secret in json.dumps(dict(r.headers)) + r.text] == []
    child.finish()


@pytest.mark.slow
def test_a_revoked_token_is_renewed_once_and_retried_once_then_the_auth_error(
        tls_emulator: Tuple[Emulator, str], child_processes: List[Child]) -> None:
    emulator, bundle = tls_emulator
    connection = client_secret_connection(emulator)
    child = Child(connection, child_environment(REQUESTS_CA_BUNDLE=bundle), "revoked")
    child_processes.append(child)
    assert child.phase() == {"phase": "first"}
    before = len(emulator.requests)

    emulator.tokens.issue_expired = True  # the renewed token is refused too
    emulator.tokens.expire()
    phases, log = child.finish()

    after = emulator.requests[before:]
    # A new credential (the old one caches the revoked token) reads the tenant's metadata again.
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in after] == [
        ("POST", "completions"), ("GET", "openid-configuration"), ("POST", "token"), ("POST", "completions")]
    error = phases[0]
    assert (error["type"], error["status"], error["code"]) == ("AuthenticationError", 401, "401")
    assert error["message"].startswith("Unauthorized. Access token is missing, invalid")
    secrets = [token.value for token in emulator.tokens.issued] + [connection["client_secret"]]
    assert len(secrets) == 3
    shown = json.dumps(phases) + log
    assert "Bearer" in log or "authorization" in log.lower()  # the DEBUG log did show the headers
    assert [secret for secret in secrets if secret in shown] == []


def test_keyless_connections_need_no_api_key_and_each_type_asks_for_its_fields() -> None:
    runtime = Runtime()
    try:
        assert runtime.connection({"auth": "managed_identity", "organization": "res"}).uses_api_key is False
        assert runtime.connection({"auth": "azure_default_credential", "organization": "res"}).auth == (
            "azure_default_credential")
        with pytest.raises(InputValidationError) as refused:
            runtime.connection({"organization": "res"})
        assert refused.value.errors == [{"path": "connection/api_key", "message": "is required"}]
        with pytest.raises(InputValidationError) as refused:
            runtime.connection({"auth": "entra_client_secret", "organization": "res", "client_id": "app"})
        assert refused.value.errors == [{"path": "connection/client_secret", "message": "is required"},
                                        {"path": "connection/tenant_id", "message": "is required"}]
        with pytest.raises(InputValidationError) as refused:
            runtime.connection({"auth": "managed_identity", "is_openai_key": True})
        assert refused.value.errors == [{"path": "connection/auth", "message": (
            "Microsoft Entra ID sign-in is for Azure OpenAI; an OpenAI key uses api_key")}]
    finally:
        runtime.close()


def test_the_token_scope_defaults_to_cognitive_services_and_takes_others() -> None:
    runtime = Runtime()
    try:
        assert runtime.connection({"auth": "managed_identity", "organization": "res"}).token_scope == (
            "https://cognitiveservices.azure.com/.default")
        for scope in ("https://ai.azure.com/.default", "api://0e3c2b6f-gateway/.default"):
            assert runtime.connection({"auth": "managed_identity", "organization": "res",
                                       "token_scope": scope}).token_scope == scope
    finally:
        runtime.close()


def test_client_secret_and_gateway_values_stay_out_of_reprs_and_errors() -> None:
    runtime = Runtime()
    secret, subscription = "client-secret-9d2f7a", "apim-subscription-5b1c8e"
    try:
        connection = runtime.connection({
            "auth": "entra_client_secret", "organization": "res", "tenant_id": "contoso.onmicrosoft.com",
            "client_id": "app", "client_secret": secret,
            "gateway_headers": {"Ocp-Apim-Subscription-Key": subscription}})
        assert secret not in repr(connection) and subscription not in repr(connection)
        assert set(connection.secrets) == {secret, subscription}
        with pytest.raises(InputValidationError) as refused:
            runtime.connection({"auth": "managed_identity", "organization": "res",
                                "gateway_headers": {"Ocp-Apim-Subscription-Key": subscription + "\n"}})
        assert subscription not in str(refused.value.errors)
        assert refused.value.errors[0]["path"] == "connection/gateway_headers/Ocp-Apim-Subscription-Key"
    finally:
        runtime.close()


def test_gateway_headers_and_query_go_with_every_request(emulator: Emulator) -> None:
    connection = {"api_key": emulator.api_key, "endpoint": emulator.url,
                  "gateway_headers": {"Ocp-Apim-Subscription-Key": "apim-subscription-5b1c8e"},
                  "gateway_query": {"subscription-key": "query-secret-7a9e"}}
    runtime = Runtime()
    try:
        runtime.run("create_chat_completion", connection, {"messages": [{"role": "user", "content": "Hi"}]})
        runtime.run("raw_request", connection, {"url": "/v1/models"})
    finally:
        runtime.close()
    sent = emulator.requests
    assert [r.headers.get("ocp-apim-subscription-key") for r in sent] == ["apim-subscription-5b1c8e"] * 2
    assert [r.query.get("subscription-key") for r in sent] == ["query-secret-7a9e"] * 2
    assert (sent[0].path, sent[0].query) == ("/openai/v1/chat/completions", {"subscription-key": "query-secret-7a9e"})


def test_a_missing_azure_identity_names_the_extra(emulator: Emulator) -> None:
    # A fresh interpreter in which azure.identity cannot be imported, as on an install without the extra.
    code = ("import sys, json; sys.modules['azure.identity'] = None\n"
            "import azure_openai_connector as c\n"
            "try:\n"
            f"    c.run_action('create_chat_completion', {{'auth': 'managed_identity', 'endpoint': {emulator.url!r}}},"
            " {'messages': [{'role': 'user', 'content': 'Hi'}]})\n"
            "except c.ConnectorError as e:\n"
            "    print(type(e).__name__, e)\n")
    done = subprocess.run([sys.executable, "-c", code], env=child_environment(), capture_output=True, text=True,
                          timeout=CHILD_SECONDS)
    assert done.stdout.strip() == (
        "ConnectorError auth 'managed_identity' needs azure-identity: pip install 'azure-openai-connector[entra]'")
    assert api_requests(emulator) == []


@pytest.mark.slow
def test_the_cli_signs_in_with_the_managed_identity_of_the_environment(emulator: Emulator) -> None:
    environment = child_environment(AZURE_OPENAI_ENDPOINT=emulator.url,
                                    IDENTITY_ENDPOINT=f"{emulator.url}/msi/token",
                                    IDENTITY_HEADER=emulator.tokens.identity_header)
    environment.pop("AZURE_OPENAI_API_KEY", None)
    environment.pop("OPENAI_API_KEY", None)
    done = subprocess.run([sys.executable, "-m", "azure_openai_connector.cli", "run", "create_chat_completion",
                           "--inputs", json.dumps({"messages": [{"role": "user", "content": "Hi"}]})],
                          env=environment, capture_output=True, text=True, timeout=CHILD_SECONDS)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["choices"][0]["message"]["role"] == "assistant"
    assert len(token_requests(emulator)) == 1
    assert_bearer_only(emulator)
    assert [token.value for token in emulator.tokens.issued if token.value in done.stdout + done.stderr] == []


def test_keyless_fields_come_from_the_azure_sdk_environment_variables() -> None:
    from azure_openai_connector.environment import connection_from_env

    assert connection_from_env({"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
                                "AZURE_TENANT_ID": "contoso", "AZURE_CLIENT_ID": "app",
                                "AZURE_CLIENT_SECRET": "s3cret-value"}) == {
        "auth": "entra_client_secret", "tenant_id": "contoso", "client_id": "app", "client_secret": "s3cret-value",
        "endpoint": "https://res.openai.azure.com"}
    assert connection_from_env({"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
                                "IDENTITY_ENDPOINT": "http://localhost:42356/msi/token", "IDENTITY_HEADER": "h",
                                "AZURE_CLIENT_ID": "user-assigned"}) == {
        "auth": "managed_identity", "client_id": "user-assigned", "endpoint": "https://res.openai.azure.com"}
    assert connection_from_env({"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com"}) is None
    assert connection_from_env({"AZURE_OPENAI_API_KEY": "k" * 32, "AZURE_TENANT_ID": "contoso",
                                "AZURE_CLIENT_ID": "app", "AZURE_CLIENT_SECRET": "s"})["api_key"] == "k" * 32


@pytest.mark.slow
def test_a_refused_client_secret_is_a_clear_error_that_never_shows_the_secret(
        tls_emulator: Tuple[Emulator, str]) -> None:
    emulator, bundle = tls_emulator
    wrong_secret = "wrong-client-secret-4f7e2a9c"
    environment = child_environment(
        AZURE_OPENAI_ENDPOINT=emulator.url, AZURE_AUTHORITY_HOST=emulator.url, REQUESTS_CA_BUNDLE=bundle,
        AZURE_TENANT_ID=emulator.tokens.tenant, AZURE_CLIENT_ID=emulator.tokens.client_id,
        AZURE_CLIENT_SECRET=wrong_secret)
    environment.pop("AZURE_OPENAI_API_KEY", None)
    environment.pop("OPENAI_API_KEY", None)
    done = subprocess.run([sys.executable, "-m", "azure_openai_connector.cli", "-v", "run", "create_chat_completion",
                           "--inputs", json.dumps({"messages": [{"role": "user", "content": "Hi"}]})],
                          env=environment, capture_output=True, text=True, timeout=CHILD_SECONDS)
    assert done.returncode == 1, done.stderr
    assert wrong_secret not in done.stdout + done.stderr
    assert '"type": "entra_token"' in done.stderr
    assert "could not get a Microsoft Entra ID token (entra_client_secret)" in done.stderr
    assert "AADSTS7000215" in done.stderr  # the directory's own reason, for the person fixing it
    assert api_requests(emulator) == []
