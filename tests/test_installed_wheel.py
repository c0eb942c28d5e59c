"""A host's view of an installed package: build the wheel, install it into a fresh venv, and
discover and run the connector with nothing but importlib.metadata and pluggy."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support import API_KEY

ROOT = Path(__file__).resolve().parent.parent

HOST_SCRIPT = r"""
import json, sys
from importlib.metadata import entry_points
import pluggy

[entry_point] = [ep for ep in entry_points(group="workflow_connectors") if ep.name == "azure_openai"]
plugin = entry_point.load()
manager = pluggy.PluginManager("workflow_connectors")
manager.add_hookspecs(plugin.hookspecs.HostSpecs)
manager.register(plugin, name=entry_point.name)
manifest = manager.hook.connector_manifest()
result = manager.hook.execute_action(action="create_chat_completion",
                                     connection=json.loads(sys.argv[1]), inputs={})
print(json.dumps({"actions": sorted(manifest["actions"]), "content": result["content"],
                  "module": plugin.__file__}))
"""


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work), str(ROOT)],
                   check=True, timeout=300, capture_output=True)
    [wheel] = work.glob("azure_openai_connector-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for packaged in ("azure_openai_connector/data/connector.yaml",
                     "azure_openai_connector/data/manifest.schema.json",
                     "azure_openai_connector/data/icon.svg"):
        assert packaged in names
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                   check=True, timeout=600, capture_output=True)
    return venv


@pytest.mark.slow
def test_a_host_discovers_and_runs_the_installed_plugin(installed_venv, emulator, azure_connection, tmp_path):
    done = subprocess.run([str(installed_venv / "bin" / "python"), "-c", HOST_SCRIPT, json.dumps(azure_connection)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["actions"] == ["create_chat_completion", "create_image", "create_multiple_chat_completions",
                                 "raw_request", "summarize_text"]
    assert report["content"] == "Emulated reply to: Where was it played?"
    assert str(installed_venv) in report["module"]  # the installed copy, not this source tree
    assert emulator.requests[0].headers.get("api-key") == API_KEY


@pytest.mark.slow
def test_the_installed_command_line_works(installed_venv, tmp_path):
    done = subprocess.run([str(installed_venv / "bin" / "azure-openai-connector"), "describe", "--json"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["connector"]["key"] == "azure_openai"
