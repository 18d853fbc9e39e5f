"""What every client command shares: the client, one-line errors, JSON and rich output."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from editq.client import Client, EditqError

#: Width of tables when stdout is not a terminal (COLUMNS overrides it).
PIPE_WIDTH = 160

Command = Callable[[argparse.Namespace, Client], int]


def fail(text: str, code: int = 1) -> int:
    """One line on stderr; the exit status."""
    sys.stderr.write(f"editq: {text}\n")
    sys.stderr.flush()
    return code


def uses_client(command: Command) -> Callable[[argparse.Namespace], int]:
    """Runs `command` with a client made from `--api`/`--key` (or the environment); an
    `EditqError` becomes one line with its code, a file that cannot be read or written one line
    with the reason, each with exit status 1 (130 on Ctrl-C)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            with Client(args.api, args.key) as client:
                return command(args, client)
        except EditqError as exc:
            return fail(str(exc))
        except OSError as exc:
            return fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        except KeyboardInterrupt:
            return fail("interrupted", 130)

    return run


def console(*, stderr: bool = False) -> Console:
    """rich output: colours only on a terminal; wide, plain tables in a pipe."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS") or PIPE_WIDTH)
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_json(value: Any) -> None:
    """The API's JSON, as it sent it."""
    line(json.dumps(value, indent=2))
