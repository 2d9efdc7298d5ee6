"""Alembic migrations of the store's schema (run by :meth:`safestack.store.Store.migrate`)."""
