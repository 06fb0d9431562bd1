"""The run report: self-contained, every chart present, findings computed from the traces."""

import json
import re
import shutil

import pandas as pd
import pytest
from tests.helpers.report_checks import assert_self_contained, findings_text
from tests.helpers.report_synthetic import OOM_NEEDED_BYTES, SCENARIO_NAME, write_run

from simulator.errors import InputError
from simulator.report import write_run_report
from simulator.report.loading import load_run
from simulator.report.metrics import run_metrics
from simulator.report.run_report import CHART_IDS, TIMING_ONLY_OMITS

BUDGET_10K_BYTES = 8_000_000


def test_small_report_is_self_contained_with_every_chart(small_run, small_report):
    assert small_report == small_run / "report.html"
    page = small_report.read_text(encoding="utf-8")
    assert_self_contained(page, len(CHART_IDS))
    for chart in CHART_IDS:
        assert f'<div id="{chart}" class="plotly-graph-div"' in page, chart
    # the scenario name carries HTML metacharacters: it must appear escaped, never raw
    assert "quick &lt;start&gt; &amp; co" in page
    assert SCENARIO_NAME not in page
    assert "Showing" not in page  # 9 devices: no sampling note


def test_findings_are_computed_from_the_traces(small_run, small_report):
    found = findings_text(small_report.read_text(encoding="utf-8"))
    devices = pd.read_parquet(small_run / "devices.parquet")
    updates = pd.read_parquet(small_run / "updates.parquet")
    summary = json.loads((small_run / "summary.json").read_text())
    n_oom = int((updates["outcome"] == "oom").sum())
    assert n_oom == 8
    assert any(f.startswith(f"1 jetson-nano-4gb device ran out of memory {n_oom} times "
                            f"(needed {OOM_NEEDED_BYTES / 1e9:.1f} GB, usable 3.2 GB)")
               for f in found), found
    idle = devices.groupby("profile")[["idle_s", "wall_s"]].sum()
    share = (idle["idle_s"] / idle["wall_s"]).sort_values(ascending=False)
    assert any(f.startswith(f"The {share.index[0]} devices idled {100 * share.iloc[0]:.0f} % "
                            "of the time") for f in found), found
    limit = [f for f in found if f.startswith("The jetson-nano-4gb devices limit the round")]
    assert len(limit) == 1 and "; their busy time is " in limit[0], found  # the group's, not "its"
    ttt = summary["time_to_target_s"]
    assert any(f.startswith(f"Reached the target accuracy 80.0 % at {ttt:,.0f} s") for f in found)
    counts = updates["outcome"].value_counts()
    assert any(f.startswith(f"Of {len(updates)} dispatched updates: {counts['accepted']} accepted; "
                            f"{counts['dropped']} dropped") for f in found), found
    offline = [f for f in found if f.startswith("1 device went offline (1 jetson-xavier-nx)")]
    assert len(offline) == 1 and " of its time; " in offline[0], found  # one device: "its", not "their"


def test_metrics_fall_back_to_the_traces(small_run, tmp_path):
    """Without summary.json every headline figure is recomputed and agrees with the engine's."""
    bare = tmp_path / "bare"
    shutil.copytree(small_run, bare)
    (bare / "summary.json").unlink()
    (bare / "report.html").unlink(missing_ok=True)
    summary = json.loads((small_run / "summary.json").read_text())
    m = run_metrics(load_run(bare))
    for key in ("makespan_s", "fleet_utilization", "time_to_target_s", "final_accuracy",
                "energy_j", "bytes_down", "bytes_up", "ooms", "dropped", "lost", "accepted",
                "target_accuracy", "devices"):
        assert m[key] == pytest.approx(summary[key], rel=1e-9), key
    for key in ("mean", "p95", "max"):
        assert m["staleness"][key] == pytest.approx(summary["staleness"][key])
    assert m["name"] == SCENARIO_NAME  # from scenario.yaml
    out = write_run_report(bare, tmp_path / "elsewhere" / "r.html")
    assert out == tmp_path / "elsewhere" / "r.html" and out.exists()


def test_timing_only_run_leaves_out_what_it_cannot_know(timing_only_run):
    """No accuracy section, card or finding: the header says once that accuracy was not measured."""
    page = write_run_report(timing_only_run).read_text(encoding="utf-8")
    assert 'id="chart-accuracy"' not in page and '<section id="accuracy">' not in page
    assert_self_contained(page, len(CHART_IDS) - len(TIMING_ONLY_OMITS))
    assert "not measured: timing-only run (no model was trained)" in page
    assert "final accuracy" not in page and "time to target" not in page
    assert not any("accuracy" in f.lower() for f in findings_text(page))


