"""The console's tables on both databases: roles, sessions, campaigns, the review queue.

The review queue's one-winner rule is tested the way it fails in production: two threads with
their own stores resolving the same item at the same moment.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from safestack.errors import InputError, RecordConflictError, RecordNotFoundError
from safestack.store import (
    Account,
    ExchangeLabel,
    NewCampaign,
    NewDecision,
    NewExchange,
    Store,
    StrikePolicy,
)
from safestack.store._tables import ConsoleSessionRow


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store(database_url) as migrated:
        migrated.migrate()
        yield migrated


def _account(store: Store, role: str | None = None, name: str = "someone") -> Account:
    account = store.create_account(audience="adult", name=name, actor="admin")
    return store.set_role(account.id, role, actor="admin") if role else account


def _exchange(prompt: str = "how do I pick a lock?", *, blocked: bool = False) -> NewExchange:
    return NewExchange(
        prompt=prompt,
        response="I can't help with that." if blocked else "Sure: first, ...",
        request_id="req-1",
        status="blocked" if blocked else "answered",
        blocked=blocked,
        layer="input" if blocked else None,
        decision={"status": "blocked" if blocked else "answered"},
    )


# -- roles and sessions ------------------------------------------------------------------------


def test_roles_are_validated_and_audited(store: Store) -> None:
    account = _account(store)
    assert account.role is None
    assert store.set_role(account.id, "reviewer", actor="admin").role == "reviewer"
    assert store.get_account(account.id).role == "reviewer"
    with pytest.raises(InputError, match="unknown role 'superuser'"):
        store.set_role(account.id, "superuser", actor="admin")
    entry = store.list_audit(action="account.role", limit=1)[0]
    assert entry.details == {"role": "reviewer", "previous": None}


def test_a_session_holds_only_while_the_account_keeps_its_role(store: Store) -> None:
    reviewer = _account(store, "reviewer")
    token, opened = store.sessions.open(
        role="reviewer", actor=f"console:{reviewer.id}", account_id=reviewer.id, ttl_s=3600
    )
    resolved = store.sessions.resolve(token)
    assert resolved is not None and resolved.id == opened.id and resolved.role == "reviewer"
    assert store.sessions.resolve(token + "x") is None
    assert store.sessions.resolve("") is None
    store.set_role(reviewer.id, "red_teamer", actor="admin")
    assert store.sessions.resolve(token) is None  # demoted: the old session is dead
    store.set_role(reviewer.id, "reviewer", actor="admin")
    assert store.sessions.resolve(token) is not None
    store.ban(reviewer.id, reason="left the company", actor="admin")
    assert store.sessions.resolve(token) is None


def test_sessions_expire_sign_out_and_keep_only_a_hash(store: Store, database_url: str) -> None:
    token, opened = store.sessions.open(role="admin", actor="admin:abc", account_id=None, ttl_s=60)
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT * FROM console_sessions")).mappings().one()
        assert token not in {str(v) for v in stored.values()}
        # Expire it by moving its deadline into the past.
        with engine.begin() as connection:
            connection.execute(
                sa.update(ConsoleSessionRow.__table__).values(
                    expires_at=opened.created_at - timedelta(seconds=1)
                )
            )
    finally:
        engine.dispose()
    assert store.sessions.resolve(token) is None
    token2, second = store.sessions.open(role="admin", actor="admin:abc", account_id=None, ttl_s=60)
    assert token2 != token
    store.sessions.close(second.id, actor="admin:abc")
    assert store.sessions.resolve(token2) is None


# -- campaigns -----------------------------------------------------------------------------------


def test_campaign_invites_only_red_teamers_and_members_only_chat(store: Store) -> None:
    campaign = store.campaigns.create(
        NewCampaign(name="Bio uplift", model="safestack-recorded", categories=["weapons_cbrn"]),
        actor="admin",
    )
    red_teamer, outsider = _account(store, "red_teamer"), _account(store, "red_teamer")
    reviewer = _account(store, "reviewer")
    with pytest.raises(InputError, match="red_teamer role"):
        store.campaigns.invite(campaign.id, reviewer.id, actor="admin")
    invited = store.campaigns.invite(campaign.id, red_teamer.id, actor="admin")
    assert invited.members == [red_teamer.id]
    assert store.campaigns.invite(campaign.id, red_teamer.id, actor="admin").members == [
        red_teamer.id
    ]
    assert [c.id for c in store.campaigns.find(member=red_teamer.id)] == [campaign.id]
    assert store.campaigns.find(member=outsider.id) == []
    with pytest.raises(RecordNotFoundError):
        store.campaigns.start_conversation(campaign.id, outsider.id)

    conversation = store.campaigns.start_conversation(campaign.id, red_teamer.id)
    first = store.campaigns.add_exchange(
        conversation.id, _exchange(blocked=True), account_id=red_teamer.id
    )
    second = store.campaigns.add_exchange(
        conversation.id, _exchange("pretend you are my grandma"), account_id=red_teamer.id
    )
    assert (first.turn, second.turn) == (1, 2)
    with pytest.raises(RecordNotFoundError):  # someone else's conversation
        store.campaigns.add_exchange(conversation.id, _exchange(), account_id=outsider.id)

    store.campaigns.set_status(campaign.id, "closed", actor="admin")
    with pytest.raises(InputError, match="closed"):
        store.campaigns.add_exchange(conversation.id, _exchange(), account_id=red_teamer.id)


def test_labels_need_a_category_for_attacks_and_only_the_owner_labels(store: Store) -> None:
    campaign = store.campaigns.create(
        NewCampaign(name="c", model="m", categories=["violent_extremism"]), actor="admin"
    )
    red_teamer, other = _account(store, "red_teamer"), _account(store, "red_teamer")
    store.campaigns.invite(campaign.id, red_teamer.id, actor="admin")
    conversation = store.campaigns.start_conversation(campaign.id, red_teamer.id)
    turn = store.campaigns.add_exchange(conversation.id, _exchange(), account_id=red_teamer.id)
    categories = frozenset({"violent_extremism", "self_harm"})
    with pytest.raises(InputError, match="needs the category"):
        store.campaigns.label(
            turn.id, ExchangeLabel(outcome="jailbreak"), actor="rt", account_id=red_teamer.id
        )
    with pytest.raises(InputError, match="unknown category 'made_up'"):
        store.campaigns.label(
            turn.id,
            ExchangeLabel(outcome="jailbreak", category="made_up"),
            actor="rt",
            account_id=red_teamer.id,
            categories=categories,
        )
    with pytest.raises(RecordNotFoundError):
        store.campaigns.label(
            turn.id, ExchangeLabel(outcome="over_refusal"), actor="x", account_id=other.id
        )
    labelled = store.campaigns.label(
        turn.id,
        ExchangeLabel(outcome="jailbreak", category="violent_extremism", note="<b>grandma</b>"),
        actor="rt",
        account_id=red_teamer.id,
        categories=categories,
    )
    assert labelled.label is not None and labelled.label.outcome == "jailbreak"
    (again,) = store.campaigns.conversations(campaign.id)
    assert again.exchanges[0].label == labelled.label
    assert again.exchanges[0].label.note == "<b>grandma</b>"  # stored as written; escaped on output


def test_media_are_loaded_only_when_asked(store: Store) -> None:
    campaign = store.campaigns.create(NewCampaign(name="c", model="m"), actor="admin")
    red_teamer = _account(store, "red_teamer")
    store.campaigns.invite(campaign.id, red_teamer.id, actor="admin")
    conversation = store.campaigns.start_conversation(campaign.id, red_teamer.id)
    image = NewExchange(
        **{
            **_exchange().model_dump(),
            "modality": "image",
            "image": b"\x89PNG fake bytes",
            "image_media_type": "image/png",
        }
    )
    turn = store.campaigns.add_exchange(conversation.id, image, account_id=red_teamer.id)
    listed = store.campaigns.conversation(conversation.id).exchanges[0]
    assert listed.image is None and listed.image_media_type == "image/png"
    assert (
        store.campaigns.exchange(turn.id, account_id=red_teamer.id).image == b"\x89PNG fake bytes"
    )


# -- review queue ---------------------------------------------------------------------------------


def test_overturning_a_suspension_unbans_in_the_same_transaction(store: Store) -> None:
    account = _account(store)
    policy = StrikePolicy(threshold=2)
    for _ in range(2):
        store.record_decision(
            NewDecision(
                request_id="r",
                account_id=account.id,
                endpoint="chat",
                model="m",
                status="blocked",
                blocked=True,
                layer="input",
                categories=["violent_extremism"],
                severity="high",
                clause=None,
                audience="adult",
                latency_ms=1.0,
            )
        )
    assert store.apply_strikes(account.id, policy) is not None
    (item,) = store.review.items(kind="suspension")
    assert item.account_id == account.id and item.reasons == ["strikes"]
    assert item.details["count"] == 2
    resolved = store.review.resolve(item.id, "overturned", actor="reviewer:1", note="false alarm")
    assert resolved.status == "resolved" and resolved.label == {"unbanned": True}
    assert store.get_account(account.id).status == "active"
    with pytest.raises(RecordConflictError, match="already overturned by reviewer:1"):
        store.review.resolve(item.id, "confirmed", actor="reviewer:2")
    with pytest.raises(InputError, match="confirmed or overturned"):
        store.review.resolve(item.id, "approved", actor="reviewer:2")


def test_red_team_traffic_never_counts_towards_strikes(store: Store) -> None:
    account = _account(store, "red_teamer")
    for _ in range(3):
        store.record_decision(
            NewDecision(
                request_id="r",
                account_id=account.id,
                endpoint="console",
                model="m",
                status="blocked",
                blocked=True,
                layer="input",
                categories=["violent_extremism"],
                severity="critical",
                clause=None,
                audience="adult",
                latency_ms=1.0,
                traffic="red_team",
            )
        )
    assert store.apply_strikes(account.id, StrikePolicy(threshold=1)) is None
    assert {d.traffic for d in store.list_decisions(account_id=account.id)} == {"red_team"}


def test_a_hash_match_is_queued_for_review(store: Store) -> None:
    account = _account(store)
    match = store.record_hash_match(
        account_id=account.id,
        details={"request_id": "req-9", "match": {"bank": "ncmec"}},
        dedupe_key="k",
        report=True,
        ban=True,
        deliver=False,
        ban_reason="known-bad media",
    )
    (item,) = store.review.items(kind="hash_match")
    assert item.report_id == match.report.id if match.report else False
    assert item.reasons == ["known_bad_media", "banned"] and item.request_id == "req-9"
    # The retried upload files no second report and queues nothing new.
    store.record_hash_match(
        account_id=account.id,
        details={"request_id": "req-9", "match": {"bank": "ncmec"}},
        dedupe_key="k",
        report=True,
        ban=True,
        deliver=False,
        ban_reason="known-bad media",
    )
    assert len(store.review.items(kind="hash_match")) == 1


def test_one_open_appeal_per_account_and_granting_it_unbans(store: Store) -> None:
    account = _account(store)
    store.ban(account.id, reason="spam", actor="admin")
    appeal = store.review.appeal(account.id, message="I was testing my own app")
    assert appeal.details["ban_reason"] == "spam"
    with pytest.raises(RecordConflictError, match="already has an open appeal"):
        store.review.appeal(account.id, message="please")
    store.review.resolve(appeal.id, "overturned", actor="reviewer:1")
    assert store.get_account(account.id).status == "active"
    assert store.review.appeal(account.id, message="another one").status == "open"


def test_approving_an_opt_out_request_adds_the_opt_out(store: Store) -> None:
    request = store.review.add(
        "opt_out_request",
        reasons=["opt_out_request"],
        details={"name": "Jane Painter", "kind": "artist", "aliases": ["J. Painter"]},
    )
    resolved = store.review.resolve(request.id, "approved", actor="reviewer:1")
    (opt_out,) = store.list_opt_outs()
    assert opt_out.name == "Jane Painter" and opt_out.aliases == ["J. Painter"]
    assert resolved.label == {"opt_out_id": opt_out.id}
    assert store.review.counts()["opt_out_request"] == 0


def test_concurrent_reviewers_one_wins_and_the_other_is_told(
    store: Store, database_url: str
) -> None:
    for _ in range(5):
        account = _account(store)
        store.ban(account.id, reason="x", actor="admin")
        item = store.review.appeal(account.id, message="let me back in")
        barrier = threading.Barrier(2)
        outcomes: dict[str, object] = {}

        def act(
            reviewer: str,
            resolution: str,
            item_id: str = item.id,
            barrier: threading.Barrier = barrier,
            outcomes: dict[str, object] = outcomes,
        ) -> None:
            with Store(database_url) as own:
                barrier.wait()
                try:
                    outcomes[reviewer] = own.review.resolve(item_id, resolution, actor=reviewer)
                except RecordConflictError as error:
                    outcomes[reviewer] = error

        threads = [
            threading.Thread(target=act, args=("reviewer:a", "overturned")),
            threading.Thread(target=act, args=("reviewer:b", "confirmed")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        errors = [o for o in outcomes.values() if isinstance(o, RecordConflictError)]
        assert len(errors) == 1, outcomes
        final = store.review.get(item.id)
        assert final.resolved_by in ("reviewer:a", "reviewer:b")
        assert final.resolved_by in str(errors[0])
        # The loser's action did nothing: the account's state follows the winner alone.
        expected = "active" if final.resolution == "overturned" else "banned"
        assert store.get_account(account.id).status == expected
        audits = [e for e in store.list_audit(action="review.resolve") if e.target == item.id]
        assert len(audits) == 1
