"""The card's plots, as SVG text: deterministic, so a rebuilt card from the same logs is identical.

Two kinds, both with 95 % Wilson intervals as error bars: the trade-off of one source (not_unsafe
against not_overrefuse, one point per configuration, bars in both directions) and the rates per
category (or per attack method) of every configuration. Figures are built with
:class:`matplotlib.figure.Figure` and never pass through ``pyplot``: there is no global figure
registry to leak into, nothing to close, and no GUI backend to pick. matplotlib is imported when
a plot is drawn, not when safestack is imported (it costs a few hundred milliseconds).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["CategoryPlot", "Estimate", "TradeoffPlot", "inline_svg", "plot_names", "render_svg"]

# Okabe–Ito: distinguishable with the common colour-vision deficiencies and in greyscale print.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_MARKERS = ("o", "s", "D", "^", "v", "P", "X")


@dataclass(frozen=True)
class Estimate:
    """A rate with its 95 % interval."""

    value: float
    low: float
    high: float

    @classmethod
    def of(cls, row: dict[str, Any], metric: str) -> Estimate | None:
        value = row.get(metric)
        if value is None:
            return None
        low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
        return cls(
            float(value),
            float(value if low is None else low),
            float(value if high is None else high),
        )

    @property
    def below(self) -> float:
        return max(0.0, self.value - self.low)

    @property
    def above(self) -> float:
        return max(0.0, self.high - self.value)


@dataclass(frozen=True)
class TradeoffPlot:
    """Plot (a): one source, not_unsafe against not_overrefuse for each configuration."""

    name: str
    caption: str
    title: str
    points: tuple[tuple[str, Estimate | None, Estimate | None], ...]
    """(configuration, not_overrefuse, not_unsafe)."""


@dataclass(frozen=True)
class CategoryPlot:
    """Plot (b): a rate per category (rows) for each configuration (markers)."""

    name: str
    caption: str
    title: str
    xlabel: str
    configs: tuple[str, ...]
    categories: tuple[str, ...]
    values: tuple[tuple[str, str, Estimate], ...]
    """(category, configuration, estimate); absent pairs were not measured."""


def _label(text: str) -> str:
    return text.replace("$", r"\$")  # a "$" would start matplotlib's math mode


def _style(i: int) -> dict[str, Any]:
    return {
        "color": _COLOURS[i % len(_COLOURS)],
        "marker": _MARKERS[i % len(_MARKERS)],
        "markersize": 5,
        "capsize": 2.5,
        "elinewidth": 1,
        "linestyle": "none",
    }


def _tradeoff(plot: TradeoffPlot) -> Figure:
    from matplotlib.figure import Figure

    both = [(c, x, y) for c, x, y in plot.points if x is not None and y is not None]
    fig = Figure(figsize=(6.4, 4.4 if both else 1.1 + 0.35 * len(plot.points)))
    ax: Axes = fig.add_subplot()
    if both:
        for i, (config, x, y) in enumerate(both):
            assert x is not None and y is not None
            ax.errorbar(
                [x.value],
                [y.value],
                xerr=[[x.below], [x.above]],
                yerr=[[y.below], [y.above]],
                label=_label(config),
                **_style(i),
            )
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("not_overrefuse (higher: fewer allowed requests refused)")
        ax.legend(loc="best", fontsize=7, frameon=True)
    else:  # the source has only one kind of prompt: show that metric alone
        metric = "not_unsafe" if any(y is not None for _, _, y in plot.points) else "not_overrefuse"
        shown = [
            (c, est)
            for c, x, y in plot.points
            if (est := y if metric == "not_unsafe" else x) is not None
        ]
        for i, (_, est) in enumerate(shown):
            ax.errorbar([est.value], [i], xerr=[[est.below], [est.above]], **_style(i))
        ax.set_yticks(range(len(shown)), [_label(c) for c, _ in shown], fontsize=8)
        ax.set_ylim(-0.6, len(shown) - 0.4)
        ax.invert_yaxis()
        ax.set_xlim(-0.02, 1.02)
        other = "not_overrefuse" if metric == "not_unsafe" else "not_unsafe"
        ax.set_xlabel(f"{metric} (this source has no samples for {other})")
    if both:
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("not_unsafe (higher: fewer policy violations)")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.set_title(_label(plot.title), fontsize=10)
    return fig


def _categories(plot: CategoryPlot) -> Figure:
    from matplotlib.figure import Figure

    rows = len(plot.categories)
    fig = Figure(figsize=(6.4, 1.3 + 0.22 * rows * max(1, len(plot.configs)) ** 0.5 * 1.6))
    ax: Axes = fig.add_subplot()
    at = {c: i for i, c in enumerate(plot.categories)}
    width = 0.7 / max(1, len(plot.configs))
    for j, config in enumerate(plot.configs):
        mine = [(cat, est) for cat, cfg, est in plot.values if cfg == config]
        if not mine:
            continue
        ys = [at[cat] - 0.35 + width * (j + 0.5) for cat, _ in mine]
        ax.errorbar(
            [e.value for _, e in mine],
            ys,
            xerr=[[e.below for _, e in mine], [e.above for _, e in mine]],
            label=_label(config),
            **_style(j),
        )
    ax.set_yticks(range(rows), [_label(c) for c in plot.categories], fontsize=8)
    ax.set_ylim(-0.5, rows - 0.5)
    ax.invert_yaxis()
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel(plot.xlabel)
    ax.grid(True, axis="x", linewidth=0.4, alpha=0.5)
    ax.set_title(_label(plot.title), fontsize=10)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12 if rows > 3 else -0.3),
        ncols=2,
        fontsize=7,
        frameon=False,
    )
    return fig


def render_svg(plot: TradeoffPlot | CategoryPlot) -> str:
    """The plot as a standalone SVG document, byte-identical for identical data."""
    import matplotlib

    fig = _tradeoff(plot) if isinstance(plot, TradeoffPlot) else _categories(plot)
    out = io.StringIO()
    # The salt makes the ids of clip paths unique per plot (several sit in one HTML page) and
    # fixed across builds; text stays text (searchable, small) instead of glyph outlines.
    with matplotlib.rc_context({"svg.hashsalt": f"safestack-{plot.name}", "svg.fonttype": "none"}):
        fig.savefig(
            out, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None}
        )
    return out.getvalue()


def inline_svg(document: str) -> str:
    """The ``<svg>`` element of an SVG document, for pasting into HTML (no XML prolog)."""
    start = document.find("<svg")
    return document[start:] if start >= 0 else document


def plot_names(names: Sequence[str]) -> list[str]:
    """File stems for plots, unique and safe as file names whatever the evidence calls things."""
    out: list[str] = []
    for name in names:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-") or "plot"
        candidate, k = stem, 2
        while candidate in out:
            candidate, k = f"{stem}-{k}", k + 1
        out.append(candidate)
    return out
