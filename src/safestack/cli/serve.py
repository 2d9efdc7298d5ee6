"""``safestack serve``: the OpenAI-compatible gateway on the embedded defaults or a gateway file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from safestack.cli._common import ExitCode, emit_json, err_console, user_errors
from safestack.errors import ConfigError
from safestack.http_endpoint import describe_validation_error

__all__ = ["serve"]

ADMIN_KEY_ENV = "SAFESTACK_ADMIN_KEY"


def _upstreams(values: list[str]) -> dict[str, dict[str, str]]:
    models: dict[str, dict[str, str]] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url:
            raise ConfigError(
                f"--upstream takes NAME=URL (e.g. gpt-4o=http://host/v1), got {value!r}",
                path="command line",
            )
        models[name] = {"base_url": url}
    return models


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            exists=True,
            dir_okay=False,
            help="Gateway file (YAML; see docs/gateway.md).",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL, e.g. postgresql://user@host/db. Default: the file's, else "
            "$SAFESTACK_DATABASE_URL, else SQLite in the user's data directory."
        ),
    ] = None,
    stack: Annotated[
        str | None, typer.Option(help="Stack preset or stack file (overrides the file's).")
    ] = None,
    upstream: Annotated[
        list[str] | None,
        typer.Option(help="NAME=URL: serve model NAME from an OpenAI-compatible URL. Repeatable."),
    ] = None,
    no_admin: Annotated[
        bool, typer.Option("--no-admin", help=f"Run without the admin API (no {ADMIN_KEY_ENV}).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    check: Annotated[
        bool,
        typer.Option("--check", help="Build everything, print the configuration, do not listen."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --check: one JSON object.")] = False,
) -> None:
    """Start the gateway: POST /v1/chat/completions (and streaming), /v1/moderations, /v1/models.

    The admin API (/admin/...) needs the admin key in the environment variable
    SAFESTACK_ADMIN_KEY; without it the server refuses to start unless --no-admin is given.
    """
    from safestack.gateway import GatewayConfig, create_app, load_gateway_config
    from safestack.gateway import serve as run_server

    with user_errors():
        gateway_config = load_gateway_config(config) if config else GatewayConfig()
        update: dict[str, object] = {}
        if database_url:
            update["database_url"] = database_url
        if stack:
            update["stack"] = stack
        if upstream:
            update["models"] = {**gateway_config.models, **_upstreams(upstream)}
        if update:
            try:
                gateway_config = GatewayConfig.model_validate(
                    {**gateway_config.model_dump(), **update}
                )
            except ValidationError as exc:
                problem = describe_validation_error(exc)
                raise ConfigError(problem, path="command line") from None
        admin_key = os.environ.get(ADMIN_KEY_ENV) or None
        if not no_admin and admin_key is None:
            raise ConfigError(
                f"the admin API needs an admin key: set {ADMIN_KEY_ENV} (e.g. "
                f"`export {ADMIN_KEY_ENV}=$(openssl rand -hex 32)`), or pass --no-admin",
                path="environment",
            )
        app = create_app(gateway_config, admin_key=admin_key, enable_admin=not no_admin)
        gateway = app.state.gateway
        summary = {
            "host": host,
            "port": port,
            "models": sorted(gateway.stacks),
            "stack": gateway_config.stack,
            "database": gateway.store.url,
            "admin": not no_admin,
            # The web console exists only beside the admin API (it signs people in with keys).
            "console": None
            if no_admin or not gateway_config.console.enabled
            else f"http://{host}:{port}/console/",
            # Who signs the images' C2PA manifests (checked above, when the app was built).
            "provenance": None
            if gateway.provenance is None
            else {
                "signer": gateway.provenance.signer.credentials.describe(),
                "watermark": None
                if gateway.provenance.watermarker is None
                else gateway.provenance.watermarker.method,
            },
        }
        if check:
            if as_json:
                emit_json(summary)
            else:
                for name, value in summary.items():
                    err_console.print(f"{name}: {value}")
            raise typer.Exit(ExitCode.OK)
        err_console.print(
            f"safestack gateway on http://{host}:{port}/v1 — models: {', '.join(summary['models'])}"
            f"; database: {summary['database']}; admin API: {'on' if not no_admin else 'off'}"
            + (f"; console: {summary['console']}" if summary["console"] else "")
        )
        run_server(app, gateway_config, host=host, port=port, log_level=log_level)
