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
    done = subprocess.run([sys.executable, "-m", "azure_openai_connector.cli", "demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # one JSON document, nothing else on stdout
    actions = list(load_manifest().raw["actions"])
    assert report["connector"]["key"] == "azure_openai"
    assert sorted(report["forms"]) == sorted(actions)
    steps = {(step["service"], step["action"]): step for step in report["steps"]}
    assert sorted(steps) == sorted((service, action) for service in ("azure (emulator)", "openai (emulator)")
                                   for action in actions)
    for (service, action), step in steps.items():
        assert step["ok"] is True, (service, action, step.get("error"))
        assert isinstance(step["result"], dict) and step["duration_ms"] >= 0
    assert steps[("azure (emulator)", "create_chat_completion")]["result"]["content"] == \
        "Emulated reply to: Where was it played?"

    progress = done.stderr.splitlines()
    assert any(line.startswith("discovered Azure OpenAI") for line in progress)
    assert any("using the emulator at http://127.0.0.1:" in line for line in progress)
    for service in ("azure (emulator)", "openai (emulator)"):
        for action in actions:
            assert any(line.startswith(service) and action in line and " ok: " in line for line in progress), \
                (service, action)
    assert progress[-1] == f"{2 * len(actions)} of {2 * len(actions)} steps succeeded"
