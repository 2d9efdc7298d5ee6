"""Quality and cost of the image-prompt rules (living-artist styles, public figures, opt-outs).

Reads the labelled prompts packaged beside the rules (``src/safestack/classify/rules/data``):
``style_prompts.jsonl`` (asks for a living artist's style; positives),
``benign_artist_prompts.jsonl`` (deceased artists, movements, other mentions of living
artists, words that look like names, ordinary prompts; negatives) and
``public_figure_prompts.jsonl``. Every prompt is assigned to a dev or a test half by a hash of
(seed, text); the rules were tuned looking at dev only and the tables report the held-out test
half (``--half dev`` prints the dev numbers and the errors).

Writes a "Prompt rules" section into BENCHMARKS.md and the measured block of the rules' CARD.md.
Usage: ``python bench/rules.py --out BENCHMARKS.md`` (``--dry-run`` prints instead).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import platform
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from safestack.classify.rules import ArtistStyleRule, NameRegistry, PublicFigureRule

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src/safestack/classify/rules/data"
CARD = ROOT / "src/safestack/classify/rules/CARD.md"
SECTION = "## Prompt rules"
CARD_START, CARD_END = "<!-- bench/rules.py: start -->", "<!-- bench/rules.py: end -->"
SEED = 0
TODAY = date(2026, 11, 23)  # the day the lists were compiled; minors are judged as of then


@dataclass(frozen=True)
class _OptOut:
    """The fields of the store's OptOut record the rules read (the bench needs no database)."""

    id: str
    name: str
    kind: str
    aliases: tuple[str, ...] = ()


#: Fictional people who "opted out", for the public-figure set (no real person is implied).
OPT_OUTS = (
    _OptOut("opt_1", "Marisol Quintanilla-Berg", "public_figure", ("Mari Q-Berg",)),
    _OptOut("opt_2", "Teodor Vasquez-Lindqvist", "public_figure"),
    _OptOut("opt_3", "DJ Lumen", "public_figure"),
)


_LABELS = {"minor": "minor_public_figure", "opted_out": "opted_out_person"}


