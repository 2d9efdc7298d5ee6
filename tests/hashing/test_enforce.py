"""Enforcement of known-bad media matches against real databases (SQLite file and PostgreSQL).

Each bank's actions (reject / report / ban) are applied independently; the report, the ban and
their audit entries land in one transaction; a retried upload does not file the same incident
twice; the CyberTipline-style export carries the fields a hotline report needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from safestack.errors import InputError, RecordNotFoundError
from safestack.hashing._enforce import Enforcement, Enforcer
from safestack.hashing._reports import ReporterInfo, ReportReceiverConfig, cybertipline_report
from safestack.hashing._types import Action, ImageHashes, Match
from safestack.store import Account, Store, StrikePolicy

ALL = frozenset(Action)
HASHES = ImageHashes(sha256="ab" * 32, md5="cd" * 16, pdq="ef" * 32, quality=87)
OTHER_IMAGE = ImageHashes(sha256="12" * 32, md5="34" * 16, pdq="ef" * 32, quality=90)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store(database_url) as migrated:
        migrated.migrate()
        yield migrated


def _match(store: Store, actions: frozenset[Action] = ALL, *, name: str = "ncmec") -> Match:
    bank = next((b for b in store.list_hash_banks() if b.name == name), None)
    bank = bank or store.create_hash_bank(name=name, actor="admin")
    return Match(
        bank=bank.name,
        bank_id=bank.id,
        hash_type="pdq",
        value="ee" * 32,
        distance=9,
        actions=actions,
        details={"source": "test list"},
    )


def _account(store: Store) -> Account:
    return store.create_account(audience="adult", name="someone", actor="admin")


def _apply(
    enforcer: Enforcer,
    match: Match,
    account_id: str | None,
    *,
    request_id: str = "req-1",
    hashes: ImageHashes = HASHES,
) -> Enforcement:
    return enforcer.apply(
        match,
        account_id=account_id,
        request_id=request_id,
        endpoint="/v1/images/edits",
        hashes=hashes,
        audience="adult",
    )


def test_all_actions_reject_report_and_ban_with_audit(store: Store) -> None:
    account = _account(store)
    match = _match(store)
    done = _apply(Enforcer(store, receiver=None), match, account.id)

    assert done.rejected and done.banned and not done.duplicate
    assert done.report_id is not None and done.match == match
    banned = store.get_account(account.id)
    assert banned.status == "banned" and banned.ban_code == "known_bad_media"
    assert "ncmec" in (banned.ban_reason or "") and "req-1" in (banned.ban_reason or "")

    report = store.get_report(done.report_id)
    assert report.kind == "hash_match" and report.account_id == account.id
    assert report.delivery_status == "not_configured" and report.next_attempt_at is None
    details = report.details
    assert details["match"] == {
        "bank": "ncmec",
        "bank_id": match.bank_id,
        "hash_type": "pdq",
        "value": "ee" * 32,
        "distance": 9,
        "entry": {"source": "test list"},
    }
    assert details["media"] == {
        "sha256": HASHES.sha256,
        "md5": HASHES.md5,
        "pdq": HASHES.pdq,
        "pdq_quality": 87,
        "frames": 1,
    }
    assert details["request_id"] == "req-1" and details["endpoint"] == "/v1/images/edits"
    assert details["audience"] == "adult" and details["actions"] == ["ban", "reject", "report"]
    detected = datetime.fromisoformat(details["detected_at"])
    assert detected.utcoffset() == timedelta(0)

    (entry,) = store.list_audit(action="hash_match")
    assert entry.actor == "system" and entry.target == account.id
    assert entry.details["report_id"] == done.report_id and entry.details["banned"] is True
    assert entry.details["rejected"] is True and entry.details["request_id"] == "req-1"
    (created,) = store.list_audit(action="report.create")
    assert created.target == done.report_id
    (ban,) = store.list_audit(action="account.ban")
    assert ban.target == account.id and ban.details["code"] == "known_bad_media"
    assert ban.details["evidence"]["report_id"] == done.report_id


def test_report_and_ban_happen_even_when_reject_is_off(store: Store) -> None:
    account = _account(store)
    done = _apply(
        Enforcer(store, receiver=None),
        _match(store, frozenset({Action.REPORT, Action.BAN})),
        account.id,
    )
    assert not done.rejected and done.banned and done.report_id is not None
    assert store.get_account(account.id).status == "banned"
    assert store.list_audit(action="hash_match")[0].details["rejected"] is False


def test_reject_only_files_nothing_but_the_audit_entry(store: Store) -> None:
    account = _account(store)
    done = _apply(
        Enforcer(store, receiver=None), _match(store, frozenset({Action.REJECT})), account.id
    )
    assert done == Enforcement(
        match=done.match, rejected=True, report_id=None, banned=False, duplicate=False
    )
    assert store.list_reports() == [] and store.get_account(account.id).status == "active"
    (entry,) = store.list_audit(action="hash_match")
    assert entry.details["report_id"] is None and entry.details["actions"] == ["reject"]


def test_report_only_leaves_the_account_active(store: Store) -> None:
    account = _account(store)
    done = _apply(
        Enforcer(store, receiver=None), _match(store, frozenset({Action.REPORT})), account.id
    )
    assert done.report_id is not None and not done.banned and not done.rejected
    assert store.get_account(account.id).status == "active"
    assert store.list_audit(action="account.ban") == []


def test_a_configured_receiver_queues_the_report_for_delivery(store: Store) -> None:
    receiver = ReportReceiverConfig(url="https://hotline.example/reports", secret_env="UNUSED")
    done = _apply(Enforcer(store, receiver=receiver), _match(store), _account(store).id)
    assert done.report_id is not None
    report = store.get_report(done.report_id)
    assert report.delivery_status == "pending" and report.delivery_attempts == 0
    assert report.next_attempt_at is not None
    assert report.next_attempt_at <= datetime.now(UTC)


def test_a_retried_upload_reuses_the_report(store: Store) -> None:
    """Same account, same bank entry, same image: one incident; the retry is audited."""
    account = _account(store)
    enforcer = Enforcer(store, receiver=None)
    match = _match(store, frozenset({Action.REJECT, Action.REPORT}))
    first = _apply(enforcer, match, account.id, request_id="req-1")
    retry = _apply(enforcer, match, account.id, request_id="req-2")
    assert retry.report_id == first.report_id and retry.duplicate and not first.duplicate
    assert len(store.list_reports()) == 1
    entries = store.list_audit(action="hash_match")
    assert [e.details["request_id"] for e in entries] == ["req-2", "req-1"]
    assert [e.details["duplicate_report"] for e in entries] == [True, False]

    other_image = _apply(enforcer, match, account.id, request_id="req-3", hashes=OTHER_IMAGE)
    other_bank = _apply(enforcer, _match(store, match.actions, name="iwf"), account.id)
    assert len({first.report_id, other_image.report_id, other_bank.report_id}) == 3
    # A window of zero: every match is its own report.
    no_window = Enforcer(store, receiver=None, dedupe_window_s=0)
    assert _apply(no_window, match, account.id).report_id != first.report_id


def test_banned_by_strikes_becomes_banned_for_known_bad_media(store: Store) -> None:
    account = _account(store)
    store.ban(account.id, reason="three strikes", code="strikes", actor="system")
    enforcer = Enforcer(store, receiver=None)
    assert _apply(enforcer, _match(store), account.id).banned
    assert store.get_account(account.id).ban_code == "known_bad_media"
    # Already banned for known-bad media: a second match does not ban again.
    assert _apply(enforcer, _match(store), account.id, hashes=OTHER_IMAGE).banned
    assert len(store.list_audit(action="account.ban")) == 2  # the strike ban and one more


def test_without_an_account_the_report_is_filed_and_nobody_is_banned(store: Store) -> None:
    done = _apply(Enforcer(store, receiver=None), _match(store), None)
    assert done.report_id is not None and not done.banned and done.rejected
    assert store.get_report(done.report_id).account_id is None


def test_an_unknown_account_writes_nothing(store: Store) -> None:
    with pytest.raises(RecordNotFoundError):
        _apply(Enforcer(store, receiver=None), _match(store), "acct_missing")
    assert store.list_reports() == [] and store.list_audit(action="hash_match") == []


def test_nothing_but_hashes_is_stored(store: Store, database_url: str) -> None:
    """The report holds hashes of the image, not the image: no column anywhere has its bytes."""
    account = _account(store)
    _apply(Enforcer(store, receiver=None), _match(store), account.id)
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT details FROM reports")).all()
    finally:
        engine.dispose()
    (stored,) = rows
    details = stored[0] if isinstance(stored[0], dict) else json.loads(stored[0])
    assert set(details) == {
        "request_id",
        "endpoint",
        "audience",
        "detected_at",
        "match",
        "media",
        "actions",
        "rejected",
        "dedupe_key",
    }
    assert set(details["media"]) == {"sha256", "md5", "pdq", "pdq_quality", "frames"}


def test_cybertipline_export_has_the_report_fields(store: Store) -> None:
    account = _account(store)
    done = _apply(Enforcer(store, receiver=None), _match(store), account.id)
    assert done.report_id is not None
    reporter = ReporterInfo(
        company_name="Example AI",
        service="Example Images",
        first_name="Trust",
        last_name="Safety",
        email="trust@example.com",
        legal_url="https://example.com/legal",
    )
    document = cybertipline_report(store.get_report(done.report_id), reporter)

    assert "not a certified integration" in document["notice"]
    report = document["report"]
    summary = report["incidentSummary"]
    assert summary["incidentType"].startswith("Child Pornography")
    assert datetime.fromisoformat(summary["incidentDateTime"]).tzinfo is not None
    assert report["reporter"]["reportingPerson"] == {
        "firstName": "Trust",
        "lastName": "Safety",
        "email": [{"email": "trust@example.com"}],
    }
    assert report["reporter"]["legalUrl"] == "https://example.com/legal"
    assert report["personOrUserReported"] == {
        "espIdentifier": account.id,
        "espService": "Example Images",
    }
    assert "ncmec" in report["additionalInfo"] and "not viewed" in report["additionalInfo"]
    (file,) = document["files"]
    assert file["fileViewedByEsp"] is False and file["fileRelevance"] == "Reported"
    assert file["originalFileHash"] == [
        {"hashType": "MD5", "value": HASHES.md5},
        {"hashType": "SHA256", "value": HASHES.sha256},
    ]
    assert {"name": "PDQ", "value": HASHES.pdq, "type": "HASH"} in file["details"]
    assert document["source"]["reportId"] == done.report_id
    assert document["source"]["requestId"] == "req-1"
    assert document["missing"] == []

    # Without reporter details the gaps are listed, not papered over.
    bare = cybertipline_report(store.get_report(done.report_id))
    assert "reporter.reportingPerson.email" in bare["missing"]
    assert "reportingPerson" not in bare["report"].get("reporter", {})


def test_only_hash_match_reports_export(store: Store) -> None:
    flag = store.create_report(kind="user_flag", account_id=None, details={}, actor="a")
    with pytest.raises(InputError, match="hash_match"):
        cybertipline_report(flag)


def test_strike_policy_is_untouched_by_hash_bans(store: Store) -> None:
    """A known-bad media ban is not a strike and does not feed the strike count."""
    account = _account(store)
    _apply(Enforcer(store, receiver=None), _match(store, frozenset({Action.REPORT})), account.id)
    assert store.apply_strikes(account.id, StrikePolicy(threshold=1)) is None
