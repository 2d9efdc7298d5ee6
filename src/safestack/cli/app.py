"""The root ``safestack`` command; each concept adds its own sub-commands from its own module."""

from __future__ import annotations

import typer

from safestack.cli.card import app as card_app
from safestack.cli.check import check
from safestack.cli.classify import classify
from safestack.cli.demo import demo
from safestack.cli.eval import app as eval_app
from safestack.cli.hashes import app as hashes_app
from safestack.cli.images import app as images_app
from safestack.cli.policy import app as policy_app
from safestack.cli.provenance import app as provenance_app
from safestack.cli.redteam import app as redteam_app
from safestack.cli.scorecard import app as scorecard_app
from safestack.cli.serve import serve
from safestack.cli.stack import app as stack_app
from safestack.cli.train import train

__all__ = ["app", "main"]

app = typer.Typer(
    name="safestack",
    help="Guard a generative model, measure it, and show the evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("check")(check)
app.command("classify")(classify)
app.command("train")(train)
app.command("demo")(demo)
app.command("serve")(serve)
app.add_typer(policy_app, name="policy")
app.add_typer(stack_app, name="stack")
app.add_typer(eval_app, name="eval")
app.add_typer(card_app, name="card")
app.add_typer(redteam_app, name="redteam")
app.add_typer(images_app, name="images")
app.add_typer(hashes_app, name="hashes")
app.add_typer(scorecard_app, name="scorecard")
app.add_typer(provenance_app, name="provenance")


def main() -> None:
    app()
