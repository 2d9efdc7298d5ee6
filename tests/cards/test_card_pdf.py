"""The PDF card: WeasyPrint's output is a real PDF that a PDF renderer draws."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from PIL import Image

from conftest import require_tool


def test_the_pdf_is_a_pdf_and_page_one_renders(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, summary = built
    pdf = Path(summary["files"]["pdf"])
    assert pdf == out / "system_card.pdf"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    pdftoppm = require_tool("pdftoppm")
    subprocess.run(
        [pdftoppm, "-f", "1", "-l", "1", "-r", "40", "-png", str(pdf), str(tmp_path / "page")],
        check=True,
        timeout=60,
        capture_output=True,
    )
    pages = list(tmp_path.glob("page*.png"))
    assert len(pages) == 1
    with Image.open(pages[0]) as page:
        colours = page.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 16  # text, the summary box: not a blank page
