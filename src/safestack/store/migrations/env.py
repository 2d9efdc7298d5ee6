"""Alembic's entry point: runs the migrations on the connection :meth:`Store.migrate` hands over.

:meth:`safestack.store.Store.migrate` builds an ``alembic.config.Config`` in code (there is no
``alembic.ini``) and passes its open connection in ``config.attributes["connection"]``, so the
migration runs inside the caller's transaction and under the caller's lock. A developer writing a
new revision can instead set ``sqlalchemy.url`` on the config (or ``SAFESTACK_DATABASE_URL``) and
this script connects by itself.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from safestack.store._engine import create_store_engine, default_database_url, normalize_url
from safestack.store._tables import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return

    url = config.get_main_option("sqlalchemy.url") or default_database_url()
    engine = create_store_engine(normalize_url(url), connect_timeout_s=5.0)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


_main()
