"""The sequence chart in a real browser: headless Chromium from the system's packages draws
a scenario's chart (a screenshot, checked for a drawing rather than a blank page) and runs
its script (filtering by node hides the other nodes' rows).

CI installs Chromium (``.ci/run``: ``apt-get install chromium`` where it can); without it
these tests are skipped, saying so."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from sim.chart import render
from sim.runner import run_seed

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium)")

SCENARIO = str(Path(__file__).resolve().parent.parent / "scenarios" / "one_way_partition.py") + ":scenario"


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outcome, s = run_seed(SCENARIO, 3, trace=True)
    assert outcome.passed and s is not None, outcome.details
    path = tmp_path_factory.mktemp("chart") / "chart.html"
    render(s.trace, path=path, title="one_way_partition, seed 3")
    return path


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # the timeout only turns a hung browser into a failure; nothing here waits on time
    return subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=180, check=True)


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    bpp = 3 if color == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + left) & 255
            elif f == 2:
                line[i] = (line[i] + up) & 255
            elif f == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif f == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i:i + 3]) for r in rows for i in range(0, stride, bpp)]  # type: ignore[misc]


def test_chromium_draws_the_chart(chart: Path, tmp_path: Path) -> None:
    shot = tmp_path / "chart.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", chart.as_uri())
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 900)
    inked = [p for p in pixels if p != b"\xff\xff\xff"]
    assert len(inked) > len(pixels) // 50, "the page is (nearly) blank"
    assert len(set(pixels)) > 20, "a drawing has lifelines, arrows, shading and text in several colours"


def test_the_chart_s_script_filters_by_node_in_a_browser(chart: Path, tmp_path: Path) -> None:
    """Uncheck every node but the first, as a person would, and read back which rows the
    script left shown: only those with an end on that node (and faults across it)."""
    html = chart.read_text(encoding="utf-8")
    probe = """<script>
var boxes=document.querySelectorAll('input.gsel');
for(var i=1;i<boxes.length;i++){boxes[i].checked=false;boxes[i].dispatchEvent(new Event('change'))}
var shown=0,hidden=0;
document.querySelectorAll('#rows .ev').forEach(function(e){if(e.style.display==='none')hidden++;else shown++});
document.title='probe shown='+shown+' hidden='+hidden+' nodes='+boxes.length;
</script></body>"""
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", probe, 1), encoding="utf-8")
    dom = _chromium(tmp_path, "--dump-dom", probed.as_uri()).stdout
    found = re.search(r"probe shown=(\d+) hidden=(\d+) nodes=(\d+)", dom)
    assert found, "the probe did not run: the chart's own script failed before it?"
    shown, hidden, nodes = map(int, found.groups())
    assert nodes >= 2 and shown > 0 and hidden > 0
