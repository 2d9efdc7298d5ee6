"""Rendering pages: one Jinja2 environment, autoescaped, and the headers every page carries.

Autoescaping is on for every template and no template marks anything ``safe``: a message, a
label, a note or a name from the database is always text (a test renders hostile strings through
every page). The Content-Security-Policy allows no script at all and styles only from the
console itself, so even a bug that let markup through could not run code.
"""

from __future__ import annotations

import functools
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from safestack import __version__
from safestack.console._auth import CSRF_FIELD, ConsoleUser

__all__ = ["SECURITY_HEADERS", "excerpt", "render", "see_other", "stylesheet"]

#: Sent with every console response (pages, errors, downloads).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(value: datetime | None) -> str:
    return "–" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("safestack.console", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["percent"] = _percent
    env.globals["csrf_field"] = CSRF_FIELD
    env.globals["version"] = __version__
    return env


def render(
    request: Request,
    template: str,
    *,
    user: ConsoleUser | None,
    status: int = 200,
    title: str,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` (under ``templates/``) with the layout's navigation for ``user``."""
    body = (
        _environment()
        .get_template(template)
        .render(
            user=user,
            title=title,
            path=request.url.path,
            csrf_token=user.csrf_token if user is not None else None,
            **context,
        )
    )
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def see_other(url: str) -> RedirectResponse:
    """Where a successful POST sends the browser (303: the page is loaded with GET)."""
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def excerpt(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, for tables and dashboards."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@functools.cache
def stylesheet() -> bytes:
    return resources.files("safestack.console").joinpath("static/console.css").read_bytes()
