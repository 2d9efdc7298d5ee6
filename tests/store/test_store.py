"""The store against real databases: a SQLite file and a throwaway PostgreSQL (``database_url``).

Atomicity and concurrency are checked the way they fail in production: a database trigger that
refuses the audit insert (does the ban roll back with it?), two engines racing on one account,
a server that stops while the store holds pooled connections to it.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import safestack.store
from _postgres import PostgresCluster, fresh_database
from safestack.errors import (
    InputError,
    RecordConflictError,
    RecordNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from safestack.policy import Audience
from safestack.store import (
    Account,
    NewDecision,
    Store,
    StrikePolicy,
    default_database_url,
)
from safestack.store._tables import Base, DecisionRow

T = TypeVar("T")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store(database_url) as migrated:
        migrated.migrate()
        yield migrated


@pytest.fixture
def raw(database_url: str) -> Iterator[sa.Engine]:
    """A plain engine on the same database, to look at (and tamper with) the tables directly."""
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield engine
    engine.dispose()


def _account(store: Store, audience: str = "adult") -> Account:
    return store.create_account(audience=audience, name="test", actor="admin")


def _decision(account_id: str | None, **changes: Any) -> NewDecision:
    fields: dict[str, Any] = {
        "request_id": "req",
        "account_id": account_id,
        "endpoint": "/v1/chat/completions",
        "model": "test-model",
        "status": "blocked",
        "blocked": True,
        "layer": "input",
        "categories": ["violent_extremism"],
        "severity": "high",
        "clause": "violent_extremism.disallowed.0",
        "audience": "adult",
        "latency_ms": 12.5,
    }
    return NewDecision(**{**fields, **changes})


def _strikes(store: Store, account_id: str, count: int, **changes: Any) -> list[int]:
    return [
        store.record_decision(_decision(account_id, request_id=f"req-{i}", **changes)).id
        for i in range(count)
    ]


def _in_parallel(calls: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run the calls in threads released at the same instant; results (or errors) in order."""
    barrier = threading.Barrier(len(calls))
    results: list[T | BaseException] = [RuntimeError("not run")] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- public API, URLs ------------------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert safestack.store.__all__ == [
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
    for name in safestack.store.__all__:
        assert hasattr(safestack.store, name)


def test_url_redacts_the_password_and_picks_psycopg() -> None:
    store = Store("postgresql://gateway:s3cret@db.internal:5432/safestack")
    assert store.url == "postgresql+psycopg://gateway:***@db.internal:5432/safestack"
    assert "s3cret" not in repr(store)
    assert Store("sqlite:///relative.db").url == "sqlite:///relative.db"


def test_unsupported_or_malformed_url_is_a_config_error() -> None:
    from safestack.errors import ConfigError

    with pytest.raises(ConfigError, match="supported: sqlite, postgresql"):
        Store("mysql://root:pw@localhost/db")
    with pytest.raises(ConfigError, match="in-memory"):
        Store("sqlite://")
    with pytest.raises(ConfigError, match="not a URL") as caught:
        Store("not a url :secret@")
    assert "secret" not in str(caught.value)


def test_default_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAFESTACK_DATABASE_URL", "postgresql://db.internal/safestack")
    assert default_database_url() == "postgresql://db.internal/safestack"
    monkeypatch.delenv("SAFESTACK_DATABASE_URL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    url = default_database_url()
    assert url == f"sqlite:///{tmp_path / 'data' / 'safestack' / 'safestack.db'}"
    assert (tmp_path / "data" / "safestack").is_dir()


# -- migrations ------------------------------------------------------------------------------------


def test_migrate_is_idempotent_and_ping_checks_the_revision(database_url: str) -> None:
    with Store(database_url) as store:
        with pytest.raises(StoreUnavailableError, match=r"Store\.migrate"):
            store.ping()
        store.migrate()
        store.migrate()
        store.ping()


def test_migrations_match_the_models(store: Store, raw: sa.Engine) -> None:
    with raw.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_concurrent_migrations_both_succeed(database_url: str) -> None:
    stores = [Store(database_url), Store(database_url)]
    try:
        results = _in_parallel([store.migrate for store in stores])
        assert results == [None, None]
        stores[0].ping()
    finally:
        for store in stores:
            store.close()


# -- accounts and keys -----------------------------------------------------------------------------


def test_key_lifecycle(store: Store) -> None:
    account = _account(store)
    key, info = store.create_key(account.id, actor="admin")
    assert key.startswith("sk-ss-") and len(key) == len("sk-ss-") + 43
    assert info.prefix == key[:10] and info.account_id == account.id and info.revoked_at is None
    assert store.authenticate(key) == account
    revoked = store.revoke_key(info.id, actor="admin")
    assert revoked.revoked_at is not None
    assert store.authenticate(key) is None
    assert store.list_keys(account.id) == [revoked]
    assert [entry.action for entry in store.list_audit(limit=3)] == [
        "key.revoke",
        "key.create",
        "account.create",
    ]


def test_unknown_keys_do_not_authenticate(store: Store) -> None:
    _, _ = store.create_key(_account(store).id, actor="admin")
    assert store.authenticate("sk-ss-" + "A" * 43) is None
    assert store.authenticate("not-a-key") is None
    assert store.authenticate("") is None


def test_a_banned_account_still_authenticates_as_banned(store: Store) -> None:
    account = _account(store)
    key, _ = store.create_key(account.id, actor="admin")
    store.ban(account.id, reason="abuse", actor="admin")
    found = store.authenticate(key)
    assert found is not None and found.status == "banned"


def test_only_the_hash_of_a_key_is_stored(store: Store, raw: sa.Engine) -> None:
    key, info = store.create_key(_account(store).id, actor="admin")
    digest = hashlib.sha256(key.encode()).hexdigest()
    with raw.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM api_keys")).mappings().all()
        audit = connection.execute(sa.text("SELECT * FROM audit_log")).mappings().all()
    assert [row["key_hash"] for row in rows] == [digest]
    dumped = repr(rows)
    assert key not in dumped and key[10:] not in dumped
    audit_text = repr(audit)
    assert key[10:] not in audit_text and digest not in audit_text
    assert "key_hash" not in info.model_dump()


def test_under_13_is_refused_with_a_clear_message(store: Store) -> None:
    for audience in ("under_13", "under-12", "12", "child"):
        with pytest.raises(InputError, match="users under 13 are not served at all"):
            store.create_account(audience=audience, actor="admin")
    with pytest.raises(InputError, match="allowed: adult, under_18"):
        store.create_account(audience="teens", actor="admin")
    account = store.create_account(audience=Audience.UNDER_18, actor="admin")
    assert account.audience is Audience.UNDER_18
    with pytest.raises(InputError, match="under 13"):
        store.set_audience(account.id, "under_13", actor="admin")
    assert store.set_audience(account.id, "adult", actor="admin").audience is Audience.ADULT
    assert [a.id for a in store.list_accounts()] == [account.id]


def test_ban_and_unban_write_one_audit_entry_each(store: Store) -> None:
    account = _account(store)
    before = len(store.list_audit())
    banned = store.ban(account.id, reason="spam", actor="alice", evidence={"ticket": 7})
    assert (banned.status, banned.ban_code, banned.ban_reason) == ("banned", "admin_ban", "spam")
    assert banned.banned_at is not None and banned.banned_at.tzinfo is UTC
    assert store.get_account(account.id) == banned
    entries = store.list_audit()
    assert len(entries) == before + 1
    entry = entries[0]
    assert (entry.actor, entry.action, entry.target) == ("alice", "account.ban", account.id)
    assert entry.details["evidence"] == {"ticket": 7}
    unbanned = store.unban(account.id, actor="bob")
    assert (unbanned.status, unbanned.ban_code, unbanned.banned_at) == ("active", None, None)
    assert len(store.list_audit()) == before + 2
    assert store.list_audit(action="account.unban")[0].actor == "bob"


def test_a_change_whose_audit_entry_fails_is_rolled_back(store: Store, raw: sa.Engine) -> None:
    account = _account(store)
    with raw.begin() as connection:
        if raw.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
            )
    with pytest.raises(StoreError, match="audit refused"):
        store.ban(account.id, reason="spam", actor="admin")
    assert store.get_account(account.id).status == "active"
    with pytest.raises(StoreError):
        store.create_key(account.id, actor="admin")
    assert store.list_keys() == []


def test_unknown_ids_raise_record_not_found(store: Store) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.get_account("acct_missing"),
        lambda: store.set_audience("acct_missing", "adult", actor="admin"),
        lambda: store.ban("acct_missing", reason="x", actor="admin"),
        lambda: store.unban("acct_missing", actor="admin"),
        lambda: store.create_key("acct_missing", actor="admin"),
        lambda: store.revoke_key("key_missing", actor="admin"),
        lambda: store.apply_strikes("acct_missing", StrikePolicy()),
        lambda: store.record_decision(_decision("acct_missing")),
        lambda: store.create_report(kind="x", account_id="acct_missing", details={}, actor="a"),
        lambda: store.remove_opt_out("opt_missing", actor="admin"),
        lambda: store.set_hash_bank_enabled("bank_missing", False, actor="admin"),
    ]
    for call in calls:
        with pytest.raises(RecordNotFoundError, match="_missing"):
            call()
    assert store.list_audit() == []


