"""The opt-out registry as the prompt rules see it: names compiled once per change, swapped whole.

The store holds the opt-outs (``kind`` ``artist`` or ``public_figure``, a name and aliases); the
rules must not read the database on every request, and ``classify`` knows nothing of storage. So
the gateway hands the current list to :meth:`NameRegistry.refresh` when it changes (it polls), and
the rules read the registry's current :class:`OptOutSnapshot`. A refresh with the same list is a
no-op (a comparison of the copied names); a changed list is compiled under a lock that only
refreshes take (readers never wait) and published by replacing one reference, so a request in
flight keeps the snapshot it started with and never sees half an update.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from safestack.classify.rules._names import NameIndex

__all__ = ["NameRegistry", "OptOutLike", "OptOutName", "OptOutSnapshot"]

#: Opt-outs of people are matched exactly, or with one edit in spellings of 10+ letters.
PEOPLE_MAX_EDITS = 1
PEOPLE_MIN_FUZZY_LETTERS = 10


class OptOutLike(Protocol):
    """What the rules read of an opt-out: the store's ``OptOut`` record has these fields."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def aliases(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class OptOutName:
    """One opt-out, copied out of the store's record."""

    id: str
    name: str
    kind: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class OptOutSnapshot:
    """The opt-outs at one refresh, with their compiled indexes (immutable)."""

    version: int
    artists: tuple[OptOutName, ...]
    people: tuple[OptOutName, ...]
    artist_index: NameIndex
    people_index: NameIndex


def _snapshot(version: int, names: Sequence[OptOutName]) -> OptOutSnapshot:
    artists = tuple(n for n in names if n.kind == "artist")
    people = tuple(n for n in names if n.kind == "public_figure")
    return OptOutSnapshot(
        version=version,
        artists=artists,
        people=people,
        artist_index=NameIndex.build(artists),
        people_index=NameIndex.build(
            people, max_edits=PEOPLE_MAX_EDITS, min_fuzzy_letters=PEOPLE_MIN_FUZZY_LETTERS
        ),
    )


class NameRegistry:
    """Opt-outs for the prompt rules, refreshed from the store by whoever owns the store.

    ``refresh(store.list_opt_outs())`` returns whether anything changed; it is cheap when nothing
    did and safe to call from several threads. Opt-outs of other kinds are ignored.
    """

    def __init__(self, opt_outs: Iterable[OptOutLike] = ()) -> None:
        self._lock = threading.Lock()
        names = self._copy(opt_outs)
        self._fingerprint = names
        self._current = _snapshot(0, names)

    @staticmethod
    def _copy(opt_outs: Iterable[OptOutLike]) -> tuple[OptOutName, ...]:
        names = (
            OptOutName(o.id, o.name, o.kind, tuple(o.aliases))
            for o in opt_outs
            if o.kind in ("artist", "public_figure")
        )
        return tuple(sorted(names, key=lambda n: (n.kind, n.id)))

    @property
    def snapshot(self) -> OptOutSnapshot:
        """The current opt-outs (read once per request and keep it for the request)."""
        return self._current

    @property
    def version(self) -> int:
        """Goes up by one on every refresh that changed the list."""
        return self._current.version

    def refresh(self, opt_outs: Iterable[OptOutLike]) -> bool:
        """Replace the opt-outs with ``opt_outs``; ``False`` (and no work) if they are the same."""
        names = self._copy(opt_outs)
        with self._lock:
            if names == self._fingerprint:
                return False
            self._current = _snapshot(self._current.version + 1, names)
            self._fingerprint = names
            return True
