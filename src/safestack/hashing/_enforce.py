"""What a known-bad media match does: reject the request, report it, ban the account.

The published image-generation system cards describe this for confirmed matches against known
child sexual abuse material: the request is refused, the material is reported to the hotline,
and the account is banned. Each bank enables any of the three (:class:`~safestack.hashing.
_types.Action`); they are independent, so a bank that only reports (a "watch" bank under
evaluation) still reports and bans as configured even though requests pass.

The report and the ban are written to the store before :meth:`Enforcer.apply` returns, in one
transaction with their audit entries, so a gateway that crashes right after answering the client
has lost nothing, and one that cannot reach its database raises here: the caller must then
refuse the request (fail closed), never serve it.

Retries: a client that sends the same image again (a retry, or a script) must not file the same
incident again and again. A report is keyed by (account, bank, matched hash, image SHA-256);
a match with the same key within ``dedupe_window_s`` (default 24 h) returns the earlier report
(``Enforcement.duplicate``) instead of filing a new one, while the match itself is still
audit-logged with its own request id. A different image, bank entry or account is a new report,
and so is the same one after the window (a new incident).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from safestack.errors import InputError
from safestack.hashing._types import Action, ImageHashes, Match

if TYPE_CHECKING:
    from safestack.hashing._reports import ReportReceiverConfig
    from safestack.store import Store

__all__ = ["Enforcement", "Enforcer"]

_DEFAULT_DEDUPE_WINDOW_S = 86_400.0


@dataclass(frozen=True)
class Enforcement:
    """What was done about one match.

    ``rejected``: the caller must refuse the request. ``report_id``: the report filed (or the
    earlier one it repeats, when ``duplicate``). ``banned``: the account is now banned for
    known-bad media.
    """

    match: Match
    rejected: bool
    report_id: str | None
    banned: bool
    duplicate: bool = False


class Enforcer:
    """Applies a bank's actions for a match, durably, before the caller answers.

    ``receiver`` is the configured report receiver, if any: reports filed while it is set are
    queued for delivery (:class:`~safestack.hashing._reports.ReportDeliverer` sends them).
    """

    def __init__(
        self,
        store: Store,
        *,
        receiver: ReportReceiverConfig | None,
        dedupe_window_s: float = _DEFAULT_DEDUPE_WINDOW_S,
    ) -> None:
        if dedupe_window_s < 0:
            raise InputError(f"dedupe_window_s must be 0 or more, got {dedupe_window_s!r}")
        self.store = store
        self.receiver = receiver
        self.dedupe_window_s = dedupe_window_s

    def apply(
        self,
        match: Match,
        *,
        account_id: str | None,
        request_id: str,
        endpoint: str,
        hashes: ImageHashes,
        audience: str | None = None,
    ) -> Enforcement:
        """Reject / report / ban as ``match.actions`` say; returns once all of it is stored.

        Raises :class:`~safestack.errors.StoreError` (e.g. the database is down) with nothing
        written; the request must then be refused. ``hashes`` are the image's own hashes: they
        go into the report, the image's bytes never do.
        """
        if not request_id:
            raise InputError("request_id must be a non-empty string")
        actions = frozenset(match.actions)
        detected_at = datetime.now(UTC)
        details: dict[str, Any] = {
            "request_id": request_id,
            "endpoint": endpoint,
            "audience": audience,
            "detected_at": detected_at.isoformat().replace("+00:00", "Z"),
            "match": {
                "bank": match.bank,
                "bank_id": match.bank_id,
                "hash_type": match.hash_type,
                "value": match.value,
                "distance": match.distance,
                "entry": dict(match.details),
            },
            "media": {
                "sha256": hashes.sha256,
                "md5": hashes.md5,
                "pdq": hashes.pdq,
                "pdq_quality": hashes.quality,
                "frames": max(1, len(hashes.frame_pdq)),
            },
            "actions": sorted(action.value for action in actions),
            "rejected": Action.REJECT in actions,
        }
        how = "exactly" if match.distance is None else f"at PDQ distance {match.distance}"
        recorded = self.store.record_hash_match(
            account_id=account_id,
            details=details,
            dedupe_key=_dedupe_key(account_id, match, hashes),
            report=Action.REPORT in actions,
            ban=Action.BAN in actions,
            deliver=self.receiver is not None,
            ban_reason=(
                f"an image matched the known-bad media bank {match.bank!r} {how} "
                f"(request {request_id})"
            ),
            dedupe_window_s=self.dedupe_window_s,
        )
        return Enforcement(
            match=match,
            rejected=Action.REJECT in actions,
            report_id=None if recorded.report is None else recorded.report.id,
            banned=recorded.banned,
            duplicate=recorded.duplicate,
        )


def _dedupe_key(account_id: str | None, match: Match, hashes: ImageHashes) -> str:
    """Same account, same bank entry, same image bytes: the same incident."""
    parts = (account_id or "-", match.bank_id, match.hash_type, match.value, hashes.sha256)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
