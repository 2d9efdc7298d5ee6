"""The store: accounts, API keys, bans, strikes, decisions, reports, opt-outs, hash banks, audit,
and the provenance registry.

Several stateless gateway replicas may share one PostgreSQL database, so the store keeps no state
of its own beyond a connection pool: every method is one short transaction, nothing about an
account is cached in the process (a ban on one replica holds on every replica at the next
request), and read-modify-write methods lock the row they change (``SELECT … FOR UPDATE`` on
PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite, which locks the whole file).

Every administrative change writes its audit entry in the same transaction as the change: either
both are stored or neither is. Audit details never hold a secret: no API key, no key hash, and a
string that looks like an API key is masked before it is written.
"""

from __future__ import annotations

import functools
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, cast, get_args

from alembic.util import CommandError
from sqlalchemy import URL, ColumnElement, Engine, exc, func, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from safestack.errors import (
    ConfigError,
    InputError,
    RecordConflictError,
    RecordNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from safestack.policy import Audience
from safestack.store import _migrate
from safestack.store._campaigns import Campaigns
from safestack.store._engine import (
    WRITE_OPTION,
    create_store_engine,
    default_database_url,
    normalize_url,
    redact,
    translate_error,
)
from safestack.store._records import (
    Account,
    AccountStatus,
    ApiKeyInfo,
    AuditEntry,
    BankEntry,
    DecisionRecord,
    DeliveryStatus,
    HashBank,
    HashImport,
    HashMatchRecord,
    NewDecision,
    NewHashEntry,
    NewProvenanceRecord,
    OptOut,
    OptOutKind,
    ProvenanceIndexEntry,
    ProvenanceRecord,
    Report,
    Role,
    StrikePolicy,
    Traffic,
    parse_audience,
)
from safestack.store._review import ReviewQueue
from safestack.store._sessions import ConsoleSessions
from safestack.store._tables import (
    AccountRow,
    ApiKeyRow,
    AuditRow,
    DecisionRow,
    HashBankRow,
    HashEntryRow,
    OptOutRow,
    ProvenanceRow,
    ReportRow,
)
from safestack.store._values import (
    KEY_PREFIX,
    hash_secret,
    json_object,
    new_id,
    page,
    required,
    utc_now,
)

__all__ = ["KEY_PREFIX", "Store"]

_KEY_DISPLAY_CHARS = 4  # of the random part, shown in listings: "sk-ss-AbCd"
_MAX_KEY_LENGTH = 256
_EVIDENCE_LIMIT = 100  # decisions quoted in a strike ban's evidence; the count is always exact
_STRIKE_LAYERS = ("input", "output")
_SEVERITY_ORDER = ("low", "medium", "high", "critical")
_OPT_OUT_KINDS: tuple[str, ...] = get_args(OptOutKind)
_ROLES: tuple[str, ...] = get_args(Role)
_DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)
_MAX_ERROR_CHARS = 500  # of a delivery error kept on the report
#: The kind of report a known-bad media match files, and the ban code it bans with.
HASH_MATCH_REPORT = "hash_match"
KNOWN_BAD_MEDIA_BAN = "known_bad_media"


