"""The HTML report rendered for real by headless Chromium: a screenshot that is not blank."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from dlmsdoctor.output.report import write_report
from tests.output.seed_session import seed_session

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser",
                                                       "google-chrome")) if p), None)


def png_rows(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, decompressed IDAT) of a PNG; filter bytes left in (enough to tell
    content from a blank page, whose filtered rows are all zeros)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack_from(">II", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def headless_chromium(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Open ``page`` in a headless Chromium with a throwaway profile and no background traffic;
    ``args`` say what to make of it (a screenshot, a PDF)."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", *args, page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt: chromium)")
def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    html = tmp_path / "informe.html"
    write_report(seed_session(), html, "html", "es")
    shot = tmp_path / "informe.png"
    done = headless_chromium(html, "--window-size=1000,1400", f"--screenshot={shot}")
    assert shot.exists(), done.stderr[-2000:]
    width, height, raw = png_rows(shot.read_bytes())
    assert (width, height) == (1000, 1400)
    # A blank page filters to (almost) all zero bytes; text, tables and the status bar do not.
    nonzero = sum(1 for b in raw if b)
    assert nonzero > len(raw) // 50, f"only {nonzero} of {len(raw)} bytes non-zero: blank page?"
    assert len(set(raw)) > 64


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt: chromium)")
def test_html_report_prints_to_pdf(tmp_path: Path) -> None:
    """The print stylesheet gives a paged document: the appendix starts on its own page, so a
    report with an appendix prints on several pages."""
    html = tmp_path / "report.html"
    write_report(seed_session(), html, "html", "en")
    pdf = tmp_path / "report.pdf"
    done = headless_chromium(html, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert pdf.exists(), done.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert pages >= 3, f"{pages} page(s)"
