"""The web console under ``/console/``: red-teaming campaigns, the review queue, the evidence.

Server-rendered pages (Jinja2, autoescaped) with no JavaScript at all: forms post and pages
reload. That keeps the console installable with ``pip`` alone, usable from the keyboard and by
screen readers, and lets the Content-Security-Policy forbid every script, so that a chat message
or a label that smuggles markup can at worst show as text.

The console is its own ASGI app, mounted by the gateway (:func:`console_app`), with HTML error
pages instead of the API's JSON errors. Who may see what is decided in one place
(:mod:`safestack.console._auth`): ``admin`` everything, ``reviewer`` the review queue, the
evidence and the campaign dashboards, ``red_teamer`` only the campaigns they were invited to.
"""

from safestack.console._app import console_app

__all__ = ["console_app"]
