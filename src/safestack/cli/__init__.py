"""The ``safestack`` command line."""

from safestack.cli.app import app, main

__all__ = ["app", "main"]
