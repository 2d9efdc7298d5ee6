"""Bring a database to the schema this code expects, with Alembic but without an ``alembic.ini``.

The migration scripts ship inside the package (``safestack/store/migrations``), so an installed
safestack can migrate its own database: the Alembic configuration is built in code with
``script_location`` pointing at that directory.

Several gateway replicas may start at once against one PostgreSQL database and all call
:meth:`Store.migrate`. The whole upgrade runs in one transaction (PostgreSQL's DDL is
transactional) that first takes a transaction-scoped advisory lock: the first replica migrates,
the others wait on the lock and then find the schema already at head. On SQLite the same
transaction starts with ``BEGIN IMMEDIATE``, which serialises the writers the same way.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

__all__ = ["MIGRATIONS_DIR", "current_revision", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: The key of the PostgreSQL advisory lock held while migrating: any 64-bit constant that other
#: applications sharing the database are unlikely to pick ("safestack" in ASCII, big-endian).
MIGRATION_LOCK_KEY = 0x7361666573746163


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str | None:
    """The newest revision among the shipped migration scripts (they do not change at runtime)."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; ``None`` for a database that was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> None:
    """Upgrade to head inside the caller's open transaction (see the module docstring)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    command.upgrade(_config(connection), "head")
