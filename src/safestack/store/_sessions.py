"""Web console sign-ins: server-side sessions, so that a sign-out or a role change holds at once.

The browser holds a random token; the store keeps only its SHA-256, so a leaked database or
backup hands out no working session. A session opened by an account is honoured only while the
account is active and still has the role the session was opened with: taking a reviewer's role
away ends their sessions at their next request, on every replica.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from sqlalchemy import select, update

from safestack.errors import InputError
from safestack.store._records import ConsoleSession, Role
from safestack.store._tables import AccountRow, ConsoleSessionRow
from safestack.store._values import hash_secret, new_id, required, utc_now

if TYPE_CHECKING:
    from safestack.store._store import Store

__all__ = ["ADMIN_NAME", "ConsoleSessions"]

#: A session's last-seen time is written at most this often (not on every page view).
_TOUCH_EVERY = timedelta(minutes=1)
_MAX_TOKEN_CHARS = 256


#: The display name of a session opened with the admin key (it has no account).
ADMIN_NAME = "administrator"


def _session(row: ConsoleSessionRow, account: AccountRow | None) -> ConsoleSession:
    return ConsoleSession(
        id=row.id,
        account_id=row.account_id,
        actor=row.actor,
        role=cast(Role, row.role),
        name=ADMIN_NAME if account is None else account.name or account.id,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


class ConsoleSessions:
    """The console sessions of one store (``store.sessions``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def open(
        self, *, role: Role, actor: str, account_id: str | None, ttl_s: float
    ) -> tuple[str, ConsoleSession]:
        """A new session and its token (returned here only). Always a fresh token: a session id
        chosen by anyone else (session fixation) is never adopted."""
        if ttl_s <= 0:
            raise InputError(f"ttl_s must be positive, got {ttl_s!r}")
        required(actor, "actor")
        token = secrets.token_urlsafe(32)
        now = utc_now()
        row = ConsoleSessionRow(
            id=new_id("sess"),
            token_hash=hash_secret(token),
            account_id=account_id,
            actor=actor,
            role=role,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
            last_seen_at=now,
        )
        with self._store._transaction(write=True) as session:
            account = None if account_id is None else self._store._get_account(session, account_id)
            session.add(row)
            self._store._write_audit(
                session,
                actor=actor,
                action="console.sign_in",
                target=row.id,
                details={"role": role, "account_id": account_id},
            )
            return token, _session(row, account)

    def resolve(self, token: str) -> ConsoleSession | None:
        """The live session for ``token``, or None (unknown, expired, signed out, or its
        account banned or no longer holding the role)."""
        if not token or len(token) > _MAX_TOKEN_CHARS:
            return None
        now = utc_now()
        with self._store._transaction(write=False) as session:
            row = session.scalars(
                select(ConsoleSessionRow).where(ConsoleSessionRow.token_hash == hash_secret(token))
            ).one_or_none()
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                return None
            account = None
            if row.account_id is not None:
                account = session.get(AccountRow, row.account_id)
                if account is None or account.status != "active" or account.role != row.role:
                    return None
            found, seen = _session(row, account), row.last_seen_at
        if now - seen >= _TOUCH_EVERY:
            with self._store._transaction(write=True) as session:
                session.execute(
                    update(ConsoleSessionRow)
                    .where(ConsoleSessionRow.id == found.id)
                    .values(last_seen_at=now)
                )
        return found

    def close(self, session_id: str, *, actor: str) -> None:
        """Sign out: the session's token stops working everywhere at once."""
        with self._store._transaction(write=True) as session:
            session.execute(
                update(ConsoleSessionRow)
                .where(ConsoleSessionRow.id == session_id, ConsoleSessionRow.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
            self._store._write_audit(
                session, actor=actor, action="console.sign_out", target=session_id
            )
