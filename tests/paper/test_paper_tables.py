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
    assert pm.time_to(ev, 0.75, patience=1) == 120.0          # the first crossing
    assert math.isnan(pm.time_to(ev, 0.95, patience=1))
    assert math.isnan(pm.time_to(ev, 0.75, patience=2))       # 0.8 then 0.7: never two in a row
    assert pm.time_to(ev, 0.65, patience=3) == 120.0          # 0.8, 0.7, 0.9 hold from 120 s
    # a crossing, a dip and a crossing that holds is timed from where it stayed up (the page's rule)
    dip = _evals([(0, 0.1), (60, 0.46), (120, 0.15), (180, 0.51), (240, 0.52), (300, 0.55), (360, 0.6)])
    assert pm.TARGET_PATIENCE == 3
    assert pm.time_to(dip, 0.45, patience=1) == 60.0 and pm.time_to(dip, 0.45) == 180.0
    assert math.isnan(pm.time_to(dip.iloc[:5], 0.45))          # only two evaluations after the dip
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


# ------------------------------------------------------------------ verdicts, as the page states them

# Co-S²P's accuracy in four seeds, and each kind of baseline as the per-seed difference ours − baseline
# (dyadic numbers, so every difference and mean is exact): a WIN's interval is above 0, a LOSS's below,
# a TIE's holds 0 with a mean in Co-S²P's favour, an ADVERSE tie's holds 0 with a mean against it.
OURS_ACC = (0.625, 0.5, 0.5625, 0.6875)
WIN, LOSS = (0.125,) * 4, (-0.125,) * 4
TIE, ADVERSE = (0.25, -0.125, 0.25, -0.125), (-0.25, 0.125, -0.25, 0.125)


def _names(labels: list[str]) -> str:
    return ", ".join(f"`{x}`" for x in labels) if labels else "none"


def _accuracy_entry(task: str, baselines: dict[str, tuple[float, ...]]) -> dict:
    rows = []
    for seed, ours in enumerate(OURS_ACC):
        rows.append(_row(pp.OURS, seed, acc_budget=ours))
        rows += [_row(name, seed, acc_budget=ours - diff[seed]) for name, diff in baselines.items()]
    return {"task": task, "agg": pm.aggregate(rows, "label"), "rows": rows, "budget_s": 600.0, "target": 0.8,
            "missing": []}


VERDICT_CASES = [  # (baselines, beats, ties, loses to, the verdict)
    ({"a": TIE, "b": TIE}, [], ["a", "b"], [],
     "**not reproduced** (no difference shown by the seed-paired 95 % intervals)"),
    ({"a": WIN, "b": WIN, "c": TIE}, ["a", "b"], ["c"], [], "**agrees**"),
    ({"a": WIN, "b": TIE, "c": TIE}, ["a"], ["b", "c"], [], "**agrees in part** (half or more are ties)"),
    ({"a": WIN, "b": TIE}, ["a"], ["b"], [], "**agrees in part** (half or more are ties)"),  # exactly half
    ({"a": WIN, "b": WIN, "c": ADVERSE}, ["a", "b"], ["c"], [],
     "**agrees in part** (worse on average than `c`, within seed noise)"),
    ({"a": WIN, "b": LOSS, "c": LOSS}, ["a"], [], ["b", "c"], "**disagrees** (worse than `b`, `c`; better than `a`)"),
    ({"a": WIN, "b": LOSS}, ["a"], [], ["b"], "**agrees in part** (better than `a`; worse than `b`)"),
]


@pytest.mark.parametrize("baselines, wins, ties, losses, expected", VERDICT_CASES,
                         ids=["not-reproduced", "agrees", "ties-majority", "ties-half", "adverse-tie", "disagrees", "in-part"])
def test_verdict_rules(baselines: dict, wins: list[str], ties: list[str], losses: list[str], expected: str) -> None:
    """The accuracy line names whom Co-S²P beats, ties and loses to by the seed-paired intervals, and
    the verdict those counts give."""
    line = pp.accuracy_claim("image", _accuracy_entry("image", baselines))
    assert f"it beats {_names(wins)}, ties {_names(ties)}, loses to {_names(losses)} → " in line
    verdict = line.split(" → ", 1)[1].split("; Co-S²P's own seed-std", 1)[0]
    assert verdict == expected


