"""What single parts of a step cost, for before/after comparisons of one change at a time.

``python -m bench.parts [--package-root DIR]`` prints JSON: microseconds per call of the parts
around the request (the best of 7 `timeit` repeats: these are CPU-bound and short, so the best
repeat is the one least disturbed), and milliseconds of two start-up parts, each in a fresh
interpreter without a cache directory. Run it on two trees to see what a change is worth on its own;
`python -m bench` holds the whole to its targets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import timeit
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .common import API_KEY, CHAT_MESSAGES

ANSWER = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
          "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                       "message": {"role": "assistant", "content": "Hello from the bench server.", "refusal": None}}],
          "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}}
RESULT = {**ANSWER, "request_id": "req_bench", "content": "Hello from the bench server.", "finish_reason": "stop",
          "refusal": None, "tool_calls": [], "assistant_message": {"role": "assistant", "content": "Hello"},
          "parsed": None, "parse_errors": []}

# Run in a fresh interpreter: the manifest's load (parse or JSON read, then build), and creating the
# classes the first step imports (the dataclass factory is timed while the package is imported).
START_UP = r"""
import json, time, dataclasses
spent = [0.0]
create = dataclasses._process_class
def timed(cls, *args, **kwargs):
    started = time.perf_counter()
    try:
        return create(cls, *args, **kwargs)
    finally:
        spent[0] += time.perf_counter() - started
dataclasses._process_class = timed
import azure_openai_connector.runtime, azure_openai_connector.host_manager
from azure_openai_connector.manifest import load_manifest
started = time.perf_counter()
load_manifest()
print(json.dumps({"load_manifest() (ms)": (time.perf_counter() - started) * 1e3,
                  "dataclass creation while importing the runtime (ms)": spent[0] * 1e3}))
"""


def _best(call: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=7)) / number * 1e6


def per_call_parts() -> Dict[str, float]:
    """Microseconds per call of the parts around a chat step's request."""
    import requests
    from requests.structures import CaseInsensitiveDict

    from azure_openai_connector.connection import connection_from_values
    from azure_openai_connector.http import HttpClient
    from azure_openai_connector.http.messages import Response
    from azure_openai_connector.manifest import load_manifest
    from azure_openai_connector.redaction import hide_secrets
    from azure_openai_connector.validation import json_value_problems

    form = load_manifest().action("create_chat_completion").inputs
    inputs = {"messages": CHAT_MESSAGES}
    client = HttpClient(connection_from_values({"api_key": API_KEY, "organization": "contoso",
                                                "endpoint": "http://127.0.0.1:9", "api_version": "v1"}))
    prepared = requests.Request("POST", "http://127.0.0.1:9/openai/v1/chat/completions").prepare()
    adapter = client.session.get_adapter("http://")
    response = Response(status=200, headers=CaseInsensitiveDict(), content=json.dumps(ANSWER).encode(),
                        request_id="req_bench", attempts=1, elapsed=0.0)
    try:
        return {
            "hide_secrets on a chat result (us)": _best(lambda: hide_secrets(RESULT, (API_KEY,)), 20000),
            "JSON check of a 4-message chat input (us)": _best(lambda: json_value_problems(inputs), 20000),
            "Form.validated, 4-message chat input (us)": _best(lambda: form.validated(inputs), 5000),
            "the adapter's pool lookup (us)": _best(lambda: adapter.get_connection_with_tls_context(
                prepared, client.session.verify, {}, None), 20000),
            "Response.json() of a chat answer (us)": _best(response.json, 20000),
        }
    finally:
        client.close()


def start_up_parts(root: Path) -> Dict[str, float]:
    """Milliseconds of start-up parts in a fresh interpreter from `root`, no cache directory."""
    env = {**os.environ, "AZURE_OPENAI_CONNECTOR_CACHE_DIR": "", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", START_UP], check=True, capture_output=True, text=True,
                          env=env, cwd=root, timeout=120)
    return json.loads(done.stdout)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--package-root", metavar="DIR", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the source tree (or installed folder) whose package is measured")
    options = parser.parse_args(argv)
    root = options.package_root.resolve()
    sys.path.insert(0, str(root))
    import azure_openai_connector

    if not azure_openai_connector.__file__.startswith(str(root)):
        print(f"imported {azure_openai_connector.__file__}, not the package in {root}", file=sys.stderr)
        return 2
    print(json.dumps({"package": str(root), **per_call_parts(), **start_up_parts(root)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
