"""The preflight and audit HTML reports rendered by a real browser: headless Chromium screenshots.

Renders reports from the recorded fixtures (every kernel fact set plus an unreachable node; audit
observations with a failing node), loads each page with `chromium --headless --screenshot` and
checks that a non-trivial PNG came out (size, dimensions, and more than a blank page's colours).
Skips, saying so, when Debian's chromium is not installed (scripts/install-system-deps installs it).
The page is local and standalone; the browser is started with everything that phones home off.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from test_pouch_report import GENERATED, UNREACHABLE, audit_node, mixed_fleet, pa, pr

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1280, 800


def screenshot(page: Path, png: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={WIDTH},{HEIGHT}",
        page.as_uri(),
    ]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=180, env=dict(os.environ, HOME=str(profile))
    )


def png_pixels(png: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the decoded rows (RGB or RGBA, 8 bit) of a non-interlaced PNG."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        filter_type = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            up_left = previous[x - channels] if x >= channels else 0
            if filter_type == 1:
                line[x] = (line[x] + left) & 0xFF
            elif filter_type == 2:
                line[x] = (line[x] + up) & 0xFF
            elif filter_type == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                p = left + up - up_left
                pa_, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa_ <= pb and pa_ <= pc else up if pb <= pc else up_left
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not installed (Debian package chromium; scripts/install-system-deps installs it)"
        )
    return CHROMIUM


def render(tmp_path: Path, kind: str, nodes: dict) -> tuple[Path, Path]:
    page = tmp_path / f"{kind}.html"
    page.write_text(pr.render_html(pr.build_report(kind, nodes, GENERATED)))
    png = tmp_path / f"{kind}.png"
    result = screenshot(page, png, tmp_path / f"profile-{kind}")
    assert png.exists(), f"chromium wrote no screenshot (exit {result.returncode}):\n{result.stderr[-2000:]}"
    return page, png


def assert_non_trivial(png: Path) -> None:
    assert png.stat().st_size > 20_000, f"{png} is only {png.stat().st_size} bytes"
    width, height, rows = png_pixels(png)
    assert (width, height) == (WIDTH, HEIGHT)
    colours = {row[x : x + 3] for row in rows[::4] for x in range(0, len(row), 4 * (len(row) // width))}
    # A blank or error page has a handful of colours; the table has text, borders and tinted cells.
    assert len(colours) > 50, f"only {len(colours)} distinct colours: the page looks empty"
    # The status tints are on the page: green (ready/pass) and red (blocked/unreachable/FAIL) pixels.
    assert any(g > r + 20 and g > b for r, g, b in colours), "no green status cell"
    assert any(r > g + 20 and r > b + 10 for r, g, b in colours), "no red status cell"


def test_preflight_report_screenshot(chromium: str, tmp_path: Path) -> None:
    _page, png = render(tmp_path, "preflight", mixed_fleet())
    assert_non_trivial(png)
    keep = os.environ.get("REPORT_SCREENSHOT_DIR")
    if keep:
        shutil.copy(png, Path(keep) / "preflight.png")


def test_audit_report_screenshot(chromium: str, tmp_path: Path) -> None:
    allowed = {"allowed_insecure_registries": ["10.0.2.101:5000"]}
    bad = audit_node("lab_provisioned.json")  # the lab registry is not allowed here: one finding
    nodes = {"node1": audit_node("lab_provisioned.json", **allowed), "node2": bad, "node3": UNREACHABLE}
    assert not all(check["passed"] for check in pa.evaluate(bad["observations"], {}))
    _page, png = render(tmp_path, "audit", nodes)
    assert_non_trivial(png)
    keep = os.environ.get("REPORT_SCREENSHOT_DIR")
    if keep:
        shutil.copy(png, Path(keep) / "audit.png")
