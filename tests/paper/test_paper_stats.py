"""Seed-paired differences, their intervals, Kendall's τ and the full-run estimate of
scripts/reproduce_paper.py, against closed forms."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import paper_stats as ps  # noqa: E402
import reproduce_paper as rp  # noqa: E402


def test_t_interval_is_mean_plus_minus_t_sd_over_root_n() -> None:
    mean, low, high = ps.t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # sd = sqrt(2.5), t_{0.975, 4} = 2.7764451051977987
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert mean == 3.0 and low == pytest.approx(3.0 - half) and high == pytest.approx(3.0 + half)
    one = ps.t_interval([0.7])
    assert one[0] == 0.7 and math.isnan(one[1]) and math.isnan(one[2])


def test_paired_differences_pair_by_seed_and_drop_missing_pairs() -> None:
    rows = [{"label": "ours", "seed": s, "acc": a} for s, a in enumerate([0.8, 0.6, 0.7])]
    rows += [{"label": "base", "seed": s, "acc": a} for s, a in enumerate([0.7, 0.5, 0.6])]
    rows += [{"label": "half", "seed": s, "acc": a} for s, a in enumerate([0.5, math.nan, 0.9])]
    d = ps.paired_differences(rows, "acc", "ours").set_index("other")
    # the seed-to-seed spread (0.6 … 0.8) is large, the paired difference is exactly 0.1 every time
    assert d.loc["base", "n"] == 3 and d.loc["base", "mean"] == pytest.approx(0.1)
    assert d.loc["base", "low"] == pytest.approx(0.1) and d.loc["base", "high"] == pytest.approx(0.1)
    assert ps.verdict(d.loc["base", "low"], d.loc["base", "high"]) == "better"
    assert d.loc["half", "n"] == 2 and d.loc["half", "mean"] == pytest.approx((0.3 - 0.2) / 2)
    assert ps.verdict(d.loc["half", "low"], d.loc["half", "high"]) == "no difference shown"
    assert ps.verdict(-0.3, -0.1) == "worse" and ps.verdict(-0.3, -0.1, higher_is_better=False) == "better"
    assert ps.verdict(math.nan, math.nan) == "too few pairs"


def _agg(means: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"label": list(means), "acc_mean": list(means.values())})


def test_kendall_tau_of_method_ranks() -> None:
    a = _agg({"m1": 0.9, "m2": 0.8, "m3": 0.7, "m4": 0.6})
    assert ps.kendall_tau(a, _agg({"m1": 0.5, "m2": 0.4, "m3": 0.3, "m4": 0.2}), "acc") == (1.0, 4)
    assert ps.kendall_tau(a, _agg({"m1": 0.2, "m2": 0.3, "m3": 0.4, "m4": 0.5}), "acc") == (-1.0, 4)
    # one swapped pair of 6: (5 concordant - 1 discordant) / 6
    tau, n = ps.kendall_tau(a, _agg({"m1": 0.9, "m2": 0.7, "m3": 0.8, "m4": 0.6, "other": 1.0}), "acc")
    assert n == 4 and tau == pytest.approx(4 / 6)
    assert math.isnan(ps.kendall_tau(a, _agg({"m1": 1.0, "m2": 0.5}), "acc")[0])
    assert ps.ranking(a, "acc") == ["m1", "m2", "m3", "m4"]


@pytest.mark.slow
def test_the_full_run_estimate_scales_measured_rates_to_the_full_plan(tmp_path: Path) -> None:
    quick = rp.plan(["paper_distillation"], [0, 1], tmp_path, budget_scale=0.25)
    assert {p.budget_s for p in quick} == {5400 * 0.25}
    # (wall s, error, CPU s): the estimate reads CPU seconds, whatever the wall clock said under load
    timings = {str(p.run_dir): (99.0, None, 10.0 if p.label == "kd-global" else 5.0) for p in quick}
    seconds, runs = rp.estimate_full_s(quick, timings, ["paper_distillation"], jobs=2)
    full = rp.plan(["paper_distillation"], None, tmp_path)
    assert runs == len(full) == 15  # 3 variants x 5 seeds
    # rates: 10 or 5 CPU s per 1350 simulated s; the full plan runs 5 seeds of 5400 s each, on 2 cores
    want = (5 * 5400 * 10 / 1350 + 10 * 5400 * 5 / 1350) / 2
    assert seconds == pytest.approx(want)


@pytest.mark.slow
def _finish(p: rp.Planned) -> None:
    """What a finished run leaves that the script reads: its summary and its resolved scenario."""
    from simulator.config.loading import validate_data
    from simulator.config.scenario import Scenario
    from simulator.engine.resolved import resolved_document
    from simulator.output.folder import write_yaml

    p.run_dir.mkdir(parents=True)
    (p.run_dir / "summary.json").write_text("{}")
    write_yaml(p.run_dir / "scenario.yaml", resolved_document(validate_data(p.scenario, Scenario)))


def test_timings_survive_for_a_reused_page(tmp_path: Path) -> None:
    planned = rp.plan(["paper_distillation"], [0], tmp_path)
    rp.save_timings(tmp_path, {str(planned[0].run_dir): (12.0, None, 4.5), str(planned[1].run_dir): (3.0, "boom", 1.0)})
    rp.save_timings(tmp_path, {str(planned[2].run_dir): (7.0, None, 2.0)})  # merged, not replaced
    for p in planned[:2]:
        _finish(p)
    loaded = rp.load_timings(tmp_path, planned)
    # only runs whose folder still holds a summary come back (the third's folder is gone)
    assert loaded == {str(planned[0].run_dir): (12.0, None, 4.5), str(planned[1].run_dir): (3.0, "boom", 1.0)}


def test_resume_runs_only_what_did_not_finish_and_keeps_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planned = rp.plan(["paper_distillation"], [0, 1], tmp_path)
    finished, failed, folder_gone = planned[0], planned[1], planned[2]
    rp.save_timings(tmp_path, {str(finished.run_dir): (12.0, None, 4.5), str(failed.run_dir): (3.0, "boom", 1.0),
                               str(folder_gone.run_dir): (7.0, None, 2.0)})
    for p in (finished, failed):
        _finish(p)
    asked: list[list[str]] = []

    class Stop(Exception):
        pass

    def fake_execute(todo: list, jobs: int, out: Path, known: list = (), known_timings: dict | None = None) -> dict:
        asked.append([str(p.run_dir) for p in todo])
        assert [str(p.run_dir) for p in known] == [str(finished.run_dir)] and set(known_timings) == {str(finished.run_dir)}
        raise Stop  # the selection is what is under test; no run, no page

    monkeypatch.setattr(rp, "execute", fake_execute)
    with pytest.raises(Stop):
        rp.main(["--resume", "--sweeps", "paper_distillation", "--seeds", "0", "1", "--out", str(tmp_path),
                 "--page", str(tmp_path / "page.md")])
    # the finished run is kept; the failed one and the one whose folder is gone run again, with the rest
    assert asked == [[str(p.run_dir) for p in planned if p is not finished]]
    assert (finished.run_dir / "summary.json").exists()

