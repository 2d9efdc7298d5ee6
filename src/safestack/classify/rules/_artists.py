"""Living-artist styles: flag image prompts that ask to imitate a living artist.

The published image-generation system cards decline "in the style of" requests for living artists
while allowing the styles of artists who have died and of art movements. This rule does that for
text prompts, with an operator-maintained list (``data/living_artists.yaml`` by default) plus the
opt-outs of kind ``artist`` from the store (through a :class:`~.NameRegistry`).

**The boundary** (what counts as asking for a style). A name alone is not enough: "a biography of
David Hockney", "which museum shows Kusama's pumpkins", "a portrait photo of Ai Weiwei" mention a
living artist without imitating one, and are allowed (depicting a person is the public-figure
rule's business). A mention is a style request when the words around it say so:

* before the name: "in the style of", "style of", "by", "art by", "like", "inspired by",
  "influenced by", "in the manner of", "in the vein of", "à la", "reminiscent of", "homage to",
  "channeling", "emulating", "imitating", "artist:" …;
* after the name: "style", "-style", "-esque", "-inspired", "-like", "aesthetic", "art style",
  "vibes", and possessives: "X's style", "X's aesthetic", "X's technique", "X's brushwork" …;
* "as X would paint it", "how X would draw …", "the way X paints";
* "a/an X painting / illustration / photo / mural / poster …" (a work attributed to them);
* a tag in a list-style prompt: "castle, greg rutkowski, artstation, 4k" (the name is a whole
  comma-separated tag, and not the first one, which is usually the subject).

Triggers reach across a list of names ("in the style of Van Gogh and Greg Rutkowski",
"Rutkowski and Mucha style"). A possessive narrows a trigger before the name to the thing
possessed: "inspired by Kusama's work" is a style request, "surrounded by Kusama's pumpkins" is
not. "looks like X" is about a person's appearance, not a style, and is left alone.

Known limits: a prompt that reproduces a specific artwork without naming its artist, or describes
an artist's style without the name ("polka-dot infinity rooms"), is not caught; the list covers
only the names on it; names that are ordinary words (the street artists JR and Invader) are left
off the default list because a text rule cannot tell them apart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from safestack.classify._protocol import ClassifierInput, InputKind
from safestack.classify._registry import register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.classify.rules._names import (
    HARD_BREAK,
    POSSESSIVE,
    SOFT_BREAK,
    NameIndex,
    NameMatch,
    tokenize,
)
from safestack.classify.rules._optouts import NameRegistry
from safestack.errors import ConfigError, InputError
from safestack.yaml_config import load_yaml_model, yaml_model_from_text

__all__ = ["Artist", "ArtistList", "ArtistStyleRule", "load_artists"]

CATEGORY = "intellectual_property"
LABEL = "living_artist_style"
_VERSION = "1"
_DEFAULT_FILE = "data/living_artists.yaml"


class Artist(BaseModel):
    """One living artist on the operator's list."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    aliases: list[str] = Field(default_factory=list, description="Other spellings, pseudonyms.")
    born: int | None = Field(default=None, ge=1880, le=2030, description="Year of birth.")
    role: str | None = None


class AllowedExamples(BaseModel):
    """Deceased artists and movements, kept beside the list for tests (the rule never reads it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deceased: list[str] = Field(default_factory=list)
    movements: list[str] = Field(default_factory=list)


class ArtistList(BaseModel):
    """The file format of ``living_artists.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: str | None = Field(default=None, description="When the list was last checked.")
    artists: list[Artist]
    allowed_examples: AllowedExamples = Field(default_factory=AllowedExamples)


def load_artists(path: str | Path | None = None) -> ArtistList:
    """The artist list in ``path``, or the packaged default; a bad file is a ConfigError."""
    if path is not None:
        return load_yaml_model(path, ArtistList, what="artist list", error=ConfigError)
    text = resources.files(__package__).joinpath(_DEFAULT_FILE).read_text("utf-8")
    return yaml_model_from_text(
        text, ArtistList, what="artist list", path=_DEFAULT_FILE, error=ConfigError
    )


def _words(text: str) -> list[str]:
    return text.split()


def _t(*phrases: str) -> tuple[tuple[str, ...], ...]:
    """Trigger phrases as token tuples, longest first (so the longest is the one reported)."""

    def tokens(phrase: str) -> tuple[str, ...]:
        if phrase.startswith("'s "):
            return (POSSESSIVE, *tokenize(phrase[3:]))
        return tokenize(phrase)

    return tuple(sorted((tokens(p) for p in phrases), key=len, reverse=True))