def _page(tmp_path: Path, results: dict) -> str:
    out = tmp_path / "results.md"
    pp.write_page(out, results=results, planned=[], timings={}, command="python scripts/reproduce_paper.py",
                  elapsed_s=60.0, host="test-host", reused=True, validation_file=tmp_path / "absent.md")
    return out.read_text()


def _section(page: str, heading: str) -> str:
    """The lines under `heading` up to the next heading of the same or a higher level."""
    depth = len(heading.split(" ", 1)[0])
    lines = page.split(heading + "\n", 1)[1].splitlines()
    ends = [i for i, line in enumerate(lines) if line.startswith("#") and len(line.split(" ", 1)[0]) <= depth]
    return "\n".join(lines[:ends[0]] if ends else lines)


def test_summary_table_takes_each_claim_lines_verdict(tmp_path: Path) -> None:
    """"In short" has one row per claim and one column per task, each cell the verdict its claim line
    below ends with (a verdict's own parenthesis kept)."""
    results = {"paper_image": _accuracy_entry("image", {"a": WIN, "b": WIN, "c": ADVERSE}),
               "paper_sequence": _accuracy_entry("sequence", {"a": WIN, "b": TIE, "c": TIE})}
    page = _page(tmp_path, results)
    table = _section(page, "## In short")
    assert "| claim | paper | image | sequence |" in table
    assert ("| Accuracy | up to +8.8 pp | **agrees in part** (worse on average than `c`, within seed noise) | "
            "**agrees in part** (half or more are ties) |") in table
    # equal utilization, memory and time everywhere: no difference on those claims, in both columns
    not_shown = "**not reproduced** (no difference shown by the seed-paired 95 % intervals)"
    assert "| Resource utilization | up to 1.2× | **disagrees** | **disagrees** |" in table
    assert ("| Memory | about −22 % | **disagrees** (counting what each board is asked for) | "
            "**disagrees** (counting what each board is asked for) |") in table
    assert f"| Training time | about −24 % | {not_shown} | {not_shown} |" in table
    assert _section(page, "### Training time (paper: about −24 %)").count(f"→ {not_shown}.") == 2


def test_summary_table_shows_a_plain_verdict_without_the_seed_std_note(tmp_path: Path) -> None:
    page = _page(tmp_path, {"paper_image": _accuracy_entry("image", {"a": WIN, "b": WIN, "c": TIE})})
    assert "| Accuracy | up to +8.8 pp | **agrees** |" in _section(page, "## In short")


def _ablation_entry(rows: list[dict]) -> dict:
    return {"task": "image", "agg": pm.aggregate(rows, "label"), "rows": rows, "budget_s": 600.0, "target": 0.8,
            "missing": []}


def test_engine_note_only_for_variants_that_never_left_chance(tmp_path: Path) -> None:
    rows = [_row("abl-default", s, acc_budget=0.9, best_acc=0.9, staleness=1.0) for s in (0, 1)]
    rows += [_row("abl-k4", s, acc_budget=0.1, best_acc=0.12, staleness=3.0) for s in (0, 1)]
    rows += [_row("abl-k12", s, acc_budget=0.85, best_acc=0.9, staleness=0.5) for s in (0, 1)]
    page = _page(tmp_path, {"paper_ablations": _ablation_entry(rows)})
    notes = _section(page, "## Engine notes")
    assert "`abl-k4` never rose above chance" in notes and "abl-k12" not in notes and "3.00 against 1.00" in notes
    assert "abl-k12" in page  # it is on the page, in the ablation lines, just not among the collapsed
    healthy = _page(tmp_path, {"paper_ablations": _ablation_entry(rows[:2] + rows[4:])})
    assert "## Ablations (image task)" in healthy and "## Engine notes" not in healthy


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