def _read(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def half_of(text: str, seed: int = SEED) -> str:
    """``dev`` or ``test``: a fixed split by a hash of the seed and the prompt."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return "dev" if digest[0] % 2 == 0 else "test"


@dataclass(frozen=True)
class Scores:
    n_pos: int
    n_neg: int
    tp: int
    fp: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / self.n_pos if self.n_pos else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fpr(self) -> float:
        return self.fp / self.n_neg if self.n_neg else float("nan")


def _score(flags: Sequence[bool], truth: Sequence[bool]) -> Scores:
    tp = sum(f and t for f, t in zip(flags, truth, strict=True))
    fp = sum(f and not t for f, t in zip(flags, truth, strict=True))
    return Scores(n_pos=sum(truth), n_neg=len(truth) - sum(truth), tp=tp, fp=fp)


def _p50_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


_SYLLABLES = ("ka", "lo", "mi", "ra", "sen", "to", "vi", "na", "dor", "el", "ber", "ga", "shi")


def _made_up_name(rng: random.Random) -> str:
    """A pronounceable made-up first name and surname (2 and 3 syllables)."""

    def word(n: int) -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(n)).capitalize()

    return f"{word(2)} {word(3)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--half", choices=["dev", "test"], default="test")
    parser.add_argument("--dry-run", action="store_true", help="print, write nothing")
    args = parser.parse_args()

    artists = ArtistStyleRule()
    registry = NameRegistry(OPT_OUTS)
    people = PublicFigureRule(registry=registry, today=lambda: TODAY)

    style = [r for r in _read("style_prompts.jsonl") if half_of(r["text"]) == args.half]
    benign = [r for r in _read("benign_artist_prompts.jsonl") if half_of(r["text"]) == args.half]
    figures = [r for r in _read("public_figure_prompts.jsonl") if half_of(r["text"]) == args.half]

    style_v = artists.classify([r["text"] for r in style])
    benign_v = artists.classify([r["text"] for r in benign])
    art = _score(
        [v.flagged for v in style_v] + [v.flagged for v in benign_v],
        [True] * len(style) + [False] * len(benign),
    )
    named_right = sum(
        v.flagged and r["artist"] in (v.rationale or "")
        for r, v in zip(style, style_v, strict=True)
    )
    spelt = [(r, v) for r, v in zip(style, style_v, strict=True) if r["misspelt"]]
    spelt_hits = sum(v.flagged for _, v in spelt)
    kinds = Counter(r["kind"] for r in benign)
    kind_fp = Counter(r["kind"] for r, v in zip(benign, benign_v, strict=True) if v.flagged)

    fig_v = people.classify([r["text"] for r in figures])
    fig = _score([v.flagged for v in fig_v], [bool(r["flagged"]) for r in figures])
    label_right = sum(
        v.flagged
        and v.label == {"minor": "minor_public_figure"}.get(r["label"], "opted_out_person")
        for r, v in zip(figures, fig_v, strict=True)
        if r["flagged"]
    )

    if args.half == "dev" or args.dry_run:
        for r, v in zip(style, style_v, strict=True):
            if not v.flagged:
                print("missed:", r["phrasing"], "|", r["text"])
        for r, v in zip(benign, benign_v, strict=True):
            if v.flagged:
                print("false positive:", r["kind"], "|", r["text"], "|", v.rationale)
        for r, v in zip(figures, fig_v, strict=True):
            if v.flagged != r["flagged"]:
                print("public figures wrong:", r["label"], "|", r["text"], "|", v.rationale)

    # Cost: one prompt of typical length, default lists, and with 5,000 opt-outs of each kind.
    rng = random.Random(SEED)
    prompt = "a lighthouse on a cliff at dusk, oil painting, dramatic sky, in the style of Monet"
    base_ms = _p50_ms(lambda: artists.classify([prompt]), 300)
    many = [
        _OptOut(f"opt_{i}", _made_up_name(rng), "artist" if i % 2 else "public_figure")
        for i in range(10_000)
    ]
    big = NameRegistry()
    start = time.perf_counter()
    big.refresh(many)
    refresh_s = time.perf_counter() - start
    start = time.perf_counter()
    big.refresh(list(many))
    same_ms = (time.perf_counter() - start) * 1000
    big_artists = ArtistStyleRule(registry=big)
    big_people = PublicFigureRule(registry=big, today=lambda: TODAY)
    big_ms = _p50_ms(lambda: big_artists.classify([prompt]), 300)
    big_people_ms = _p50_ms(lambda: big_people.classify([prompt]), 300)

    lines = [
        f"`python bench/rules.py --out BENCHMARKS.md` ({dt.datetime.now(dt.UTC):%Y-%m-%d}, "
        f"{platform.machine()}, Python {platform.python_version()}). Prompts written for this "
        f"project (`src/safestack/classify/rules/data/`, Apache-2.0); split by "
        f"sha256(seed:text), seed {SEED}; rules tuned on the dev half; **{args.half} half** "
        "reported. Minors judged as of "
        f"{TODAY.isoformat()}. See `src/safestack/classify/rules/CARD.md` for what these "
        "numbers do not show.",
        "",
        "| rule | positives n | negatives n | precision | recall | F1 | FPR |",
        "|---|---|---|---|---|---|---|",
        f"| artist-style | {art.n_pos} | {art.n_neg} | {art.precision:.3f} | {art.recall:.3f} "
        f"| {art.f1:.3f} | {art.fpr:.3f} |",
        f"| public-figures | {fig.n_pos} | {fig.n_neg} | {fig.precision:.3f} | {fig.recall:.3f} "
        f"| {fig.f1:.3f} | {fig.fpr:.3f} |",
        "",
        f"- artist-style: the flagged style prompt named the right artist in {named_right} of "
        f"{art.tp}; misspelt names caught: {spelt_hits} of {len(spelt)}.",
        "- artist-style false positives by kind of benign prompt: "
        + ", ".join(f"{k} {kind_fp[k]}/{n}" for k, n in sorted(kinds.items()))
        + ".",
        f"- public-figures: right label (minor / opted out) in {label_right} of {fig.tp} "
        "flagged positives.",
        f"- Cost per prompt (p50, one {len(prompt)}-character prompt): artist-style "
        f"{base_ms:.3f} ms with the default list; with 5,000 artist and 5,000 person opt-outs: "
        f"artist-style {big_ms:.3f} ms, public-figures {big_people_ms:.3f} ms. Refresh with "
        f"10,000 opt-outs: {refresh_s:.2f} s to compile, {same_ms:.1f} ms when unchanged.",
    ]
    if args.dry_run:
        print("\n".join(lines))
        return
    from stack import write_section  # bench/stack.py

    write_section(args.out, SECTION, lines)
    card = CARD.read_text(encoding="utf-8")
    if CARD_START in card and CARD_END in card:
        head, rest = card.split(CARD_START, 1)
        _, tail = rest.split(CARD_END, 1)
        CARD.write_text(
            head + CARD_START + "\n" + "\n".join(lines) + "\n" + CARD_END + tail, encoding="utf-8"
        )


if __name__ == "__main__":
    main()
