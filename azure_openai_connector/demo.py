"""The main job: act as a host would, run every action with its manifest defaults, and report.

Without credentials in the environment the steps run against the bundled emulator, once on an
Azure connection and once on an OpenAI connection; with credentials, against the real service.
A summary table goes to stderr, one compact JSON line per step to stdout, and the full report
(forms and whole results) to a file on request.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .environment import connection_from_env
from .errors import ConnectorError

DEMO_EMULATOR_KEY = "demo-emulator-key"


def _progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _discover_like_a_host() -> Tuple[Any, Dict[str, Any]]:
    """Find the connector through its entry point with pluggy alone, as a host platform does."""
    from .host_manager import host_plugin_manager

    manager = host_plugin_manager()
    return manager, manager.hook.connector_manifest()


def _connections(environ: Mapping[str, str], stack: ExitStack) -> List[Tuple[str, Dict[str, Any]]]:
    real = connection_from_env(environ)
    if real is not None:
        service = "openai" if real.get("is_openai_key") else "azure"
        return [(service, real)]
    from .emulator import Emulator

    emulator = stack.enter_context(Emulator(api_key=DEMO_EMULATOR_KEY))
    _progress(f"no credentials in the environment: using the emulator at {emulator.url}")
    return [
        ("azure (emulator)", {"api_key": DEMO_EMULATOR_KEY, "organization": "demo", "endpoint": emulator.url}),
        ("openai (emulator)", {"api_key": DEMO_EMULATOR_KEY, "is_openai_key": True,
                               "endpoint": emulator.url + "/v1"}),
    ]


def _summary(result: Dict[str, Any], text_limit: Optional[int] = 80) -> str:
    """The outcome in short: the answer text (quoted, cut at `text_limit` for the table) or counts."""
    for key in ("content", "summary", "output_text"):
        if isinstance(result.get(key), str):
            text = result[key] if text_limit is None else result[key][:text_limit]
            return json.dumps(text, ensure_ascii=False) if text_limit is not None else text
    if "images" in result:
        return f"{len(result['images'])} image(s), {len(result['errors'])} error(s)"
    if "totals" in result:
        return f"{result['totals']['succeeded']} succeeded, {result['totals']['failed']} failed"
    if isinstance(result.get("embeddings"), list):
        return f"{len(result['embeddings'])} vector(s) of {result.get('dimensions')} dimensions"
    if "batch_id" in result:
        return f"batch {result['batch_id']}: {result['status']}"
    if "status" in result:
        return f"HTTP {result['status']}"
    return ""


def _from_earlier_steps(action: Mapping[str, Any], earlier: Mapping[str, Any]) -> Dict[str, Any]:
    """The defaults cover every input but those naming what an earlier step made (Get Batch Status
    needs the batch_id Submit Batch returned): those come from the earlier result of that name."""
    fields = action["inputs"]["properties"]
    return {name: earlier[name] for name in action["inputs"].get("required", ())
            if "default" not in fields[name] and name in earlier}


def _step_line(step: Dict[str, Any]) -> str:
    """One compact JSON line for stdout: the step, its outcome in short, no bulky result."""
    line = {key: step[key] for key in ("service", "action", "ok", "duration_ms")}
    if step["ok"]:
        line["answer"] = _summary(step["result"], text_limit=None)
    else:
        line["error"] = {key: step["error"].get(key) for key in ("type", "message")}
    return json.dumps(line, ensure_ascii=False)


def run_demo(environ: Mapping[str, str], only: Optional[str] = None, json_file: Optional[str] = None) -> int:
    """Run the demo; returns the process exit code (0 when every step succeeded)."""
    from .forms import action_form

    manager, manifest = _discover_like_a_host()
    connector = manifest["connector"]
    _progress(f"discovered {connector['label']} {connector['version']} through entry point "
              f"workflow_connectors:{connector['key']}")
    actions = [only] if only else list(manifest["actions"])
    forms = {}
    for key in actions:
        if key not in manifest["actions"]:
            _progress(f"unknown action {key!r}")
            return 2
        forms[key] = action_form(manifest, key)
        _progress(f"form {key}: {', '.join(forms[key]['schema']['properties'])}")
    steps: List[Dict[str, Any]] = []
    with ExitStack() as stack:
        connections = _connections(environ, stack)
        _progress(f"{'service':18} {'action':34} {'time':>11}  outcome")
        for service, connection in connections:
            earlier: Dict[str, Any] = {}
            for key in actions:
                started = time.perf_counter()
                inputs = _from_earlier_steps(manifest["actions"][key], earlier)
                step: Dict[str, Any] = {"service": service, "action": key, "inputs": inputs}
                try:
                    result = manager.hook.execute_action(action=key, connection=connection, inputs=inputs)
                    earlier.update(result)
                    step.update(ok=True, result=result)
                    outcome = f"ok: {_summary(result)}"
                except ConnectorError as error:
                    step.update(ok=False, error=error.to_dict())
                    outcome = f"FAILED: {error}"
                step["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
                steps.append(step)
                _progress(f"{service:18} {key:34} {step['duration_ms']:8.1f} ms  {outcome}")
                sys.stdout.write(_step_line(step) + "\n")
                sys.stdout.flush()
    if json_file:
        with open(json_file, "w", encoding="utf-8") as handle:
            json.dump({"connector": connector, "forms": forms, "steps": steps}, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        _progress(f"full report written to {json_file}")
    failed = sum(1 for step in steps if not step["ok"])
    _progress(f"{len(steps) - failed} of {len(steps)} steps succeeded")
    return 0 if failed == 0 else 1