def test_parts_section_names_what_helps_and_what_hurts_from_the_pair_that_differs_in_it(tmp_path: Path) -> None:
    """Each part is judged by its own pair of runs: relative weights (default − absolute, +2…+4 pp in
    every seed) and width pruning (default − depth-only, +20 pp) help; rolling (depth-only − depth-fixed,
    −3…−5 pp in every seed) hurts although the default beats depth-fixed; K = 8 against 4 swings both ways (no difference shown); self-distillation
    comes from the distillation sweep; a part whose runs are absent is left out."""
    abl, kd = [], []
    for s, base in enumerate([0.60, 0.70, 0.65, 0.55]):
        abl += [_row("abl-default", s, acc_budget=base, acc_tail=base),
                _row("abl-staleness-absolute", s, acc_budget=base - 0.02 - 0.01 * (s % 3), acc_tail=base - 0.03),
                _row("abl-k4", s, acc_budget=base + (0.1 if s % 2 else -0.1), acc_tail=base),
                _row("abl-prune-depth-only", s, acc_budget=base - 0.2, acc_tail=base - 0.2),
                _row("abl-prune-depth-fixed", s, acc_budget=base - 0.2 + 0.03 + 0.01 * (s % 3), acc_tail=base - 0.15)]
        kd += [_row("kd-deepest", s, acc_budget=base, acc_tail=base),
               _row("kd-off", s, acc_budget=base - 0.05 - 0.01 * (s % 2), acc_tail=base - 0.05)]
    results = {"paper_ablations": _ablation_entry(abl), "paper_distillation": _ablation_entry(kd)}
    page = _page(tmp_path, results)
    section = _section(page, "### Co-S²P's parts, one at a time")
    assert page.index("## In short") < page.index("### Co-S²P's parts") < page.index("Details, with the numbers")
    assert ("over 4 seeds: **helps**: relative staleness weights rather than FedBuff's absolute damping; width pruning "
            "beside depth pruning; deepest-exit "
            "self-distillation rather than none. **Hurts**: rolling the trained blocks rather than always the first ones "
            "(depth pruning only).") in section
    rows = {line.split(" | ")[1]: line for line in section.splitlines() if "` − `" in line}
    assert rows["`abl-default` − `abl-k4`"].endswith("| no difference shown |")
    assert rows["`abl-default` − `abl-staleness-absolute`"].endswith("| **helps** |")
    assert rows["`abl-prune-depth-only` − `abl-prune-depth-fixed`"].endswith("| **hurts** |")
    assert "`abl-agg-sync`" not in section and "`kd-global`" not in section  # no runs, no row
    mean = 100 * (0.02 + sum(0.01 * (s % 3) for s in range(4)) / 4)
    assert f"+{mean:.1f} pp [" in rows["`abl-default` − `abl-staleness-absolute`"]
    assert "### Co-S²P's parts" not in _page(tmp_path, {})


def test_a_page_from_part_of_the_runs_says_so() -> None:
    """reproduce_paper.partial_note: which seeds and budget a page holds, None for the full run."""
    import reproduce_paper as rp

    def runs(seeds: list[int]) -> list[rp.Planned]:
        return [rp.Planned("s", f"v{v}__seed={k}", f"v{v}", k, {}, Path("/x"), 100.0, 1.0) for v in range(2) for k in seeds]

    full = runs([0, 1, 2, 3, 4])
    assert rp.partial_note(full, full, quick=False) is None
    note = rp.partial_note(runs([0]), full, quick=False)
    assert note is not None and "seed 0 of the sweep files' 0, 1, 2, 3, 4 (2 of 10 runs)" in note and "--resume" in note
    note = rp.partial_note(runs([0, 1]), full, quick=True)
    assert note is not None and "seeds 0, 1 of" in note and f"{rp.QUICK_BUDGET:g} of every simulated budget" in note


