"""What every command shares: consoles, exit codes, and turning errors into messages."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from enum import IntEnum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from safestack.errors import SafestackError

__all__ = ["ExitCode", "console", "emit_json", "err_console", "user_errors"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def emit_json(record: Any) -> None:
    """One JSON object on one line of stdout: what ``--json`` promises scripts."""
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class ExitCode(IntEnum):
    """Exit codes, as ruff uses them: scripts and CI jobs branch on these."""

    OK = 0
    FLAGGED = 1  # something was flagged, or a gate failed
    ERROR = 2  # usage, configuration, input or internal error
    INTERRUPTED = 130


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print errors the user can fix as one line, without a traceback, and exit 2."""
    try:
        yield
    except SafestackError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(ExitCode.ERROR) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(ExitCode.INTERRUPTED)
