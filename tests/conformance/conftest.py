"""Session-scoped Stoplight Prism mock servers for the official OpenAI and Azure OpenAI specs.

Prism is the independent judge of our HTTP traffic; see tests/prism_support.py for the details.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

# tests/ has no __init__.py, so pytest puts only this folder on sys.path; the helper lives one up.
_TESTS_DIR = Path(__file__).resolve().parent.parent
if str(_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(_TESTS_DIR))

import prism_support  # noqa: E402
from prism_support import PrismServer  # noqa: E402

# Start-up seconds per server, printed in the terminal summary so slow CI boxes are visible.
_STARTUP_SECONDS: Dict[str, float] = {}


@pytest.fixture(scope="session")
def prism_executable() -> Path:
    """The pinned Prism binary, installed by `npm ci` on first use.

    Skips only when Node.js/npm are missing; an npm or install failure fails the tests loudly.
    """
    if shutil.which("node") is None:
        pytest.skip("Prism conformance tests need Node.js 20 (`node` not on PATH)")
    if prism_support.prism_binary() is None and shutil.which("npm") is None:
        pytest.skip("Prism conformance tests need npm to install tools/prism (`npm` not on PATH)")
    return prism_support.ensure_prism_installed()


@pytest.fixture(scope="session")
def prism_spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scratch folder for the Prism-ready spec copies (the originals are read-only data)."""
    return tmp_path_factory.mktemp("prism-specs")


@pytest.fixture(scope="session")
def openai_prism_spec(prism_spec_dir: Path) -> Path:
    """Preprocessed copy of openai-openapi.json (paths under /v1, nullable fixed)."""
    source = prism_support.spec_path(prism_support.OPENAI_SPEC_FILE)
    return prism_support.preprocess_spec(source, prism_spec_dir / "openai.prism.json")


@pytest.fixture(scope="session")
def azure_prism_spec(prism_spec_dir: Path) -> Path:
    """Preprocessed copy of the Azure 2024-10-21 inference spec (paths under /openai)."""
    source = prism_support.spec_path(prism_support.AZURE_SPEC_FILE)
    return prism_support.preprocess_spec(source, prism_spec_dir / "azure.prism.json")


@pytest.fixture(scope="session")
def azure_v1_prism_spec(prism_spec_dir: Path) -> Path:
    """Preprocessed copy of Azure's v1 GA spec (paths under /openai/v1)."""
    source = prism_support.spec_path(prism_support.AZURE_V1_SPEC_FILE)
    return prism_support.preprocess_spec(source, prism_spec_dir / "azure-v1.prism.json")


@pytest.fixture(scope="session")
def azure_v1_preview_prism_spec(prism_spec_dir: Path) -> Path:
    """Preprocessed copy of Azure's v1 preview spec (the GA routes plus image generation)."""
    source = prism_support.spec_path(prism_support.AZURE_V1_PREVIEW_SPEC_FILE)
    return prism_support.preprocess_spec(source, prism_spec_dir / "azure-v1-preview.prism.json")


def _serve(name: str, spec: Path, binary: Path) -> Iterator[PrismServer]:
    server = PrismServer.mock(spec, binary=binary)
    try:
        server.start()
        _STARTUP_SECONDS[name] = server.startup_seconds or 0.0
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prism_openai(prism_executable: Path, openai_prism_spec: Path) -> Iterator[PrismServer]:
    """Prism mock of the OpenAI spec; `.url` + `/v1/chat/completions` etc. (~10 s to start)."""
    yield from _serve("openai", openai_prism_spec, prism_executable)


@pytest.fixture(scope="session")
def prism_azure(prism_executable: Path, azure_prism_spec: Path) -> Iterator[PrismServer]:
    """Prism mock of the Azure spec; `.url` + `/openai/deployments/{dep}/...?api-version=...`."""
    yield from _serve("azure", azure_prism_spec, prism_executable)


@pytest.fixture(scope="session")
def prism_azure_v1(prism_executable: Path, azure_v1_prism_spec: Path) -> Iterator[PrismServer]:
    """Prism mock of Azure's v1 GA spec; `.url` + `/openai/v1/chat/completions` etc."""
    yield from _serve("azure-v1", azure_v1_prism_spec, prism_executable)


@pytest.fixture(scope="session")
def prism_azure_v1_preview(prism_executable: Path,
                           azure_v1_preview_prism_spec: Path) -> Iterator[PrismServer]:
    """Prism mock of Azure's v1 preview spec; `.url` + `/openai/v1/images/generations?api-version=preview`."""
    yield from _serve("azure-v1-preview", azure_v1_preview_prism_spec, prism_executable)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if _STARTUP_SECONDS:
        timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in _STARTUP_SECONDS.items())
        terminalreporter.write_line(f"Prism mock start-up: {timings}")


@pytest.fixture(scope="module")
def quick_runtime() -> Iterator[Any]:
    """A Runtime whose retry waits return at once: conformance is about what is sent."""
    from azure_openai_connector.runtime import Runtime

    runtime = Runtime(sleep=lambda seconds: None)
    try:
        yield runtime
    finally:
        runtime.close()
