"""Public figures: minors and people who opted out are not depicted.

The published image-generation policy allows adult public figures (every other policy still
applies, so this rule does not flag them), blocks photorealistic depictions of public figures who
are minors, and blocks anyone in the opt-out registry.

**Minors.** ``data/public_figures.yaml`` lists public figures who are minors, with their birth
dates; whether someone is a minor is computed for each request from the birth date and today's
date, so a person stops matching on their 18th birthday with nobody editing the file. ``today``
is injectable (tests, replaying logs). A birth date given only as a year (or year and month)
counts as the *last* day it could be, so nobody is treated as an adult early.

**Photorealism.** The rule sees the prompt, not the image, and a prompt's medium is easy to state
and easy to ignore ("a watercolour of …" can still come back photorealistic). So it reads the
policy the safe way: *any* image prompt that names a public figure who is a minor is flagged,
whatever medium it asks for. A deployment that wants cartoons of them allowed must decide that
from the generated image, not from this rule.

**Opt-outs** (kind ``public_figure``, from the store through a :class:`~.NameRegistry`): any prompt
that names the person or one of their aliases is flagged. People's names are matched on token
boundaries, case- and diacritic-insensitively, with at most one edit and only in spellings of ten
letters or more (``Jon Smith`` is not ``John Smith``).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import date
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from safestack.classify._protocol import ClassifierInput, InputKind
from safestack.classify._registry import register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.classify.rules._names import POSSESSIVE, SOFT_BREAK, NameIndex, tokenize
from safestack.classify.rules._optouts import (
    PEOPLE_MAX_EDITS,
    PEOPLE_MIN_FUZZY_LETTERS,
    NameRegistry,
)
from safestack.errors import ConfigError, InputError
from safestack.yaml_config import load_yaml_model, yaml_model_from_text

__all__ = ["PublicFigure", "PublicFigureList", "PublicFigureRule", "adult_from", "load_figures"]

CATEGORY = "privacy"
MINOR_LABEL = "minor_public_figure"
OPTED_OUT_LABEL = "opted_out_person"
_VERSION = "1"
_DEFAULT_FILE = "data/public_figures.yaml"
_BIRTH = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
ADULT_AGE = 18


def adult_from(birth_date: str) -> date:
    """The day someone born on ``birth_date`` (YYYY-MM-DD, YYYY-MM or YYYY) turns 18.

    A partial date counts as its last possible day; someone born on 29 February turns 18 on
    1 March in a year that has no 29 February.

    >>> adult_from("2013-07-22"), adult_from("2012"), adult_from("2008-02-29")
    (datetime.date(2031, 7, 22), datetime.date(2030, 12, 31), datetime.date(2026, 3, 1))
    """
    found = _BIRTH.match(birth_date)
    if found is None:
        raise ValueError(f"birth date {birth_date!r} is not YYYY-MM-DD, YYYY-MM or YYYY")
    year = int(found.group(1))
    month = int(found.group(2) or 12)
    day = int(found.group(3) or calendar.monthrange(year, month)[1])
    date(year, month, day)  # raises ValueError for 2013-02-30
    year += ADULT_AGE
    if month == 2 and day == 29 and not calendar.isleap(year):
        return date(year, 3, 1)
    return date(year, month, day)


class PublicFigure(BaseModel):
    """A public figure who is (or was, until their 18th birthday) a minor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    aliases: list[str] = Field(default_factory=list)
    birth_date: str = Field(description="YYYY-MM-DD, or YYYY-MM / YYYY when only that is public.")
    source: str = Field(min_length=1, description="Where the birth date is public record.")

    @field_validator("birth_date")
    @classmethod
    def _valid_date(cls, value: str) -> str:
        adult_from(value)
        return value


