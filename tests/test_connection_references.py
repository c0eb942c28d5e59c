"""A connection given as "conn:NAME" is resolved at run time by the `resolve_connection` hook, so a
queued task carries a name, never the key; a reference nobody resolves is refused before any
request, at path `connection`, without a key in the error."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

import pytest

import azure_openai_connector
from azure_openai_connector import errors
from azure_openai_connector.runtime import Runtime

from support import API_KEY, registered

PROMPT = {"messages": [{"role": "user", "content": "by reference"}]}


class NamedConnections:
    """A test resolver: connection values by name (a stand-in for a vault or the host's store)."""

    def __init__(self, connections: Dict[str, Any]) -> None:
        self.connections = connections
        self.names_asked: list = []

    @azure_openai_connector.hookimpl
    def resolve_connection(self, name: str) -> Optional[Mapping[str, Any]]:
        self.names_asked.append(name)
        return self.connections.get(name)


def refusal_texts(error: errors.ConnectorError) -> str:
    return "\n".join([str(error), repr(error), json.dumps(error.to_dict())])


def test_a_reference_runs_the_step_with_the_resolved_connection(emulator, azure_connection, runtime):
    resolver = NamedConnections({"emulator": azure_connection})
    with registered(resolver, "test-connections"):
        result = runtime.run("create_chat_completion", "conn:emulator", PROMPT)
    assert result["content"] == "Emulated reply to: by reference"
    assert resolver.names_asked == ["emulator"]
    [request] = emulator.requests
    assert request.headers.get("api-key") == API_KEY


def test_run_action_resolves_references_as_a_host_would(emulator, openai_connection):
    with registered(NamedConnections({"openai": openai_connection}), "test-connections"):
        result = azure_openai_connector.run_action("create_chat_completion", "conn:openai", PROMPT)
    assert result["content"] == "Emulated reply to: by reference"
    assert emulator.requests[0].headers.get("authorization") == f"Bearer {API_KEY}"


def test_the_reference_is_resolved_on_every_step_so_a_rotated_key_is_used(emulator, azure_connection, runtime):
    resolver = NamedConnections({"emulator": azure_connection})
    with registered(resolver, "test-connections"):
        runtime.run("create_chat_completion", "conn:emulator", PROMPT)
        resolver.connections["emulator"] = {**azure_connection, "api_key": "rotated-key-00000000000000"}
        with pytest.raises(errors.AuthenticationError):
            runtime.run("create_chat_completion", "conn:emulator", PROMPT)
    assert resolver.names_asked == ["emulator", "emulator"]
    assert [r.headers.get("api-key") for r in emulator.requests] == [API_KEY, "rotated-key-00000000000000"]


def test_a_plugin_that_does_not_know_the_name_defers_to_the_next(emulator, azure_connection, runtime):
    stranger = NamedConnections({})
    knower = NamedConnections({"emulator": azure_connection})
    with registered(knower, "test-knower"), registered(stranger, "test-stranger"):
        result = runtime.run("create_chat_completion", "conn:emulator", PROMPT)
    assert result["content"] == "Emulated reply to: by reference"
    assert (stranger.names_asked, knower.names_asked) == (["emulator"], ["emulator"])


def test_an_unresolved_reference_is_refused_with_every_other_problem_and_nothing_sent(
        emulator, azure_connection, runtime):
    with registered(NamedConnections({"emulator": azure_connection}), "test-connections"):
        with pytest.raises(errors.InputValidationError) as raised:
            runtime.run("create_chat_completion", "conn:production", {**PROMPT, "temperature": 9})
    assert raised.value.errors == [
        {"path": "connection", "message": "no plugin resolved the connection reference 'conn:production'"},
        {"path": "temperature", "message": "9 is greater than the maximum of 2"},
    ]
    assert emulator.request_count == 0
    assert API_KEY not in refusal_texts(raised.value)


def test_without_any_resolver_a_reference_is_refused(emulator):
    runtime = Runtime()  # no extension hooks at all
    try:
        with pytest.raises(errors.InputValidationError) as raised:
            runtime.run("create_chat_completion", "conn:emulator", PROMPT)
    finally:
        runtime.close()
    assert raised.value.errors == [
        {"path": "connection", "message": "no plugin resolved the connection reference 'conn:emulator'"}]


@pytest.mark.parametrize("connection, message", [
    (API_KEY, 'must be an object, or a reference "conn:NAME" to one'),
    ("conn:", "a reference names its connection after 'conn:' in 1 to 256 printable characters "
              "without spaces"),
    (f"conn:{API_KEY} prod", "a reference names its connection after 'conn:' in 1 to 256 printable "
                             "characters without spaces"),
    ("conn:" + "x" * 257, "a reference names its connection after 'conn:' in 1 to 256 printable "
                          "characters without spaces"),
], ids=["a-key-pasted-as-connection", "empty-name", "name-with-space", "name-too-long"])
def test_a_string_that_is_no_reference_is_refused_without_echoing_it(connection, message, emulator, runtime):
    with pytest.raises(errors.InputValidationError) as raised:
        runtime.run("create_chat_completion", connection, PROMPT)
    assert raised.value.errors == [{"path": "connection", "message": message}]
    assert API_KEY not in refusal_texts(raised.value)
    assert emulator.request_count == 0


def test_a_resolver_answering_something_other_than_an_object_is_refused(emulator, runtime):
    with registered(NamedConnections({"emulator": API_KEY}), "test-connections"):
        with pytest.raises(errors.InputValidationError) as raised:
            runtime.run("create_chat_completion", "conn:emulator", PROMPT)
    assert raised.value.errors == [
        {"path": "connection", "message": "the connection reference 'conn:emulator' resolved to a str, "
                                          "not an object"}]
    assert API_KEY not in refusal_texts(raised.value)


def test_a_resolved_connection_is_validated_and_its_key_never_echoed(emulator, azure_connection, runtime):
    broken = {**azure_connection, "api_key": API_KEY + "\n", "is_openai_key": "yes"}
    with registered(NamedConnections({"emulator": broken}), "test-connections"):
        with pytest.raises(errors.InputValidationError) as raised:
            runtime.run("create_chat_completion", "conn:emulator", PROMPT)
    assert {problem["path"] for problem in raised.value.errors} == {
        "connection/api_key", "connection/is_openai_key"}
    assert API_KEY not in refusal_texts(raised.value)
    assert emulator.request_count == 0
