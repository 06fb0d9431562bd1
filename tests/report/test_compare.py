"""The comparison page: runs named by what differs, mean ± std over seeds, per-hour figures when runs
differ in length, interrupted runs marked, values from each run's traces."""

import html
import json
import math
import re

import numpy as np
import pytest
from tests.helpers.report_checks import assert_self_contained
from tests.helpers.report_synthetic import make_sweep, write_run

from simulator.errors import InputError
from simulator.report import write_comparison_report
from simulator.report.compare import (bar_figure, bar_metrics, bars_grid, chart_ids, configurations,
                                      lengths_differ)
from simulator.report.compare_labels import RunLabel, run_labels
from simulator.report.loading import load_run
from simulator.report.metrics import run_metrics
from simulator.report.style import SERIES_COLORS, fmt_bytes, fmt_energy


def table_rows(page: str) -> list[list[str]]:
    body = re.search(r'<table class="data wrap" id="compare-table">.*?<tbody>(.*?)</tbody>', page,
                     re.S).group(1)
    return [[html.unescape(re.sub(r"<[^>]+>", " | ", c)).replace("\u00a0", " ")
             for c in re.findall(r"<td>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_comparison_of_three_runs(small_run, timing_only_run, tmp_path):
    out = write_comparison_report([small_run, timing_only_run, small_run], tmp_path / "c.html")
    page = out.read_text(encoding="utf-8")
    ids = chart_ids([run_metrics(load_run(d)) for d in (small_run, timing_only_run, small_run)], True)
    assert_self_contained(page, len(ids))
    for chart in ids:
        assert f'<div id="{chart}" class="plotly-graph-div"' in page
    rows = table_rows(page)
    labels = [r[0].split(" | ")[0].strip() for r in rows]
    # the two distinct scenarios are named by their names; the same run twice gets numbered labels
    assert len(set(labels)) == 3 and labels[1].startswith("2. timing only")
    assert labels[0].startswith("1. quick <start> & co") and labels[2].startswith("3. quick <start> & co")
    assert "quick <start>" not in page  # user strings are escaped
    m = run_metrics(load_run(small_run))
    assert rows[0][7] == f"{100 * m['final_accuracy']:.1f} %"
    assert rows[0][6] == f"{m['time_to_target_s']:,.0f} s ({m['time_to_target_s'] / 60:.1f} min)"
    assert rows[1][7] == "timing-only" and rows[1][6] == "n/a (timing-only)"
    assert rows[0][-1] == f"{m['accepted']:,.0f} / {m['dropped']:,.0f} / {m['lost']:,.0f} / 8"
    acc = page[page.index('id="chart-compare-accuracy"'):page.index('<div class="chart-grid"')]
    assert acc.count('"type":"scatter"') == 2  # one curve per run with evaluations


@pytest.mark.slow
def test_sweep_runs_are_named_by_their_swept_values_with_mean_and_std(tmp_path):
    dirs = make_sweep(tmp_path / "sweep")
    runs = [load_run(d) for d in dirs]
    labels = run_labels(runs)
    # algorithm.name alone tells the configurations apart (aggregation is zipped with it)
    assert [lab.label for lab in labels] == [f"algorithm.name={a} · seed {10 * c + s}" for c, a in
                                             enumerate(("co-s2p", "fedavg", "fedbuff")) for s in (0, 1)]
    assert all("fleet54_cos2p" not in lab.label for lab in labels)
    assert labels[0].detail == 'algorithm.name=co-s2p, algorithm.aggregation={"k":1}'
    metrics = [run_metrics(r) for r in runs]
    charted = bar_metrics(metrics)
    fig = bar_figure(next(m for m in charted if m.key == "fleet-utilization"), configurations(labels), metrics)
    util = next(t for t in fig.data if t.type == "bar")
    assert list(util.y) == ["algorithm.name=co-s2p", "algorithm.name=fedavg", "algorithm.name=fedbuff"]
    for k, (_, idx) in enumerate(configurations(labels)):
        values = np.array([100 * metrics[i]["fleet_utilization"] for i in idx])
        assert util.x[k] == pytest.approx(values.mean(), rel=1e-12)
        assert util.error_x.array[k] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2), rel=1e-9)
    page = write_comparison_report(dirs, tmp_path / "sweep" / "comparison.html").read_text(encoding="utf-8")
    assert "6 runs, 3 configurations · varied: algorithm.name, algorithm.aggregation" in page
    assert "error bars ± one sample std" in page


def test_runs_of_different_lengths_are_compared_per_hour(tmp_path):
    dirs = make_sweep(tmp_path / "sweep", seeds=(0,), rounds=(4, 8, 12))
    metrics = [run_metrics(load_run(d)) for d in dirs]
    assert lengths_differ(metrics)
    charted = {m.title: m for m in bar_metrics(metrics)}
    assert "energy (Wh)" not in charted and "energy (J)" not in charted
    energy = next(m for t, m in charted.items() if t.startswith("energy per simulated hour"))
    unit = energy.title[energy.title.index("(") + 1:energy.title.index("/h")]
    scale = {"J": 1.0, "Wh": 3600.0, "kWh": 3.6e6}[unit]
    for value, m in zip(energy.values, metrics):
        assert value == pytest.approx(m["energy_j"] * 3600 / m["makespan_s"] / scale, rel=1e-12)
    versions = charted["versions per simulated hour"]
    assert versions.values == pytest.approx([m["versions"] * 3600 / m["makespan_s"] for m in metrics])
    assert any(t.startswith("energy per version") for t in charted)
    page = write_comparison_report(dirs, tmp_path / "c.html").read_text(encoding="utf-8")
    assert "energy (per hour)" in page and "energy, traffic and versions are per simulated hour" in page
    # the table's traffic cell, like its energy cell, gives the per-hour figure beside the total
    assert "traffic down / up (per hour)" in page
    for m in metrics:
        down, up = (fmt_bytes(m[k] * 3600.0 / m["makespan_s"]) for k in ("bytes_down", "bytes_up"))
        assert f"({down} / {up} per hour)" in page


def test_an_interrupted_run_is_marked_not_shown_as_not_reached(tmp_path):
    done = write_run(tmp_path / "done", 6, 4, seed=1, oom_devices=[], offline=[], name="a",
                     target_accuracy=0.99)
    cut = write_run(tmp_path / "cut", 6, 4, seed=2, oom_devices=[], offline=[], name="b",
                    target_accuracy=0.99)
    summary = json.loads((cut / "summary.json").read_text())
    summary["stop_reason"] = "interrupted"
    (cut / "summary.json").write_text(json.dumps(summary))
    page = write_comparison_report([done, cut], tmp_path / "c.html").read_text(encoding="utf-8")
    rows = table_rows(page)
    assert rows[0][0].startswith("a") and "interrupted" not in rows[0][0]
    assert rows[0][6] == "not reached"
    assert rows[1][0].startswith("b — interrupted") and rows[1][6] == "interrupted before the target"
    runs = [load_run(done), load_run(cut)]
    metrics = [run_metrics(r) for r in runs]
    ttt_metric = next(m for m in bar_metrics(metrics) if m.key == "time-to-target")
    fig = bar_figure(ttt_metric, configurations(run_labels(runs)), metrics)
    ttt = next(t for t in fig.data if t.type == "bar" and t.name == "time to target (s)")
    assert list(ttt.text) == ["not reached", "interrupted"]
    assert list(ttt.marker.pattern.shape) == ["", "/"]
    assert "Hatched bars: at least one run was interrupted" in page


def test_timing_only_comparison_draws_no_accuracy(timing_only_run, tmp_path):
    other = write_run(tmp_path / "t2", 6, 5, seed=9, oom_devices=[], offline=[], timing_only=True,
                      name="timing two")
    page = write_comparison_report([timing_only_run, other], tmp_path / "c.html").read_text(encoding="utf-8")
    assert 'id="chart-compare-accuracy"' not in page
    ids = chart_ids([run_metrics(load_run(d)) for d in (timing_only_run, other)], False)
    assert_self_contained(page, len(ids))  # one figure per metric
    assert all(f'<div id="{chart}" class="plotly-graph-div"' in page for chart in ids)
    assert "final accuracy" not in page and "time to target" not in page


def test_energy_is_shown_in_a_unit_that_fits():
    assert [fmt_energy(j) for j in (61, 61_200, 2.1e6, 7.6e6)] == ["61 J", "17 Wh", "583 Wh", "2.11 kWh"]


def test_comparison_needs_runs(tmp_path):
    with pytest.raises(InputError, match="no run folders"):
        write_comparison_report([], tmp_path / "c.html")
    with pytest.raises(InputError, match="is not a folder"):
        write_comparison_report([tmp_path / "nope"], tmp_path / "c.html")


def test_peak_memory_and_its_share_are_of_one_device(small_run):
    """The table's "5.8 GB (90 %)" must mean 5.8 GB is 90 % of some device's usable memory: the largest
    peak (a TX2's 5.8 of 6.6 GB) and the largest share (a Nano's 2.34 of 2.6 GB) are different devices,
    and the tightest device is the one shown (the quickstart's comparison said 5.8 GB (90 %) before)."""
    import dataclasses

    run = load_run(small_run)
    devices = run.devices.copy()
    devices["usable_memory_bytes"] = 6.6e9
    devices["peak_memory_bytes"] = 1.0e9
    devices.loc[0, ["usable_memory_bytes", "peak_memory_bytes"]] = [6.6e9, 5.78e9]   # 88 %
    devices.loc[1, ["usable_memory_bytes", "peak_memory_bytes"]] = [2.6e9, 2.34e9]   # 90 %
    m = run_metrics(dataclasses.replace(run, devices=devices))
    assert m["peak_memory_bytes"] == 2.34e9
    assert m["peak_memory_ratio"] == 2.34e9 / 2.6e9


def test_peak_memory_counts_the_jobs_that_ran_out_of_memory(small_run, tmp_path):
    """The engine records a device's peak over the jobs that ran: 0 for a Nano whose every job went OOM.
    `fleetsim compare` of a quickstart run under FedAvg (4 Nanos needing 5.57 GB of 2.60 GB) said
    "5.6 GB (84 %)" for the tightest device; it must say the OOM device's share, above 100 %."""
    import dataclasses
    import shutil

    from simulator.report.compare import comparison_table
    from simulator.report.compare_labels import RunLabel, run_labels as labels_of

    run = load_run(small_run)
    needed = float(run.updates.loc[run.updates["outcome"] == "oom", "peak_memory_bytes"].max())
    devices = run.devices.copy()
    oom_device = int(run.updates.loc[run.updates["outcome"] == "oom", "device"].iloc[0])
    devices.loc[devices["device"] == oom_device, "peak_memory_bytes"] = 0  # as the engine writes it
    usable = float(devices.loc[devices["device"] == oom_device, "usable_memory_bytes"].iloc[0])
    assert needed > usable
    changed = dataclasses.replace(run, devices=devices)
    m = run_metrics(changed)
    assert m["peak_memory_bytes"] == needed
    assert m["peak_memory_ratio"] == pytest.approx(needed / usable)
    cell = comparison_table(labels_of([changed]), [m])
    assert f"needs {fmt_bytes(needed)} ({100 * needed / usable:.0f}\u00a0%): out of memory" in cell
    # and on the page, through the run folder (devices.parquet as the engine writes it)
    copy = tmp_path / "run"
    shutil.copytree(small_run, copy)
    devices.to_parquet(copy / "devices.parquet", index=False)
    page = write_comparison_report([copy], tmp_path / "c.html").read_text(encoding="utf-8")
    assert any(c.startswith("needs ") and c.endswith(": out of memory") for c in table_rows(page)[0])
    assert "Peak memory above 100 %" in page


def test_a_page_of_one_run_says_1_run(small_run, tmp_path):
    """`fleetsim compare RUN -o one.html` (one run: its headline figures and page) titled the page
    'fleetsim comparison of 1 runs' with the subtitle '1 runs, 1 configuration'."""
    page = write_comparison_report([small_run], tmp_path / "one.html").read_text(encoding="utf-8")
    assert "<title>fleetsim comparison of 1 run</title>" in page
    assert '<p class="sub">1 run, 1 configuration' in page
    assert "1 runs" not in page


def plotly_figures(page: str) -> list[tuple[str, list[dict], dict]]:
    """Every `Plotly.newPlot("id", data, layout, ...)` call of the page: (id, data, layout), in page order."""
    decoder = json.JSONDecoder()
    out = []
    for match in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', page):
        data, end = decoder.raw_decode(page, match.end())
        end = re.compile(r"\s*,\s*").match(page, end).end()
        layout, _ = decoder.raw_decode(page, end)
        out.append((match.group(1), data, layout))
    return out


def test_one_small_figure_per_metric_each_with_its_title(tmp_path):
    """The bars were one make_subplots grid of COLS=3 whose subplot titles ran into each other below
    ~1400 px. Now each metric is its own figure, titled with its unit, in a wrapping CSS grid, in the
    order of bar_metrics, with the same values and colours; plotly.js still inlined once."""
    dirs = make_sweep(tmp_path / "sweep", seeds=(0, 1), rounds=(4, 8, 12))
    runs = [load_run(d) for d in dirs]
    labels, metrics = run_labels(runs), [run_metrics(r) for r in runs]
    charted = bar_metrics(metrics)
    assert len(charted) >= 8
    page = write_comparison_report(dirs, tmp_path / "c.html").read_text(encoding="utf-8")
    assert_self_contained(page, 1 + len(charted))  # the accuracy curves and one figure per metric
    figures = plotly_figures(page)
    assert figures[0][0] == "chart-compare-accuracy"
    bars = figures[1:]
    assert len(bars) == len(charted)
    assert len({fid for fid, _, _ in bars}) == len(bars)
    grid = page[page.index('<div class="chart-grid"'):]
    assert all(f'<div id="{fid}" class="plotly-graph-div"' in grid for fid, _, _ in bars)
    configs = configurations(labels)
    for (fid, data, layout), metric in zip(bars, charted):
        assert layout["title"]["text"] == metric.title, fid
        assert "(" in metric.title or metric.title.startswith("versions"), metric.title  # the unit is named
        assert not any(k.startswith(("xaxis2", "yaxis2")) for k in layout)  # one plot per figure
        bar = next(t for t in data if t["type"] == "bar")
        assert bar["y"] == [c for c, _ in configs]
        assert bar["marker"]["color"] == SERIES_COLORS[:len(configs)]
        for k, (_, idx) in enumerate(configs):
            values = [metric.values[i] for i in idx if metric.values[i] is not None]
            assert bar["x"][k] == pytest.approx(float(np.mean(values)) if values else 0.0, rel=1e-12)


def test_long_configuration_names_are_numbered_beside_the_bars_and_named_in_a_key(small_run, timing_only_run):
    """A 360 px chart cannot hold "quickstart (algorithm.name=co-s2p, algorithm.aggregation.policy=…)"
    beside its bars: the bars are numbered, and a key above the grid gives each number's colour and name."""
    metrics = [run_metrics(load_run(d)) for d in (small_run, timing_only_run)]
    long_names = ["quickstart <a> (algorithm.name=co-s2p, algorithm.aggregation.k=8 …)",
                  "quickstart (algorithm.name=fedavg, algorithm.aggregation.k=null …)"]
    labels = [RunLabel(n, None, n) for n in long_names]
    charted = bar_metrics(metrics)
    grid = bars_grid(labels, metrics, charted)
    key = grid[grid.index('<ul class="chart-key"'):grid.index("</ul>")]
    assert html.escape(long_names[0]) in key and "quickstart <a>" not in grid
    assert [c.lower() for c in re.findall(r"background:(#[0-9A-Fa-f]{6})", key)] == \
        [c.lower() for c in SERIES_COLORS[:2]]
    assert re.findall(r"<b>(\d+)</b>", key) == ["1", "2"]
    yaxis = bar_figure(charted[0], configurations(labels), metrics).layout.yaxis
    assert list(yaxis.ticktext) == ["1", "2"] and list(yaxis.tickvals) == long_names
    short = [RunLabel(n, None, n) for n in ("algorithm.name=fedavg", "algorithm.name=fedbuff")]
    assert 'class="chart-key"' not in bars_grid(short, metrics, charted)


def test_runs_that_differ_beyond_the_keys_a_label_shows_are_not_one_configuration(tmp_path):
    """Run names show only the differing keys that tell configurations apart; runs that differ only in a later key
    (here `timing_only`, after three others) must still be separate configurations, not averaged."""
    runs = [load_run(write_run(tmp_path / f"r{i}", 6, 4, seed=i, oom_devices=[], offline=[])) for i in range(3)]
    # r0 and r1 differ only by seed; r2 differs from both in the fourth differing key alone
    for run, (a, b, c, timing) in zip(runs, [(1, 2, 3, False), (1, 2, 3, False), (1, 2, 3, True)]):
        run.scenario.update(a_key=a, b_key=b, c_key=c, timing_only=timing)
    runs.append(load_run(write_run(tmp_path / "r3", 6, 4, seed=3, oom_devices=[], offline=[])))
    runs[3].scenario.update(a_key=9, b_key=8, c_key=7, timing_only=False)
    labels = run_labels(runs)
    groups = [idx for _, idx in configurations(labels)]
    assert groups == [[0, 1], [2], [3]]
    assert len({lab.config for lab in labels}) == 3  # each configuration has a name of its own
    assert len({lab.label for lab in labels}) == 4