def _duration(seconds: float) -> str:
    """``86400`` → ``"24h"``, ``1800`` → ``"30min"``, ``90`` → ``"90s"``: for ban reasons."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}min"
    return f"{seconds:g}s"


def _severity_words(severities: frozenset[str]) -> str:
    """``{"high", "critical"}`` → ``"high- or critical-severity"``, mildest first."""
    ordered = sorted(
        severities,
        key=lambda s: (
            _SEVERITY_ORDER.index(s) if s in _SEVERITY_ORDER else len(_SEVERITY_ORDER),
            s,
        ),
    )
    words = [f"{severity}-" for severity in ordered] or ["no-"]
    words[-1] += "severity"
    return " or ".join(words)


def _account(row: AccountRow) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        audience=Audience(row.audience),
        status=cast(AccountStatus, row.status),
        ban_code=row.ban_code,
        ban_reason=row.ban_reason,
        banned_at=row.banned_at,
        created_at=row.created_at,
        role=cast(Role | None, row.role),
    )


def _key_info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        account_id=row.account_id,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _decision(row: DecisionRow) -> DecisionRecord:
    return DecisionRecord(
        id=row.id,
        created_at=row.created_at,
        request_id=row.request_id,
        account_id=row.account_id,
        endpoint=row.endpoint,
        model=row.model,
        status=row.status,
        blocked=row.blocked,
        layer=row.layer,
        categories=list(row.categories),
        severity=row.severity,
        clause=row.clause,
        audience=row.audience,
        latency_ms=row.latency_ms,
        traffic=cast(Traffic, row.traffic),
    )


def _audit_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        details=dict(row.details),
    )


def _report(row: ReportRow) -> Report:
    return Report(
        id=row.id,
        kind=row.kind,
        account_id=row.account_id,
        details=dict(row.details),
        created_at=row.created_at,
        delivery_status=cast(DeliveryStatus, row.delivery_status),
        delivery_attempts=row.delivery_attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )


MAX_OPT_OUT_ALIASES = 50


def _opt_out_aliases(aliases: list[str] | tuple[str, ...], name: str) -> list[str]:
    """Aliases stripped, each at most 300 characters, without repeats or the name itself."""
    if isinstance(aliases, str):
        raise InputError("aliases must be a list of names, not one string")
    if len(aliases) > MAX_OPT_OUT_ALIASES:
        raise InputError(f"{len(aliases)} aliases; at most {MAX_OPT_OUT_ALIASES}")
    seen = {" ".join(name.split()).casefold()}
    clean: list[str] = []
    for alias in aliases:
        alias = required(alias, "opt-out alias", max_length=300)
        key = " ".join(alias.split()).casefold()
        if key not in seen:
            seen.add(key)
            clean.append(alias)
    return clean


def _opt_out(row: OptOutRow) -> OptOut:
    return OptOut(
        id=row.id,
        name=row.name,
        kind=cast(OptOutKind, row.kind),
        note=row.note,
        created_at=row.created_at,
        aliases=list(row.aliases or []),
        n_faces=len(row.face_embeddings or []),
    )


def _hash_bank(row: HashBankRow, counts: dict[str, int] | None = None) -> HashBank:
    return HashBank(
        id=row.id,
        name=row.name,
        description=row.description,
        enabled=row.enabled,
        created_at=row.created_at,
        action_reject=row.action_reject,
        action_report=row.action_report,
        action_ban=row.action_ban,
        updated_at=row.updated_at,
        counts=counts or {},
    )


_BANK_ACTIONS = ("reject", "report", "ban")
_IMPORT_BATCH = 5_000


def _bank_actions(actions: Iterable[str]) -> frozenset[str]:
    if isinstance(actions, str):
        actions = [actions]
    chosen = frozenset(actions)
    unknown = sorted(chosen - set(_BANK_ACTIONS))
    if unknown:
        raise InputError(f"unknown hash bank action(s) {unknown}; allowed: reject, report, ban")
    return chosen


def _row_actions(row: HashBankRow) -> set[str]:
    flags = (row.action_reject, row.action_report, row.action_ban)
    return {name for name, on in zip(_BANK_ACTIONS, flags, strict=True) if on}


def _provenance(row: ProvenanceRow) -> ProvenanceRecord:
    return ProvenanceRecord.model_validate(row, from_attributes=True)


def _insert_unique(session: Session, row: object, conflict: str) -> None:
    """Add ``row``; a unique-constraint violation becomes a RecordConflictError (409)."""
    session.add(row)
    try:
        session.flush()
    except exc.IntegrityError as error:
        raise RecordConflictError(conflict) from error


_SQLITE_WRITE_LOCKS: dict[str, threading.Lock] = {}
_SQLITE_WRITE_LOCKS_GUARD = threading.Lock()


def _sqlite_write_lock(database: str) -> threading.Lock:
    """One lock per SQLite file in this process, shared by every Store opened on it."""
    key = os.path.realpath(database) if database else ""
    with _SQLITE_WRITE_LOCKS_GUARD:
        return _SQLITE_WRITE_LOCKS.setdefault(key, threading.Lock())


class Store:
    """Persistence for the gateway, on SQLite (the default) or PostgreSQL.

    Constructing a store opens no connection: the engine is created on first use, so a gateway
    starts (and reports itself unhealthy through :meth:`ping`) even while its database is down.
    Database failures surface as :class:`~safestack.errors.StoreUnavailableError` (unreachable,
    connection lost, locked) or :class:`~safestack.errors.StoreError`; a transaction that fails
    is rolled back completely. Thread-safe: one store serves every request of a process.

    ``connect_timeout_s`` bounds connecting to PostgreSQL (an unreachable server fails fast).
    ``busy_timeout_s`` is how long a SQLite writer waits for another process's write lock;
    writers within one process queue on a lock of their own, in order, so overload makes writes
    slower, not failed.

    >>> store = Store("postgresql://gateway:hunter2@db.internal/safestack")
    >>> store.url
    'postgresql+psycopg://gateway:***@db.internal/safestack'
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        connect_timeout_s: float = 5.0,
        busy_timeout_s: float = 30.0,
    ) -> None:
        if connect_timeout_s <= 0:
            raise InputError(f"connect_timeout_s must be positive, got {connect_timeout_s!r}")
        if busy_timeout_s <= 0:
            raise InputError(f"busy_timeout_s must be positive, got {busy_timeout_s!r}")
        self._busy_timeout_s = busy_timeout_s
        self._url: URL = normalize_url(default_database_url() if url is None else url)
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._sqlite_writes: AbstractContextManager[Any] = (
            _sqlite_write_lock(self._url.database or "")
            if self._url.get_backend_name() == "sqlite"
            else nullcontext()
        )
        self._engines: tuple[Engine, Engine] | None = None  # (for reads, for writes)

    @functools.cached_property
    def review(self) -> ReviewQueue:
        """The trust-and-safety review queue (see :class:`ReviewQueue`)."""
        return ReviewQueue(self)

    @functools.cached_property
    def campaigns(self) -> Campaigns:
        """Manual red-teaming campaigns, their conversations and labels (see :class:`Campaigns`)."""
        return Campaigns(self)

    @functools.cached_property
    def sessions(self) -> ConsoleSessions:
        """Web console sign-ins (see :class:`ConsoleSessions`)."""
        return ConsoleSessions(self)

    @property
    def url(self) -> str:
        """The database URL with any password replaced by ``***`` (safe to log)."""
        return redact(self._url)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- connections ------------------------------------------------------------------------

    def _engine(self, *, write: bool) -> Engine:
        """The engine, created on first use; ``write`` marks its transactions as writers."""
        with self._lock:
            if self._engines is None:
                try:
                    engine = create_store_engine(
                        self._url,
                        connect_timeout_s=self._connect_timeout_s,
                        busy_timeout_s=self._busy_timeout_s,
                    )
                except (exc.ArgumentError, ImportError) as error:
                    raise ConfigError(f"cannot use database {self.url!r}: {error}") from error
                self._engines = (engine, engine.execution_options(**{WRITE_OPTION: True}))
            return self._engines[write]

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Session]:
        """One transaction: committed if the block ends normally, else rolled back entirely."""
        engine = self._engine(write=write)
        # SQLite has one writer at a time: writers of this process queue here, in order, rather
        # than polling the file lock against each other until busy_timeout runs out.
        serial = self._sqlite_writes if write else nullcontext()
        try:
            with serial, Session(engine, expire_on_commit=False) as session, session.begin():
                yield session
        except exc.SQLAlchemyError as error:
            raise translate_error(error, url=self._url) from error

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision; a database already there is left alone.

        Safe to call from several processes at once (see :mod:`safestack.store._migrate`).
        """
        try:
            with self._sqlite_writes, self._engine(write=True).begin() as connection:
                _migrate.upgrade(connection)
        except exc.SQLAlchemyError as error:
            raise translate_error(error, url=self._url) from error
        except CommandError as error:
            raise StoreError(f"cannot migrate the store at {self.url}: {error}") from error

    def ping(self) -> None:
        """Check that the database answers and its schema is at the revision this code expects.

        Raises :class:`~safestack.errors.StoreUnavailableError` otherwise: a gateway whose
        database is down, or not yet migrated, cannot serve and should say so on its health
        endpoint.
        """
        with self._transaction(write=False) as session:
            session.execute(text("SELECT 1"))
            current = _migrate.current_revision(session.connection())
        head = _migrate.head_revision()
        if current != head:
            raise StoreUnavailableError(
                f"the store at {self.url} has schema revision {current or '(none)'}, expected "
                f"{head}: run the migrations (Store.migrate)"
            )

    def close(self) -> None:
        """Close every pooled connection. A later call opens new ones."""
        with self._lock:
            engines, self._engines = self._engines, None
        if engines is not None:
            engines[0].dispose()  # the write engine shares its pool

    # -- accounts and keys --------------------------------------------------------------------

    @staticmethod
    def _get_account(session: Session, account_id: str, *, lock: bool = False) -> AccountRow:
        query = select(AccountRow).where(AccountRow.id == account_id)
        if lock:
            query = query.with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            raise RecordNotFoundError(f"no account with id {account_id!r}")
        return row

    @staticmethod
    def _write_audit(
        session: Session,
        *,
        actor: str,
        action: str,
        target: str | None,
        details: dict[str, Any] | None = None,
    ) -> AuditRow:
        row = AuditRow(
            at=utc_now(),
            actor=required(actor, "actor"),
            action=required(action, "action", max_length=64),
            target=target,
            details=json_object(details, "audit details"),
        )
        session.add(row)
        session.flush()  # assigns the id
        return row

    def create_account(
        self, *, audience: Audience | str, name: str | None = None, actor: str
    ) -> Account:
        """Create an active account for ``audience`` (``adult`` or ``under_18``).

        Users under 13 are not served at all: an under-13 audience is refused with an
        :class:`~safestack.errors.InputError` that says so.
        """
        parsed = parse_audience(audience)
        required(actor, "actor")
        if name is not None:
            name = required(name, "account name", max_length=200)
        row = AccountRow(
            id=new_id("acct"),
            name=name,
            audience=parsed.value,
            status="active",
            created_at=utc_now(),
        )
        with self._transaction(write=True) as session:
            session.add(row)
            self._write_audit(
                session,
                actor=actor,
                action="account.create",
                target=row.id,
                details={"name": name, "audience": parsed.value},
            )
            return _account(row)

    def create_key(self, account_id: str, *, actor: str) -> tuple[str, ApiKeyInfo]:
        """Issue an API key for an account; the plaintext key is returned here and never again.

        The key is ``sk-ss-`` followed by 32 random bytes (``secrets.token_urlsafe``). Only its
        SHA-256 (hex, under a unique index) and a short display prefix are stored. Plaintext is
        never stored, so that a leaked database or backup does not hand out working keys. A
        single fast hash is the right tool here, unlike for passwords: slow, salted hashes
        (bcrypt, argon2) exist to make guessing *low-entropy* secrets expensive, but a 256-bit
        random key cannot be guessed however fast the hash, and an unsalted deterministic hash is
        what lets :meth:`authenticate` find the key with one indexed lookup on every request.
        """
        required(actor, "actor")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=new_id("key"),
            account_id=account_id,
            key_hash=hash_secret(key),
            prefix=key[: len(KEY_PREFIX) + _KEY_DISPLAY_CHARS],
            created_at=utc_now(),
        )
        with self._transaction(write=True) as session:
            self._get_account(session, account_id)
            session.add(row)
            self._write_audit(
                session,
                actor=actor,
                action="key.create",
                target=row.id,
                details={"account_id": account_id, "prefix": row.prefix},
            )
            return key, _key_info(row)

    def authenticate(self, key: str) -> Account | None:
        """The account an API key belongs to, whatever its status; ``None`` for any other key.

        Unknown and revoked keys are not told apart, so a caller cannot probe which keys once
        existed. A banned account is returned as such: refusing it (403) is the gateway's call.
        One query on the unique hash index; the lookup by hash also means no key comparison in
        Python whose timing could leak anything.
        """
        if not isinstance(key, str) or not key.startswith(KEY_PREFIX):
            return None
        if len(key) > _MAX_KEY_LENGTH:
            return None
        query = (
            select(AccountRow)
            .join(ApiKeyRow, ApiKeyRow.account_id == AccountRow.id)
            .where(ApiKeyRow.key_hash == hash_secret(key), ApiKeyRow.revoked_at.is_(None))
        )
        with self._transaction(write=False) as session:
            row = session.scalars(query).one_or_none()
            return None if row is None else _account(row)

    def revoke_key(self, key_id: str, *, actor: str) -> ApiKeyInfo:
        """Revoke a key: it stops authenticating at once, on every replica. Idempotent."""
        required(actor, "actor")
        with self._transaction(write=True) as session:
            query = select(ApiKeyRow).where(ApiKeyRow.id == key_id).with_for_update()
            row = session.scalars(query).one_or_none()
            if row is None:
                raise RecordNotFoundError(f"no API key with id {key_id!r}")
            already = row.revoked_at is not None
            if not already:
                row.revoked_at = utc_now()
            self._write_audit(
                session,
                actor=actor,
                action="key.revoke",
                target=row.id,
                details={
                    "account_id": row.account_id,
                    "prefix": row.prefix,
                    "already_revoked": already,
                },
            )
            return _key_info(row)

    def list_keys(self, account_id: str | None = None) -> list[ApiKeyInfo]:
        """Every key (of one account, if given), oldest first, revoked ones included."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if account_id is not None:
            query = query.where(ApiKeyRow.account_id == account_id)
        with self._transaction(write=False) as session:
            return [_key_info(row) for row in session.scalars(query)]

    def get_account(self, account_id: str) -> Account:
        """The account with this id, read fresh from the database."""
        with self._transaction(write=False) as session:
            return _account(self._get_account(session, account_id))

    def list_accounts(
        self, *, limit: int = 100, offset: int = 0, with_role: bool = False
    ) -> list[Account]:
        """A page of accounts, oldest first; with ``with_role``, only console users."""
        limit, offset = page(limit, offset)
        query = (
            select(AccountRow)
            .order_by(AccountRow.created_at, AccountRow.id)
            .limit(limit)
            .offset(offset)
        )
        if with_role:
            query = query.where(AccountRow.role.is_not(None))
        with self._transaction(write=False) as session:
            return [_account(row) for row in session.scalars(query)]

    def account_names(self, account_ids: Iterable[str]) -> dict[str, str]:
        """Display names of accounts (the id where there is no name), in one query; ids of
        accounts that do not exist are left out."""
        ids = sorted(set(account_ids))
        if not ids:
            return {}
        with self._transaction(write=False) as session:
            rows = session.execute(
                select(AccountRow.id, AccountRow.name).where(AccountRow.id.in_(ids))
            ).all()
        return {row.id: row.name or row.id for row in rows}

    def set_audience(self, account_id: str, audience: Audience | str, *, actor: str) -> Account:
        """Change an account's audience (under-13 is refused as in :meth:`create_account`)."""
        parsed = parse_audience(audience)
        required(actor, "actor")
        with self._transaction(write=True) as session:
            row = self._get_account(session, account_id, lock=True)
            previous = row.audience
            row.audience = parsed.value
            self._write_audit(
                session,
                actor=actor,
                action="account.set_audience",
                target=account_id,
                details={"audience": parsed.value, "previous": previous},
            )
            return _account(row)

    def ban(
        self,
        account_id: str,
        *,
        reason: str,
        code: str = "admin_ban",
        actor: str,
        evidence: dict[str, Any] | None = None,
    ) -> Account:
        """Ban an account: its keys keep authenticating, and the gateway refuses it (403).

        ``code`` is machine-readable (``admin_ban``, ``strikes``, …), ``reason`` is for people;
        ``evidence`` goes into the audit entry. Banning a banned account replaces the reason.
        """
        reason = required(reason, "ban reason")
        code = required(code, "ban code", max_length=64)
        required(actor, "actor")
        details = json_object(evidence, "ban evidence")
        with self._transaction(write=True) as session:
            row = self._get_account(session, account_id, lock=True)
            self._ban(session, row, reason=reason, code=code, actor=actor, evidence=details)
            return _account(row)

    def _ban(
        self,
        session: Session,
        row: AccountRow,
        *,
        reason: str,
        code: str,
        actor: str,
        evidence: dict[str, Any],
    ) -> None:
        previous = row.status
        row.status = "banned"
        row.ban_code = code
        row.ban_reason = reason
        row.banned_at = utc_now()
        self._write_audit(
            session,
            actor=actor,
            action="account.ban",
            target=row.id,
            details={"code": code, "reason": reason, "evidence": evidence, "previous": previous},
        )

    def unban(self, account_id: str, *, actor: str) -> Account:
        """Lift a ban. Strikes recorded before this moment no longer count towards a new one."""
        required(actor, "actor")
        with self._transaction(write=True) as session:
            row = self._get_account(session, account_id, lock=True)
            self._unban(session, row, actor=actor)
            return _account(row)

    def _unban(
        self,
        session: Session,
        row: AccountRow,
        *,
        actor: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        previous = {"status": row.status, "code": row.ban_code, "reason": row.ban_reason}
        if row.status == "banned":
            row.status = "active"
            row.ban_code = row.ban_reason = row.banned_at = None
            row.unbanned_at = utc_now()
        self._write_audit(
            session,
            actor=actor,
            action="account.unban",
            target=row.id,
            details={**previous, **(details or {})},
        )

    def set_role(self, account_id: str, role: Role | str | None, *, actor: str) -> Account:
        """Give an account a console role (``admin``, ``reviewer``, ``red_teamer``) or take it.

        A change takes effect at the account's next console request: its open sessions carry the
        role they were opened with and are honoured only while the account still has it.
        """
        if role is not None and role not in _ROLES:
            raise InputError(f"unknown role {role!r}; allowed: {', '.join(_ROLES)}")
        required(actor, "actor")
        with self._transaction(write=True) as session:
            row = self._get_account(session, account_id, lock=True)
            previous, row.role = row.role, role
            self._write_audit(
                session,
                actor=actor,
                action="account.role",
                target=account_id,
                details={"role": role, "previous": previous},
            )
            return _account(row)

    # -- decisions and strikes ------------------------------------------------------------------

    def record_decision(self, decision: NewDecision) -> DecisionRecord:
        """Append one request's decision to the decision log."""
        row = DecisionRow(
            request_id=decision.request_id,
            account_id=decision.account_id,
            endpoint=decision.endpoint,
            model=decision.model,
            status=decision.status,
            blocked=decision.blocked,
            layer=decision.layer,
            categories=list(decision.categories),
            severity=decision.severity,
            clause=decision.clause,
            audience=decision.audience,
            latency_ms=decision.latency_ms,
            created_at=utc_now(),
            traffic=decision.traffic,
        )
        with self._transaction(write=True) as session:
            session.add(row)
            try:
                session.flush()
            except exc.IntegrityError as error:  # the only constraint: the account must exist
                raise RecordNotFoundError(
                    f"no account with id {decision.account_id!r} for decision "
                    f"{decision.request_id!r}"
                ) from error
            return _decision(row)

    def apply_strikes(self, account_id: str, policy: StrikePolicy) -> Account | None:
        """Ban the account if its recent blocked requests reach the policy's threshold.

        Counts the account's decisions blocked by the input or output layer with a severity in
        ``policy.severities`` within the last ``policy.window_s`` seconds, and after its last
        unban (an unbanned user starts afresh rather than being re-banned by the old strikes).
        At ``policy.threshold`` or more, an active account is banned with code ``strikes``, the
        decisions as evidence and an audit entry by ``system``; the banned account is returned.
        Otherwise (or if the account is already banned, or the policy disabled) ``None``.

        The account row is locked while counting, so two replicas that record the threshold-
        crossing decisions at the same moment ban once: the second sees the ban of the first.
        """
        if not policy.enabled:
            return None
        now = utc_now()
        with self._transaction(write=True) as session:
            row = self._get_account(session, account_id, lock=True)
            if row.status != "active":
                return None
            conditions: list[ColumnElement[bool]] = [
                DecisionRow.account_id == account_id,
                DecisionRow.blocked.is_(True),
                DecisionRow.layer.in_(_STRIKE_LAYERS),
                DecisionRow.severity.in_(sorted(policy.severities)),
                DecisionRow.created_at >= now - timedelta(seconds=policy.window_s),
                DecisionRow.traffic == "real_world",
            ]
            if row.unbanned_at is not None:
                conditions.append(DecisionRow.created_at > row.unbanned_at)
            count = session.scalar(select(func.count(DecisionRow.id)).where(*conditions)) or 0
            if count < policy.threshold:
                return None
            strikes = session.execute(
                select(DecisionRow.id, DecisionRow.request_id, DecisionRow.categories)
                .where(*conditions)
                .order_by(DecisionRow.id)
                .limit(_EVIDENCE_LIMIT)
            ).all()
            evidence = {
                "decision_ids": [strike.id for strike in strikes],
                "request_ids": [strike.request_id for strike in strikes],
                "categories": sorted({c for strike in strikes for c in strike.categories}),
                "count": count,
                "window_s": policy.window_s,
                "threshold": policy.threshold,
            }
            reason = (
                f"{count} blocked {_severity_words(policy.severities)} requests within "
                f"{_duration(policy.window_s)}"
            )
            self._ban(
                session, row, reason=reason, code="strikes", actor="system", evidence=evidence
            )
            self.review._add(
                session,
                kind="suspension",
                reasons=["strikes"],
                account_id=row.id,
                details={"reason": reason, **evidence},
            )
            return _account(row)

    def list_decisions(
        self, *, account_id: str | None = None, blocked_only: bool = False, limit: int = 100
    ) -> list[DecisionRecord]:
        """The most recent decisions, newest first."""
        limit, _ = page(limit)
        query = select(DecisionRow).order_by(DecisionRow.id.desc()).limit(limit)
        if account_id is not None:
            query = query.where(DecisionRow.account_id == account_id)
        if blocked_only:
            query = query.where(DecisionRow.blocked.is_(True))
        with self._transaction(write=False) as session:
            return [_decision(row) for row in session.scalars(query)]

    # -- reports, opt-outs, hash banks ------------------------------------------------------------

    def create_report(
        self,
        *,
        kind: str,
        account_id: str | None,
        details: dict[str, Any],
        actor: str,
        deliver: bool = False,
    ) -> Report:
        """File a report for review (optionally about an account).

        ``deliver`` queues it for the configured report receiver (``delivery_status`` pending,
        due now); otherwise it is ``not_configured`` and stays in the store for review.
        """
        kind = required(kind, "report kind", max_length=64)
        details = json_object(details, "report details")
        with self._transaction(write=True) as session:
            if account_id is not None:
                self._get_account(session, account_id)
            row = self._add_report(
                session,
                kind=kind,
                account_id=account_id,
                details=details,
                deliver=deliver,
                actor=actor,
            )
            return _report(row)

    def _add_report(
        self,
        session: Session,
        *,
        kind: str,
        account_id: str | None,
        details: dict[str, Any],
        deliver: bool,
        actor: str,
    ) -> ReportRow:
        """A new report row and its ``report.create`` audit entry, in ``session``."""
        now = utc_now()
        row = ReportRow(
            id=new_id("rep"),
            kind=kind,
            account_id=account_id,
            details=details,
            created_at=now,
            delivery_status="pending" if deliver else "not_configured",
            delivery_attempts=0,
            next_attempt_at=now if deliver else None,
        )
        session.add(row)
        self._write_audit(
            session,
            actor=actor,
            action="report.create",
            target=row.id,
            details={"kind": kind, "account_id": account_id},
        )
        return row

    def list_reports(
        self, *, limit: int = 100, delivery_status: DeliveryStatus | None = None
    ) -> list[Report]:
        """The most recent reports (in one delivery status, if given), newest first."""
        limit, _ = page(limit)
        query = select(ReportRow).order_by(ReportRow.created_at.desc(), ReportRow.id).limit(limit)
        if delivery_status is not None:
            if delivery_status not in _DELIVERY_STATUSES:
                raise InputError(
                    f"unknown delivery status {delivery_status!r}; allowed: "
                    f"{', '.join(_DELIVERY_STATUSES)}"
                )
            query = query.where(ReportRow.delivery_status == delivery_status)
        with self._transaction(write=False) as session:
            return [_report(row) for row in session.scalars(query)]

    def get_report(self, report_id: str) -> Report:
        """The report with this id, with its delivery state as of now."""
        with self._transaction(write=False) as session:
            row = session.get(ReportRow, report_id)
            if row is None:
                raise RecordNotFoundError(f"no report with id {report_id!r}")
            return _report(row)

    def record_hash_match(
        self,
        *,
        account_id: str | None,
        details: dict[str, Any],
        dedupe_key: str,
        report: bool,
        ban: bool,
        deliver: bool,
        ban_reason: str,
        dedupe_window_s: float = 86_400.0,
        actor: str = "system",
    ) -> HashMatchRecord:
        """Record a known-bad media match: its report, the ban and their audit entries, at once.

        Everything is one transaction, so a gateway that answers after this returns has lost
        nothing if it crashes next, and a failure here leaves no half-recorded match (no ban
        without its report). ``details`` is the report body; it holds hashes, never media.

        ``report``: file a ``hash_match`` report (queued for the receiver if ``deliver``) — unless
        a report with the same ``dedupe_key`` (the caller's: account, bank entry, image) was filed
        within ``dedupe_window_s``; then that report is returned with ``duplicate`` set, so a
        client retrying the same upload does not file the same incident over and over.
        ``ban``: ban the account with code ``known_bad_media`` (through the ordinary ban, with
        its ``account.ban`` audit entry); an account already banned for known-bad media is left
        as it is. A ``hash_match`` audit entry records the match whatever the bank's actions.

        The account row is locked first, so two replicas recording the same retried upload at
        once file one report: the second sees the first.
        """
        dedupe_key = required(dedupe_key, "dedupe key", max_length=200)
        ban_reason = required(ban_reason, "ban reason")
        required(actor, "actor")
        if dedupe_window_s < 0:
            raise InputError(f"dedupe_window_s must be 0 or more, got {dedupe_window_s!r}")
        body = json_object({**details, "dedupe_key": dedupe_key}, "hash match details")
        with self._transaction(write=True) as session:
            account = (
                None if account_id is None else self._get_account(session, account_id, lock=True)
            )
            row: ReportRow | None = None
            duplicate = False
            if report:
                row = self._recent_report(session, account_id, dedupe_key, dedupe_window_s)
                duplicate = row is not None
                if row is None:
                    row = self._add_report(
                        session,
                        kind=HASH_MATCH_REPORT,
                        account_id=account_id,
                        details=body,
                        deliver=deliver,
                        actor=actor,
                    )
            banned = newly_banned = False
            if ban and account is not None:
                if account.status != "banned" or account.ban_code != KNOWN_BAD_MEDIA_BAN:
                    evidence = {
                        "report_id": None if row is None else row.id,
                        "request_id": body.get("request_id"),
                        "match": body.get("match"),
                    }
                    self._ban(
                        session,
                        account,
                        reason=ban_reason,
                        code=KNOWN_BAD_MEDIA_BAN,
                        actor=actor,
                        evidence=evidence,
                    )
                    newly_banned = True
                banned = True
            # A person confirms (or overturns) every new match: the report filed, the ban made.
            if (row is not None and not duplicate) or newly_banned:
                self.review._add(
                    session,
                    kind="hash_match",
                    reasons=["known_bad_media"] + (["banned"] if newly_banned else []),
                    account_id=account_id,
                    request_id=body.get("request_id"),
                    report_id=None if row is None else row.id,
                    details=body,
                )
            entry = self._write_audit(
                session,
                actor=actor,
                action="hash_match",
                target=account_id,
                details={
                    "request_id": body.get("request_id"),
                    "endpoint": body.get("endpoint"),
                    "match": body.get("match"),
                    "actions": body.get("actions"),
                    "rejected": body.get("rejected"),
                    "report_id": None if row is None else row.id,
                    "duplicate_report": duplicate,
                    "banned": banned,
                },
            )
            return HashMatchRecord(
                report=None if row is None else _report(row),
                duplicate=duplicate,
                banned=banned,
                audit_id=entry.id,
            )

    @staticmethod
    def _recent_report(
        session: Session, account_id: str | None, dedupe_key: str, window_s: float
    ) -> ReportRow | None:
        conditions: list[ColumnElement[bool]] = [
            ReportRow.kind == HASH_MATCH_REPORT,
            ReportRow.created_at >= utc_now() - timedelta(seconds=window_s),
            ReportRow.details["dedupe_key"].as_string() == dedupe_key,
            ReportRow.account_id.is_(None)
            if account_id is None
            else ReportRow.account_id == account_id,
        ]
        query = select(ReportRow).where(*conditions).order_by(ReportRow.created_at).limit(1)
        return session.scalars(query).first()

    # -- report delivery: the reports table is the outbox -----------------------------------------

    def claim_due_report(
        self, *, now: datetime, lease_s: float, max_attempts: int
    ) -> Report | None:
        """Take the next report due for delivery, or ``None`` if none is due at ``now``.

        The claim counts an attempt and moves ``next_attempt_at`` to ``now + lease_s``: a lease,
        so no other deliverer (another thread, another replica) takes the report while this one
        posts it, and a deliverer that dies mid-post leaves it due again when the lease ends.
        On PostgreSQL the row is taken with ``FOR UPDATE SKIP LOCKED``, so concurrent claimers
        pass over each other's rows instead of queueing on them; on SQLite the write lock
        serialises claimers. A report whose attempts are used up (its last claimer never came
        back) is marked ``failed`` here instead.

        A read-only look comes first, so an idle deliverer polling every second takes no write
        lock.
        """
        if lease_s <= 0:
            raise InputError(f"lease_s must be positive, got {lease_s!r}")
        due: list[ColumnElement[bool]] = [
            ReportRow.delivery_status == "pending",
            ReportRow.next_attempt_at <= now,
        ]
        with self._transaction(write=False) as session:
            if session.scalar(select(ReportRow.id).where(*due).limit(1)) is None:
                return None
        query = (
            select(ReportRow)
            .where(*due)
            .order_by(ReportRow.next_attempt_at, ReportRow.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._transaction(write=True) as session:
            while (row := session.scalars(query).first()) is not None:
                if row.delivery_attempts < max_attempts:
                    row.delivery_attempts += 1
                    row.next_attempt_at = now + timedelta(seconds=lease_s)
                    return _report(row)
                self._give_up(session, row, error=row.last_error or "delivery attempt abandoned")
                session.flush()
        return None

    def mark_report_delivered(self, report_id: str, *, now: datetime) -> Report:
        """Record that the receiver accepted the report (2xx). Idempotent."""
        with self._transaction(write=True) as session:
            row = self._report_row(session, report_id)
            if row.delivery_status != "delivered":
                row.delivery_status = "delivered"
                row.delivered_at = now
                row.next_attempt_at = None
                row.last_error = None
                self._write_audit(
                    session,
                    actor="system",
                    action="report.delivered",
                    target=row.id,
                    details={"attempts": row.delivery_attempts},
                )
            return _report(row)

    def mark_report_attempt_failed(
        self, report_id: str, *, error: str, retry_at: datetime | None
    ) -> Report:
        """Record a failed attempt: try again at ``retry_at``, or give up (``failed``) if None.

        Only a pending report changes: one delivered meanwhile (by a deliverer whose lease
        overlapped) stays delivered.
        """
        error = required(error, "delivery error")[:_MAX_ERROR_CHARS]
        with self._transaction(write=True) as session:
            row = self._report_row(session, report_id)
            if row.delivery_status == "pending":
                if retry_at is None:
                    self._give_up(session, row, error=error)
                else:
                    row.next_attempt_at = retry_at
                    row.last_error = error
            return _report(row)

    def redeliver_report(self, report_id: str, *, actor: str) -> Report:
        """Queue a report for delivery again (due now, attempts from zero); audit-logged.

        For a report that ``failed`` (the receiver was down for longer than the retries
        lasted), one filed before a receiver was configured, or one to send again. A report
        already pending is left as it is.
        """
        required(actor, "actor")
        with self._transaction(write=True) as session:
            row = self._report_row(session, report_id)
            previous = row.delivery_status
            if previous != "pending":
                row.delivery_status = "pending"
                row.delivery_attempts = 0
                row.next_attempt_at = utc_now()
                row.last_error = None
            self._write_audit(
                session,
                actor=actor,
                action="report.redeliver",
                target=row.id,
                details={"previous": previous},
            )
            return _report(row)

    @staticmethod
    def _report_row(session: Session, report_id: str) -> ReportRow:
        query = select(ReportRow).where(ReportRow.id == report_id).with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            raise RecordNotFoundError(f"no report with id {report_id!r}")
        return row

    def _give_up(self, session: Session, row: ReportRow, *, error: str) -> None:
        row.delivery_status = "failed"
        row.next_attempt_at = None
        row.last_error = error
        self._write_audit(
            session,
            actor="system",
            action="report.delivery_failed",
            target=row.id,
            details={"attempts": row.delivery_attempts, "last_error": error},
        )

    def add_opt_out(
        self,
        *,
        name: str,
        kind: str,
        note: str | None = None,
        aliases: list[str] | tuple[str, ...] = (),
        actor: str,
    ) -> OptOut:
        """Record that a public figure or an artist opted out, under ``name`` and ``aliases``.

        Names are compared without regard to case or spacing, so ``"Jane  Doe"`` duplicates
        ``"jane doe"`` of the same kind; a duplicate is a
        :class:`~safestack.errors.RecordConflictError`. Aliases (other names the prompt rules
        match too) are stripped and de-duplicated; see :func:`_opt_out_aliases`.
        """
        with self._transaction(write=True) as session:
            return self._add_opt_out(
                session, name=name, kind=kind, note=note, aliases=aliases, actor=actor
            )

    def _add_opt_out(
        self,
        session: Session,
        *,
        name: str,
        kind: str,
        note: str | None,
        aliases: list[str] | tuple[str, ...],
        actor: str,
    ) -> OptOut:
        name = required(name, "opt-out name")
        if kind not in _OPT_OUT_KINDS:
            raise InputError(f"unknown opt-out kind {kind!r}; allowed: {', '.join(_OPT_OUT_KINDS)}")
        required(actor, "actor")
        clean_aliases = _opt_out_aliases(aliases, name)
        row = OptOutRow(
            id=new_id("opt"),
            name=name,
            name_key=" ".join(name.split()).casefold(),
            kind=kind,
            note=note,
            created_at=utc_now(),
            aliases=clean_aliases,
        )
        _insert_unique(session, row, f"{kind} {name!r} has already opted out")
        self._write_audit(
            session,
            actor=actor,
            action="opt_out.add",
            target=row.id,
            details={"name": name, "kind": kind, "aliases": clean_aliases},
        )
        return _opt_out(row)

    def set_opt_out_aliases(
        self, opt_out_id: str, aliases: list[str] | tuple[str, ...], *, actor: str
    ) -> OptOut:
        """Replace an opt-out's aliases (audit-logged with the old and the new list)."""
        required(actor, "actor")
        with self._transaction(write=True) as session:
            query = select(OptOutRow).where(OptOutRow.id == opt_out_id).with_for_update()
            row = session.scalars(query).one_or_none()
            if row is None:
                raise RecordNotFoundError(f"no opt-out with id {opt_out_id!r}")
            old = list(row.aliases or [])
            row.aliases = _opt_out_aliases(aliases, row.name)
            self._write_audit(
                session,
                actor=actor,
                action="opt_out.aliases",
                target=opt_out_id,
                details={"name": row.name, "kind": row.kind, "old": old, "new": row.aliases},
            )
            return _opt_out(row)

    def list_opt_outs(self) -> list[OptOut]:
        """Every opt-out, by kind then name."""
        query = select(OptOutRow).order_by(OptOutRow.kind, OptOutRow.name_key)
        with self._transaction(write=False) as session:
            return [_opt_out(row) for row in session.scalars(query)]

    def remove_opt_out(self, opt_out_id: str, *, actor: str) -> None:
        """Delete an opt-out (the audit entry keeps its name and kind)."""
        required(actor, "actor")
        with self._transaction(write=True) as session:
            query = select(OptOutRow).where(OptOutRow.id == opt_out_id).with_for_update()
            row = session.scalars(query).one_or_none()
            if row is None:
                raise RecordNotFoundError(f"no opt-out with id {opt_out_id!r}")
            session.delete(row)
            self._write_audit(
                session,
                actor=actor,
                action="opt_out.remove",
                target=opt_out_id,
                details={"name": row.name, "kind": row.kind},
            )

    #: Reference face descriptors kept per opt-out: a few photos (angles, ages) are enough, and
    #: every one is compared with every face of every checked image.
    MAX_OPT_OUT_FACES = 20

    def add_opt_out_face(self, opt_out_id: str, embedding: list[float], *, actor: str) -> OptOut:
        """Add a reference face descriptor (see :mod:`safestack.classify.faces`) to an opt-out.

        Only the descriptor is stored, never the photo it came from; the audit entry records
        that a face was added and how many the opt-out has, never the descriptor's numbers (a
        face descriptor is biometric data). Descriptors of one opt-out must share one length.
        """
        required(actor, "actor")
        values = [float(v) for v in embedding]
        if not 1 <= len(values) <= 4096:
            raise InputError(f"a face descriptor has {len(values)} numbers; expected 1 to 4096")
        if not all(-1e3 < v < 1e3 for v in values):  # also refuses NaN and infinities
            raise InputError("a face descriptor must hold finite numbers between -1000 and 1000")
        with self._transaction(write=True) as session:
            query = select(OptOutRow).where(OptOutRow.id == opt_out_id).with_for_update()
            row = session.scalars(query).one_or_none()
            if row is None:
                raise RecordNotFoundError(f"no opt-out with id {opt_out_id!r}")
            faces = list(row.face_embeddings or [])
            if len(faces) >= self.MAX_OPT_OUT_FACES:
                raise RecordConflictError(
                    f"opt-out {opt_out_id!r} has {len(faces)} reference faces already; "
                    f"at most {self.MAX_OPT_OUT_FACES}"
                )
            if faces and len(faces[0]) != len(values):
                raise InputError(
                    f"a face descriptor of {len(values)} numbers does not fit the opt-out's "
                    f"earlier ones of {len(faces[0])}"
                )
            row.face_embeddings = [*faces, values]  # a new list: JSON columns track assignment
            self._write_audit(
                session,
                actor=actor,
                action="opt_out.add_face",
                target=opt_out_id,
                details={"name": row.name, "kind": row.kind, "faces": len(faces) + 1},
            )
            return _opt_out(row)

    def list_opt_out_faces(self) -> list[tuple[str, str, list[list[float]]]]:
        """``(opt_out_id, name, descriptors)`` of every opt-out with reference faces, by id."""
        query = select(OptOutRow).order_by(OptOutRow.id)
        with self._transaction(write=False) as session:
            return [
                (row.id, row.name, [list(face) for face in row.face_embeddings])
                for row in session.scalars(query)
                if row.face_embeddings
            ]

    def create_hash_bank(
        self,
        *,
        name: str,
        description: str | None = None,
        enabled: bool = True,
        actions: Iterable[str] = ("reject", "report", "ban"),
        actor: str,
    ) -> HashBank:
        """Create a named hash bank; names are unique (a duplicate is a RecordConflictError).

        ``actions`` default to all three (reject, report, ban): what the published card does on a
        confirmed known-CSAM match. A bank for review-only signals might report without rejecting.
        """
        name = required(name, "hash bank name", max_length=200)
        required(actor, "actor")
        chosen = _bank_actions(actions)
        now = utc_now()
        row = HashBankRow(
            id=new_id("bank"),
            name=name,
            description=description,
            enabled=enabled,
            created_at=now,
            updated_at=now,
            action_reject="reject" in chosen,
            action_report="report" in chosen,
            action_ban="ban" in chosen,
        )
        with self._transaction(write=True) as session:
            _insert_unique(session, row, f"a hash bank named {name!r} already exists")
            self._write_audit(
                session,
                actor=actor,
                action="hash_bank.create",
                target=row.id,
                details={"name": name, "enabled": enabled, "actions": sorted(chosen)},
            )
            return _hash_bank(row)

    def list_hash_banks(self) -> list[HashBank]:
        """Every hash bank, by name, with its entry counts per hash type."""
        query = select(HashBankRow).order_by(HashBankRow.name)
        counts = select(HashEntryRow.bank_id, HashEntryRow.hash_type, func.count()).group_by(
            HashEntryRow.bank_id, HashEntryRow.hash_type
        )
        with self._transaction(write=False) as session:
            per_bank: dict[str, dict[str, int]] = {}
            for bank_id, hash_type, n in session.execute(counts):
                per_bank.setdefault(bank_id, {})[hash_type] = int(n)
            return [_hash_bank(row, per_bank.get(row.id, {})) for row in session.scalars(query)]

    def get_hash_bank(self, bank: str) -> HashBank:
        """A bank by id or by name (RecordNotFoundError if neither)."""
        with self._transaction(write=False) as session:
            row = self._find_bank(session, bank)
            if row is None:
                raise RecordNotFoundError(f"no hash bank with id or name {bank!r}")
            return _hash_bank(row, self._bank_counts(session, row.id))

    @staticmethod
    def _find_bank(session: Session, bank: str, *, lock: bool = False) -> HashBankRow | None:
        query = select(HashBankRow).where((HashBankRow.id == bank) | (HashBankRow.name == bank))
        if lock:
            query = query.with_for_update()
        return session.scalars(query).first()

    @staticmethod
    def _bank_counts(session: Session, bank_id: str) -> dict[str, int]:
        query = (
            select(HashEntryRow.hash_type, func.count())
            .where(HashEntryRow.bank_id == bank_id)
            .group_by(HashEntryRow.hash_type)
        )
        return {hash_type: int(n) for hash_type, n in session.execute(query)}

    def set_hash_bank_enabled(self, bank_id: str, enabled: bool, *, actor: str) -> HashBank:
        """Switch a hash bank on or off for matching."""
        required(actor, "actor")
        with self._transaction(write=True) as session:
            query = select(HashBankRow).where(HashBankRow.id == bank_id).with_for_update()
            row = session.scalars(query).one_or_none()
            if row is None:
                raise RecordNotFoundError(f"no hash bank with id {bank_id!r}")
            previous = row.enabled
            row.enabled = enabled
            row.updated_at = utc_now()
            self._write_audit(
                session,
                actor=actor,
                action="hash_bank.set_enabled",
                target=bank_id,
                details={"name": row.name, "enabled": enabled, "previous": previous},
            )
            return _hash_bank(row, self._bank_counts(session, row.id))

    def set_hash_bank_actions(
        self, bank_id: str, actions: Iterable[str], *, actor: str
    ) -> HashBank:
        """Choose what a match against the bank does (any of reject, report, ban)."""
        required(actor, "actor")
        chosen = _bank_actions(actions)
        with self._transaction(write=True) as session:
            query = select(HashBankRow).where(HashBankRow.id == bank_id).with_for_update()
            row = session.scalars(query).one_or_none()
            if row is None:
                raise RecordNotFoundError(f"no hash bank with id {bank_id!r}")
            previous = sorted(_row_actions(row))
            row.action_reject = "reject" in chosen
            row.action_report = "report" in chosen
            row.action_ban = "ban" in chosen
            row.updated_at = utc_now()
            self._write_audit(
                session,
                actor=actor,
                action="hash_bank.set_actions",
                target=bank_id,
                details={"name": row.name, "actions": sorted(chosen), "previous": previous},
            )
            return _hash_bank(row, self._bank_counts(session, row.id))

    def import_hashes(
        self,
        bank: str,
        entries: Iterable[NewHashEntry],
        *,
        create: bool = True,
        description: str | None = None,
        actor: str,
    ) -> HashImport:
        """Add ``entries`` to the bank named (or with id) ``bank``, creating it if ``create``.

        One transaction: a failure stores nothing. Entries already in the bank are skipped, so
        importing the same file twice changes nothing. Batches of 5,000 keep memory flat for
        files of millions of hashes.
        """
        required(actor, "actor")
        with self._transaction(write=True) as session:
            row = self._find_bank(session, bank, lock=True)
            created = row is None
            if row is None:
                if not create:
                    raise RecordNotFoundError(f"no hash bank with id or name {bank!r}")
                now = utc_now()
                row = HashBankRow(
                    id=new_id("bank"),
                    name=required(bank, "hash bank name", max_length=200),
                    description=description,
                    enabled=True,
                    created_at=now,
                    updated_at=now,
                    action_reject=True,
                    action_report=True,
                    action_ban=True,
                )
                _insert_unique(session, row, f"a hash bank named {bank!r} already exists")
            before = self._bank_counts(session, row.id)
            offered: dict[str, int] = {}
            batch: list[dict[str, Any]] = []
            now = utc_now()
            for entry in entries:
                offered[entry.hash_type] = offered.get(entry.hash_type, 0) + 1
                batch.append(
                    {
                        "bank_id": row.id,
                        "hash_type": entry.hash_type,
                        "value": entry.value,
                        "quality": entry.quality,
                        "details": entry.details,
                        "created_at": now,
                    }
                )
                if len(batch) >= _IMPORT_BATCH:
                    self._insert_entries(session, batch)
                    batch = []
            if batch:
                self._insert_entries(session, batch)
            after = self._bank_counts(session, row.id)
            added = {t: after.get(t, 0) - before.get(t, 0) for t in offered}
            present = {t: offered[t] - added[t] for t in offered}
            row.updated_at = utc_now()
            self._write_audit(
                session,
                actor=actor,
                action="hash_bank.import",
                target=row.id,
                details={"name": row.name, "added": added, "already_present": present},
            )
            return HashImport(
                bank=_hash_bank(row, after),
                created_bank=created,
                added=added,
                already_present=present,
            )

    def _insert_entries(self, session: Session, rows: list[dict[str, Any]]) -> None:
        """Insert, skipping entries the bank already has (and duplicates within the batch)."""
        unique = list({(r["hash_type"], r["value"]): r for r in rows}.values())
        insert: Any = (
            postgresql_insert(HashEntryRow)
            if session.get_bind().dialect.name == "postgresql"
            else sqlite_insert(HashEntryRow)
        )
        session.execute(insert.on_conflict_do_nothing(), unique)

    def hash_banks_version(self) -> tuple[int, str]:
        """Changes whenever a bank or its entries change: how a matcher knows it is stale."""
        query = select(func.count(HashBankRow.id), func.max(HashBankRow.updated_at))
        with self._transaction(write=False) as session:
            count, latest = session.execute(query).one()
            return int(count), latest.isoformat() if latest is not None else ""

    def enabled_hash_entries(self) -> Iterator[BankEntry]:
        """Every entry of every enabled bank (what the matcher indexes), streamed."""
        query = (
            select(HashBankRow, HashEntryRow.hash_type, HashEntryRow.value, HashEntryRow.quality)
            .join(HashEntryRow, HashEntryRow.bank_id == HashBankRow.id)
            .where(HashBankRow.enabled.is_(True))
            .execution_options(yield_per=10_000)
        )
        with self._transaction(write=False) as session:
            for bank, hash_type, value, quality in session.execute(query):
                yield BankEntry(
                    bank_id=bank.id,
                    bank=bank.name,
                    actions=frozenset(_row_actions(bank)),
                    hash_type=hash_type,
                    value=value,
                    quality=quality,
                )

    # -- provenance registry -----------------------------------------------------------------

    def register_image(self, record: NewProvenanceRecord) -> ProvenanceRecord:
        """Store the record of a released image; raises if it cannot (the image is then held)."""
        row = ProvenanceRow(**record.model_dump(), created_at=utc_now())
        with self._transaction(write=True) as session:
            _insert_unique(session, row, f"provenance record {record.id!r} exists already")
            return _provenance(row)

    def provenance_index_entries(
        self, *, after_seq: int = 0, limit: int | None = None
    ) -> Iterator[ProvenanceIndexEntry]:
        """The lookup signals of every record after ``after_seq``, in order, streamed."""
        query = (
            select(
                ProvenanceRow.seq,
                ProvenanceRow.pdq,
                ProvenanceRow.pdq_quality,
                ProvenanceRow.watermark_method,
                ProvenanceRow.watermark_payload,
            )
            .where(ProvenanceRow.seq > after_seq)
            .order_by(ProvenanceRow.seq)
            .execution_options(yield_per=10_000)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._transaction(write=False) as session:
            for seq, pdq, quality, method, payload in session.execute(query):
                yield ProvenanceIndexEntry(
                    seq=seq,
                    pdq=pdq,
                    pdq_quality=quality,
                    watermark_method=method,
                    watermark_payload=payload,
                )

    def find_provenance(
        self,
        *,
        record_id: str | None = None,
        seq: int | None = None,
        sha256: str | None = None,
        manifest_label: str | None = None,
    ) -> ProvenanceRecord | None:
        """The (first) record with the one given key, or None."""
        given = [
            (column, value)
            for column, value in (
                (ProvenanceRow.id, record_id),
                (ProvenanceRow.seq, seq),
                (ProvenanceRow.sha256, sha256),
                (ProvenanceRow.manifest_label, manifest_label),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise InputError("find_provenance takes exactly one of record_id, seq, sha256, label")
        column, value = given[0]
        query = select(ProvenanceRow).where(column == value).order_by(ProvenanceRow.seq).limit(1)
        with self._transaction(write=False) as session:
            row = session.scalars(query).first()
            return None if row is None else _provenance(row)

    def count_provenance(self) -> int:
        with self._transaction(write=False) as session:
            return int(session.execute(select(func.count(ProvenanceRow.seq))).scalar_one())

    # -- audit log --------------------------------------------------------------------------------

    def audit(
        self,
        *,
        actor: str,
        action: str,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Write an audit entry for an action the store does not perform itself.

        Strings in ``details`` that look like API keys are masked before they are written.
        """
        with self._transaction(write=True) as session:
            row = self._write_audit(
                session, actor=actor, action=action, target=target, details=details
            )
            return _audit_entry(row)

    def list_audit(
        self,
        *,
        limit: int = 100,
        action: str | None = None,
        targets: Iterable[str] | None = None,
    ) -> list[AuditEntry]:
        """The most recent audit entries (of one action, about some targets), newest first."""
        limit, _ = page(limit)
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if action is not None:
            query = query.where(AuditRow.action == action)
        if targets is not None:
            query = query.where(AuditRow.target.in_(list(targets)))
        with self._transaction(write=False) as session:
            return [_audit_entry(row) for row in session.scalars(query)]
