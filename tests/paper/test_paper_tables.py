"""The table and verdict code of scripts/reproduce_paper.py, on hand-made frames and one tiny real run.

Figures are checked against closed forms (means, ratios, the OOM-at-demand rule), not just "it ran".
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import paper_metrics as pm  # noqa: E402
import paper_page as pp  # noqa: E402


def _evals(points: list[tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame({"time_s": [t for t, _ in points], "version": range(len(points)),
                         "accuracy": [a for _, a in points]})


def test_accuracy_at_time_to_and_tail() -> None:
    ev = _evals([(0, 0.1), (60, 0.5), (120, 0.8), (180, 0.7), (240, 0.9)])
    assert pm.accuracy_at(ev, 179.9) == 0.8
    assert pm.accuracy_at(ev, 180.0) == 0.7
    assert math.isnan(pm.accuracy_at(ev, -1.0))
    assert pm.time_to(ev, 0.75) == 120.0
    assert math.isnan(pm.time_to(ev, 0.95))
    # last 25 % of a 240 s budget: evaluations at 180 and 240
    assert pm.tail_accuracy(ev, 240.0, share=0.25) == pytest.approx(0.8)


def _row(label: str, seed: int, **values: float) -> dict:
    base = {name: 1.0 for name in pm.NUMERIC}
    base.update({"label": label, "seed": seed, "algorithm": label, "scenario_name": "t"})
    base.update(values)
    return base


def test_aggregate_mean_std_and_counts() -> None:
    rows = [_row("a", 0, acc_budget=0.5, time_to_target_s=100.0), _row("a", 1, acc_budget=0.7, time_to_target_s=math.nan),
            _row("b", 0, acc_budget=0.9, time_to_target_s=50.0), _row("b", 1, acc_budget=0.9, time_to_target_s=70.0)]
    agg = pm.aggregate(rows, "label")
    assert list(agg["label"]) == ["a", "b"]
    a, b = agg.iloc[0], agg.iloc[1]
    assert a["acc_budget_mean"] == pytest.approx(0.6)
    assert a["acc_budget_std"] == pytest.approx(math.sqrt(0.02))   # sample std of 0.5, 0.7
    assert a["time_to_target_s_n"] == 1 and math.isnan(a["time_to_target_s_std"])
    assert pm.cell(a, "time_to_target_s", "{:,.0f}") == "100 (1/2)"
    assert b["time_to_target_s_mean"] == 60.0 and b["acc_budget_std"] == 0.0


def _agg_for_claims() -> pd.DataFrame:
    return pm.aggregate(_rows_for_claims(), "label")


def _rows_for_claims() -> list[dict]:
    rows = []
    for seed in (0, 1):
        rows.append(_row(pp.OURS, seed, acc_budget=0.9 + 0.01 * seed, acc_tail=0.9, acc_half=0.8, utilization=0.6,
                         mem_demand_gb=4.0, mem_alloc_gb=4.0, time_to_target_s=100.0, oom_devices=0.0))
        rows.append(_row("slow", seed, acc_budget=0.7 + 0.01 * seed, acc_tail=0.7, acc_half=0.5, utilization=0.3,
                         mem_demand_gb=5.0, mem_alloc_gb=3.75, time_to_target_s=200.0, oom_devices=4.0))
        rows.append(_row("fast", seed, acc_budget=0.95 + 0.01 * seed, acc_tail=0.95, acc_half=0.9, utilization=0.5,
                         mem_demand_gb=5.0, mem_alloc_gb=5.0, time_to_target_s=math.nan, oom_devices=0.0))
    return rows


def test_claims_ratios_and_relative_changes() -> None:
    c = pm.claims(_agg_for_claims(), "label").set_index("baseline")
    assert c.loc["slow", "acc_pp"] == pytest.approx(20.0)
    assert c.loc["fast", "acc_pp"] == pytest.approx(-5.0)
    assert c.loc["slow", "util_x"] == pytest.approx(2.0)
    assert c.loc["slow", "mem_rel"] == pytest.approx(-0.2)
    assert c.loc["slow", "mem_alloc_rel"] == pytest.approx(4.0 / 3.75 - 1)
    assert c.loc["slow", "time_rel"] == pytest.approx(-0.5)
    assert math.isnan(c.loc["fast", "time_rel"]) and c.loc["fast", "baseline_reached"] == "0/2"


def test_verdicts_follow_the_numbers(tmp_path: Path) -> None:
    agg = _agg_for_claims()
    entry = {"task": "image", "agg": agg, "rows": _rows_for_claims(), "budget_s": 600.0, "target": 0.8, "missing": []}
    acc = pp.accuracy_claim("image", entry)
    assert "beats `slow`" in acc and "loses to `fast`" in acc and "**agrees in part**" in acc
    util = pp.utilization_claim("image", entry)
    assert "1.20× … 2.00×" in util and "not higher than none" in util
    time_line = pp.time_claim("image", entry)
    assert "Never reached by `fast`" in time_line and "-50 %" in time_line
    mem = pp.memory_claim("image", entry)
    assert "-20 %" in mem and "Baselines with OOM boards: `slow`" in mem


def test_markdown_table_shape() -> None:
    text = pm.markdown_table(["a", "b"], [["x", "1"], ["y", "2"]])
    lines = text.splitlines()
    assert lines[1] == "| :--- | ---: |" and len(lines) == 4 and lines[3] == "| y | 2 |"


@pytest.mark.slow
def test_run_metrics_on_a_tiny_real_run(tmp_path: Path) -> None:
    """One Nano (cannot fit ViT-B: OOM) and one AGX Orin, FedAvg, a few simulated minutes."""
    import torch

    import simulator

    torch.set_num_threads(1)
    scenario = {
        "name": "paper-tiny", "seed": 0,
        "fleet": [{"profile": "jetson-nano-4gb", "count": 1}, {"profile": "jetson-agx-orin-64gb", "count": 1}],
        "workload": {"model": {"name": "vit", "preset": "vit-b"}, "plan_input_shape": [3, 224, 224],
                     "train_model": {"name": "cnn", "preset": "tiny"}, "dataset": {"name": "digits", "image_size": 8},
                     "partition": {"kind": "iid"}, "batch_size": 32, "local_steps": 2},
        "algorithm": {"name": "fedavg"},
        "evaluation": {"every_versions": None, "every_s": 60},
        "stop": {"sim_time_s": 300},
    }
    run = simulator.run(scenario, out=tmp_path / "run", force=True, report=False)
    m = pm.run_metrics(tmp_path / "run", target=0.05, budget_s=300.0)
    devices = run.devices.set_index("profile")
    need_nano = run.summary["submodels_by_profile"]["jetson-nano-4gb"]["peak_memory_bytes"]
    orin_peak = float(devices.loc["jetson-agx-orin-64gb", "peak_memory_bytes"])
    assert m["oom:jetson-nano-4gb"] and not m["oom:jetson-agx-orin-64gb"]
    assert devices.loc["jetson-nano-4gb", "peak_memory_bytes"] == 0
    assert m["mem_demand_gb"] == pytest.approx((need_nano + orin_peak) / 2 / pm.GB)
    assert m["mem_alloc_gb"] == pytest.approx(orin_peak / 2 / pm.GB)
    assert m["utilization"] == run.summary["fleet_utilization"]
    assert m["acc_budget"] == pm.accuracy_at(run.evals.sort_values("time_s"), 300.0)
    assert m["time_to_target_s"] == 0.0            # chance accuracy already beats a 5 % target at t = 0
    assert m["oom_devices"] == 1.0


def test_verdict_rules() -> None:
    assert pp._verdict([], ["a", "b"], []).startswith("**not reproduced**")
    assert pp._verdict(["a", "b"], ["c"], []) == "**agrees**"
    assert pp._verdict(["a"], ["b", "c"], []) == "**agrees in part** (half or more are ties)"
    assert pp._verdict(["a", "b"], ["c"], [], ["c"]).startswith("**agrees in part** (worse on average than `c`")
    assert pp._verdict(["a"], [], ["b", "c"]) == "**disagrees**"
    assert pp._verdict(["a"], [], ["b"]) == "**agrees in part**"


def test_summary_table_takes_each_lines_last_verdict() -> None:
    lines = {"Accuracy (paper: up to +8.8 pp)": ["x → **agrees** y → **disagrees**.", "no verdict here"]}
    table = "\n".join(pp._summary_table(lines, [{"task": "image"}, {"task": "sequence"}]))
    assert "| Accuracy | up to +8.8 pp | **disagrees** | – |" in table


def test_engine_note_only_for_variants_that_never_left_chance() -> None:
    rows = [_row("abl-default", s, acc_budget=0.9, best_acc=0.9, staleness=1.0) for s in (0, 1)]
    rows += [_row("abl-k4", s, acc_budget=0.1, best_acc=0.12, staleness=3.0) for s in (0, 1)]
    rows += [_row("abl-k12", s, acc_budget=0.85, best_acc=0.9, staleness=0.5) for s in (0, 1)]
    notes = pp._engine_notes({"agg": pm.aggregate(rows, "label")})
    text = "\n".join(notes)
    assert "`abl-k4` never rose above chance" in text and "abl-k12" not in text and "3.00 against 1.00" in text
    assert pp._engine_notes({"agg": pm.aggregate(rows[:2] + rows[4:], "label")}) == []


def test_ablation_verdicts_come_from_seed_paired_intervals() -> None:
    """The default beats `abl-kd-off` in every seed by 0.02–0.04 (interval above 0: the part helps),
    `abl-k12` swings both ways (no difference shown) although its mean is lower."""
    rows = []
    for s, (d, k12) in enumerate([(0.80, 0.70), (0.60, 0.75), (0.70, 0.55), (0.90, 0.80)]):
        rows += [_row("abl-default", s, acc_budget=d), _row("abl-kd-off", s, acc_budget=d - 0.02 - 0.01 * (s % 3)),
                 _row("abl-k12", s, acc_budget=k12)]
    entry = {"agg": pm.aggregate(rows, "label"), "rows": rows}
    head, _, *lines = pp.ablation_lines(entry)
    assert "**helps** where the interval is above 0: `abl-kd-off`;" in head
    assert "**hurts** where the interval is below 0: none" in head
    k12 = next(line for line in lines if line.startswith("- `abl-k12`"))
    assert "no difference shown" in k12
