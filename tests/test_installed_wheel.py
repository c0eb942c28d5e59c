"""A host's view of an installed package: build the wheel, install it into a fresh venv, and
discover and run the connector with nothing but importlib.metadata and pluggy."""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from azure_openai_connector.forms import action_form
from azure_openai_connector.manifest import load_manifest
from support import API_KEY

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "azure_openai_connector" / "playground" / "static"
# Every file the playground page needs, so it works from a plain `pip install` without Node.
PLAYGROUND_STATIC = ("forms.bundle.js", "THIRD_PARTY_LICENSES.txt", "index.html", "playground.js", "playground.css")

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
                     "azure_openai_connector/data/connector.json",  # the build's parse of it
                     "azure_openai_connector/data/manifest.schema.json",
                     "azure_openai_connector/data/icon.svg",
                     "azure_openai_connector/playground/__init__.py",
                     "azure_openai_connector/playground/server.py",
                     *(f"azure_openai_connector/playground/static/{name}" for name in PLAYGROUND_STATIC)):
        assert packaged in names
    with zipfile.ZipFile(wheel) as archive:
        for name in PLAYGROUND_STATIC:
            assert archive.read(f"azure_openai_connector/playground/static/{name}") == (STATIC / name).read_bytes()
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
    assert report["actions"] == sorted(load_manifest().actions)
    assert report["content"] == "Emulated reply to: Where was it played?"
    assert str(installed_venv) in report["module"]  # the installed copy, not this source tree
    assert emulator.requests[0].headers.get("api-key") == API_KEY


LOAD_SCRIPT = r"""
import json, sys
from azure_openai_connector.manifest import load_manifest
manifest = load_manifest()
print(json.dumps({"raw": manifest.raw, "yaml_imported": "yaml" in sys.modules,
                  "jsonschema_imported": "jsonschema" in sys.modules}))
"""


@pytest.mark.slow
def test_the_installed_package_starts_from_its_compiled_manifest_without_yaml(installed_venv, tmp_path):
    """The wheel's JSON copy of the manifest is exactly the YAML's parse, and a worker starting from
    the wheel reads it without importing a YAML parser or jsonschema, even with no cache at all."""
    env = dict(os.environ, AZURE_OPENAI_CONNECTOR_CACHE_DIR="")
    done = subprocess.run([str(installed_venv / "bin" / "python"), "-c", LOAD_SCRIPT],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["raw"] == load_manifest().raw
    assert (report["yaml_imported"], report["jsonschema_imported"]) == (False, False)


@pytest.mark.slow
def test_the_package_loads_its_manifest_when_imported_from_the_zipped_wheel(installed_venv, tmp_path):
    """Imported straight from the wheel (zipimport), the data folder is no directory on disk: the
    manifest is read through importlib.resources, from its compiled copy."""
    [wheel] = installed_venv.parent.glob("azure_openai_connector-*.whl")
    env = dict(os.environ, AZURE_OPENAI_CONNECTOR_CACHE_DIR="", PYTHONPATH=str(wheel))
    code = LOAD_SCRIPT.replace("print(json.dumps({", "import azure_openai_connector\nprint(json.dumps({"
                               "\"file\": azure_openai_connector.__file__, ")
    done = subprocess.run([str(installed_venv / "bin" / "python"), "-c", code],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["file"].startswith(str(wheel))  # the zipped copy, not the installed one
    assert report["raw"] == load_manifest().raw
    assert (report["yaml_imported"], report["jsonschema_imported"]) == (False, False)


@pytest.mark.slow
def test_an_installed_manifest_edited_after_the_build_is_read_from_its_yaml(installed_venv, tmp_path):
    """The JSON copy only stands for the YAML it was made from: edit the installed YAML and the
    package reads (and, as its bytes are no longer the proven ones, fully checks) the YAML."""
    [data] = installed_venv.glob("lib/python*/site-packages/azure_openai_connector/data")
    original = (data / "connector.yaml").read_text(encoding="utf-8")
    edited = original.replace("Create Chat Completion", "Create Chat Completion (edited)", 1)
    assert edited != original
    (data / "connector.yaml").write_text(edited, encoding="utf-8")
    try:
        env = dict(os.environ, AZURE_OPENAI_CONNECTOR_CACHE_DIR="")
        done = subprocess.run([str(installed_venv / "bin" / "python"), "-c", LOAD_SCRIPT],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    finally:
        (data / "connector.yaml").write_text(original, encoding="utf-8")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["raw"]["actions"]["create_chat_completion"]["label"] == "Create Chat Completion (edited)"
    assert (report["yaml_imported"], report["jsonschema_imported"]) == (True, True)


@pytest.mark.slow
def test_the_installed_command_line_works(installed_venv, tmp_path):
    done = subprocess.run([str(installed_venv / "bin" / "azure-openai-connector"), "describe", "--json"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["connector"]["key"] == "azure_openai"


@pytest.mark.slow
def test_the_installed_command_prints_forms(installed_venv, tmp_path):
    command = str(installed_venv / "bin" / "azure-openai-connector")
    done = subprocess.run([command, "form", "create_chat_completion"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    form = json.loads(done.stdout)
    assert form == action_form(load_manifest().raw, "create_chat_completion")
    assert form["uiSchema"]["messages"]["items"]["content"]["anyOf"][0]["ui:widget"] == "textarea"
    done = subprocess.run([command, "form", "--connection"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["uiSchema"]["api_key"]["ui:widget"] == "password"


@pytest.mark.slow
def test_the_installed_playground_serves_its_page_and_runs_a_step(installed_venv, tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AZURE_OPENAI_", "OPENAI_"))}
    process = subprocess.Popen([str(installed_venv / "bin" / "azure-openai-connector"), "playground"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
        url = lines.get(timeout=60).strip()
        base, token = url.split("/?token=")
        port = int(base.rsplit(":", 1)[1])

        def call(method, path, body=None):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"X-Playground-Token": token}
            if body is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = connection.getresponse()
            try:
                return response.status, response.read()
            finally:
                connection.close()

        for name in ("forms.bundle.js", "playground.js", "playground.css", "THIRD_PARTY_LICENSES.txt"):
            assert call("GET", f"/static/{name}") == (200, (STATIC / name).read_bytes())
        status, body = call("GET", "/api/connector")
        assert status == 200 and len(json.loads(body)["actions"]) == len(load_manifest().actions)
        status, body = call("POST", "/api/run", {"action": "create_chat_completion", "connection": {}, "inputs": {}})
        answer = json.loads(body)
        assert answer["ok"] is True, answer
        assert answer["result"]["content"] == "Emulated reply to: Where was it played?"
        assert answer["ran_on"]["source"] == "emulator"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
