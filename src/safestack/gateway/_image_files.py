"""Images handed out as URLs (``response_format: "url"``): kept on disk, linked with a signature.

OpenAI's image URLs work without an API key and expire after an hour; so do ours. A link is
``/v1/images/files/{name}?expires=…&signature=…`` where the signature is an HMAC of the name and
expiry under a key derived from the admin key, so every replica that shares the admin key (and
the directory) can serve every link, and a link cannot be forged or extended. Expired files are
swept when new ones are written.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path

__all__ = ["ImageFiles"]

_NAME_BYTES = 24
_MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}


def _suffix(data: bytes) -> str:
    """The file suffix of encoded image bytes, from their signature."""
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"GIF8"):
        return "gif"
    return "png"


class ImageFiles:
    """A directory of short-lived images and the signed links to them."""

    def __init__(self, directory: Path, *, secret: str, ttl_s: float) -> None:
        self.directory = directory
        self.ttl_s = ttl_s
        self._key = hmac.new(secret.encode(), b"safestack image urls", hashlib.sha256).digest()
        self._last_sweep = 0.0

    def put(self, data: bytes) -> str:
        """Keep ``data``; the signed path-and-query of its link (valid for ``ttl_s``)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_urlsafe(_NAME_BYTES)}.{_suffix(data)}"
        partial = self.directory / f".{name}.part"
        partial.write_bytes(data)
        partial.replace(self.directory / name)  # never serve a half-written file
        expires = int(time.time() + self.ttl_s)
        self._sweep()
        return f"/v1/images/files/{name}?expires={expires}&signature={self._sign(name, expires)}"

    def get(self, name: str, expires: int, signature: str) -> tuple[bytes, str] | None:
        """The image and its media type behind a valid, unexpired link; None for anything else
        (an invalid signature and a missing file look the same)."""
        if "/" in name or name.startswith(".") or expires < time.time():
            return None
        expected = self._sign(name, expires).encode()
        if not hmac.compare_digest(signature.encode("utf-8", "replace"), expected):
            return None
        path = self.directory / name
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return data, _MEDIA_TYPES[path.suffix.lstrip(".")]

    def _sign(self, name: str, expires: int) -> str:
        return hmac.new(self._key, f"{name}|{expires}".encode(), hashlib.sha256).hexdigest()

    def _sweep(self) -> None:
        now = time.time()
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        for path in self.directory.glob("*.*"):
            try:
                if path.stat().st_mtime < now - self.ttl_s - 60:
                    path.unlink()
            except OSError:
                continue
