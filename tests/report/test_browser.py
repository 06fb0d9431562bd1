"""Open the reports in headless Chromium and check through the DOM that every chart was drawn.

Dependency-free: `--dump-dom` after a virtual-time budget, with a probe script injected at the top
of <head> that records errors (window.onerror, console.error, unhandled rejections) and, after
load, writes a JSON verdict into a <pre id="selfcheck"> element. A screenshot of the small report
is kept in reports/test-screenshots/ for a person to look at.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from simulator.report.compare import CHART_IDS as COMPARE_CHART_IDS
from simulator.report.run_report import CHART_IDS

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser",
                                                          "google-chrome", "google-chrome-stable"))
                 if p), None)
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH; install it "
                                 "with `apt-get install -y chromium` to run the browser tests")]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "test-screenshots"

PROBE = r"""<script>
window.__errors = [];
window.onerror = function (m) { window.__errors.push("error: " + m); };
window.addEventListener("unhandledrejection", function (e) {
  window.__errors.push("rejection: " + (e.reason && e.reason.message || e.reason)); });
(function () { var orig = console.error; console.error = function () {
  window.__errors.push("console: " + Array.prototype.map.call(arguments, String).join(" "));
  return orig.apply(console, arguments); }; })();
window.addEventListener("load", function () { setTimeout(function () {
  var divs = Array.prototype.slice.call(document.querySelectorAll(".plotly-graph-div"));
  var report = {ids: [], undrawn: [], gl_without_canvas: [], errors: window.__errors,
                webgl_missing: document.body.innerText.indexOf("WebGL is not supported") >= 0};
  divs.forEach(function (d) {
    report.ids.push(d.id);
    if (!d.querySelector("svg.main-svg") || !d._fullLayout) report.undrawn.push(d.id);
    var gl = (d._fullData || []).some(function (t) { return /gl$/.test(t.type); });
    if (gl && !d.querySelector("canvas")) report.gl_without_canvas.push(d.id);
  });
  var pre = document.createElement("pre"); pre.id = "selfcheck";
  pre.textContent = JSON.stringify(report); document.body.appendChild(pre);
}, 1000); });
</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--enable-unsafe-swiftshader",  # software WebGL for Scattergl
           f"--user-data-dir={profile}", "--virtual-time-budget=20000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def rendered(report: Path, tmp_path: Path) -> dict:
    """Load `report` with the probe injected; return the probe's verdict."""
    probe_page = tmp_path / f"probe-{report.parent.name}-{report.name}"
    probe_page.write_text(report.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1),
                          encoding="utf-8")
    out = chromium(tmp_path, "--dump-dom", probe_page.as_uri())
    match = re.search(r'<pre id="selfcheck">(.*?)</pre>', out.stdout, re.S)
    assert match, f"no verdict in the DOM; chromium said: {out.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def assert_all_drawn(verdict: dict, expected_ids: tuple[str, ...]) -> None:
    assert verdict["errors"] == []
    assert sorted(verdict["ids"]) == sorted(expected_ids)
    assert verdict["undrawn"] == []
    assert verdict["gl_without_canvas"] == [] and not verdict["webgl_missing"]


def test_small_report_renders_and_screenshot(small_report, tmp_path):
    assert_all_drawn(rendered(small_report, tmp_path), CHART_IDS)
    shot = tmp_path / "small-report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", "--hide-scrollbars",
             small_report.as_uri())
    assert shot.exists() and shot.stat().st_size > 50_000, "screenshot missing or blank"
    assert png_size(shot) == (1400, 3000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / shot.name)


def test_10k_report_renders_with_webgl(big_report, tmp_path):
    path, _ = big_report
    assert_all_drawn(rendered(path, tmp_path), CHART_IDS)


def test_comparison_renders(small_run, timing_only_run, tmp_path):
    from simulator.report import write_comparison_report

    page = write_comparison_report([small_run, timing_only_run], tmp_path / "compare.html")
    assert_all_drawn(rendered(page, tmp_path), COMPARE_CHART_IDS)
    shot = tmp_path / "comparison.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,1800", "--hide-scrollbars",
             page.as_uri())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / shot.name)
