"""The root ``safestack`` command; each concept adds its own sub-commands from its own module."""

from __future__ import annotations

import typer

from safestack.cli import classify as classify_cmd
from safestack.cli import demo as demo_cmd
from safestack.cli import policy as policy_cmd
from safestack.cli import train as train_cmd

__all__ = ["app", "main"]

app = typer.Typer(
    name="safestack",
    help="Guard a generative model, measure it, and show the evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("classify")(classify_cmd.classify)
app.command("train")(train_cmd.train)
app.command("demo")(demo_cmd.demo)
app.add_typer(policy_cmd.app, name="policy")


def main() -> None:
    app()
