"""Running sweeps: tables from summaries, resume without redoing finished variants, mean ± std over
seeds, and the same tables whatever the backend (in-process, process pool, Ray)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.errors import InputError
from simulator.sweep import aggregate_table, run_sweep
from simulator.sweep.results import METRICS, SweepResult
from tests.helpers.sweep import base_scenario, write_sweep

SWEEP = {
    "name": "algos",
    "grid": {"algorithm.name": ["fedavg", "fedbuff"]},
    "zip": {"fleet[0].count": [1, 3], "fleet[1].count": [3, 1]},
    "seeds": [0, 1],
    "timing_only": True,
}


# real training (mlp-tiny on 8×8 digits) so accuracies, not only times, must agree across backends
TRAINING_SWEEP = {"grid": {"algorithm.name": ["fedavg", "fedbuff"]}, "seeds": [0, 1], "timing_only": False}


@pytest.fixture(scope="module")
def training_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SweepResult]:
    """2 algorithms × 2 seeds with training, run in this process (jobs=1)."""
    folder = tmp_path_factory.mktemp("training")
    base = base_scenario([str(folder / "profiles" / "fast.yaml"), str(folder / "profiles" / "slow.yaml")])
    base["stop"] = {"sim_time_s": 40}
    path = write_sweep(folder, TRAINING_SWEEP, base=base)
    result = run_sweep(path, out=folder / "out", report=False)
    assert result.failed == {} and result.results.final_accuracy.notna().all()
    return path, result


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SweepResult]:
    """The small sweep run once in this process (jobs=1): 2 algorithms × 2 fleets × 2 seeds."""
    folder = tmp_path_factory.mktemp("sweep")
    path = write_sweep(folder, SWEEP)
    return path, run_sweep(path, out=folder / "out", report=True)


@pytest.mark.slow
def test_results_come_from_each_variants_summary(reference: tuple[Path, SweepResult]) -> None:
    _, result = reference
    table = result.results
    assert len(table) == 8 and result.failed == {} and len(result.ran) == 8
    assert list(table.variant) == sorted(table.variant)
    assert list(table.columns[:5]) == ["variant", "algorithm.name", "fleet[0].count", "fleet[1].count", "seed"]
    for _, row in table.iterrows():
        summary = json.loads((result.sweep_dir / row.variant / "summary.json").read_text())
        assert summary["algorithm"] == row["algorithm.name"] and summary["seed"] == row.seed
        assert summary["devices"] == row["fleet[0].count"] + row["fleet[1].count"]
        assert row.makespan_s == summary["makespan_s"] and row.versions == summary["versions"]
        assert row.energy_j == summary["energy_j"] and row.fleet_utilization == summary["fleet_utilization"]
        assert (math.isnan(row.staleness_mean) if summary["staleness"]["mean"] is None
                else row.staleness_mean == summary["staleness"]["mean"])
        assert math.isnan(row.final_accuracy)  # timing-only
    # seeds differ (churn and latency draws), so the aggregate's std is not trivially zero
    assert (table.groupby(["algorithm.name", "fleet[0].count"]).energy_j.nunique() == 2).all()
    on_disk = pd.read_parquet(result.sweep_dir / "results.parquet")
    pd.testing.assert_frame_equal(on_disk, table)
    assert (result.sweep_dir / "results.csv").is_file() and (result.sweep_dir / "aggregate.csv").is_file()
    html = result.report_path.read_text(encoding="utf-8")  # the comparison of every variant's run
    assert result.report_path == result.sweep_dir / "comparison.html"
    # runs are named by their swept values and seed, never the base scenario's name repeated
    for _, row in table.iterrows():
        assert f"algorithm.name={row['algorithm.name']}" in html and f"seed {row.seed}" in html
    # <title> and <h1> name the sweep (its folder here is "out"), and so does the printed table
    assert html.count(f"fleetsim sweep {SWEEP['name']}: comparison of 8 runs") == 2
    assert result.table().title == f"sweep {SWEEP['name']}" and result.sweep_dir.name == "out"
    reopened = SweepResult.open(result.sweep_dir)
    pd.testing.assert_frame_equal(reopened.aggregate, result.aggregate)


@pytest.mark.slow
def test_aggregate_is_mean_and_sample_std_over_seeds(reference: tuple[Path, SweepResult]) -> None:
    _, result = reference
    agg = result.aggregate
    assert len(agg) == 4 and (agg.runs == 2).all()
    for _, row in agg.iterrows():
        rows = result.results[(result.results["algorithm.name"] == row["algorithm.name"])
                              & (result.results["fleet[0].count"] == row["fleet[0].count"])]
        for metric in ("makespan_s", "versions", "energy_j", "fleet_utilization", "lost"):
            values = rows[metric].to_numpy()
            assert row[f"{metric}_mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert row[f"{metric}_std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2), abs=1e-9)


def test_aggregate_closed_form_with_missing_values() -> None:
    results = pd.DataFrame({
        "variant": list("abcde"), "k": [1, 1, 1, 2, 2], "seed": [0, 1, 2, 0, 1],
        **{m: [1.0, 2.0, 3.0, 10.0, 10.0] for m in METRICS},
    })
    results["time_to_target_s"] = [100.0, np.nan, 300.0, np.nan, np.nan]
    agg = aggregate_table(results, ["k"]).set_index("k")
    assert agg.loc[1, "versions_mean"] == 2.0 and agg.loc[1, "versions_std"] == pytest.approx(1.0)
    assert agg.loc[2, "versions_mean"] == 10.0 and agg.loc[2, "versions_std"] == 0.0
    assert agg.loc[1, "time_to_target_s_mean"] == 200.0
    assert agg.loc[1, "time_to_target_s_std"] == pytest.approx(math.sqrt(2) * 100)
    assert list(agg.target_reached) == [2, 0] and math.isnan(agg.loc[2, "time_to_target_s_mean"])
    assert list(agg.runs) == [3, 2]


def test_the_printed_aggregate_says_what_its_plus_minus_and_abbreviations_mean() -> None:
    """`fleetsim sweep` printed 'util. 0.52 ± 0.01' and 'staleness 0.97 ± 0.01' with nothing saying that
    ± is a sample std over seeds, util. a share of device time, or staleness a count of versions."""
    from rich.console import Console

    from simulator.sweep.results import render_aggregate

    results = pd.DataFrame({"variant": list("ab"), "k": [1, 1], "seed": [0, 1], **{m: [1.0, 2.0] for m in METRICS}})
    results["time_to_target_s"] = np.nan
    table = render_aggregate(aggregate_table(results, ["k"]), ["k"], "s")
    console = Console(width=300, record=True, color_system=None)
    console.print(table)
    text = " ".join(console.export_text().split())
    assert "mean ± sample std over the runs (seeds) of each row" in text
    assert "util.: fleet utilization, the share of device time spent computing" in text
    assert "staleness: mean versions an accepted update was behind" in text
    assert "to target s:" not in text  # no column, no explanation


@pytest.mark.slow
def test_a_killed_variant_is_rerun_and_only_it(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, SWEEP)
    out = tmp_path / "out"
    first = run_sweep(path, out=out, report=False)
    stamps = {name: (out / name / "summary.json").stat().st_mtime_ns for name in first.results.variant}
    victim = first.results.variant[3]
    (out / victim / "summary.json").unlink()          # as if killed before the end
    (out / victim / "events.parquet.tmp").write_text("x")  # a killed run's half-joined table: replaced, not refused
    (out / victim / "notes.txt").write_text("mine")        # a file fleetsim did not write: never deleted
    seen: list[tuple[str, str]] = []
    second = run_sweep(path, out=out, report=False, progress=lambda i, n, name, status: seen.append((name, status)))
    assert second.ran == [victim] and len(second.skipped) == 7
    assert dict(seen)[victim] == "done" and sum(s == "skipped" for _, s in seen) == 7
    for name, stamp in stamps.items():
        if name != victim:
            assert (out / name / "summary.json").stat().st_mtime_ns == stamp
    assert not (out / victim / "events.parquet.tmp").exists()
    assert (out / victim / "notes.txt").read_text() == "mine"
    pd.testing.assert_frame_equal(second.results, first.results)
    # changing the base re-runs every variant whose scenario changed (here: all of them)
    base = (tmp_path / "base.yaml").read_text().replace("sim_time_s: 120", "sim_time_s: 100")
    (tmp_path / "base.yaml").write_text(base)
    third = run_sweep(path, out=out, report=False)
    assert len(third.ran) == 8 and (third.results.makespan_s <= 100).all()


def test_bad_options_and_missing_ray_are_input_errors(reference: tuple[Path, SweepResult], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = reference
    for kwargs, field in (({"jobs": 0}, "jobs"), ({"backend": "dask"}, "backend"),
                          ({"ray_address": "auto"}, "ray_address")):
        with pytest.raises(InputError) as info:
            run_sweep(path, out=tmp_path / "x", report=False, **kwargs)
        assert info.value.field == field
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(InputError) as info:
        run_sweep(path, out=tmp_path / "y", backend="ray", report=False)
    assert info.value.field == "backend" and "ray" in info.value.message


@pytest.mark.slow
def test_process_pool_gives_the_same_tables(training_reference: tuple[Path, SweepResult], tmp_path: Path) -> None:
    path, expected = training_reference
    result = run_sweep(path, out=tmp_path / "pool", jobs=2, report=False)
    pd.testing.assert_frame_equal(result.results, expected.results)
    pd.testing.assert_frame_equal(result.aggregate, expected.aggregate)


@pytest.mark.slow
@pytest.mark.ray
def test_ray_gives_the_same_tables(training_reference: tuple[Path, SweepResult], tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    path, expected = training_reference
    try:
        result = run_sweep(path, out=tmp_path / "ray", jobs=2, backend="ray", report=False)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert not ray.is_initialized()  # the cluster run_sweep started is shut down
    pd.testing.assert_frame_equal(result.results, expected.results)
    pd.testing.assert_frame_equal(result.aggregate, expected.aggregate)
