"""The comparison page: one row and one curve per run, values from each run's traces."""

import html
import re

import pytest
from report_checks import assert_self_contained

from simulator.errors import InputError
from simulator.report import write_comparison_report
from simulator.report.compare import CHART_IDS
from simulator.report.loading import load_run
from simulator.report.metrics import run_metrics


def table_rows(page: str) -> list[list[str]]:
    body = re.search(r'<table class="data" id="compare-table">.*?<tbody>(.*?)</tbody>', page,
                     re.S).group(1)
    return [[html.unescape(c).replace("\u00a0", " ") for c in re.findall(r"<td>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_comparison_of_three_runs(small_run, timing_only_run, tmp_path):
    out = write_comparison_report([small_run, timing_only_run, small_run], tmp_path / "c.html")
    page = out.read_text(encoding="utf-8")
    assert_self_contained(page, len(CHART_IDS))
    for chart in CHART_IDS:
        assert f'<div id="{chart}" class="plotly-graph-div"' in page
    rows = table_rows(page)
    # the same run twice gets distinct labels; user strings are escaped in the table
    assert [r[0] for r in rows] == ["1. quick <start> & co (run)", "2. timing only",
                                    "3. quick <start> & co (run)"]
    assert "quick <start>" not in page
    m = run_metrics(load_run(small_run))
    assert rows[0][6] == f"{100 * m['final_accuracy']:.1f} %"
    assert rows[0][5] == f"{m['time_to_target_s']:,.0f} s ({m['time_to_target_s'] / 60:.1f} min)"
    assert rows[1][6] == "timing-only" and rows[1][5] == "n/a (timing-only)"
    assert rows[0][-1] == "8" and rows[1][-1] == "0"  # OOM events
    # one accuracy curve per run that has evaluations (the timing-only run has none)
    acc = page[page.index('id="chart-compare-accuracy"'):page.index('id="chart-compare-bars"')]
    assert acc.count('"type":"scatter"') == 2


def test_comparison_needs_runs(tmp_path):
    with pytest.raises(InputError, match="no run folders"):
        write_comparison_report([], tmp_path / "c.html")
    with pytest.raises(InputError, match="is not a folder"):
        write_comparison_report([tmp_path / "nope"], tmp_path / "c.html")