def test_target_not_reached_is_reported(tmp_path):
    run = write_run(tmp_path / "slow", 6, 3, seed=5, oom_devices=[], offline=[], name="short",
                    target_accuracy=0.95)
    page = write_run_report(run).read_text(encoding="utf-8")
    found = findings_text(page)
    assert any(f.startswith("Did not reach the target accuracy 95.0 %") for f in found), found
    assert any(f.startswith("No device ran out of memory") for f in found), found


def test_not_a_run_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="is not a folder"):
        write_run_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="none of the files of a run"):
        write_run_report(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "events.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="events.parquet"):
        write_run_report(tmp_path / "bad")


@pytest.mark.slow
def test_10k_devices_report_is_small_and_fast(big_report):
    """Fast is relative: at most 10× the time to read its tables into pandas in the same session
    (measured 1.9-3.2× on a shared 2-core host at load 7; absolute seconds drift with the load)."""
    path, seconds, read_s = big_report
    page = path.read_text(encoding="utf-8")
    size = path.stat().st_size
    assert size < BUDGET_10K_BYTES, f"{size / 1e6:.1f} MB"
    assert seconds < 10 * read_s, f"{seconds:.1f} s to build, {read_s:.1f} s to read its tables"
    assert_self_contained(page, len(CHART_IDS))
    assert "Showing" in page and "of 10,000 devices" in page
    assert any(re.match(r"\d+ jetson-nano-4gb devices ran out of memory", f)
               for f in findings_text(page))


def test_same_run_same_page(small_run, small_report, tmp_path):
    again = write_run_report(small_run, tmp_path / "again.html")
    assert again.read_bytes() == small_report.read_bytes()


@pytest.mark.slow
def test_device_table_is_derived_from_events_when_missing(small_run, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(small_run, partial)
    (partial / "devices.parquet").unlink()
    derived = load_run(partial).devices.set_index("device").sort_index()
    written = pd.read_parquet(small_run / "devices.parquet").set_index("device").sort_index()
    for col in ("compute_s", "comm_s", "offline_s", "idle_s", "wall_s", "ooms"):
        assert derived[col].to_numpy() == pytest.approx(written[col].to_numpy()), col
    page = write_run_report(partial).read_text(encoding="utf-8")
    assert 'id="chart-utilization-group" class="plotly-graph-div"' in page


def test_dictionary_encoded_strings_are_read(small_run, small_report, tmp_path):
    """A recorder may write categorical (dictionary) strings; the page must not change."""
    copy = tmp_path / "categorical"
    shutil.copytree(small_run, copy)
    for table in ("events", "updates", "devices"):
        df = pd.read_parquet(copy / f"{table}.parquet")
        for col in ("device_name", "profile", "phase", "outcome", "reason", "power_mode"):
            if col in df:
                df[col] = df[col].astype("category")
        df.to_parquet(copy / f"{table}.parquet", index=False)
    page = write_run_report(copy, tmp_path / "r.html").read_text(encoding="utf-8")
    expected = small_report.read_text(encoding="utf-8").replace(str(small_run), str(copy))
    assert page == expected


def test_a_run_killed_before_its_first_flush_is_a_training_run_of_its_fleet(small_run, tmp_path):
    """Killed 8 s into the quickstart, a run folder holds only scenario.yaml, run.json and empty part
    folders. Its report said "devices 0" and "accuracy not measured: timing-only run" (no evaluations,
    hence 'timing-only'): run.json says whether it trains, the scenario's fleet how many devices."""
    import json

    from simulator.report.metrics import run_metrics

    killed = tmp_path / "killed"
    killed.mkdir()
    shutil.copy(small_run / "scenario.yaml", killed / "scenario.yaml")
    (killed / "_parts").mkdir()
    (killed / "run.json").write_text(json.dumps({"base_dir": str(tmp_path), "timing_only": False}))
    run = load_run(killed)
    assert run.devices.empty and run.evals.empty
    fleet = run.scenario["fleet"]
    m = run_metrics(run)
    assert m["devices"] == sum(g["count"] for g in fleet) > 0
    assert m["timing_only"] is False
    page = write_run_report(killed).read_text(encoding="utf-8")
    assert "timing-only run (no model was trained)" not in page
    (killed / "run.json").write_text(json.dumps({"base_dir": str(tmp_path), "timing_only": True}))
    assert run_metrics(load_run(killed))["timing_only"] is True
    (killed / "run.json").write_text("not json")  # a report never fails on it: no evaluations, timing-only
    assert run_metrics(load_run(killed))["timing_only"] is True
