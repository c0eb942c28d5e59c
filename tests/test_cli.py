"""The command line: exit codes, exact output on stdout, errors a person can act on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
import requests

from azure_openai_connector.emulator import Emulator, Fault
from azure_openai_connector.manifest import load_manifest

from support import API_KEY

CLEAN_ENV = {name: value for name, value in os.environ.items()
             if not name.startswith(("AZURE_OPENAI_", "OPENAI_"))}
PROCESS_TIMEOUT = 120
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cli(*args: str, env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "azure_openai_connector.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT, env={**CLEAN_ENV, **(env or {})})


def error_of(done: subprocess.CompletedProcess) -> Dict:
    return json.loads(done.stderr)["error"]


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- run: JSON by default ------------------------------------------------------------------------


def test_run_prints_the_result_and_exits_0(emulator, azure_connection):
    # A deployment whose name reveals no model: sampling inputs go out as given.
    done = cli("run", "create_chat_completion", "--connection", json.dumps(azure_connection),
               "--inputs", '{"temperature": 0.3, "model": "team-chat"}', "--input", "n=2")
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
    error = error_of(done)
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
    assert error_of(done)["errors"] == [{
        "path": "--connection",
        "message": "no --connection given and neither AZURE_OPENAI_API_KEY nor OPENAI_API_KEY is set"}]


def test_bad_json_is_invalid_input(azure_connection):
    done = cli("run", "create_chat_completion", "--connection", "{not json")
    assert done.returncode == 2
    assert error_of(done)["errors"][0]["path"] == "--connection"


# --- run --output content ----------------------------------------------------------------------


def test_content_output_is_just_the_answer_text(emulator, azure_connection):
    connection = json.dumps(azure_connection)
    done = cli("run", "create_chat_completion", "--connection", connection, "--output", "content")
    assert (done.returncode, done.stdout, done.stderr) == (0, "Emulated reply to: Where was it played?\n", "")

    text = "The lighthouse keeper counted ships. Then he counted stars."
    as_json = cli("run", "summarize_text", "--connection", connection, "--input", f"text={text}")
    as_content = cli("run", "summarize_text", "--connection", connection, "--input", f"text={text}",
                     "--output", "content")
    assert as_content.returncode == 0, as_content.stderr
    assert as_content.stdout == json.loads(as_json.stdout)["summary"] + "\n"


def test_content_output_of_a_batch_is_one_answer_per_line(emulator, azure_connection):
    done = cli("run", "create_multiple_chat_completions", "--connection", json.dumps(azure_connection),
               "--input", 'prompts=["First?", "Second?"]', "--output", "content")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "Emulated reply to: First?\nEmulated reply to: Second?\n"


# gpt-image models always answer base64; the legacy dall-e-2 on a dated API can answer with URLs.
@pytest.mark.parametrize("model_inputs, api_version", [
    (["model=gpt-image-2"], "v1"),
    (["model=dall-e-2", "response_format=url"], "2024-10-21"),
], ids=["b64_json", "url"])
def test_content_output_of_images_writes_the_files_and_prints_their_paths(emulator, azure_connection, tmp_path,
                                                                         model_inputs, api_version):
    folder = tmp_path / "images"
    connection = {**azure_connection, "api_version": api_version}
    inputs = [argument for pair in model_inputs for argument in ("--input", pair)]
    done = cli("run", "create_image", "--connection", json.dumps(connection), "--input", "n=2", *inputs,
               "--output", "content", "--output-dir", str(folder))
    assert done.returncode == 0, done.stderr
    written = sorted(folder.iterdir())
    assert [path.suffix for path in written] == [".png", ".png"]
    assert done.stdout.splitlines() == [str(path) for path in written]
    for path in written:
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_content_output_of_images_defaults_to_the_current_directory(emulator, azure_connection, tmp_path):
    done = cli("run", "create_image", "--connection", json.dumps(azure_connection), "--output", "content",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [written] = list(tmp_path.iterdir())
    assert done.stdout == f"{written.name}\n"
    assert written.read_bytes().startswith(PNG_SIGNATURE)


# --- batches where prompts failed ---------------------------------------------------------------


def test_a_batch_where_some_prompts_failed_exits_3_with_a_summary(emulator, azure_connection):
    emulator.script(Fault.not_found(), times=1, match="Second?")
    done = cli("run", "create_multiple_chat_completions", "--connection", json.dumps(azure_connection),
               "--input", 'prompts=["First?", "Second?", "Third?"]')
    assert done.returncode == 3
    assert done.stderr == "1 of 3 prompts failed (not_found); see their errors in the result\n"
    result = json.loads(done.stdout)  # the result still goes to stdout
    assert [item["error"] is None for item in result["results"]] == [True, False, True]


def test_a_batch_where_every_prompt_failed_exits_1(emulator, azure_connection):
    emulator.script(Fault.not_found(), times=None)
    done = cli("run", "create_multiple_chat_completions", "--connection", json.dumps(azure_connection),
               "--input", 'prompts=["First?", "Second?"]', "--output", "content")
    assert done.returncode == 1
    assert done.stderr == "2 of 2 prompts failed (not_found); see their errors in the result\n"
    assert done.stdout == "\n\n"  # one (empty) line per prompt


# --- errors a person reads ----------------------------------------------------------------------


def test_an_unknown_action_suggests_the_closest_one_without_stutter(azure_connection):
    known = ", ".join(load_manifest().actions)
    done = cli("run", "creat_image", "--connection", json.dumps(azure_connection))
    assert done.returncode == 2
    message = f"'creat_image' is not an action; did you mean 'create_image'? (known: {known})"
    assert error_of(done) == {"type": "invalid_input", "message": f"Invalid arguments: action: {message}",
                              "errors": [{"path": "action", "message": message}]}
    done = cli("describe", "summarise_text")
    assert done.returncode == 2
    assert error_of(done)["errors"][0]["message"].startswith(
        "'summarise_text' is not an action; did you mean 'summarize_text'?")
    done = cli("run", "make_coffee", "--connection", json.dumps(azure_connection))
    assert error_of(done)["errors"][0]["message"] == f"'make_coffee' is not an action (known: {known})"


def test_an_unknown_input_suggests_the_closest_one(emulator, azure_connection):
    done = cli("run", "create_chat_completion", "--connection", json.dumps(azure_connection),
               "--input", "temprature=0.5")
    assert done.returncode == 2
    assert error_of(done)["errors"] == [
        {"path": "temprature", "message": "is not an input of create_chat_completion; did you mean 'temperature'?"}]
    done = cli("run", "summarize_text", "--connection", json.dumps(azure_connection), "--inputs", '{"zzz": 1}')
    inputs = ", ".join(load_manifest().action("summarize_text").inputs.fields)
    assert error_of(done)["errors"] == [
        {"path": "zzz", "message": f"is not an input of summarize_text; its inputs: {inputs}"}]
    assert emulator.request_count == 0


def test_a_bare_word_for_a_list_input_shows_how_to_write_it(emulator, azure_connection):
    done = cli("run", "create_chat_completion", "--connection", json.dumps(azure_connection), "--input", "stop=END")
    assert done.returncode == 2
    assert error_of(done)["errors"] == [{"path": "stop", "message": """is a list: write --input 'stop=["END"]'"""}]
    done = cli("run", "create_chat_completion", "--connection", json.dumps(azure_connection),
               "--input", 'stop=["END"]')
    assert done.returncode == 0, done.stderr
    assert emulator.requests[-1].json["stop"] == ["END"]


@pytest.mark.parametrize("variables, expected", [
    ({"AZURE_OPENAI_API_KEY": API_KEY, "AZURE_OPENAI_ENDPOINT": "ftp://example.com"},
     "must start with https:// (http:// only for a loopback host such as 127.0.0.1), as in "
     "https://my-resource.openai.azure.com; from the environment, set AZURE_OPENAI_ENDPOINT to such a URL"),
    ({"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": "http://api.example.com/v1"},
     "must start with https:// (http:// only for a loopback host such as 127.0.0.1), as in "
     "https://api.openai.com/v1; from the environment, set OPENAI_BASE_URL to such a URL"),
])
def test_endpoint_errors_say_what_to_write_and_which_variable_to_set(variables, expected):
    done = cli("run", "create_chat_completion", env=variables)
    assert done.returncode == 2
    assert error_of(done)["errors"] == [{"path": "connection/endpoint", "message": expected}]
    assert "^[Hh]" not in done.stderr  # no regular expression for a person to decode


def test_a_refused_connection_is_one_line():
    port = free_port()
    done = cli("run", "create_chat_completion", "--connection",
               json.dumps({"api_key": API_KEY, "endpoint": f"http://127.0.0.1:{port}"}))
    assert done.returncode == 1
    error = error_of(done)
    assert error["type"] == "connection_error"
    assert error["message"] == f"could not connect to http://127.0.0.1:{port}: connection refused"


def test_help_teaches_with_examples_and_exit_codes():
    done = cli("--help")
    assert done.returncode == 0
    for text in ("run", "describe", "demo", "emulator", "AZURE_OPENAI_API_KEY", "exit codes",
                 "3 some prompts of create_multiple_chat_completions failed"):
        assert text in done.stdout
    done = cli("run", "--help")
    assert "--output {json,content}" in done.stdout and "--output-dir" in done.stdout


# --- describe ------------------------------------------------------------------------------------


def test_describe_one_action_lists_required_inputs_first_with_help_and_readable_ranges():
    done = cli("describe", "create_chat_completion")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["create_chat_completion (Create Chat Completion)",
                         "  Create a completion for the chat message (Azure: POST /openai/v1/chat/completions on v1 and",
                         "  preview, /openai/deployments/{model}/chat/completions on a dated api_version)"]
    assert lines[3:5] == ["", "Required inputs:"]
    assert lines[5] == '  model  (string; default "gpt-5.1"; 1..256 chars)'
    assert lines[6].startswith("      ")
    assert lines.index("Optional inputs:") > lines.index('  messages  (array; default [{"role": "system", '
                                                         '"content": "You are a helpful...; 1..2048 items)')
    assert "  temperature  (number; default 1; 0..2)" in lines
    assert "  response_format  (string or object; default \"text\")" in lines  # the types of its oneOf
    assert "  seed  (integer)" in lines  # the 64-bit extremes are not a range worth reading
    assert "9223372036854775807" not in done.stdout


def test_describe_table_and_json():
    done = cli("describe")
    assert done.returncode == 0
    assert "  n                      integer           1                                       1..128" in done.stdout
    assert "  model *" in done.stdout and done.stdout.endswith("* required. `describe ACTION` shows each input's help.\n")
    document = json.loads(cli("describe", "--json").stdout)
    assert set(document["actions"]) == set(load_manifest().actions)
    seed = [row for row in document["actions"]["create_chat_completion"]["inputs"] if row["name"] == "seed"]
    assert seed == [{"name": "seed", "title": "Seed", "type": "integer", "required": False,
                     "description": seed[0]["description"]}]


# --- closed pipes -------------------------------------------------------------------------------


def closed_pipe() -> int:
    """The writing end of a pipe nobody reads (its reading end is already closed)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@pytest.mark.parametrize("args", [["describe"], ["form"], ["emulator"]])