def test_the_remaining_time_comes_from_the_cpu_rates_of_finished_runs() -> None:
    """reproduce_paper's estimate: a variant's own mean CPU-s per simulated second, else its sweep's,
    else every finished run's; failed runs do not count."""
    import reproduce_paper as rp

    def run(sweep: str, label: str, seed: int, budget_s: float) -> rp.Planned:
        return rp.Planned(sweep, f"{label}__seed={seed}", label, seed, {}, Path(f"/r/{sweep}/{label}/{seed}"), budget_s, 1.0)

    a0, a1, b0, bad = run("s", "a", 0, 100.0), run("s", "a", 1, 100.0), run("s", "b", 0, 200.0), run("t", "c", 0, 50.0)
    timings = {str(a0.run_dir): (9.0, None, 10.0), str(a1.run_dir): (9.0, None, 30.0),
               str(b0.run_dir): (9.0, None, 100.0), str(bad.run_dir): (9.0, "boom", 999.0)}
    rates = rp.cpu_rates([a0, a1, b0, bad], timings)
    assert rates == {("s", "a"): [0.1, 0.3], ("s", "b"): [0.5]}
    assert rp.expected_cpu_s(run("s", "a", 2, 1000.0), rates) == pytest.approx(200.0)      # own mean 0.2
    assert rp.expected_cpu_s(run("s", "new", 0, 100.0), rates) == pytest.approx(30.0)      # sweep mean 0.3
    assert rp.expected_cpu_s(run("u", "x", 0, 10.0), rates) == pytest.approx(3.0)         # everything's
    assert rp.expected_cpu_s(run("u", "x", 0, 10.0), {}) == 0.0


def test_resume_and_reuse_keep_only_runs_of_the_scenario_planned_now(tmp_path: Path) -> None:
    """reproduce_paper.is_current / load_timings: a finished run counts only while its scenario.yaml is
    the planned scenario resolved; a run made under another preset (here: the staleness mode the
    co-s2p preset had before) or with a broken record is run again, never read."""
    import copy
    import json

    import yaml

    import reproduce_paper as rp
    from simulator.config.loading import validate_data
    from simulator.config.scenario import Scenario
    from simulator.engine.resolved import resolved_document
    from simulator.output.folder import write_yaml

    scenario = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    run_dir = tmp_path / "paper_comparison_sequence" / "v__seed=0"
    run_dir.mkdir(parents=True)
    planned = rp.Planned("paper_comparison_sequence", "v__seed=0", "co-s2p", 0, scenario, run_dir, 100.0, 1.0)
    assert not rp.is_current(planned)                               # nothing there yet
    write_yaml(run_dir / "scenario.yaml", resolved_document(validate_data(scenario, Scenario)))
    assert not rp.is_current(planned)                               # no summary: not finished
    (run_dir / "summary.json").write_text("{}")
    assert rp.is_current(planned)
    (tmp_path / rp.TIMINGS_FILE).write_text(json.dumps({str(run_dir): [1.0, None, 2.0]}))
    assert rp.load_timings(tmp_path, [planned]) == {str(run_dir): (1.0, None, 2.0)}

    older = copy.deepcopy(scenario)                                 # the record of an older preset
    older["algorithm"]["aggregation"]["staleness_mode"] = "absolute"
    write_yaml(run_dir / "scenario.yaml", resolved_document(validate_data(older, Scenario)))
    assert not rp.is_current(planned) and rp.load_timings(tmp_path, [planned]) == {}
    entry = rp.collect([planned])["paper_comparison_sequence"]     # the page leaves it off
    assert entry["missing"] == ["v__seed=0"] and entry["rows"] == []
    (run_dir / "scenario.yaml").write_text("algorithm: [unclosed\n")  # a broken record
    assert not rp.is_current(planned)
    note = rp.partial_note([planned], [planned], quick=False, missing=1)
    assert note is not None and "0 of the 1 runs; 1 planned runs are not on it" in note


def test_rank_stability_is_read_in_words_from_each_pairs_tau() -> None:
    """Five methods in one order under the first proxy, the same order under a second (τ = +1: "agree
    closely") and the reverse under a task (τ = −1: "reversed"); the words come from τ, not fixed text."""
    def entry(task: str, accs: list[float]) -> dict:
        rows = [_row(f"m{i}", 0, acc_budget=a, acc_tail=a) for i, a in enumerate(accs)]
        return {"task": task, "agg": pm.aggregate(rows, "label"), "rows": rows}

    up = [0.1, 0.2, 0.3, 0.4, 0.5]
    lines = pp.rank_lines({"paper_a": entry("A", up), "paper_b": entry("B", up), "paper_c": entry("C", up[::-1])})
    reading = next(line for line in lines if line.startswith("Read plainly"))
    assert "A and B: the orders agree closely; A and C: the orders are reversed; B and C: the orders are reversed." in reading
    assert [pp._tau_reading(t) for t in (0.45, 0.0, -0.29)] == [
        "the orders agree loosely", "the orders are unrelated", "the orders are unrelated"]
