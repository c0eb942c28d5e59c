"""The command line: exit codes, JSON on stdout, errors with field paths on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Dict, Optional

from azure_openai_connector.emulator import Fault

from support import API_KEY

CLEAN_ENV = {name: value for name, value in os.environ.items()
             if not name.startswith(("AZURE_OPENAI_", "OPENAI_"))}


def cli(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "azure_openai_connector.cli", *args],
                          capture_output=True, text=True, timeout=120, env={**CLEAN_ENV, **(env or {})})


def test_run_prints_the_result_and_exits_0(emulator, azure_connection):
    done = cli("run", "create_chat_completion", "--connection", json.dumps(azure_connection),
               "--inputs", '{"temperature": 0.3}', "--input", "n=2")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["content"] == "Emulated reply to: Where was it played?"
    assert len(result["choices"]) == 2
    assert emulator.requests[0].json["temperature"] == 0.3


def test_invalid_input_exits_2_with_every_field_path(emulator, azure_connection, tmp_path):
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"temperature": 9, "messages": [{"role": "wizard", "content": "x"}]}))
    done = cli("run", "create_chat_completion", "--connection", json.dumps(azure_connection),
               "--inputs", f"@{inputs}")
    assert done.returncode == 2
    assert done.stdout == ""
    assert json.loads(done.stderr) == {"error": {
        "type": "invalid_input",
        "message": "Invalid inputs: messages/0/role: 'wizard' is not one of ['system', 'developer', "
                   "'user', 'assistant', 'tool']; temperature: 9 is greater than the maximum of 2",
        "errors": [
            {"path": "messages/0/role",
             "message": "'wizard' is not one of ['system', 'developer', 'user', 'assistant', 'tool']"},
            {"path": "temperature", "message": "9 is greater than the maximum of 2"}]}}
    assert emulator.request_count == 0


def test_api_failure_exits_1_with_status_code_and_request_id(emulator, azure_connection):
    emulator.script(Fault.not_found())
    done = cli("run", "create_chat_completion", "--connection", json.dumps(azure_connection))
    assert done.returncode == 1
    error = json.loads(done.stderr)["error"]
    assert error["type"] == "not_found"
    assert error["status"] == 404
    assert error["code"] == "DeploymentNotFound"
    assert error["request_id"].startswith("req_")
    assert error["attempts"] == 1


def test_connection_from_the_standard_azure_variables(emulator):
    done = cli("run", "create_chat_completion", env={
        "AZURE_OPENAI_API_KEY": API_KEY, "AZURE_OPENAI_ENDPOINT": emulator.url,
        "OPENAI_API_VERSION": "2025-04-01-preview"})
    assert done.returncode == 0, done.stderr
    assert emulator.requests[0].query == {"api-version": "2025-04-01-preview"}


def test_connection_from_the_standard_openai_variables(emulator):
    done = cli("run", "create_chat_completion", "--input", "model=gpt-4o",
               env={"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": emulator.url + "/v1"})
    assert done.returncode == 0, done.stderr
    assert emulator.requests[0].path == "/v1/chat/completions"
    assert emulator.requests[0].json["model"] == "gpt-4o"


def test_no_connection_at_all_is_invalid_input():
    done = cli("run", "create_chat_completion")
    assert done.returncode == 2
    assert json.loads(done.stderr)["error"]["errors"][0]["path"] == "--connection"


def test_unknown_action_and_bad_json_are_invalid_input(azure_connection):
    done = cli("run", "make_coffee", "--connection", json.dumps(azure_connection))
    assert done.returncode == 2
    assert json.loads(done.stderr)["error"]["errors"][0]["path"] == "action"
    done = cli("run", "create_chat_completion", "--connection", "{not json")
    assert done.returncode == 2
    assert json.loads(done.stderr)["error"]["errors"][0]["path"] == "--connection"


def test_help_teaches_with_examples_and_exit_codes():
    done = cli("--help")
    assert done.returncode == 0
    for text in ("run", "describe", "demo", "emulator", "AZURE_OPENAI_API_KEY", "exit codes"):
        assert text in done.stdout


def test_describe_table_and_json():
    done = cli("describe", "create_image")
    assert done.returncode == 0
    assert "dall-e-3" in done.stdout and "1..10" in done.stdout
    document = json.loads(cli("describe", "--json").stdout)
    assert set(document["actions"]) >= {"create_chat_completion", "raw_request"}


def test_emulator_command_serves_until_terminated():
    import signal

    import requests

    process = subprocess.Popen([sys.executable, "-m", "azure_openai_connector.cli", "emulator",
                                "--api-key", API_KEY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=CLEAN_ENV)
    try:
        announced = json.loads(process.stdout.readline())  # printed once it listens
        answer = requests.get(announced["url"] + "/v1/models", timeout=10,
                              headers={"Authorization": f"Bearer {API_KEY}"})
        assert answer.status_code == 200
        assert announced["api_key"] == API_KEY
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=20)
        process.stdout.close()
        process.stderr.close()
    assert returncode == 0
