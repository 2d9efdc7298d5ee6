"""Finding people's names in prompts: normalisation, an index built once, fuzzy matching.

Both prompt rules (living-artist styles, public figures) ask one question of a prompt: which of
these names does it mention, where, and how closely spelt? The answer must be cheap when the list
grows to thousands of names (every opt-out adds one), so nothing here scans the prompt once per
name. A :class:`NameIndex` is compiled once per list and looked up per prompt token:

* **Normalisation** (:func:`tokenize`): case-folded, diacritics removed (``Stålenhag`` and
  ``Stalenhag`` are one name), split on anything that is not a letter or digit, so ``"Rutkowski-
  style"`` is ``rutkowski style``. A possessive ``'s`` becomes its own token and punctuation that
  separates tags or sentences becomes a break token (:data:`SOFT_BREAK`, :data:`HARD_BREAK`),
  which the rules read and a name never spans.
* **Exact matching** on token boundaries: a dictionary from a name's first token to the spellings
  that start with it, then a comparison of the following tokens.
* **Fuzzy matching** (misspellings): optimal-string-alignment (Damerau–Levenshtein) distance per
  token, found through a deletion index (the symmetric-delete method): every name token is stored
  under each string obtained by deleting up to its allowance of characters, and a prompt token
  looks up its own deletions. Two strings within distance *k* always share such a deletion, so
  the candidates are complete, and each one is then verified by computing the distance.

What may be misspelt is deliberately narrow, because a person's name that is one letter away from
an English word (``Hockney`` / ``hockey``) would otherwise flag ordinary prompts:

* a token of fewer than 5 letters must match exactly (first names such as ``Greg``, ``Ai``);
  5–8 letters allow one edit, 9 or more allow two;
* a whole spelling allows one edit below 10 letters and two from 10 letters on;
* a spelling that is a single token (``Banksy``, a surname alias) is matched fuzzily only from
  6 letters on;
* a prompt token that is a common English word (:data:`COMMON_WORDS`) is only ever matched
  exactly: ``hockey`` is never read as ``Hockney``, ``banks`` never as ``Banksy``.

Multi-token names also get their concatenation as a spelling (``gregrutkowski``, as in hashtags)
when it is at least 8 letters long.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Protocol

__all__ = [
    "COMMON_WORDS",
    "HARD_BREAK",
    "POSSESSIVE",
    "SOFT_BREAK",
    "NameIndex",
    "NameMatch",
    "Named",
    "fold",
    "osa_distance",
    "tokenize",
]

#: Token for punctuation that separates tags in a list-style prompt (comma, semicolon, pipe...).
SOFT_BREAK = ","
#: Token for punctuation that ends a sentence or clause (full stop, question mark, colon...).
HARD_BREAK = "."
#: Token for a possessive ending: ``Hockney's`` is ``hockney 's``.
POSSESSIVE = "'s"

_BREAKS = frozenset({SOFT_BREAK, HARD_BREAK})

# Letters that NFKD does not decompose into a base letter plus a combining mark.
_FOLD = str.maketrans(
    {
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "æ": "ae",
        "œ": "oe",
        "ı": "i",
        "’": "'",
        "‘": "'",
        "ʼ": "'",
        "`": "'",
        "´": "'",
    }
)
_TOKEN = re.compile(
    r"(?P<word>[a-z0-9]+)(?P<poss>'s(?![a-z0-9]))?"
    r"|(?P<soft>[,;|/\n\[\]{}()+&]+)"
    r"|(?P<hard>[.!?:]+(?=\s|$))"
)
# "Rutkowski-esque", "Kusamaesque": the suffix is read as its own token.
_ESQUE = "esque"


def fold(text: str) -> str:
    """Case-fold and strip diacritics: ``"Stålenhag"`` → ``"stalenhag"``, ``"Łódź"`` → ``"lodz"``.

    >>> fold("Łódź Stålenhag")
    'lodz stalenhag'
    """
    text = text.casefold().translate(_FOLD)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokenize(text: str) -> tuple[str, ...]:
    """Normalised word tokens, with break and possessive tokens where the punctuation was.

    >>> tokenize("Art by Greg Rutkowski, Stålenhag's style. Banksy-esque!")
    ('art', 'by', 'greg', 'rutkowski', ',', 'stalenhag', "'s", 'style', '.', 'banksy', 'esque', '.')
    """
    out: list[str] = []
    for match in _TOKEN.finditer(fold(text)):
        word = match.group("word")
        if word is not None:
            if word.endswith(_ESQUE) and len(word) > len(_ESQUE) + 2:
                out.extend((word[: -len(_ESQUE)], _ESQUE))
            else:
                out.append(word)
            if match.group("poss"):
                out.append(POSSESSIVE)
        elif match.group("soft") is not None:
            if not out or out[-1] not in _BREAKS:
                out.append(SOFT_BREAK)
        elif out and out[-1] != HARD_BREAK:
            out[-1:] = [HARD_BREAK] if out[-1] == SOFT_BREAK else [out[-1], HARD_BREAK]
    return tuple(out)


def _load_common_words() -> frozenset[str]:
    text = resources.files(__package__).joinpath("data/common_words.json").read_text("utf-8")
    words: list[str] = json.loads(text)["words"]
    return frozenset(words)


#: English words that are never read as a misspelt name (see ``data/SOURCES.md``).
COMMON_WORDS: frozenset[str] = _load_common_words()


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (edits incl. adjacent transpositions), capped at limit+1.

    >>> osa_distance("rutkowksi", "rutkowski", 2)
    1
    >>> osa_distance("hockey", "hockney", 1)
    1
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, prev2[j - 2] + 1)
            cur[j] = value
            best = min(best, value)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[len(b)], limit + 1)


def token_allowance(token: str) -> int:
    """Edits a name token tolerates: none below 5 letters, one up to 8, two from 9."""
    if len(token) < 5:
        return 0
    return 1 if len(token) <= 8 else 2


def _spelling_budget(tokens: Sequence[str], max_edits: int, min_letters: int) -> int:
    letters = sum(len(t) for t in tokens)
    if letters < min_letters or (len(tokens) == 1 and letters < 6):
        return 0
    return min(max_edits, 1 if letters < 10 else 2)


def _deletions(token: str, depth: int) -> set[str]:
    """``token`` and every string made from it by deleting up to ``depth`` characters."""
    found = {token}
    frontier = {token}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


class Named(Protocol):
    """Anything with a name and aliases: a default-list entry or a store's opt-out record."""

    @property
    def name(self) -> str: ...

    @property
    def aliases(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class NameMatch:
    """One name found in a prompt: which entry, where (token span), how it was spelt."""

    entry: int  #: index of the entry in the list the index was built from
    start: int  #: first token of the match
    end: int  #: one past the last token
    spelling: tuple[str, ...]  #: the normalised spelling (name or alias) that matched
    edits: int  #: total edit distance (0: exact)


@dataclass(frozen=True, slots=True)
class _Spelling:
    tokens: tuple[str, ...]
    entry: int
    budget: int


@dataclass(frozen=True)
class NameIndex:
    """Spellings of a list of names, compiled for lookup by token. Immutable once built.

    Build with :meth:`build`; :meth:`find` returns the longest non-overlapping matches in a
    token sequence from :func:`tokenize`. Cost per prompt: a dictionary lookup per token, plus
    the deletions of each uncommon token of 5+ letters when the index is fuzzy.
    """

    size: int = 0
    fuzzy: bool = True
    _by_first: dict[str, tuple[_Spelling, ...]] = field(default_factory=dict, repr=False)
    _deleted: dict[str, set[str]] = field(default_factory=dict, repr=False)  # never mutated

    @classmethod
    def build(
        cls, names: Iterable[Named], *, max_edits: int = 2, min_fuzzy_letters: int = 0
    ) -> NameIndex:
        """Compile the spellings (name, aliases, concatenation) of every entry, in order.

        ``max_edits`` caps the edits of any spelling (0: exact matching only);
        ``min_fuzzy_letters``: shorter spellings match exactly.
        """
        fuzzy = max_edits > 0
        by_first: dict[str, list[_Spelling]] = {}
        seen: set[tuple[tuple[str, ...], int]] = set()
        size = 0
        for index, named in enumerate(names):
            size = index + 1
            for text in (named.name, *named.aliases):
                tokens = tuple(t for t in tokenize(text) if t not in _BREAKS and t != POSSESSIVE)
                if not tokens:
                    continue
                forms = [tokens]
                joined = "".join(tokens)
                if len(tokens) > 1 and len(joined) >= 8:
                    forms.append((joined,))
                for form in forms:
                    if (form, index) in seen:
                        continue
                    seen.add((form, index))
                    by_first.setdefault(form[0], []).append(
                        _Spelling(form, index, _spelling_budget(form, max_edits, min_fuzzy_letters))
                    )
        deleted: dict[str, set[str]] = {}
        if fuzzy:
            for first, spellings in by_first.items():
                budget = max(s.budget for s in spellings)
                for variant in _deletions(first, min(budget, token_allowance(first))):
                    deleted.setdefault(variant, set()).add(first)
        return cls(
            size=size,
            fuzzy=fuzzy,
            _by_first={k: tuple(v) for k, v in by_first.items()},
            _deleted=dict(deleted),
        )

    def _first_candidates(self, token: str) -> list[tuple[str, int]]:
        """Name first-tokens this prompt token may be, with the edits it takes."""
        found = [(token, 0)] if token in self._by_first else []
        if not self.fuzzy or len(token) < 4 or token in COMMON_WORDS or token.isdigit():
            return found
        seen = {token}
        for variant in _deletions(token, 2):
            for first in self._deleted.get(variant, ()):
                if first in seen:
                    continue
                seen.add(first)
                allowance = token_allowance(first)
                distance = osa_distance(token, first, allowance)
                if distance <= allowance:
                    found.append((first, distance))
        return found

    def find(self, tokens: Sequence[str]) -> list[NameMatch]:
        """Every name in ``tokens``, longest first where matches overlap, in prompt order."""
        if not self._by_first:
            return []
        candidates: list[NameMatch] = []
        for start, token in enumerate(tokens):
            if token in _BREAKS or token == POSSESSIVE:
                continue
            for first, first_edits in self._first_candidates(token):
                for spelling in self._by_first[first]:
                    match = self._extend(tokens, start, spelling, first_edits)
                    if match is not None:
                        candidates.append(match)
        candidates.sort(key=lambda m: (-(m.end - m.start), m.edits, m.start))
        taken: set[int] = set()
        chosen: list[NameMatch] = []
        for match in candidates:
            span = range(match.start, match.end)
            if taken.isdisjoint(span):
                taken.update(span)
                chosen.append(match)
        return sorted(chosen, key=lambda m: m.start)

    def _extend(
        self, tokens: Sequence[str], start: int, spelling: _Spelling, edits: int
    ) -> NameMatch | None:
        """The match of ``spelling`` at ``start`` if every token agrees within the budget."""
        form = spelling.tokens
        end = start + len(form)
        if end > len(tokens) or edits > spelling.budget:
            return None
        for offset in range(1, len(form)):
            got, want = tokens[start + offset], form[offset]
            if got == want:
                continue
            allowance = min(token_allowance(want), spelling.budget - edits)
            if allowance == 0 or got in COMMON_WORDS or got in _BREAKS:
                return None
            distance = osa_distance(got, want, allowance)
            if distance > allowance:
                return None
            edits += distance
        return NameMatch(spelling.entry, start, end, form, edits)