_BEFORE = _t(
    "in the style of",
    "in the styles of",
    "style of",
    "styles of",
    "styled after",
    "styled like",
    "in the manner of",
    "manner of",
    "in the vein of",
    "vein of",
    "in the spirit of",
    "inspired by",
    "influenced by",
    "by",
    "like",
    "a la",
    "ala",
    "reminiscent of",
    "homage to",
    "an homage to",
    "channeling",
    "channelling",
    "emulating",
    "emulate",
    "imitating",
    "imitate",
    "mimicking",
    "mimic",
    "similar to",
    "aesthetic of",
    "technique of",
    "techniques of",
    "brushwork of",
    "palette of",
    "after the fashion of",
    "mix of",
    "blend of",
    "fusion of",
    "cross between",
    "combination of",
)
# "artist: X" (a colon reads as a hard break)
_BEFORE = (*_BEFORE, ("artist", HARD_BREAK), ("artists", HARD_BREAK), ("style", HARD_BREAK))
_AFTER = _t(
    "style",
    "styles",
    "styled",
    "esque",
    "inspired",
    "like",
    "aesthetic",
    "art style",
    "vibe",
    "vibes",
    "'s style",
    "'s art style",
    "'s signature style",
    "'s aesthetic",
    "'s technique",
    "'s brushwork",
    "'s manner",
    "'s palette",
    "'s vibe",
    "'s look",
    "'s way of",
)
# After a trigger before the name, a possessive must own one of these ("inspired by X's work").
_WORK_NOUNS = frozenset(
    _words(
        "style styles aesthetic technique brushwork manner palette look work works art artwork "
        "artworks painting paintings illustration illustrations drawing drawings photography "
        "photographs photos prints approach"
    )
)
# "a Hockney painting", "an Annie Leibovitz portrait".
_ARTWORKS = frozenset(
    _words(
        "painting paintings illustration illustrations artwork drawing print photo photograph "
        "portrait mural poster sketch piece canvas cover render"
    )
)
# "as X would paint it", "how X would draw", "the way X paints".
_AS_BEFORE = frozenset({"as", "how", "way"})
_AS_AFTER = frozenset(
    _words(
        "would might could does did paints draws paints painted draw paint photographs shoots "
        "illustrates sees imagines"
    )
)
# "looks like X" is appearance; "surrounded by X" is not authorship.
_NOT_BEFORE_LIKE = frozenset({"look", "looks", "looking", "dressed", "resembling", "sounds"})
_NOT_BEFORE_BY = frozenset(
    _words(
        "surrounded owned bought sold collected visited attended hosted written narrated "
        "interviewed loved hated admired followed chased accompanied flanked joined guarded "
        "standing sitting stands sits stood sat walking passing passed founded funded"
    )
)
_CONNECTORS = frozenset({"and", "or", "plus", "x", "vs", "versus", "meets", SOFT_BREAK})
_FUNCTION_WORDS = frozenset(
    _words(
        "a an the of in on at to for from with by as is are was this that these those my your "
        "his her their our its"
    )
)
_MAX_SKIPPED_WORDS = 3


def _reach(tokens: Sequence[str], match: NameMatch, spans: dict[int, int], left: bool) -> list[int]:
    """Where a trigger may end (left) or start (right): beside the name, or past a name list.

    From the name outwards, connectors ("and", ",", "x") and other names are skipped; once a
    connector was passed, up to three content words (a name not on the list, "Van Gogh") are too.
    """
    found: list[int] = []
    pos = match.start if left else match.end
    seen_connector = False
    skipped = 0
    while True:
        found.append(pos)
        if left:
            if pos in spans.values():  # pos is the end of another name: jump to its start
                pos = next(s for s, e in spans.items() if e == pos)
                continue
            if pos == 0:
                break
            token = tokens[pos - 1]
        else:
            if pos in spans:
                pos = spans[pos]
                continue
            if pos >= len(tokens):
                break
            token = tokens[pos]
        if token in _CONNECTORS:
            seen_connector = True
        elif (
            seen_connector
            and skipped < _MAX_SKIPPED_WORDS
            and token not in _FUNCTION_WORDS
            and token not in (HARD_BREAK, POSSESSIVE)
        ):
            skipped += 1
        else:
            break
        pos = pos - 1 if left else pos + 1
    return found


def _ends_with(tokens: Sequence[str], end: int, phrase: tuple[str, ...]) -> bool:
    return end >= len(phrase) and tuple(tokens[end - len(phrase) : end]) == phrase


def _starts_with(tokens: Sequence[str], start: int, phrase: tuple[str, ...]) -> bool:
    return tuple(tokens[start : start + len(phrase)]) == phrase