# -- decisions and strikes -------------------------------------------------------------------------


def test_strikes_ban_once_at_the_threshold_with_evidence(store: Store) -> None:
    account = _account(store)
    policy = StrikePolicy()
    first = _strikes(store, account.id, 2)
    assert store.apply_strikes(account.id, policy) is None
    third = store.record_decision(
        _decision(account.id, request_id="req-last", categories=["self_harm"], severity="critical")
    )
    banned = store.apply_strikes(account.id, policy)
    assert banned is not None
    assert (banned.status, banned.ban_code) == ("banned", "strikes")
    assert banned.ban_reason == "3 blocked high- or critical-severity requests within 24h"
    assert store.apply_strikes(account.id, policy) is None  # already banned
    [entry] = store.list_audit(action="account.ban")
    assert (entry.actor, entry.target) == ("system", account.id)
    evidence = entry.details["evidence"]
    assert evidence["decision_ids"] == [*first, third.id]
    assert evidence["request_ids"] == ["req-0", "req-1", "req-last"]
    assert evidence["categories"] == ["self_harm", "violent_extremism"]
    assert (evidence["window_s"], evidence["threshold"]) == (86400, 3)


def test_strikes_before_an_unban_do_not_count_again(store: Store) -> None:
    account = _account(store)
    _strikes(store, account.id, 3)
    assert store.apply_strikes(account.id, StrikePolicy()) is not None
    store.unban(account.id, actor="admin")
    assert store.apply_strikes(account.id, StrikePolicy()) is None
    _strikes(store, account.id, 2)
    assert store.apply_strikes(account.id, StrikePolicy()) is None
    _strikes(store, account.id, 1)
    assert store.apply_strikes(account.id, StrikePolicy()) is not None
    assert len(store.list_audit(action="account.ban")) == 2


