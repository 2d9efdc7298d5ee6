"""Templates and escaping: the card's text is evidence, so it is escaped for each format.

The HTML template autoescapes every value (a task or classifier name in a log is untrusted text);
the only markup inserted unescaped is what this package generates itself: the plots' SVG and the
introduction rendered from Markdown with raw HTML and images switched off. The Markdown template
escapes table cells (``|`` would end a cell, a newline the row) and prose (``<`` would open raw
HTML in most renderers).
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

__all__ = [
    "breakable",
    "environment",
    "markdown_to_html",
    "md_cell",
    "md_code",
    "md_text",
    "prose_html",
    "prose_md",
]


def md_cell(value: Any) -> str:
    """Text made safe inside a Markdown table cell."""
    text = " ".join(str(value).split())  # a newline would end the row
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def md_text(value: Any) -> str:
    """Plain text made literal in Markdown prose (no emphasis, links, or raw HTML)."""
    text = str(value).replace("\\", "\\\\")
    for char in "`*[]":
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;").replace(">", "&gt;")


_CODE = re.compile(r"`([^`\n]+)`")


def prose_md(value: Any) -> str:
    """Prose whose `backtick` spans are code: the rest is made literal Markdown."""
    text, out, at = str(value), [], 0
    for match in _CODE.finditer(text):
        out += [md_text(text[at : match.start()]), match.group(0)]
        at = match.end()
    return "".join([*out, md_text(text[at:])])


def prose_html(value: Any) -> Markup:
    """Prose whose `backtick` spans are code, as escaped HTML with ``<code>`` elements."""
    from markupsafe import Markup, escape

    text, out, at = str(value), Markup(""), 0
    for match in _CODE.finditer(text):
        out += escape(text[at : match.start()]) + Markup("<code>%s</code>") % match.group(1)
        at = match.end()
    return out + escape(text[at:])


def breakable(value: Any) -> Markup:
    """Escaped HTML with line-break opportunities after ``_``, ``/`` and ``+``.

    Identifiers such as ``system_mitigations_and_model_refusals`` would otherwise force a table
    column as wide as the whole name; ``<wbr>`` lets it wrap without the layout cost of
    ``overflow-wrap: anywhere``.
    """
    from markupsafe import Markup, escape

    text = str(escape(value))
    for char in "_/+":
        text = text.replace(char, char + "<wbr>")
    return Markup(text)


def md_code(value: Any) -> str:
    """Inline code, unless the text holds a backtick (then escaped prose)."""
    text = " ".join(str(value).split())
    return md_text(text) if "`" in text else f"`{text}`"


def md_align(align: Any) -> str:
    """The separator row of a Markdown table (numbers right-aligned)."""
    return "|" + "".join(" ---: |" if a == "right" else " --- |" for a in align)


def run_ref(run_id: str, refs: dict[str, str]) -> str:
    """``R1 `run-id```: a run as tables name it in Markdown."""
    return f"{refs.get(run_id, run_id)} {md_code(run_id)}"


@functools.cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # CommonMark with tables; raw HTML is escaped and images (which a browser would fetch) are off.
    return MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")


def markdown_to_html(text: str) -> str:
    """The introduction, for the HTML card: links stay links, nothing is loaded."""
    rendered: str = _markdown().render(text)
    return rendered


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("safestack.cards", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = md_cell
    env.filters["mdtext"] = md_text
    env.filters["code"] = md_code
    env.filters["breakable"] = breakable
    env.filters["md_align"] = md_align
    env.filters["runref"] = run_ref
    env.filters["prose_md"] = prose_md
    env.filters["prose_html"] = prose_html
    return env