class PublicFigureList(BaseModel):
    """The file format of ``public_figures.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: str | None = None
    people: list[PublicFigure]


def load_figures(path: str | Path | None = None) -> PublicFigureList:
    """The list of minor public figures in ``path``, or the packaged default."""
    if path is not None:
        return load_yaml_model(path, PublicFigureList, what="public-figure list", error=ConfigError)
    text = resources.files(__package__).joinpath(_DEFAULT_FILE).read_text("utf-8")
    return yaml_model_from_text(
        text, PublicFigureList, what="public-figure list", path=_DEFAULT_FILE, error=ConfigError
    )


# "Prince George's County", "Prince George, British Columbia": places named after royals.
_PLACE_NOUNS = frozenset(
    {"county", "city", "street", "road", "avenue", "airport", "hospital", "bridge", "station"}
)
_PLACE_AFTER_COMMA = frozenset({"british", "bc", "canada", "virginia", "maryland", "county"})


def _is_place(tokens: Sequence[str], end: int) -> bool:
    """Whether the name ending at ``end`` is part of a place name rather than the person."""
    rest = tokens[end : end + 2]
    if rest and rest[0] == POSSESSIVE:
        rest = rest[1:]
    if rest and rest[0] in _PLACE_NOUNS:
        return True
    return len(rest) == 2 and rest[0] == SOFT_BREAK and rest[1] in _PLACE_AFTER_COMMA


@register_classifier("public-figures")
class PublicFigureRule:
    """Flags image prompts naming a public figure who is a minor today, or an opted-out person.

    ``figures``: a list of :class:`PublicFigure`, a YAML file, or ``None`` for the packaged list.
    ``registry``: opt-outs (kind ``public_figure``). ``today``: the date to judge ages on
    (default: the local date, read per call).
    """

    def __init__(
        self,
        figures: Sequence[PublicFigure] | str | Path | None = None,
        *,
        registry: NameRegistry | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        if figures is None or isinstance(figures, str | Path):
            self.figures: tuple[PublicFigure, ...] = tuple(load_figures(figures).people)
            source = "default" if figures is None else str(figures)
        else:
            self.figures = tuple(figures)
            source = "given"
        self.registry = registry if registry is not None else NameRegistry()
        self.today = today
        self._adult_from = tuple(adult_from(f.birth_date) for f in self.figures)
        self._index = NameIndex.build(
            self.figures, max_edits=PEOPLE_MAX_EDITS, min_fuzzy_letters=PEOPLE_MIN_FUZZY_LETTERS
        )
        data = [[f.name, *f.aliases, f.birth_date] for f in self.figures]
        self._spec = ClassifierSpec(
            name="public-figures",
            version=_VERSION,
            artifact_sha256=hashlib.sha256(json.dumps(data).encode()).hexdigest(),
            args={"figures": len(self.figures), "source": source},
        )

    @property
    def spec(self) -> ClassifierSpec:
        return self._spec

    @property
    def input_kind(self) -> InputKind:
        return "text"

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        """One verdict per prompt: opted-out people first, then minors."""
        today = self.today()
        opt_outs = self.registry.snapshot
        verdicts = []
        for item in items:
            if not isinstance(item, str):
                raise InputError(f"public-figures judges text prompts, not {type(item).__name__}")
            tokens = tokenize(item)
            rationale = label = None
            for match in opt_outs.people_index.find(tokens):
                person = opt_outs.people[match.entry]
                spelt = " ".join(tokens[match.start : match.end])
                label = OPTED_OUT_LABEL
                rationale = (
                    f"names {person.name} ({spelt!r}), who asked not to be depicted "
                    "(opt-out registry)"
                )
                break
            if label is None:
                for match in self._index.find(tokens):
                    if today >= self._adult_from[match.entry] or _is_place(tokens, match.end):
                        continue
                    figure = self.figures[match.entry]
                    spelt = " ".join(tokens[match.start : match.end])
                    label = MINOR_LABEL
                    rationale = (
                        f"names {figure.name} ({spelt!r}), a public figure under 18 until "
                        f"{self._adult_from[match.entry].isoformat()}; photorealistic depictions "
                        "of minors who are public figures are blocked"
                    )
                    break
            verdicts.append(
                Verdict.from_scores(
                    {CATEGORY: 1.0 if label else 0.0},
                    {CATEGORY: 0.5},
                    self._spec,
                    label=label,
                    rationale=rationale,
                )
            )
        return verdicts