def test_only_blocked_severe_input_or_output_decisions_count(store: Store) -> None:
    account = _account(store)
    _strikes(store, account.id, 3, severity="medium")
    _strikes(store, account.id, 3, severity=None)
    _strikes(store, account.id, 3, blocked=False, status="ok")
    _strikes(store, account.id, 3, layer="model")
    assert store.apply_strikes(account.id, StrikePolicy()) is None
    assert store.apply_strikes(account.id, StrikePolicy(enabled=False)) is None
    lenient = StrikePolicy(severities=frozenset({"medium"}))
    banned = store.apply_strikes(account.id, lenient)
    assert banned is not None
    assert banned.ban_reason == "3 blocked medium-severity requests within 24h"


def test_decisions_outside_the_window_do_not_count(store: Store, raw: sa.Engine) -> None:
    account = _account(store)
    old = _strikes(store, account.id, 2)
    _strikes(store, account.id, 1)
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    with raw.begin() as connection:
        connection.execute(
            sa.update(DecisionRow).where(DecisionRow.id.in_(old)).values(created_at=two_hours_ago)
        )
    hourly = StrikePolicy(window_s=3600)
    assert store.apply_strikes(account.id, hourly) is None
    banned = store.apply_strikes(account.id, StrikePolicy(window_s=3 * 3600))
    assert banned is not None and banned.ban_reason is not None
    assert banned.ban_reason.endswith("within 3h")


