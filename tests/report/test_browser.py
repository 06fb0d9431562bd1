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
  if (window.__layout) report.layout = window.__layout();
  var pre = document.createElement("pre"); pre.id = "selfcheck";
  pre.textContent = JSON.stringify(report); document.body.appendChild(pre);
}, 1000); });
</script>"""


# What a reader must be able to read: every text label of every chart (titles, tick labels, bar
# texts, annotations, legend entries) as a box on the page, and the pairs that overlap; tables
# wider than their box; the order of sections; y axes drawn on -1..1 (plotly's range for nothing).
LAYOUT = r"""<script>
window.__layout = function () {
  function visible(r) { return r.width > 0.5 && r.height > 0.5; }
  var out = {overlaps: [], labels: 0, tables: {}, sections: [], empty_axes: [], sync: null,
             charts: {}, viewport: document.documentElement.clientWidth};
  document.querySelectorAll(".plotly-graph-div").forEach(function (d) {
    var box = d.getBoundingClientRect();
    out.charts[d.id] = {left: box.left, right: box.right, width: box.width, height: box.height};
    var sel = ".annotation-text, .gtitle, .xtick text, .ytick text, .bartext, .legendtext, .xtitle, .ytitle";
    var boxes = Array.prototype.slice.call(d.querySelectorAll(sel)).map(function (e) {
      return {r: e.getBoundingClientRect(), t: (e.textContent || "").trim()}; })
      .filter(function (b) { return b.t && visible(b.r); });
    out.labels += boxes.length;
    for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {
      var a = boxes[i].r, b = boxes[j].r;
      if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
        out.overlaps.push(d.id + ": '" + boxes[i].t + "' / '" + boxes[j].t + "'");
    }
    var fl = d._fullLayout || {};
    Object.keys(fl).forEach(function (k) {
      if (/^yaxis\d*$/.test(k) && fl[k].range && fl[k].range[0] === -1 && fl[k].range[1] === 1)
        out.empty_axes.push(d.id + "." + k);
    });
  });
  document.querySelectorAll("table.data").forEach(function (t) {
    var wrap = t.parentElement, cells = Array.prototype.slice.call(t.querySelectorAll("th"));
    out.tables[t.id] = {scroll: wrap.scrollWidth - wrap.clientWidth,
                        offscreen: cells.filter(function (c) {
                          return c.getBoundingClientRect().right > wrap.getBoundingClientRect().right + 1; })
                          .map(function (c) { return c.textContent; }),
                        rows: t.querySelectorAll("tbody tr").length};
  });
  document.querySelectorAll("main > section").forEach(function (s) { out.sections.push(s.id); });
  var dst = document.getElementById("chart-device-lanes");
  if (window.__zoomed && dst) out.sync = dst.layout.xaxis.range;
  return out;
};
window.addEventListener("load", function () { setTimeout(function () {
  var src = document.getElementById("chart-timeline");
  if (src && src._fullLayout && document.getElementById("chart-device-lanes")) {
    window.__zoomed = true;
    Plotly.relayout(src, {"xaxis.range": [100, 200]});  // as a reader's zoom on the overview
  }
}, 300); });
</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--enable-unsafe-swiftshader",  # software WebGL for Scattergl
           f"--user-data-dir={profile}", "--virtual-time-budget=20000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def rendered(report: Path, tmp_path: Path, window: str = "1400,1000") -> dict:
    """Load `report` with the probe (and the layout probe) injected; return their verdict."""
    probe_page = tmp_path / f"probe-{report.parent.name}-{report.name}"
    probe_page.write_text(report.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE + LAYOUT, 1),
                          encoding="utf-8")
    out = chromium(tmp_path, f"--window-size={window}", "--dump-dom", probe_page.as_uri())
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


def compare_chart_ids(run_dirs: list[Path]) -> tuple[str, ...]:
    """The charts a comparison page of these runs draws: accuracy curves when a run has evaluations,
    then one figure per metric."""
    from simulator.report.compare import chart_ids
    from simulator.report.loading import load_run
    from simulator.report.metrics import run_metrics

    runs = [load_run(d) for d in run_dirs]
    return chart_ids([run_metrics(r) for r in runs], any(not r.evals.empty for r in runs))


def assert_readable(layout: dict) -> None:
    assert layout["labels"] > 0
    assert layout["overlaps"] == [], layout["overlaps"][:10]
    for table, facts in layout["tables"].items():
        assert facts["scroll"] <= 1 and facts["offscreen"] == [], (table, facts)


@pytest.mark.slow
def test_small_report_renders_and_screenshot(small_report, tmp_path):
    verdict = rendered(small_report, tmp_path)
    assert_all_drawn(verdict, CHART_IDS)
    layout = verdict["layout"]
    # the planner table opens the page, before the scenario facts and the findings
    assert layout["sections"][:3] == ["planner", "scenario", "findings-section"]
    assert layout["tables"]["planner-table"]["rows"] == 3
    assert layout["tables"]["planner-table"]["scroll"] <= 1
    assert layout["empty_axes"] == []
    # zooming the per-group overview moves the device lanes to the same window
    assert layout["sync"] == [100, 200]
    shot = tmp_path / "small-report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", "--hide-scrollbars",
             small_report.as_uri())
    assert shot.exists() and shot.stat().st_size > 50_000, "screenshot missing or blank"
    assert png_size(shot) == (1400, 3000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / shot.name)


@pytest.mark.slow
def test_10k_report_renders_with_webgl(big_report, tmp_path):
    path, _, _ = big_report
    assert_all_drawn(rendered(path, tmp_path), CHART_IDS)


