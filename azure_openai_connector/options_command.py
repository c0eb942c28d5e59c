"""The `options ACTION INPUT` command: the live options of an input (the models a connection can
use, their capabilities and lifecycle), as a table or as JSON."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List

COLUMNS = (("VALUE", "value"), ("STATUS", "status"), ("RETIRES", "retirement_date"),
           ("CAPABILITIES", "capabilities"))


def register(commands: Any) -> None:
    """Add the `options` subcommand to the CLI's subparsers."""
    options = commands.add_parser(
        "options", help="list the live options of an input (the models the connection offers)",
        description="Ask the service for the values an input marked x-options can take (every "
                    "action's `model`): each with its capabilities and lifecycle, retired and "
                    "deprecated ones marked. Cached per connection for a few minutes.")
    options.add_argument("action", help="action key, e.g. create_chat_completion")
    options.add_argument("input", help="input key, e.g. model")
    options.add_argument("--connection", metavar="JSON|@FILE",
                         help="connection object; default: from the environment variables")
    options.add_argument("--json", action="store_true", help="print JSON instead of a table")
    options.add_argument("--refresh", action="store_true", help="ask the service again, not the cache")
    options.set_defaults(handler=command_options)


def command_options(args: argparse.Namespace) -> int:
    from .cli import EXIT_OK, _fail, _load_json_argument, _print_json, connection_from_env
    from .errors import ConnectorError, InputValidationError
    from .options import input_options

    try:
        if args.connection:
            connection = _load_json_argument(args.connection, "--connection")
        else:
            connection = connection_from_env(os.environ)
            if connection is None:
                raise InputValidationError([{
                    "path": "--connection",
                    "message": "no --connection given and neither AZURE_OPENAI_API_KEY nor OPENAI_API_KEY is set"}],
                    subject="arguments")
        from .host_hooks import default_runtime

        found = input_options(args.action, args.input, connection, refresh=args.refresh,
                              runtime=default_runtime())
    except ConnectorError as error:
        return _fail(error)
    if args.json:
        _print_json(found)
    else:
        sys.stdout.write(options_table(found))
    return EXIT_OK


def options_table(options: List[Dict[str, Any]]) -> str:
    """Aligned columns: value, lifecycle status, retirement date, capabilities."""
    rows = [[title for title, _ in COLUMNS]]
    for option in options:
        lifecycle = option["lifecycle"]
        rows.append([option["value"], lifecycle["status"], lifecycle.get("retirement_date") or "-",
                     ", ".join(option["capabilities"]) or "-"])
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    if not options:
        lines.append("(no options: the input takes free values, or the service listed none)")
    return "\n".join(lines) + "\n"
