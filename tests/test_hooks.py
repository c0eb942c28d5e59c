"""The hook contract: every hook is documented, and extension plugins really change requests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import azure_openai_connector
from azure_openai_connector import hookspecs
from azure_openai_connector.emulator import Fault
from azure_openai_connector.extensions import extension_manager

DOCS = (Path(__file__).resolve().parent.parent / "docs" / "hooks.md").read_text()


@pytest.mark.parametrize("specs", [hookspecs.HostSpecs, hookspecs.ExtensionSpecs])
def test_every_hook_is_documented_with_its_signature(specs):
    import inspect

    for name, function in vars(specs).items():
        if name.startswith("_") or not callable(function):
            continue
        arguments = [p for p in inspect.signature(function).parameters if p != "self"]
        heading = f"### {name}({', '.join(arguments)})"
        assert heading in DOCS, f"docs/hooks.md lacks {heading!r}"
        assert function.__doc__ and function.__doc__.strip()


def test_documented_hooks_all_exist():
    documented = set(re.findall(r"^### (\w+)\(", DOCS, flags=re.M))
    assert documented == {name for specs in (hookspecs.HostSpecs, hookspecs.ExtensionSpecs)
                          for name in vars(specs) if not name.startswith("_")}


class EntraToken:
    """A stand-in for an Entra ID plugin: a bearer token instead of the key."""

    @azure_openai_connector.hookimpl
    def request_auth_headers(self, connection):
        return None if connection.is_openai else {"Authorization": "Bearer entra-token-123456"}


class Observer:
    def __init__(self):
        self.started = []
        self.finished = []

    @azure_openai_connector.hookimpl
    def http_request_started(self, request):
        self.started.append(request)

    @azure_openai_connector.hookimpl
    def http_request_finished(self, exchange):
        self.finished.append(exchange)


def test_an_auth_plugin_replaces_the_key(runtime):
    from azure_openai_connector.emulator import Emulator

    manager = extension_manager()
    manager.register(EntraToken(), name="test-entra")
    try:
        with Emulator(api_key="unused-key-0000", bearer_tokens=("entra-token-123456",)) as emulator:
            connection = {"api_key": "unused-key-0000", "endpoint": emulator.url}
            runtime.run("create_chat_completion", connection, {})
    finally:
        manager.unregister(name="test-entra")
    [request] = emulator.requests
    assert request.headers.get("authorization") == "Bearer entra-token-123456"
    assert request.headers.get("api-key") is None


def test_observers_see_every_attempt_with_redacted_headers(emulator, azure_connection, runtime):
    observer = Observer()
    manager = extension_manager()
    manager.register(observer, name="test-observer")
    try:
        emulator.script(Fault.status(503))
        runtime.run("create_chat_completion", azure_connection, {})
    finally:
        manager.unregister(name="test-observer")
    assert [r.attempt for r in observer.started] == [1, 2]
    assert [(e.status, e.will_retry) for e in observer.finished] == [(503, True), (200, False)]
    assert observer.started[0].headers["api-key"] == "***"
    assert observer.started[0].action == "create_chat_completion"
    assert observer.finished[1].request_id.startswith("req_")


def test_extension_hooks_are_typed_with_the_objects_they_receive():
    import typing

    from azure_openai_connector.connection import Connection
    from azure_openai_connector.http import Exchange, OutgoingRequest

    # The names are imported for type checkers only; resolving them proves each names a real type.
    names = {"Connection": Connection, "OutgoingRequest": OutgoingRequest, "Exchange": Exchange}
    specs = hookspecs.ExtensionSpecs
    assert typing.get_type_hints(specs.request_auth_headers, localns=names) == {
        "connection": Connection, "return": typing.Optional[typing.Mapping[str, str]]}
    assert typing.get_type_hints(specs.http_request_started, localns=names) == {
        "request": OutgoingRequest, "return": type(None)}
    assert typing.get_type_hints(specs.http_request_finished, localns=names) == {
        "exchange": Exchange, "return": type(None)}
