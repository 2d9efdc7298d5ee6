"""Reports of known-bad media leave the gateway: a signed webhook that never loses one, and export.

The store is the outbox. A report filed while a receiver is configured is written ``pending`` in
the same transaction as the match that caused it, so it exists before the client gets its
answer. :class:`ReportDeliverer` then posts it to the receiver until a 2xx comes back, with
exponential backoff and jitter, across restarts (the schedule lives in the row, not in memory)
and across replicas (a claim takes a lease on the row; see
:meth:`~safestack.store.Store.claim_due_report`). Delivery is *at least once*: a deliverer that
dies after the receiver accepted a report but before it recorded so will post it again, which
is why every request names the report in ``X-Safestack-Report-Id`` for the receiver to dedupe.

Each request is signed like Stripe's and GitHub's webhooks are, so a receiver can tell it came
from this gateway and was not replayed long after::

    X-Safestack-Timestamp: 1735689600
    X-Safestack-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

The secret comes from the environment variable the configuration names; it is never written to
the configuration file, the database, a log line, an error message or a repr.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from safestack.errors import ConfigError, InputError, SafestackError

if TYPE_CHECKING:
    from safestack.store import Report, Store

__all__ = [
    "REPORT_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ReportDeliverer",
    "ReportReceiverConfig",
    "ReporterInfo",
    "cybertipline_report",
    "report_payload",
    "sign_payload",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Safestack-Signature"
TIMESTAMP_HEADER = "X-Safestack-Timestamp"
REPORT_ID_HEADER = "X-Safestack-Report-Id"

#: The version of the webhook body and of the export document; bumped when a field changes.
PAYLOAD_VERSION = 1
_CHILD_PORNOGRAPHY = "Child Pornography (possession, manufacture, and distribution)"
_LEASE_MARGIN_S = 60.0  # beyond the request timeout, before another deliverer may retry a claim
_JITTER = 0.25  # a retry waits between 75 % and 100 % of its backoff

log = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReporterInfo(_Strict):
    """Who files the report: the company and contact a hotline report names as the reporter.

    Goes into the CyberTipline-style export (``reporter``, ``personOrUserReported.espService``,
    ``incidentSummary.incidentType``). Nothing here is secret, so it may live in the file.
    """

    company_name: str | None = Field(default=None, description="The reporting company.")
    service: str | None = Field(
        default=None, description="The product the reported user used (espService)."
    )
    first_name: str | None = Field(default=None, description="The reporting person's first name.")
    last_name: str | None = Field(default=None, description="The reporting person's last name.")
    email: str | None = Field(
        default=None,
        description="The reporting person's email (the CyberTipline requires one).",
    )
    company_template: str | None = Field(
        default=None,
        description="Standing text for every report: how to serve legal process, data retention, "
        "24-hour contact (companyTemplate).",
    )
    terms_of_service: str | None = Field(default=None, description="Relevant terms of service.")
    legal_url: str | None = Field(default=None, description="A page with further information.")
    incident_type: str = Field(
        default=_CHILD_PORNOGRAPHY,
        description="incidentType for hash-match reports; the default is the CyberTipline's "
        "category for child sexual abuse material.",
    )


class ReportReceiverConfig(_Strict):
    """Where reports are delivered, how they are signed, and how hard delivery tries.

    With the defaults a report is retried 20 times over about 4½ hours (1 s, 2 s, 4 s, … capped
    at an hour between tries), then marked ``failed``, still listed and exportable, and an
    administrator can queue it again (``POST /admin/reports/{id}/redeliver``).
    """

    url: str = Field(description="The receiver's URL; reports are POSTed to it as JSON.")
    secret_env: str = Field(
        description="Environment variable holding the HMAC-SHA256 signing secret (required: the "
        "gateway refuses to deliver unsigned reports)."
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Budget for one delivery attempt.")
    max_attempts: int = Field(
        default=20, ge=1, description="Attempts before a report is marked failed."
    )
    backoff_initial_s: float = Field(
        default=1.0, gt=0, description="Wait after the first failed attempt; doubles each time."
    )
    backoff_max_s: float = Field(default=3600.0, gt=0, description="Longest wait between tries.")
    reporter: ReporterInfo = Field(
        default_factory=ReporterInfo, description="Reporter details for the exported reports."
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {value!r}")
        return value

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not value or not value.replace("_", "a").isalnum() or value[0].isdigit():
            raise ValueError(
                f"secret_env must name an environment variable (e.g. SAFESTACK_REPORT_SECRET), "
                f"got {value!r}; the secret itself never goes in the file"
            )
        return value

    @model_validator(mode="after")
    def _backoff(self) -> Self:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) must be at least backoff_initial_s "
                f"({self.backoff_initial_s})"
            )
        return self

    def secret(self) -> bytes:
        """The signing secret from the environment; a ConfigError naming the variable if unset."""
        value = os.environ.get(self.secret_env, "")
        if not value:
            raise ConfigError(
                f"the report receiver's signing secret: environment variable {self.secret_env} "
                "is not set (reports are never delivered unsigned)",
                path="environment",
            )
        return value.encode("utf-8")

    def backoff_s(self, attempts: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``attempts`` failed attempts: exponential, capped, jittered.

        ``min(backoff_max_s, backoff_initial_s * 2 ** (attempts - 1))``, times a random factor in
        [0.75, 1]: replicas that failed together do not retry in lockstep.

        >>> config = ReportReceiverConfig(url="https://hotline.example/r", secret_env="S")
        >>> 0.75 <= config.backoff_s(1) <= 1.0, 3 * 512 <= 4 * config.backoff_s(10) <= 4 * 512
        (True, True)
        """
        exponent = min(max(attempts - 1, 0), 64)  # 2**64 s is past any cap
        base = min(self.backoff_max_s, self.backoff_initial_s * 2.0**exponent)
        return base * (1.0 - _JITTER * (rng or random).random())


