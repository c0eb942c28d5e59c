"""Workflow steps on a keyless connection, run in a child process so azure-identity reads the
managed-identity environment variables (IDENTITY_ENDPOINT, IDENTITY_HEADER) the parent set for it.

Usage: python keyless_steps.py CONNECTION_JSON [revoked]. Prints one JSON line per phase and waits
for a line on stdin between phases, so the parent can revoke the token at the right moment:
  1. every action once, with the manifest's defaults (a batch id from Submit Batch);
  2. 200 chat steps from 16 threads;
  (the parent expires the token) 3. 32 chat steps from 16 threads.
With `revoked`: one chat step, then (the parent revokes every token, present and future) one more,
whose error is printed; DEBUG logging goes to stderr, for the parent to search for secrets.
"""

from __future__ import annotations

import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

import azure_openai_connector
from azure_openai_connector.manifest import load_manifest

CHAT_INPUTS = {"messages": [{"role": "user", "content": "Say hello"}]}
THREADS = 16


def every_action(connection: Dict[str, Any]) -> List[str]:
    earlier: Dict[str, Any] = {}
    ran = []
    for key, action in load_manifest().raw["actions"].items():
        # As the demo does: inputs without a default that name what an earlier step made (a batch id).
        fields = action["inputs"]["properties"]
        inputs = {name: earlier[name] for name in action["inputs"].get("required", ())
                  if "default" not in fields[name] and name in earlier}
        result = azure_openai_connector.run_action(key, connection, inputs)
        earlier.update(result if isinstance(result, dict) else {})
        ran.append(key)
    return ran


def chat_steps(connection: Dict[str, Any], count: int) -> int:
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: azure_openai_connector.run_action(
            "create_chat_completion", connection, CHAT_INPUTS), range(count)))
    return sum(1 for result in results if result.get("choices"))


def revoked(connection: Dict[str, Any]) -> None:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    azure_openai_connector.run_action("create_chat_completion", connection, CHAT_INPUTS)
    print(json.dumps({"phase": "first"}), flush=True)
    sys.stdin.readline()
    try:
        azure_openai_connector.run_action("create_chat_completion", connection, CHAT_INPUTS)
    except azure_openai_connector.errors.ApiError as error:
        print(json.dumps({"phase": "error", "type": type(error).__name__, "status": error.status,
                          "code": error.code, "message": error.message, "text": str(error),
                          "repr": repr(error)}), flush=True)


def main() -> None:
    connection = json.loads(sys.argv[1])
    if sys.argv[2:] == ["revoked"]:
        revoked(connection)
        return
    print(json.dumps({"phase": "actions", "ran": every_action(connection)}), flush=True)
    print(json.dumps({"phase": "threads", "answered": chat_steps(connection, 200)}), flush=True)
    sys.stdin.readline()  # the parent expires the token, then says go on
    print(json.dumps({"phase": "after_expiry", "answered": chat_steps(connection, 32)}), flush=True)


if __name__ == "__main__":
    main()