def style_phrase(
    tokens: Sequence[str], match: NameMatch, matches: Sequence[NameMatch]
) -> str | None:
    """The words that make ``match`` a style request, or ``None`` if it is only a mention."""
    spans = {m.start: m.end for m in matches if m is not match}
    name = " ".join(tokens[match.start : match.end])
    after = match.end
    possessed = tokens[after + 1] if after + 1 < len(tokens) else None
    possessive = after < len(tokens) and tokens[after] == POSSESSIVE
    # Before the name (possibly before a list of names).
    if not possessive or possessed in _WORK_NOUNS:
        for end in _reach(tokens, match, spans, left=True):
            for phrase in _BEFORE:
                if not _ends_with(tokens, end, phrase):
                    continue
                before = tokens[end - len(phrase) - 1] if end > len(phrase) else None
                if phrase == ("like",) and before in _NOT_BEFORE_LIKE:
                    continue
                if phrase == ("by",) and before in _NOT_BEFORE_BY:
                    continue
                words = " ".join(tokens[end - len(phrase) : match.end])
                return words + (f"{POSSESSIVE} {possessed}" if possessive else "")
    # After the name (possibly after a list of names).
    for start in _reach(tokens, match, spans, left=False):
        for phrase in _AFTER:
            if _starts_with(tokens, start, phrase):
                return " ".join(tokens[match.start : start + len(phrase)]).replace(" 's", "'s")
    before = tokens[match.start - 1] if match.start > 0 else None
    following = tokens[after] if after < len(tokens) else None
    if before in _AS_BEFORE and following in _AS_AFTER:
        return f"{before} {name} {following}"
    if before in ("a", "an", "another") and following in _ARTWORKS:
        return f"{before} {name} {following}"
    # A whole tag of a list-style prompt, not the first one.
    if before == SOFT_BREAK and match.start > 1:
        end = after
        while end < len(tokens) and tokens[end].isdigit():  # "(greg rutkowski:1.2)"
            end += 1
        if end == len(tokens) or tokens[end] in (SOFT_BREAK, HARD_BREAK):
            return f", {name} (a tag)"
    return None


def _fingerprint(artists: Sequence[Artist]) -> str:
    data = [[a.name, *a.aliases] for a in artists]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


@register_classifier("artist-style")
class ArtistStyleRule:
    """Flags prompts asking for the style of a living artist (``intellectual_property``).

    ``artists``: a list of :class:`Artist`, a YAML file in the format of the packaged
    ``living_artists.yaml``, or ``None`` for the packaged list. ``registry``: opt-outs of kind
    ``artist`` (kept current by the gateway), matched like the list. The verdict's rationale names
    the artist and the words that made the prompt a style request.
    """

    def __init__(
        self,
        artists: Sequence[Artist] | str | Path | None = None,
        *,
        registry: NameRegistry | None = None,
    ) -> None:
        if artists is None or isinstance(artists, str | Path):
            listed = load_artists(artists)
            self.artists: tuple[Artist, ...] = tuple(listed.artists)
            source = "default" if artists is None else str(artists)
        else:
            self.artists = tuple(artists)
            source = "given"
        self.registry = registry if registry is not None else NameRegistry()
        self._index = NameIndex.build(self.artists)
        self._spec = ClassifierSpec(
            name="artist-style",
            version=_VERSION,
            artifact_sha256=_fingerprint(self.artists),
            args={"artists": len(self.artists), "source": source},
        )

    @property
    def spec(self) -> ClassifierSpec:
        return self._spec

    @property
    def input_kind(self) -> InputKind:
        return "text"

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        """One verdict per prompt; flagged when it asks for a listed or opted-out artist's style."""
        opt_outs = self.registry.snapshot
        verdicts = []
        for item in items:
            if not isinstance(item, str):
                raise InputError(f"artist-style judges text prompts, not {type(item).__name__}")
            tokens = tokenize(item)
            found: list[tuple[str, NameMatch]] = [
                (self.artists[m.entry].name, m) for m in self._index.find(tokens)
            ]
            found += [
                (opt_outs.artists[m.entry].name, m) for m in opt_outs.artist_index.find(tokens)
            ]
            verdicts.append(self._verdict(tokens, found))
        return verdicts

    def _verdict(self, tokens: Sequence[str], found: list[tuple[str, NameMatch]]) -> Verdict:
        matches = [m for _, m in found]
        for name, match in found:
            phrase = style_phrase(tokens, match, matches)
            if phrase is None:
                continue
            spelt = " ".join(tokens[match.start : match.end])
            misspelt = f" (read {spelt!r} as {name!r})" if match.edits else ""
            return Verdict.from_scores(
                {CATEGORY: 1.0},
                {CATEGORY: 0.5},
                self._spec,
                label=LABEL,
                rationale=f"asks for the style of living artist {name}: {phrase!r}{misspelt}; "
                "imitating the style of a living artist is not allowed",
            )
        return Verdict.from_scores({CATEGORY: 0.0}, {CATEGORY: 0.5}, self._spec)
