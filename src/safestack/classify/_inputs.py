"""What a classifier accepts, checked once at the boundary with errors that name the item."""

from __future__ import annotations

from collections.abc import Sequence

from safestack.classify._protocol import ClassifierInput, Exchange
from safestack.errors import InputError

__all__ = ["as_exchanges", "as_texts", "clean_text"]


def clean_text(value: object, *, where: str) -> str:
    """A usable ``str`` from ``value``.

    ``bytes`` must be valid UTF-8 (the error gives the byte offset). Lone surrogates, which JSON
    can smuggle in as ``\\udcxx`` escapes, are replaced by U+FFFD rather than rejected: the rest of
    the text is still worth judging.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{where}: not valid UTF-8 (byte {exc.start}: {value[exc.start : exc.start + 4]!r})"
            ) from None
    if not isinstance(value, str):
        raise InputError(f"{where}: expected a string, got {type(value).__name__} {value!r:.60}")
    return value.encode("utf-8", "replace").decode("utf-8")


def as_texts(items: Sequence[ClassifierInput]) -> list[str]:
    if isinstance(items, str | bytes):
        raise InputError("classify() takes a list of texts, not a single string")
    return [clean_text(item, where=f"item {i}") for i, item in enumerate(items)]


def as_exchanges(items: Sequence[ClassifierInput]) -> list[Exchange]:
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Exchange):
            raise InputError(
                f"item {i}: this classifier judges a response given its prompt; pass "
                f"Exchange(prompt=..., response=...), got {type(item).__name__}"
            )
        out.append(
            Exchange(
                clean_text(item.prompt, where=f"item {i}.prompt"),
                clean_text(item.response, where=f"item {i}.response"),
            )
        )
    return out
