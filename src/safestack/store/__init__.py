"""Persistence for the gateway: accounts, API keys, bans, strikes, decisions, audit log, the
provenance registry, and the console's campaigns, review queue and sessions.

SQLite by default (a file in the user's data directory, no set-up); PostgreSQL by URL when several
gateway replicas share one database. The schema is managed by Alembic migrations shipped inside
the package (:meth:`Store.migrate`). See :class:`Store`.
"""

from safestack.store._campaigns import Campaigns
from safestack.store._engine import default_database_url
from safestack.store._records import (
    Account,
    ApiKeyInfo,
    AuditEntry,
    BankEntry,
    Campaign,
    ConsoleSession,
    Conversation,
    DecisionRecord,
    Exchange,
    ExchangeLabel,
    ExchangeOutcome,
    HashBank,
    HashImport,
    NewCampaign,
    NewDecision,
    NewExchange,
    NewHashEntry,
    NewProvenanceRecord,
    OptOut,
    ProvenanceIndexEntry,
    ProvenanceRecord,
    Report,
    Resolution,
    ReviewItem,
    ReviewKind,
    Role,
    StrikePolicy,
    Traffic,
)
from safestack.store._review import RESOLUTIONS, ReviewQueue
from safestack.store._sessions import ConsoleSessions
from safestack.store._store import Store

__all__ = [
    "RESOLUTIONS",
    "Account",
    "ApiKeyInfo",
    "AuditEntry",
    "BankEntry",
    "Campaign",
    "Campaigns",
    "ConsoleSession",
    "ConsoleSessions",
    "Conversation",
    "DecisionRecord",
    "Exchange",
    "ExchangeLabel",
    "ExchangeOutcome",
    "HashBank",
    "HashImport",
    "NewCampaign",
    "NewDecision",
    "NewExchange",
    "NewHashEntry",
    "NewProvenanceRecord",
    "OptOut",
    "ProvenanceIndexEntry",
    "ProvenanceRecord",
    "Report",
    "Resolution",
    "ReviewItem",
    "ReviewKind",
    "ReviewQueue",
    "Role",
    "Store",
    "StrikePolicy",
    "Traffic",
    "default_database_url",
]
