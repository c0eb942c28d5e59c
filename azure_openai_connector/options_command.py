"""The `options ACTION INPUT` command: the live options of an input (the models a connection can
use, their capabilities and lifecycle), as a table or as JSON."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Dict, List

COLUMNS = (("VALUE", "value"), ("STATUS", "status"), ("RETIRES", "retirement_date"),
           ("CAPABILITIES", "capabilities"))


def register(commands: Any, *, connection_argument: Callable[[Any], Any], fail: Callable[[Any], int],
             print_json: Callable[[Any], None]) -> None:
    """Add the `options` subcommand to the CLI's subparsers; the CLI hands over its own helpers
    (the --connection argument or the environment's, error and JSON output), so both read alike."""
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
    options.set_defaults(handler=lambda args: command_options(
        args, connection_argument=connection_argument, fail=fail, print_json=print_json))


def command_options(args: argparse.Namespace, *, connection_argument: Callable[[Any], Any],
                    fail: Callable[[Any], int], print_json: Callable[[Any], None]) -> int:
    """Print the options of ACTION's INPUT; exit 0, or the CLI's codes for a refusal or failure."""
    from .errors import ConnectorError
    from .options import input_options

    try:
        connection = connection_argument(args.connection)
        from .host_hooks import default_runtime

        found = input_options(args.action, args.input, connection, refresh=args.refresh,
                              runtime=default_runtime())
    except ConnectorError as error:
        return fail(error)
    if args.json:
        print_json(found)
    else:
        sys.stdout.write(options_table(found))
    return 0


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