# -- signatures ------------------------------------------------------------------------------------


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign_payload(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Safestack-Signature`` value: ``sha256=`` + hex HMAC of ``timestamp.body``."""
    message = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    max_age_s: float | None = 300.0,
    now: float | None = None,
) -> bool:
    """Whether a webhook request is genuine: for receivers of the reports.

    ``timestamp`` and ``header`` are the ``X-Safestack-Timestamp`` and ``X-Safestack-Signature``
    headers, ``body`` the raw request body (before any JSON parsing). The comparison takes
    constant time. A timestamp more than ``max_age_s`` from ``now`` (default: the clock) is
    refused, so a captured request cannot be replayed later; ``None`` skips that check.

    >>> body = b'{"report": {}}'
    >>> header = sign_payload("s3cret", "1700000000", body)
    >>> verify_signature("s3cret", "1700000000", body, header, now=1700000010)
    True
    >>> verify_signature("other", "1700000000", body, header, now=1700000010)
    False
    """
    if not isinstance(timestamp, str) or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if max_age_s is not None:
        clock = time.time() if now is None else now
        if abs(clock - int(timestamp)) > max_age_s:
            return False
    expected = sign_payload(secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("ascii", "replace"))


# -- payloads --------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _drop_empty(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if item not in (None, "", [], {})}


def cybertipline_report(report: Report, reporter: ReporterInfo | None = None) -> dict[str, Any]:
    """A hash-match report as a CyberTipline-style document, for review and submission.

    *CyberTipline-style*, not a certified integration with NCMEC's CyberTipline Reporting API:
    the field names follow that API's published documentation
    (https://report.cybertip.org/ispws/documentation/) so that a reviewer, or the code that
    submits to the hotline, can map it over one to one, but the document is JSON, not the API's
    XML, and nothing here has been validated by NCMEC. Fields used:

    * ``report.incidentSummary``: ``incidentType``, ``incidentDateTime`` (ISO 8601, UTC),
      ``incidentDateTimeDescription``;
    * ``report.reporter``: ``reportingPerson`` (``firstName``, ``lastName``, ``email[].email``),
      ``companyTemplate``, ``termsOfService``, ``legalUrl`` — all from configuration;
    * ``report.personOrUserReported``: ``espIdentifier`` (the account id), ``espService``;
    * ``report.additionalInfo``: the match in words;
    * ``files[]`` (as for *Submit File Details*): ``fileRelevance`` (``Reported``),
      ``fileViewedByEsp`` (``false``: a hash match is not a human review, which matters to the
      warrant rules for whoever opens the file later), ``originalFileHash[]`` (``hashType``,
      ``value``: MD5 and SHA256 of the bytes as received), ``details[]`` (``name``, ``value``,
      ``type`` ``HASH`` for the PDQ hash), ``additionalInfo[]``.

    The file itself is not part of it: safestack keeps hashes, never the media, so the file has
    to come from wherever the operator retains uploads, if anywhere. Blank reporter fields are
    left out and listed in ``missing``, so nothing goes to a hotline half-filled by accident.
    """
    if report.kind != "hash_match":
        raise InputError(
            f"report {report.id} is a {report.kind!r} report; only 'hash_match' reports have a "
            "CyberTipline-style export"
        )
    reporter = reporter or ReporterInfo()
    details = report.details
    match: dict[str, Any] = details.get("match") or {}
    media: dict[str, Any] = details.get("media") or {}
    detected = details.get("detected_at") or _iso(report.created_at)
    distance = match.get("distance")
    how = "exact" if distance is None else f"PDQ Hamming distance {distance} of 256 bits"
    summary = (
        f"An image in a request to {details.get('endpoint', 'the service')} matched the "
        f"known-bad hash bank "
        f"{match.get('bank')!r} ({match.get('hash_type')} {match.get('value')}, {how}). "
        f"Request {details.get('request_id')}; safestack report {report.id}. "
        "Detected automatically by hash matching; the file was not viewed by a person."
    )
    reporting_person = _drop_empty(
        {
            "firstName": reporter.first_name,
            "lastName": reporter.last_name,
            "email": [{"email": reporter.email}] if reporter.email else None,
        }
    )
    file_hashes = [
        {"hashType": hash_type, "value": media[key]}
        for hash_type, key in (("MD5", "md5"), ("SHA256", "sha256"))
        if media.get(key)
    ]
    file_details = [
        {"name": "PDQ", "value": media["pdq"], "type": "HASH"} if media.get("pdq") else None,
        {"name": "PDQ quality", "value": str(media["pdq_quality"])}
        if media.get("pdq_quality") is not None
        else None,
        {"name": "Matched hash bank", "value": str(match.get("bank"))},
        {"name": "Matched hash", "value": f"{match.get('hash_type')}:{match.get('value')}"},
    ]
    document = {
        "incidentSummary": {
            "incidentType": reporter.incident_type,
            "incidentDateTime": detected,
            "incidentDateTimeDescription": "when the gateway matched the file against the bank",
        },
        "reporter": _drop_empty(
            {
                "reportingPerson": reporting_person,
                "companyTemplate": reporter.company_template
                or (reporter.company_name and f"Reported by {reporter.company_name}."),
                "termsOfService": reporter.terms_of_service,
                "legalUrl": reporter.legal_url,
            }
        ),
        "personOrUserReported": _drop_empty(
            {"espIdentifier": report.account_id, "espService": reporter.service}
        ),
        "additionalInfo": summary,
    }
    missing = [
        name
        for name, value in (
            ("reporter.reportingPerson.email", reporter.email),
            ("reporter.reportingPerson.firstName", reporter.first_name),
            ("reporter.reportingPerson.lastName", reporter.last_name),
            ("personOrUserReported.espIdentifier", report.account_id),
        )
        if not value
    ]
    return {
        "format": "safestack.cybertipline-style",
        "version": PAYLOAD_VERSION,
        "notice": "CyberTipline-style export (field names after NCMEC's CyberTipline Reporting "
        "API); not a certified integration. Review before submitting.",
        "report": _drop_empty(document),
        "files": [
            _drop_empty(
                {
                    "fileRelevance": "Reported",
                    "fileViewedByEsp": False,
                    "originalFileHash": file_hashes,
                    "details": [detail for detail in file_details if detail is not None],
                    "additionalInfo": [f"request endpoint: {details.get('endpoint')}"],
                }
            )
        ],
        "source": _drop_empty(
            {
                "reportId": report.id,
                "requestId": details.get("request_id"),
                "endpoint": details.get("endpoint"),
                "audience": details.get("audience"),
                "createdAt": _iso(report.created_at),
            }
        ),
        "missing": missing,
    }


def report_payload(report: Report, reporter: ReporterInfo | None = None) -> dict[str, Any]:
    """The webhook body: the report as stored, plus its CyberTipline-style export if it has one.

    Delivery bookkeeping (attempts, errors) is left out: it changes between attempts, and the
    receiver should get the same document every time it is sent.
    """
    body: dict[str, Any] = {
        "type": "safestack.report",
        "version": PAYLOAD_VERSION,
        "report": {
            "id": report.id,
            "kind": report.kind,
            "account_id": report.account_id,
            "created_at": _iso(report.created_at),
            "details": {k: v for k, v in report.details.items() if k != "dedupe_key"},
        },
    }
    if report.kind == "hash_match":
        body["cybertipline"] = cybertipline_report(report, reporter)
    return body


# -- delivery --------------------------------------------------------------------------------------


class ReportDeliverer:
    """Posts pending reports to the receiver: one pass at a time, or a background thread.

    Construction reads the signing secret and refuses (:class:`~safestack.errors.ConfigError`)
    when it is not set. :meth:`deliver_due` is one pass; :meth:`start` runs passes every
    ``poll_interval_s`` on a daemon thread until :meth:`stop`. Safe to run in every replica at
    once: each report is claimed by one of them at a time (see the module docstring).
    """

    def __init__(
        self,
        store: Store,
        config: ReportReceiverConfig,
        *,
        poll_interval_s: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        if poll_interval_s <= 0:
            raise InputError(f"poll_interval_s must be positive, got {poll_interval_s!r}")
        self.store = store
        self.config = config
        self.poll_interval_s = poll_interval_s
        self._secret = config.secret()
        self._rng = rng or random.Random()
        self._lease_s = config.timeout_s * 2 + _LEASE_MARGIN_S
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ReportDeliverer(url={self.config.url!r}, store={self.store.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.config.timeout_s,
                    follow_redirects=False,  # a redirect is not an acceptance
                    headers={"User-Agent": "safestack-report-deliverer"},
                )
            return self._client

    def deliver_due(self, now: datetime | None = None) -> int:
        """Post every report due at ``now`` (default: the clock) once; the number delivered.

        A report that fails is rescheduled (or marked ``failed`` after ``max_attempts``) and is
        not tried again in the same pass. Database errors propagate; an HTTP failure never does:
        it is the report's ``last_error``.
        """
        return self._deliver(now, stop=None)

    def _deliver(self, now: datetime | None, *, stop: threading.Event | None) -> int:
        pass_now = now or datetime.now(UTC)
        delivered = 0
        while stop is None or not stop.is_set():
            report = self.store.claim_due_report(
                now=pass_now, lease_s=self._lease_s, max_attempts=self.config.max_attempts
            )
            if report is None:
                break
            error = self._post(report)
            moment = now or datetime.now(UTC)
            if error is None:
                self.store.mark_report_delivered(report.id, now=moment)
                delivered += 1
                log.info("report %s delivered (attempt %d)", report.id, report.delivery_attempts)
                continue
            retry_at: datetime | None = None
            if report.delivery_attempts < self.config.max_attempts:
                wait = self.config.backoff_s(report.delivery_attempts, rng=self._rng)
                retry_at = moment + timedelta(seconds=wait)
            self.store.mark_report_attempt_failed(report.id, error=error, retry_at=retry_at)
            if retry_at is None:
                log.error(
                    "report %s NOT delivered after %d attempts (%s); marked failed, an "
                    "administrator can redeliver it",
                    report.id,
                    report.delivery_attempts,
                    error,
                )
            else:
                log.warning(
                    "report %s delivery attempt %d failed (%s); next try at %s",
                    report.id,
                    report.delivery_attempts,
                    error,
                    _iso(retry_at),
                )
        return delivered

    def _post(self, report: Report) -> str | None:
        """One attempt: ``None`` on a 2xx answer, else a short reason (no URL, no secret)."""
        body = json.dumps(
            report_payload(report, self.config.reporter), sort_keys=True, separators=(",", ":")
        ).encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign_payload(self._secret, timestamp, body),
            REPORT_ID_HEADER: report.id,
        }
        try:
            response = self._http().post(self.config.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            # httpx's messages for transport errors name the failure, not the request.
            return f"{type(error).__name__}: {error}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def start(self) -> None:
        """Deliver in the background every ``poll_interval_s`` until :meth:`stop`."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._run,
                args=(self._stopping,),
                name="safestack-report-deliverer",
                daemon=True,
            )
            self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._deliver(None, stop=stop)
            except SafestackError as error:  # the database is down: reports wait in it
                log.warning("report delivery pass failed: %s", error)
            except Exception:  # the thread must outlive any bug in one pass
                log.exception("report delivery pass failed")
            stop.wait(self.poll_interval_s)

    def stop(self) -> None:
        """Stop the background thread and close the HTTP client.

        Prompt: the thread wakes at once and no new attempt starts; one already in flight ends
        within ``timeout_s``. If it is abandoned, its lease runs out and another pass retries it.
        """
        self._stopping.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.config.timeout_s + 1.0)
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