@pytest.mark.slow
def test_timing_only_report_has_no_accuracy_panel(timing_only_run, tmp_path):
    from simulator.report import write_run_report
    from simulator.report.run_report import TIMING_ONLY_OMITS

    verdict = rendered(write_run_report(timing_only_run, tmp_path / "t.html"), tmp_path)
    assert_all_drawn(verdict, tuple(c for c in CHART_IDS if c not in TIMING_ONLY_OMITS))
    layout = verdict["layout"]
    assert "accuracy" not in layout["sections"] and layout["empty_axes"] == []


@pytest.mark.slow
def test_fault_windows_and_named_groups(tmp_path):
    """Named groups and faults: labels of the fault bands clear the group titles; a screenshot."""
    from tests.helpers.report_synthetic import write_run

    from simulator.report import write_run_report

    run = write_run(tmp_path / "faults", 30, 24, seed=4, oom_devices=[0], offline=[(12, 5)],
                    name="fleet with faults", group_names=["nano-ap1", "nx-ap2", "orin-wired"],
                    faults=[{"kind": "link_down", "link": "ap1", "start_s": 300.0, "end_s": 420.0},
                            {"kind": "server_pause", "start_s": 700.0, "end_s": 760.0},
                            {"kind": "devices_offline", "devices": ["nx-ap2#1"], "start_s": 900.0,
                             "end_s": 1000.0}])
    page = write_run_report(run, tmp_path / "faults.html")
    verdict = rendered(page, tmp_path)
    assert_all_drawn(verdict, CHART_IDS)
    overview = [o for o in verdict["layout"]["overlaps"] if o.startswith("chart-timeline")]
    assert overview == []
    shot = tmp_path / "faults-report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2400", "--hide-scrollbars", page.as_uri())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / shot.name)


@pytest.mark.slow
def test_six_run_comparison_is_readable(tmp_path):
    """3 configurations × 2 seeds of a sweep, one run interrupted, runs of different lengths: no
    label or title overlaps another, the runs table fits (memory column included), a screenshot."""
    import json

    from tests.helpers.report_synthetic import make_sweep

    from simulator.report import write_comparison_report

    dirs = make_sweep(tmp_path / "sweep", rounds=(6, 9, 12), extra_key="fleet[0].count")
    summary = json.loads((dirs[3] / "summary.json").read_text())
    summary["stop_reason"] = "interrupted"
    (dirs[3] / "summary.json").write_text(json.dumps(summary))
    page = write_comparison_report(dirs, tmp_path / "sweep" / "comparison.html")
    verdict = rendered(page, tmp_path)
    assert_all_drawn(verdict, compare_chart_ids(dirs))
    layout = verdict["layout"]
    assert_readable(layout)
    assert layout["tables"]["compare-table"]["rows"] == 6
    shot = tmp_path / "comparison-6-runs.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2200", "--hide-scrollbars", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 50_000
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / shot.name)


@pytest.mark.slow
def test_comparison_reads_well_from_900_to_1800_px(tmp_path):
    """The bars were one make_subplots grid of three columns: below ~1400 px their titles ran into
    each other. Now one figure per metric in a wrapping grid: at 900, 1300 and 1800 px every chart is
    drawn, lies inside the window and is wide enough to read, no label overlaps another, no errors."""
    from tests.helpers.report_synthetic import make_sweep

    from simulator.report import write_comparison_report

    dirs = make_sweep(tmp_path / "sweep", rounds=(6, 9, 12), extra_key="fleet[0].count")
    page = write_comparison_report(dirs, tmp_path / "sweep" / "comparison.html")
    expected = compare_chart_ids(dirs)
    assert len(expected) >= 9  # the accuracy curves and one figure per metric
    for width in (900, 1300, 1800):
        verdict = rendered(page, tmp_path, window=f"{width},3000")
        assert_all_drawn(verdict, expected)
        layout = verdict["layout"]
        assert layout["labels"] > 0
        assert layout["overlaps"] == [], (width, layout["overlaps"][:10])
        for chart, box in layout["charts"].items():
            assert box["left"] >= 0 and box["right"] <= layout["viewport"] + 1, (width, chart, box)
            assert box["width"] >= 300 and box["height"] >= 120, (width, chart, box)
        shot = tmp_path / f"comparison-{width}px.png"
        chromium(tmp_path, f"--screenshot={shot}", f"--window-size={width},3000", "--hide-scrollbars",
                 page.as_uri())
        assert shot.exists() and shot.stat().st_size > 50_000
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENSHOTS / shot.name)


@pytest.mark.slow
def test_comparison_renders(small_run, timing_only_run, tmp_path):
    from simulator.report import write_comparison_report

    page = write_comparison_report([small_run, timing_only_run], tmp_path / "compare.html")
    assert_all_drawn(rendered(page, tmp_path), compare_chart_ids([small_run, timing_only_run]))
    shot = tmp_path / "comparison.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,1800", "--hide-scrollbars",
             page.as_uri())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / shot.name)


@pytest.mark.slow
def test_plan_page_tables_fit_the_page(tmp_path):
    """plan.html's "why the cheaper fleets fail" and "every candidate judged" tables held sentences
    ("out of memory: tiny cannot hold …") on one line, so at 1400 px they scrolled sideways and hid
    columns (energy and utilization; why not). Every table must fit, every chart be drawn, no label
    overlap another."""
    from tests.helpers.cli import cli
    from tests.helpers.plan import write_plan

    out = tmp_path / "plan-out"
    done = cli("plan", str(write_plan(tmp_path)), "--out", str(out))
    assert done.code == 0, done.text
    verdict = rendered(out / "plan.html", tmp_path)
    assert_all_drawn(verdict, ("chart-plan-time", "chart-plan-energy", "chart-plan-why"))
    assert set(verdict["layout"]["tables"]) == {"why-table", "kinds-table", "plan-table"}
    assert_readable(verdict["layout"])
