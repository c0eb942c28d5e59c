"""The `azure-openai-connector` command: run steps, describe actions, serve the emulator, demo.

JSON goes to stdout, progress and logs to stderr. Exit codes: 0 success, 1 API or network
failure (or every prompt of a batch failed), 2 invalid input, 3 some prompts of a batch failed.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from .environment import connection_from_env
from .errors import ConnectorError, InputValidationError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID_INPUT = 2
EXIT_SOME_FAILED = 3

EPILOG = """\
examples:
  azure-openai-connector run create_chat_completion \\
      --connection '{"api_key": "...", "organization": "my-resource"}' \\
      --input temperature=0.2
  azure-openai-connector run summarize_text --inputs @step.json      # connection from env vars
  azure-openai-connector describe create_image
  azure-openai-connector form create_image > form.json               # JSON Schema + RJSF uiSchema
  azure-openai-connector playground                                  # try every action in a browser
  azure-openai-connector demo                                        # emulator unless credentials are set

environment (read when --connection is not given):
  AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT, OPENAI_API_VERSION   Azure OpenAI
  OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_PROJECT_ID  OpenAI
  AZURE_OPENAI_ENDPOINT without a key, with AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET
  (or a managed identity's IDENTITY_ENDPOINT/IDENTITY_HEADER)          Azure OpenAI, Entra ID

exit codes: 0 success, 1 API or network failure (for create_multiple_chat_completions: every
  prompt failed), 2 invalid input, 3 some prompts of create_multiple_chat_completions failed
  (the result JSON still goes to stdout, a one-line summary to stderr); get_batch_results
  exits the same way for its prompts
"""


def _connection_argument(text: Optional[str]) -> Any:
    """The --connection argument (JSON or @file), else the environment's connection; refused with
    exit 2 when there is neither."""
    if text:
        return _load_json_argument(text, "--connection")
    connection = connection_from_env(os.environ)
    if connection is None:
        raise InputValidationError([{
            "path": "--connection",
            "message": "no --connection given and neither AZURE_OPENAI_API_KEY nor OPENAI_API_KEY is set"}],
            subject="arguments")
    return connection


def _load_json_argument(text: str, name: str) -> Any:
    try:
        if text.startswith("@"):
            with open(text[1:], encoding="utf-8") as handle:
                return json.load(handle)
        return json.loads(text)
    except RecursionError:  # json's decoder recurses once per level: a hostile depth ends here
        raise InputValidationError([{"path": name, "message": "is JSON nested too deeply"}],
                                   subject="arguments") from None
    except (OSError, ValueError) as exc:
        raise InputValidationError([{"path": name, "message": f"is not valid JSON or a readable @file: {exc}"}],
                                   subject="arguments") from None


def _parse_assignments(assignments: Sequence[str], fields: Dict[str, Any]) -> Dict[str, Any]:
    """`--input key=value` pairs: JSON values, or bare words as strings where a string is allowed."""
    values: Dict[str, Any] = {}
    for assignment in assignments:
        name, separator, raw = assignment.partition("=")
        if not separator or not name:
            raise InputValidationError([{"path": "--input", "message": f"{assignment!r} is not key=value"}],
                                       subject="arguments")
        try:
            values[name] = json.loads(raw)
            continue
        except RecursionError:
            raise InputValidationError([{"path": f"--input {name}", "message": "is JSON nested too deeply"}],
                                       subject="arguments") from None
        except ValueError:
            values[name] = raw  # a bare word is a string
        kinds = fields.get(name, {}).get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "array" in kinds and "string" not in kinds:
            example = json.dumps([raw], ensure_ascii=False)
            raise InputValidationError([{"path": name, "message": f"is a list: write --input '{name}={example}'"}],
                                       subject="arguments")
        if "object" in kinds and "string" not in kinds:
            raise InputValidationError([{"path": name, "message": f"is an object: write it as JSON, as in "
                                                                  f"--input '{name}={{\"key\": \"value\"}}'"}],
                                       subject="arguments")
    return values


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    """A "; did you mean 'x'?" hint naming the closest known word, or an empty string."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unknown_inputs(action: str, inputs: Dict[str, Any], fields: Dict[str, Any]) -> None:
    """Refuse input names the action does not have, suggesting the closest one."""
    problems = []
    for name in inputs:
        if name not in fields:
            hint = _did_you_mean(name, fields) or f"; its inputs: {', '.join(fields)}"
            problems.append({"path": name, "message": f"is not an input of {action}{hint}"})
    if problems:
        raise InputValidationError(problems)


def _action_fields(action: str) -> Dict[str, Any]:
    """The action's input fields, or InputValidationError with a suggestion when `action` is unknown."""
    return _manifest_knowing(action).action(action).inputs.fields


def _print_json(document: Any, stream: Any = None) -> None:
    stream = stream or sys.stdout
    json.dump(document, stream, indent=2, ensure_ascii=False)
    stream.write("\n")
    stream.flush()


def _fail(error: ConnectorError) -> int:
    _print_json({"error": error.to_dict()}, sys.stderr)
    return EXIT_INVALID_INPUT if isinstance(error, InputValidationError) else EXIT_FAILURE


def command_run(args: argparse.Namespace) -> int:
    from . import run_action

    try:
        fields = _action_fields(args.action)
        connection = _connection_argument(args.connection)
        inputs = _load_json_argument(args.inputs, "--inputs") if args.inputs else {}
        if not isinstance(inputs, dict):
            raise InputValidationError([{"path": "--inputs", "message": "must be a JSON object"}],
                                       subject="arguments")
        inputs.update(_parse_assignments(args.input or (), fields))
        _unknown_inputs(args.action, inputs, fields)
        result = run_action(args.action, connection, inputs)
    except ConnectorError as error:
        return _fail(error)
    if args.output == "content":
        written = _print_content(result, Path(args.output_dir))
        if written is not None:
            return written
    else:
        _print_json(result)
    return _batch_exit_code(result)


def _print_content(result: Dict[str, Any], folder: Path) -> Optional[int]:
    """Print just the answer (or write the images and print their paths); an exit code on failure."""
    from .answers import answer_text, write_images

    if "images" not in result:
        sys.stdout.write(answer_text(result))
        sys.stdout.flush()
        return None
    try:
        paths = write_images(result, folder)
    except Exception as error:  # noqa: BLE001 - a disk or download failure, told in one line
        sys.stderr.write(f"error: could not save the images in {folder}: {type(error).__name__}: {error}\n")
        return EXIT_FAILURE
    sys.stdout.write("".join(f"{path}\n" for path in paths))
    sys.stdout.flush()
    return None


def _batch_exit_code(result: Dict[str, Any]) -> int:
    """0, or for a batch with failed prompts 1 (all failed) / 3 (some), with a summary on stderr."""
    totals = result.get("totals")
    if not isinstance(totals, dict) or not totals.get("failed"):
        return EXIT_OK
    failed, total = totals["failed"], totals["failed"] + totals.get("succeeded", 0)
    reasons = sorted({(item.get("error") or {}).get("type", "error") for item in result.get("results", ())
                      if item.get("error")})
    sys.stderr.write(f"{failed} of {total} prompts failed ({', '.join(reasons)}); "
                     f"see their errors in the result\n")
    return EXIT_FAILURE if failed == total else EXIT_SOME_FAILED


def _manifest_knowing(action: Optional[str]) -> Any:
    """The manifest, or InputValidationError naming the known actions when `action` is unknown."""
    from .manifest import load_manifest

    manifest = load_manifest()
    if action and action not in manifest.actions:
        known = ", ".join(manifest.actions)
        raise InputValidationError([{
            "path": "action",
            "message": f"{action!r} is not an action{_did_you_mean(action, manifest.actions)} (known: {known})"}],
            subject="arguments")
    return manifest


def command_describe(args: argparse.Namespace) -> int:
    from .describe import describe_json, describe_text

    try:
        manifest = _manifest_knowing(args.action)
    except ConnectorError as error:
        return _fail(error)
    if args.json:
        _print_json(describe_json(manifest, args.action))
    else:
        sys.stdout.write(describe_text(manifest, args.action))
    return EXIT_OK


def command_form(args: argparse.Namespace) -> int:
    from .forms import action_form, all_forms, connection_form

    try:
        manifest = _manifest_knowing(args.action)
    except ConnectorError as error:
        return _fail(error)
    if args.connection:
        _print_json(connection_form(manifest.raw))
    elif args.action:
        _print_json(action_form(manifest.raw, args.action))
    else:
        _print_json(all_forms(manifest.raw))
    return EXIT_OK


def command_playground(args: argparse.Namespace) -> int:
    from .playground import serve

    return serve(port=args.port, environ=os.environ, open_browser=args.open)


def command_emulator(args: argparse.Namespace) -> int:
    from .emulator import main as emulator_main

    argv: List[str] = ["--port", str(args.port), "--latency", str(args.latency), "--print", "env"]
    if args.api_key:
        argv += ["--api-key", args.api_key]
    if args.deployments:
        argv += ["--deployments", args.deployments]
    return emulator_main(argv)


def command_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        if args.action:
            _manifest_knowing(args.action)
    except ConnectorError as error:
        return _fail(error)
    return run_demo(os.environ, only=args.action, json_file=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azure-openai-connector",
        description="Run Azure OpenAI / OpenAI actions as workflow steps: JSON in, JSON out.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log requests at DEBUG level on stderr (secrets redacted)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run one action as a workflow step",
                              description="Run one action; the result JSON goes to stdout.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("action", help="action key, e.g. create_chat_completion (see `describe`)")
    run.add_argument("--connection", metavar="JSON|@FILE",
                     help="connection object; default: from the environment variables")
    run.add_argument("--inputs", metavar="JSON|@FILE", help="input object; missing inputs take the manifest's defaults")
    run.add_argument("--input", metavar="KEY=VALUE", action="append",
                     help="set one input (VALUE parsed as JSON, else taken as a string); repeatable")
    run.add_argument("--output", choices=("json", "content"), default="json",
                     help="json (default): the whole result; content: just the answer text (one line "
                          "per prompt for create_multiple_chat_completions), or for create_image the "
                          "image files, written to --output-dir, one path per line")
    run.add_argument("--output-dir", metavar="DIR", default=".",
                     help="where --output content writes images (default: the current directory)")
    run.set_defaults(handler=command_run)

    describe = commands.add_parser("describe", help="list actions and their inputs")
    describe.add_argument("action", nargs="?", help="only this action")
    describe.add_argument("--json", action="store_true", help="print JSON instead of a table")
    describe.set_defaults(handler=command_describe)

    form = commands.add_parser(
        "form", help="print a form: JSON Schema + react-jsonschema-form uiSchema + default formData",
        description="Print the form a host renders for one action (or the connection with --connection; "
                    "every form without arguments) as JSON: {schema, uiSchema, formData}, generated "
                    "from the manifest in the conventions of react-jsonschema-form.")
    form_target = form.add_mutually_exclusive_group()
    form_target.add_argument("action", nargs="?", help="action key, e.g. create_chat_completion")
    form_target.add_argument("--connection", action="store_true", help="the connection's form")
    form.set_defaults(handler=command_form)

    playground = commands.add_parser(
        "playground", help="serve a local page to fill in the forms and run actions in a browser",
        description="Serve the playground on 127.0.0.1: the connection form and every action's form, "
                    "a Run button that runs the step as a host does, and the JSON result. Open the "
                    "printed URL (it carries the access token). Without an API key in the page it uses "
                    "the environment's credentials, or, with none, the built-in emulator.")
    playground.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    playground.add_argument("--open", action="store_true", help="open the page in the default web browser")
    playground.set_defaults(handler=command_playground)

    emulator = commands.add_parser(
        "emulator", help="serve the local Azure/OpenAI API emulator",
        description="Serve the local Azure OpenAI / OpenAI API emulator on 127.0.0.1 until Ctrl+C. It "
                    "prints the environment variables to paste into another shell (Azure, and OpenAI "
                    "with the /v1 base) so that `run` and `playground` use it.")
    emulator.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    emulator.add_argument("--api-key", help="the key the emulator accepts (default: emulator-key)")
    emulator.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each answer")
    emulator.add_argument("--deployments", metavar="NAME[=MODEL],...|any",
                          help="deployment/model names it accepts (default: the connector's defaults and a few more)")
    emulator.set_defaults(handler=command_emulator)

    demo = commands.add_parser(
        "demo", help="run every action with its defaults (against the emulator without credentials)",
        description="Load the plugin through its entry point as a host would, show each action's "
                    "form, and run every action with the manifest's defaults. Without credentials in "
                    "the environment it starts the local emulator; with them it calls the real service. "
                    "A summary table goes to stderr, one JSON line per step to stdout.")
    demo.add_argument("--action", help="run only this action")
    demo.add_argument("--json", metavar="FILE",
                      help="also write the full report (forms, every result) to FILE as one JSON document")
    demo.set_defaults(handler=command_demo)

    from .options_command import register as register_options

    register_options(commands, connection_argument=_connection_argument,
                     fail=_fail, print_json=_print_json)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, and keep Python's exit-time flush of
        # stdout from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
