"""Persistence for the gateway: accounts, API keys, bans, strikes, decisions, audit log, and
the provenance registry.

SQLite by default (a file in the user's data directory, no set-up); PostgreSQL by URL when several
gateway replicas share one database. The schema is managed by Alembic migrations shipped inside
the package (:meth:`Store.migrate`). See :class:`Store`.
"""

from safestack.store._engine import default_database_url
from safestack.store._records import (
    Account,
    ApiKeyInfo,
    AuditEntry,
    BankEntry,
    DecisionRecord,
    HashBank,
    HashImport,
    NewDecision,
    NewHashEntry,
    NewProvenanceRecord,
    OptOut,
    ProvenanceIndexEntry,
    ProvenanceRecord,
    Report,
    StrikePolicy,
)
from safestack.store._store import Store

__all__ = [
    "Account",
    "ApiKeyInfo",
    "AuditEntry",
    "BankEntry",
    "DecisionRecord",
    "HashBank",
    "HashImport",
    "NewDecision",
    "NewHashEntry",
    "NewProvenanceRecord",
    "OptOut",
    "ProvenanceIndexEntry",
    "ProvenanceRecord",
    "Report",
    "Store",
    "StrikePolicy",
    "default_database_url",
]
