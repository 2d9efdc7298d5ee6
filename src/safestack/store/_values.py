"""How values are checked and made before they reach a column: ids, times, text, JSON, pages.

Shared by every part of the store, so that an id, a timestamp or a masked secret looks the same
whichever table it lands in.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from safestack.errors import InputError

__all__ = [
    "KEY_PREFIX",
    "MAX_PAGE",
    "hash_secret",
    "json_object",
    "new_id",
    "page",
    "required",
    "utc_now",
]

#: Every API key starts with this, so that secret scanners and people recognise a leaked one.
KEY_PREFIX = "sk-ss-"
# An API key inside free text (an audit note, a report): masked before it is stored.
_KEY_IN_TEXT = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{8,}")
#: The most rows one listing returns.
MAX_PAGE = 1000


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id(kind: str) -> str:
    return f"{kind}_{uuid.uuid4().hex}"


def hash_secret(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def required(value: str, what: str, *, max_length: int | None = None) -> str:
    """``value`` stripped; an InputError if it is empty or longer than its column allows."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string, got {value!r}")
    value = value.strip()
    if "\x00" in value:  # PostgreSQL cannot store it; refuse it on SQLite too
        raise InputError(f"{what} must not contain NUL characters (U+0000)")
    if max_length is not None and len(value) > max_length:
        raise InputError(f"{what} {value[:40]!r}… is {len(value)} characters; at most {max_length}")
    return value


def json_object(value: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """``value`` as it will read back from the database: JSON types only, API keys masked."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object (a dict), got {type(value).__name__}")
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InputError(f"{what} must be JSON-serialisable: {error}") from error
    if _has_nul(value):  # PostgreSQL cannot store it in JSON; refuse it on SQLite too
        raise InputError(f"{what} must not contain NUL characters (U+0000)")
    # Key characters need no JSON escaping, so masking the encoded text is exact.
    masked = _KEY_IN_TEXT.sub(KEY_PREFIX + "***", encoded)
    return cast(dict[str, Any], json.loads(masked))


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def page(limit: int, offset: int = 0) -> tuple[int, int]:
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE}, got {limit!r}")
    if offset < 0:
        raise InputError(f"offset must be 0 or more, got {offset!r}")
    return limit, offset