def test_strike_policy_validates() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        StrikePolicy(threshold=0)
    with pytest.raises(ValueError, match="greater than 0"):
        StrikePolicy(window_s=0)


def test_concurrent_strikes_ban_once(database_url: str) -> None:
    stores = [Store(database_url), Store(database_url)]
    try:
        stores[0].migrate()
        for _ in range(3):
            account = _account(stores[0])
            _strikes(stores[0], account.id, 3)
            results = _in_parallel(
                [partial(s.apply_strikes, account.id, StrikePolicy()) for s in stores]
            )
            assert not [r for r in results if isinstance(r, BaseException)], results
            assert sum(isinstance(r, Account) for r in results) == 1, results
        assert len(stores[0].list_audit(action="account.ban")) == 3
    finally:
        for store in stores:
            store.close()


def test_list_decisions_newest_first(store: Store) -> None:
    account = _account(store)
    other = _account(store)
    allowed = store.record_decision(_decision(account.id, blocked=False, status="ok"))
    blocked = store.record_decision(_decision(account.id))
    anonymous = store.record_decision(_decision(None, request_id="anon"))
    store.record_decision(_decision(other.id))
    assert [d.id for d in store.list_decisions(account_id=account.id)] == [blocked.id, allowed.id]
    assert [d.id for d in store.list_decisions(account_id=account.id, blocked_only=True)] == [
        blocked.id
    ]
    assert len(store.list_decisions(limit=2)) == 2
    assert anonymous.account_id is None and anonymous.created_at.tzinfo is UTC
    assert blocked.model_dump(exclude={"id", "created_at"}) == _decision(account.id).model_dump()
    with pytest.raises(InputError, match="limit"):
        store.list_decisions(limit=0)


# -- reports, opt-outs, hash banks, audit ----------------------------------------------------------


def test_opt_outs(store: Store) -> None:
    artist = store.add_opt_out(name="Jane Doe", kind="artist", note="email 2024-05", actor="a")
    figure = store.add_opt_out(name="Jane Doe", kind="public_figure", actor="a")
    with pytest.raises(RecordConflictError, match="already opted out"):
        store.add_opt_out(name="  jane   DOE ", kind="artist", actor="a")
    with pytest.raises(InputError, match="allowed: public_figure, artist"):
        store.add_opt_out(name="X", kind="athlete", actor="a")
    assert store.list_opt_outs() == [artist, figure]
    store.remove_opt_out(artist.id, actor="a")
    assert store.list_opt_outs() == [figure]
    actions = [entry.action for entry in store.list_audit()]
    assert actions == ["opt_out.remove", "opt_out.add", "opt_out.add"]


