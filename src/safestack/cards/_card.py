"""The system card: built from finished run logs and a scored scorecard, rendered three ways.

A card is a report, not a live view: :meth:`SystemCard.from_evidence` takes the
:class:`~safestack.evals.RunEvidence` that :func:`~safestack.evals.load_evidence` read and the
:class:`~safestack.scorecard.ScorecardResult` assessed on the same runs, and everything it shows
is derived from those two. The Markdown, the HTML and the PDF are rendered from the same tables,
so they cannot disagree, and every table names the runs it comes from.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from safestack.cards._plots import CategoryPlot, TradeoffPlot, inline_svg, render_svg
from safestack.cards._render import environment, markdown_to_html
from safestack.cards._sections import Section, build_content
from safestack.errors import InputError
from safestack.evals import RunEvidence
from safestack.scorecard import ScorecardResult

__all__ = ["CARD_FORMATS", "SystemCard"]

#: What :meth:`SystemCard.write` can write, with the file name of each.
CARD_FORMATS = {"md": "system_card.md", "html": "system_card.html", "pdf": "system_card.pdf"}


@dataclass(frozen=True)
class _Plot:
    name: str
    caption: str
    svg: str


@dataclass(frozen=True, eq=False)
class SystemCard:
    """A system card: introduction, stack, results, scorecard, limitations, provenance.

    Build it with :meth:`from_evidence`; render it with :meth:`markdown`, :meth:`html` and
    :meth:`pdf`, or write all of it with :meth:`write`. Plots are drawn once, on first use.
    """

    title: str
    about: str
    """The introduction and intended use, as Markdown."""
    runs: tuple[RunEvidence, ...]
    scorecard: ScorecardResult
    sections: tuple[Section, ...]
    plot_specs: tuple[TradeoffPlot | CategoryPlot, ...]
    refs: dict[str, str]
    """Short references (R1, R2, …) of the runs, in the order given."""

    @classmethod
    def from_evidence(
        cls,
        runs: Sequence[RunEvidence],
        scorecard: ScorecardResult,
        *,
        title: str | None = None,
        about: str | None = None,
    ) -> SystemCard:
        """The card of ``runs``; ``scorecard`` must have been assessed on exactly these runs.

        ``about`` replaces the generated introduction (Markdown); ``title`` the generated title.
        Raises :class:`~safestack.errors.DataError` when the scorecard was assessed on other runs
        (its levels would not match the card's tables).
        """
        content = build_content(runs, scorecard)
        return cls(
            title=title or content.default_title,
            about=about if about is not None and about.strip() else content.default_about,
            runs=tuple(runs),
            scorecard=scorecard,
            sections=content.sections,
            plot_specs=content.plots,
            refs=content.refs,
        )

    @functools.cached_property
    def plots(self) -> dict[str, str]:
        """Each plot's file stem and its SVG document."""
        return {spec.name: render_svg(spec) for spec in self.plot_specs}

    def _context(self, inline: bool) -> dict[str, object]:
        plots = {
            spec.name: _Plot(
                spec.name,
                spec.caption,
                inline_svg(self.plots[spec.name]) if inline else "",
            )
            for spec in self.plot_specs
        }
        return {
            "title": self.title,
            "about": self.about.strip(),
            "scorecard": self.scorecard,
            "sections": self.sections,
            "plots": plots,
            "refs": self.refs,
        }

    def markdown(self) -> str:
        """The card as Markdown; it links its plots as ``plots/<name>.svg`` (see :meth:`write`)."""
        return environment().get_template("card.md.j2").render(self._context(inline=False))

    def html(self) -> str:
        """The card as one self-contained HTML page (inline CSS and SVG; nothing is fetched)."""
        from markupsafe import Markup

        context = self._context(inline=True)
        context["about_html"] = Markup(markdown_to_html(self.about))
        context["plots"] = {
            name: _Plot(plot.name, plot.caption, Markup(plot.svg))  # generated here, not evidence
            for name, plot in context["plots"].items()  # type: ignore[attr-defined]
        }
        return environment().get_template("card.html.j2").render(context)

    def pdf(self) -> bytes:
        """The HTML card printed to PDF by WeasyPrint (A4); no URL is fetched while printing."""
        import weasyprint
        from PIL import ImageFile
        from weasyprint.urls import URLFetcher

        # Importing WeasyPrint makes Pillow accept truncated images process-wide; the card has
        # no raster image, and safestack's image checks must never see padded pixels.
        ImageFile.LOAD_TRUNCATED_IMAGES = False

        # data: only; the page references nothing else, and this keeps it that way.
        fetcher = URLFetcher(allowed_protocols=["data"])
        document = weasyprint.HTML(string=self.html(), url_fetcher=fetcher)
        pdf: bytes = document.write_pdf()
        return pdf

    def write(
        self, out_dir: str | Path, formats: Iterable[str] = ("md", "html", "pdf")
    ) -> dict[str, Path]:
        """Write the card into ``out_dir``; returns the paths by format (and ``scorecard``).

        Always writes ``scorecard.json`` (the scored scorecard the card shows) and the plots
        (``plots/*.svg``, which the Markdown links to); SVG files in ``plots/`` that this card
        does not draw are removed, so the folder never mixes two cards.
        """
        wanted = list(dict.fromkeys(formats))
        unknown = [f for f in wanted if f not in CARD_FORMATS]
        if unknown or not wanted:
            raise InputError(
                f"unknown card format(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"allowed: {', '.join(CARD_FORMATS)}"
            )
        out = Path(out_dir)
        plot_dir = out / "plots"
        plot_dir.mkdir(parents=True, exist_ok=True)
        for stale in plot_dir.glob("*.svg"):  # a plot of an earlier card would be misleading
            if stale.stem not in self.plots:
                stale.unlink()
        for name, svg in self.plots.items():
            (plot_dir / f"{name}.svg").write_text(svg, encoding="utf-8")
        written: dict[str, Path] = {}
        for fmt in wanted:
            path = out / CARD_FORMATS[fmt]
            if fmt == "pdf":
                path.write_bytes(self.pdf())
            else:
                path.write_text(self.markdown() if fmt == "md" else self.html(), encoding="utf-8")
            written[fmt] = path
        scorecard = out / "scorecard.json"
        scorecard.write_text(self.scorecard.model_dump_json(indent=2) + "\n", encoding="utf-8")
        written["scorecard"] = scorecard
        written["plots"] = plot_dir
        return written
