"""Shared fixtures: a real emulator on 127.0.0.1 per test, connections to it, and a Runtime whose
retry waits are recorded instead of slept."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from azure_openai_connector.emulator import Emulator
from azure_openai_connector.extensions import extension_manager
from azure_openai_connector.runtime import Runtime

from support import API_KEY, RecordedSleep


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(api_key=API_KEY) as emu:
        yield emu


@pytest.fixture
def azure_connection(emulator: Emulator) -> Dict[str, Any]:
    return {"api_key": API_KEY, "organization": "contoso", "endpoint": emulator.url}


@pytest.fixture
def openai_connection(emulator: Emulator) -> Dict[str, Any]:
    return {"api_key": API_KEY, "is_openai_key": True, "endpoint": emulator.url + "/v1"}


@pytest.fixture(params=["azure", "openai"])
def connection(request: pytest.FixtureRequest, emulator: Emulator) -> Dict[str, Any]:
    """Each test using it runs once per service."""
    return request.getfixturevalue(f"{request.param}_connection")


@pytest.fixture
def recorded_sleep() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
def runtime(recorded_sleep: RecordedSleep) -> Iterator[Runtime]:
    """A Runtime wired to the extension plugins, with waits recorded (not slept)."""
    rt = Runtime(hooks=extension_manager().hook, sleep=recorded_sleep)
    try:
        yield rt
    finally:
        rt.close()