def test_hash_banks(store: Store) -> None:
    bank = store.create_hash_bank(name="ncmec", description="hotline hashes", actor="a")
    assert bank.enabled
    with pytest.raises(RecordConflictError, match="already exists"):
        store.create_hash_bank(name="ncmec", actor="a")
    other = store.create_hash_bank(name="internal", enabled=False, actor="a")
    disabled = store.set_hash_bank_enabled(bank.id, False, actor="a")
    assert not disabled.enabled
    assert store.list_hash_banks() == [other, disabled]
    assert len(store.list_audit(action="hash_bank.create")) == 2


def test_reports(store: Store) -> None:
    account = _account(store)
    report = store.create_report(
        kind="hash_match", account_id=account.id, details={"bank": "ncmec"}, actor="system"
    )
    anonymous = store.create_report(kind="user_flag", account_id=None, details={}, actor="a")
    assert store.list_reports() == [anonymous, report]
    with pytest.raises(InputError, match="JSON"):
        store.create_report(kind="x", account_id=None, details={"at": object()}, actor="a")


def test_audit_masks_api_keys_and_filters(store: Store) -> None:
    key, _ = store.create_key(_account(store).id, actor="admin")
    entry = store.audit(actor="admin", action="note", details={"text": f"leaked {key} here"})
    assert entry.details == {"text": "leaked sk-ss-*** here"}
    assert store.list_audit(action="note") == [entry]
    assert entry.model_dump(mode="json")["at"].endswith("Z")
    with pytest.raises(InputError, match="actor"):
        store.audit(actor=" ", action="note")
    with pytest.raises(InputError, match="at most 64"):
        store.audit(actor="admin", action="x" * 65)


# -- failures --------------------------------------------------------------------------------------


def test_unreachable_database_fails_fast_without_the_password() -> None:
    url = f"postgresql://user:secret@127.0.0.1:{_closed_port()}/x"
    with Store(url, connect_timeout_s=2) as store:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            store.ping()
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert "secret" not in message and "user:***@127.0.0.1" in message
        assert "secret" not in str(caught.value.__cause__)
        key = "sk-ss-" + "B" * 43
        with pytest.raises(StoreUnavailableError) as caught:
            store.authenticate(key)
        assert key not in str(caught.value) and key not in str(caught.value.__cause__)


def test_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/missing/dir/store.db")
    with store, pytest.raises(StoreUnavailableError, match="unable to open"):
        store.migrate()


def test_locked_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    with Store(url) as store:
        store.migrate()
        account = _account(store)
    blocker = sa.create_engine(url)
    try:
        with blocker.connect() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # holds the write lock
            with Store(url, busy_timeout_s=0.2) as impatient:
                assert impatient.get_account(account.id) == account  # WAL: readers still read
                with pytest.raises(StoreUnavailableError, match="locked"):
                    impatient.ban(account.id, reason="x", actor="admin")
            connection.exec_driver_sql("ROLLBACK")
    finally:
        blocker.dispose()


def test_postgres_restart_is_unavailable_then_recovers(postgres_cluster: PostgresCluster) -> None:
    with fresh_database(postgres_cluster.url) as url, Store(url, connect_timeout_s=2) as store:
        store.migrate()
        key, _ = store.create_key(_account(store).id, actor="admin")
        assert store.authenticate(key) is not None  # a pooled connection now exists
        postgres_cluster.stop()
        with pytest.raises(StoreUnavailableError, match="unavailable"):
            store.authenticate(key)
        with pytest.raises(StoreUnavailableError):
            store.ping()
        postgres_cluster.start()
        assert store.authenticate(key) is not None
        store.ping()


def test_nul_characters_are_refused_alike_on_both_databases(database_url: str) -> None:
    store = Store(database_url)
    store.migrate()
    with pytest.raises(InputError, match="NUL"):
        store.create_account(audience="adult", name="a\x00b", actor="test")
    account = store.create_account(audience="adult", actor="test")
    with pytest.raises(InputError, match="NUL"):
        store.ban(account.id, reason="spam\x00", actor="test")
    store.close()
