"""`azure-openai-connector demo` with no credentials: every action, both services, on the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from azure_openai_connector.manifest import load_manifest


@pytest.mark.slow
def test_demo_runs_every_action_on_the_emulator_without_credentials(tmp_path):
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AZURE_OPENAI_", "OPENAI_"))}
    done = subprocess.run([sys.executable, "-m", "azure_openai_connector.cli", "demo", "--json", "report.json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())  # the full document goes to the file
    actions = list(load_manifest().raw["actions"])
    # stdout: one compact JSON line per step, in the order they ran
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["service"], line["action"]) for line in lines] == [
        (step["service"], step["action"]) for step in report["steps"]]
    assert [line["duration_ms"] for line in lines] == [step["duration_ms"] for step in report["steps"]]
    assert lines[0] == {"service": "azure (emulator)", "action": "create_chat_completion", "ok": True,
                        "duration_ms": lines[0]["duration_ms"], "answer": "Emulated reply to: Where was it played?"}
    by_action = {line["action"]: line["answer"] for line in lines if line["service"] == "openai (emulator)"}
    assert by_action["create_image"] == "1 image(s), 0 error(s)"
    assert by_action["raw_request"] == "HTTP 200"
    assert by_action["create_multiple_chat_completions"] == (
        f"{len(load_manifest().raw['actions']['create_multiple_chat_completions']['inputs']['properties']['prompts']['default'])}"
        " succeeded, 0 failed")
    assert report["connector"]["key"] == "azure_openai"
    assert sorted(report["forms"]) == sorted(actions)
    steps = {(step["service"], step["action"]): step for step in report["steps"]}
    assert sorted(steps) == sorted((service, action) for service in ("azure (emulator)", "openai (emulator)")
                                   for action in actions)
    for (service, action), step in steps.items():
        assert step["ok"] is True, (service, action, step.get("error"))
        assert isinstance(step["result"], dict) and isinstance(step["duration_ms"], float)
    assert steps[("azure (emulator)", "create_chat_completion")]["result"]["content"] == \
        "Emulated reply to: Where was it played?"

    progress = done.stderr.splitlines()
    assert any(line.startswith("discovered Azure OpenAI") for line in progress)
    assert any("using the emulator at http://127.0.0.1:" in line for line in progress)
    for service in ("azure (emulator)", "openai (emulator)"):
        for action in actions:
            assert any(line.startswith(service) and action in line and " ok: " in line for line in progress), \
                (service, action)
    header = progress.index(next(line for line in progress if line.startswith("service ")))
    assert progress[header].split() == ["service", "action", "time", "outcome"]
    assert progress[-2] == "full report written to report.json"
    assert progress[-1] == f"{2 * len(actions)} of {2 * len(actions)} steps succeeded"


def test_an_unknown_demo_action_suggests_the_closest_one():
    done = subprocess.run([sys.executable, "-m", "azure_openai_connector.cli", "demo", "--action", "raw_requests"],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, "")
    assert json.loads(done.stderr)["error"]["errors"][0]["message"].startswith(
        "'raw_requests' is not an action; did you mean 'raw_request'?")
