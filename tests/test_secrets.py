"""The API key (and a client secret) never leaks: not into DEBUG logs, error texts, reprs or CLI output."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from azure_openai_connector import errors, run_action
from azure_openai_connector.emulator import Fault
from azure_openai_connector.http import error_from_response
from azure_openai_connector.redaction import redact, redact_headers

from support import API_KEY

FAULTS = [None, Fault.rate_limit(retry_after_ms=1), Fault.status(500), Fault.unauthorized(),
          Fault.drop(), Fault.malformed(), Fault.content_filter_prompt(), Fault.redirect("http://127.0.0.2:9/")]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: getattr(f, "kind", "ok"))
def test_debug_log_and_errors_hold_no_key(emulator, connection, caplog, fault):
    if fault is not None:
        emulator.script(fault, times=None)
    caplog.set_level(logging.DEBUG)
    texts = []
    try:
        texts.append(json.dumps(run_action("create_chat_completion", connection, {})))
    except errors.ConnectorError as error:
        texts += [str(error), repr(error), json.dumps(error.to_dict())]
    assert any("api-key" in r.getMessage() or "Authorization" in r.getMessage() for r in caplog.records)
    log_text = "\n".join(record.getMessage() for record in caplog.records)
    for text in texts + [log_text]:
        assert API_KEY not in text


def test_a_key_echoed_by_the_server_is_redacted_from_the_error():
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {API_KEY}", "code": "invalid_api_key"}})
    error = error_from_response(401, {"x-request-id": "r1"}, body.encode(), attempts=1, secrets=(API_KEY,),
                                wall_clock=lambda: 0.0)
    assert isinstance(error, errors.AuthenticationError)
    assert API_KEY not in str(error) and "***" in error.message


def test_redaction_helpers():
    headers = redact_headers({"api-key": API_KEY, "Authorization": "Bearer x", "X-Other": f"a{API_KEY}b",
                              "Accept": "application/json"}, (API_KEY,))
    assert headers == {"api-key": "***", "Authorization": "***", "X-Other": "a***b", "Accept": "application/json"}
    assert redact("nothing here", (API_KEY,)) == "nothing here"


def test_cli_verbose_stderr_holds_no_key(emulator, azure_connection):
    emulator.script(Fault.status(500))
    completed = subprocess.run(
        [sys.executable, "-m", "azure_openai_connector.cli", "-v", "run", "create_chat_completion",
         "--connection", json.dumps(azure_connection)],
        capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0
    assert "attempt 2" in completed.stderr or "retrying" in completed.stderr
    assert API_KEY not in completed.stderr
    assert API_KEY not in completed.stdout


CLIENT_SECRET = "entra-client-secret-7Q~4b2d9f0e"


def test_a_client_secret_is_never_echoed_by_a_refusal(emulator):
    connection = {"auth": "entra_client_secret", "endpoint": emulator.url, "tenant_id": "contoso",
                  "client_id": "app", "client_secret": CLIENT_SECRET}
    with pytest.raises(errors.InputValidationError) as refused:
        # The secret pasted into an input, and a malformed copy of it in the connection.
        run_action("create_chat_completion", {**connection, "client_secret": CLIENT_SECRET + "\n"},
                   {"messages": [{"role": CLIENT_SECRET, "content": "hi"}]})
    texts = [str(refused.value), repr(refused.value), json.dumps(refused.value.to_dict())]
    assert [text for text in texts if CLIENT_SECRET in text] == []
    assert {problem["path"] for problem in refused.value.errors} >= {"connection/client_secret", "messages/0/role"}
    assert emulator.request_count == 0