def test_a_closed_pipe_ends_the_command_quietly(args):
    write_end = closed_pipe()
    try:
        done = subprocess.run([sys.executable, "-m", "azure_openai_connector.cli", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=PROCESS_TIMEOUT, env=CLEAN_ENV)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")


# --- the emulator command ------------------------------------------------------------------------


@pytest.fixture
def emulator_process() -> Iterator[subprocess.Popen]:
    process = subprocess.Popen([sys.executable, "-m", "azure_openai_connector.cli", "emulator",
                                "--api-key", API_KEY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=CLEAN_ENV)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
        process.stdout.close()
        process.stderr.close()


def read_lines(process: subprocess.Popen, count: int) -> List[str]:
    return [process.stdout.readline() for _ in range(count)]


def test_the_emulator_prints_lines_to_paste_and_serves_until_terminated(emulator_process):
    lines = read_lines(emulator_process, 5)  # printed once it listens
    url = lines[0].strip().split("=", 1)[1]
    assert url.startswith("http://127.0.0.1:")
    assert lines == [f"export AZURE_OPENAI_ENDPOINT={url}\n",
                     f"export AZURE_OPENAI_API_KEY={API_KEY}\n",
                     "export OPENAI_API_VERSION=v1\n",
                     f"export OPENAI_BASE_URL={url}/v1\n",
                     f"export OPENAI_API_KEY={API_KEY}\n"]
    variables = dict(line[len("export "):].strip().split("=", 1) for line in lines)
    azure = {name: value for name, value in variables.items() if not name.startswith("OPENAI_") or
             name == "OPENAI_API_VERSION"}
    openai = {name: value for name, value in variables.items() if name.startswith("OPENAI_")}
    for environment in (azure, openai):  # every action works on what was pasted
        for action in ("create_chat_completion", "create_image"):
            done = cli("run", action, env=environment)
            assert done.returncode == 0, (environment, action, done.stderr)
    answer = requests.get(url + "/v1/models", timeout=10, headers={"Authorization": f"Bearer {API_KEY}"})
    assert answer.status_code == 200
    emulator_process.send_signal(signal.SIGTERM)
    assert emulator_process.wait(timeout=20) == 0


def test_the_emulator_stops_quietly_when_its_reader_goes_away(emulator_process):
    # As in `azure-openai-connector emulator | head -1`: the reader takes a line and leaves.
    assert emulator_process.stdout.readline().startswith("export AZURE_OPENAI_ENDPOINT=http://127.0.0.1:")
    emulator_process.stdout.close()
    assert emulator_process.wait(timeout=20) == 0
    stderr = emulator_process.stderr.read()
    assert "Traceback" not in stderr and stderr.startswith("Emulator listening on http://127.0.0.1:")


def test_a_port_in_use_is_one_line_and_exit_1():
    with Emulator(api_key=API_KEY) as taken:
        port = int(taken.url.rsplit(":", 1)[1])
        done = cli("emulator", "--port", str(port))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"error: cannot listen on 127.0.0.1:{port}: the port is in use\n"
