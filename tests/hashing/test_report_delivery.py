"""Report delivery over real HTTP on 127.0.0.1, against real databases.

The receiver here is a small ``http.server`` that checks every request's HMAC signature the way
a real receiver would (with :func:`verify_signature`) and answers what the test scripts. It binds
a port chosen in advance, so a test can make the receiver "come up" where the deliverer has been
failing to connect. Backoff is tested by passing ``now`` explicitly, never by sleeping.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from loopback import free_port
from safestack.errors import ConfigError
from safestack.gateway import GatewayConfig, create_app
from safestack.hashing._enforce import Enforcer
from safestack.hashing._reports import (
    REPORT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ReportDeliverer,
    ReportReceiverConfig,
    sign_payload,
    verify_signature,
)
from safestack.hashing._types import Action, ImageHashes, Match
from safestack.stack import SafetyStack
from safestack.store import Store

SECRET = "whsec-test-0123456789abcdef"
SECRET_ENV = "SAFESTACK_TEST_REPORT_SECRET"
HASHES = ImageHashes(sha256="ab" * 32, md5="cd" * 16, pdq="ef" * 32, quality=87)


@dataclass(frozen=True)
class Delivery:
    report_id: str
    body: dict[str, Any]
    signature_ok: bool


class Receiver:
    """A report receiver on 127.0.0.1:``port``: scripted statuses, every request recorded."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.deliveries: list[Delivery] = []
        self.statuses: deque[int] = deque()
        self.default_status = 200
        self.delay_s = 0.0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/reports"

    def accepted(self) -> list[str]:
        """Report ids the receiver answered 2xx for, in order."""
        return [d.report_id for d in self.deliveries if d.signature_ok and d.body.get("_ok")]

    def handle(self, headers: dict[str, str], raw: bytes) -> int:
        ok = verify_signature(
            SECRET,
            headers.get(TIMESTAMP_HEADER.lower(), ""),
            raw,
            headers.get(SIGNATURE_HEADER.lower(), ""),
        )
        with self._lock:
            status = self.statuses.popleft() if self.statuses else self.default_status
            body = json.loads(raw)
            body["_ok"] = 200 <= status < 300
            self.deliveries.append(Delivery(headers.get(REPORT_ID_HEADER.lower(), ""), body, ok))
        return status if ok else 401


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if receiver.delay_s:
                threading.Event().wait(receiver.delay_s)
            status = receiver.handle({k.lower(): v for k, v in self.headers.items()}, raw)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = False  # server_close() joins the handler threads

    server = Server(("127.0.0.1", receiver.port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store(database_url) as migrated:
        migrated.migrate()
        yield migrated


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver(free_port())) as up:
        yield up


def _config(url: str, **options: Any) -> ReportReceiverConfig:
    return ReportReceiverConfig(url=url, secret_env=SECRET_ENV, timeout_s=5, **options)


def _file_report(store: Store, config: ReportReceiverConfig, request_id: str = "req-1") -> str:
    """A real hash-match report through the enforcer, queued for ``config``'s receiver."""
    bank = next(iter(store.list_hash_banks()), None) or store.create_hash_bank(
        name="ncmec", actor="admin"
    )
    account = store.create_account(audience="adult", actor="admin")
    match = Match(
        bank=bank.name,
        bank_id=bank.id,
        hash_type="sha256",
        value="ab" * 32,
        distance=None,
        actions=frozenset(Action),
    )
    done = Enforcer(store, receiver=config).apply(
        match,
        account_id=account.id,
        request_id=request_id,
        endpoint="/v1/images/edits",
        hashes=HASHES,
    )
    assert done.report_id is not None
    return done.report_id


def test_a_report_is_delivered_signed_and_recorded(store: Store, receiver: Receiver) -> None:
    config = _config(receiver.url)
    report_id = _file_report(store, config)
    with ReportDeliverer(store, config) as deliverer:
        assert deliverer.deliver_due() == 1
        assert deliverer.deliver_due() == 0  # nothing left
    (delivery,) = receiver.deliveries
    assert delivery.signature_ok and delivery.report_id == report_id
    body = delivery.body
    assert body["type"] == "safestack.report" and body["report"]["id"] == report_id
    assert body["report"]["details"]["media"]["sha256"] == HASHES.sha256
    assert "dedupe_key" not in body["report"]["details"]
    assert body["cybertipline"]["files"][0]["fileViewedByEsp"] is False
    report = store.get_report(report_id)
    assert report.delivery_status == "delivered" and report.delivery_attempts == 1
    assert report.delivered_at is not None and report.next_attempt_at is None
    (entry,) = store.list_audit(action="report.delivered")
    assert entry.target == report_id


def test_receiver_down_then_up_delivers_exactly_once(store: Store) -> None:
    receiver = Receiver(free_port())  # nothing listens there yet
    config = _config(receiver.url, backoff_initial_s=10, backoff_max_s=100)
    report_id = _file_report(store, config)
    start = datetime.now(UTC)
    with ReportDeliverer(store, config) as deliverer:
        assert deliverer.deliver_due(now=start) == 0
        down = store.get_report(report_id)
        assert down.delivery_status == "pending" and down.delivery_attempts == 1
        assert down.last_error is not None and "Connect" in down.last_error
        assert down.next_attempt_at is not None
        assert (
            start + timedelta(seconds=7.5) <= down.next_attempt_at <= start + timedelta(seconds=10)
        )
        # Not due yet: the same moment makes no new attempt.
        assert deliverer.deliver_due(now=start) == 0
        assert store.get_report(report_id).delivery_attempts == 1
        # Second failure: the wait doubles.
        later = start + timedelta(seconds=11)
        assert deliverer.deliver_due(now=later) == 0
        again = store.get_report(report_id)
        assert again.delivery_attempts == 2 and again.next_attempt_at is not None
        assert (
            later + timedelta(seconds=15) <= again.next_attempt_at <= later + timedelta(seconds=20)
        )

        with running(receiver):
            assert deliverer.deliver_due(now=later + timedelta(seconds=5)) == 0  # not yet due
            assert receiver.deliveries == []
            assert deliverer.deliver_due(now=later + timedelta(seconds=21)) == 1
            assert deliverer.deliver_due(now=later + timedelta(days=1)) == 0
    assert receiver.accepted() == [report_id]
    report = store.get_report(report_id)
    assert report.delivery_status == "delivered" and report.delivery_attempts == 3


def test_an_error_answer_is_retried(store: Store, receiver: Receiver) -> None:
    config = _config(receiver.url)
    report_id = _file_report(store, config)
    receiver.statuses.extend([500])
    now = datetime.now(UTC)
    with ReportDeliverer(store, config) as deliverer:
        assert deliverer.deliver_due(now=now) == 0
        assert store.get_report(report_id).last_error == "HTTP 500"
        assert deliverer.deliver_due(now=now + timedelta(seconds=2)) == 1
    assert [d.report_id for d in receiver.deliveries] == [report_id, report_id]
    assert receiver.accepted() == [report_id]


def test_after_max_attempts_the_report_fails_and_can_be_redelivered(
    store: Store, receiver: Receiver
) -> None:
    config = _config(receiver.url, max_attempts=3, backoff_max_s=1)
    report_id = _file_report(store, config)
    receiver.default_status = 503
    now = datetime.now(UTC)
    with ReportDeliverer(store, config) as deliverer:
        for step in range(5):
            deliverer.deliver_due(now=now + timedelta(seconds=2 * step))
        failed = store.get_report(report_id)
        assert failed.delivery_status == "failed" and failed.delivery_attempts == 3
        assert failed.last_error == "HTTP 503" and failed.next_attempt_at is None
        assert len(receiver.deliveries) == 3
        assert [r.id for r in store.list_reports(delivery_status="failed")] == [report_id]
        (entry,) = store.list_audit(action="report.delivery_failed")
        assert entry.target == report_id and entry.details["attempts"] == 3

        requeued = store.redeliver_report(report_id, actor="admin:reviewer")
        assert requeued.delivery_status == "pending" and requeued.delivery_attempts == 0
        assert store.list_audit(action="report.redeliver")[0].actor == "admin:reviewer"
        receiver.default_status = 200
        assert deliverer.deliver_due() == 1
    assert store.get_report(report_id).delivery_status == "delivered"


def test_two_deliverers_on_one_database_never_send_a_report_twice(
    database_url: str, receiver: Receiver
) -> None:
    config = _config(receiver.url)
    receiver.delay_s = 0.02  # each post takes a moment: the passes overlap
    with Store(database_url) as first, Store(database_url) as second:
        first.migrate()
        report_ids = {_file_report(first, config, request_id=f"req-{i}") for i in range(8)}
        counts: list[int] = []
        barrier = threading.Barrier(2)

        def one_pass(store: Store) -> None:
            with ReportDeliverer(store, config) as deliverer:
                barrier.wait()
                counts.append(deliverer.deliver_due())

        threads = [threading.Thread(target=one_pass, args=(s,)) for s in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sum(counts) == 8
    delivered = [d.report_id for d in receiver.deliveries]
    assert sorted(delivered) == sorted(report_ids)  # each once, none twice


def test_an_abandoned_claim_is_retried_after_its_lease(store: Store, receiver: Receiver) -> None:
    """A deliverer that died mid-post leaves the report due again once its lease ends."""
    config = _config(receiver.url, max_attempts=2)
    report_id = _file_report(store, config)
    now = datetime.now(UTC)
    claimed = store.claim_due_report(now=now, lease_s=30, max_attempts=2)
    assert claimed is not None and claimed.id == report_id  # ...and the claimer crashes
    assert (
        store.claim_due_report(now=now + timedelta(seconds=29), lease_s=30, max_attempts=2) is None
    )
    with ReportDeliverer(store, config) as deliverer:
        assert deliverer.deliver_due(now=now + timedelta(seconds=31)) == 1
    assert store.get_report(report_id).delivery_attempts == 2
    # Used-up attempts with an abandoned last claim: failed at the next claim, not stuck pending.
    other = _file_report(store, config, request_id="req-2")
    now = datetime.now(UTC)
    assert store.claim_due_report(now=now, lease_s=1, max_attempts=1) is not None
    later = now + timedelta(seconds=2)
    assert store.claim_due_report(now=later, lease_s=1, max_attempts=1) is None
    assert store.get_report(other).delivery_status == "failed"


def test_the_background_thread_delivers_and_stops(store: Store, receiver: Receiver) -> None:
    config = _config(receiver.url)
    report_id = _file_report(store, config)
    deliverer = ReportDeliverer(store, config, poll_interval_s=0.05)
    deliverer.start()
    try:
        done = threading.Event()
        for _ in range(400):  # wait for the outcome, up to ~20 s: not a timing assertion
            if store.get_report(report_id).delivery_status == "delivered":
                done.set()
                break
            threading.Event().wait(0.05)
        assert done.is_set()
    finally:
        deliverer.stop()
    assert not any(t.name == "safestack-report-deliverer" for t in threading.enumerate())
    assert receiver.accepted() == [report_id]


def test_the_secret_is_required_and_never_shown(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    database_url: str,
) -> None:
    closed = Receiver(free_port())
    config = _config(closed.url, max_attempts=1)
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ConfigError, match=SECRET_ENV) as refused:
        ReportDeliverer(store, config)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    report_id = _file_report(store, config)
    with caplog.at_level(logging.DEBUG), ReportDeliverer(store, config) as deliverer:
        deliverer.deliver_due()
        shown = [repr(deliverer), repr(config), str(refused.value), caplog.text]
    assert store.get_report(report_id).delivery_status == "failed"
    assert "NOT delivered" in caplog.text
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            for table in ("reports", "audit_log"):
                shown.extend(
                    str(row) for row in connection.execute(sa.text(f"SELECT * FROM {table}"))
                )
    finally:
        engine.dispose()
    assert not any(SECRET in text for text in shown)


def test_signatures_verify_only_genuine_fresh_requests() -> None:
    body = b'{"report":{"id":"rep_1"}}'
    header = sign_payload(SECRET, "1700000000", body)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert verify_signature(SECRET, "1700000000", body, header, now=1_700_000_100)
    assert verify_signature(SECRET.encode(), "1700000000", body, header, now=1_700_000_100)
    assert not verify_signature("wrong", "1700000000", body, header, now=1_700_000_100)
    assert not verify_signature(SECRET, "1700000000", body + b" ", header, now=1_700_000_100)
    assert not verify_signature(SECRET, "1700000001", body, header, now=1_700_000_100)
    assert not verify_signature(SECRET, "1700000000", body, header, now=1_700_001_000)  # stale
    assert verify_signature(SECRET, "1700000000", body, header, max_age_s=None)
    assert not verify_signature(SECRET, "not-a-time", body, header)
    assert not verify_signature(SECRET, "1700000000", body, "sha256=ü", now=1_700_000_000)


def test_config_refuses_a_secret_in_place_of_its_variable_name() -> None:
    with pytest.raises(ValueError, match="environment variable"):
        ReportReceiverConfig(url="https://hotline.example/r", secret_env="whsec abc/123")
    with pytest.raises(ValueError, match="backoff_max_s"):
        ReportReceiverConfig(
            url="https://hotline.example/r", secret_env="S", backoff_initial_s=10, backoff_max_s=1
        )


# -- the admin API ---------------------------------------------------------------------------------

ADMIN_KEY = "report-admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def light_stack() -> SafetyStack:
    """The stack is not under test here; routes that use only the store never load its models."""
    return SafetyStack.from_config("system_mitigations_and_model_refusals")


def test_admin_report_routes(tmp_path: Any, receiver: Receiver, light_stack: SafetyStack) -> None:
    url = f"sqlite:///{tmp_path}/gateway.db"
    config = GatewayConfig(
        database_url=url,
        reports={
            "url": receiver.url,
            "secret_env": SECRET_ENV,
            "reporter": {"email": "trust@example.com", "service": "Example Images"},
        },
    )
    with Store(url) as store:
        store.migrate()
        report_id = _file_report(store, config.reports)  # type: ignore[arg-type]
        app = create_app(config, admin_key=ADMIN_KEY, store=store, stack=light_stack)
        admin = {"Authorization": f"Bearer {ADMIN_KEY}", "X-Safestack-Actor": "reviewer"}
        client = TestClient(app)  # no lifespan: the store is migrated, no models are needed
        try:
            listed = client.get("/admin/reports", headers=admin)
            assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [report_id]
            pending = client.get("/admin/reports?delivery_status=pending", headers=admin)
            assert [r["id"] for r in pending.json()] == [report_id]
            one = client.get(f"/admin/reports/{report_id}", headers=admin)
            assert one.status_code == 200 and one.json()["delivery_status"] == "pending"
            assert client.get("/admin/reports/rep_missing", headers=admin).status_code == 404
            export = client.get(f"/admin/reports/{report_id}/export", headers=admin)
            assert export.status_code == 200
            document = export.json()
            assert document["report"]["personOrUserReported"]["espService"] == "Example Images"
            assert document["report"]["reporter"]["reportingPerson"]["email"] == [
                {"email": "trust@example.com"}
            ]
            flag = store.create_report(kind="user_flag", account_id=None, details={}, actor="a")
            assert client.get(f"/admin/reports/{flag.id}/export", headers=admin).status_code == 409
            redo = client.post(f"/admin/reports/{report_id}/redeliver", headers=admin)
            assert redo.status_code == 200 and redo.json()["delivery_status"] == "pending"
            (entry,) = store.list_audit(action="report.redeliver")
            assert "reviewer" in entry.actor
            assert client.get(f"/admin/reports/{report_id}").status_code == 401
        finally:
            client.close()
        # Without a receiver there is nowhere to redeliver to; the export still works.
        bare = create_app(
            GatewayConfig(database_url=url), admin_key=ADMIN_KEY, store=store, stack=light_stack
        )
        client = TestClient(bare)
        try:
            refused = client.post(f"/admin/reports/{report_id}/redeliver", headers=admin)
            assert refused.status_code == 409 and "receiver" in refused.text
            missing = client.post("/admin/reports/rep_missing/redeliver", headers=admin)
            assert missing.status_code == 404
            export = client.get(f"/admin/reports/{report_id}/export", headers=admin).json()
            assert "reporter.reportingPerson.email" in export["missing"]
        finally:
            client.close()
