"""`fleetsim plan` as a user meets it: the summary, the files, best.yaml run as it is, the report,
a goal nobody meets, and bad input as one paragraph (exit 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers.plan import CATALOGUE, base_scenario, write_plan
from tests.helpers.cli import assert_bad_input, cli


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    folder = tmp_path_factory.mktemp("cli")
    path = write_plan(folder)
    out = folder / "plan-out"
    result = cli("plan", str(path), "--out", str(out))
    return path, out, result


@pytest.mark.slow
def test_the_command_prints_the_chosen_fleet_and_writes_the_files(planned) -> None:
    _, out, result = planned
    assert result.code == 0, result.text
    assert "Traceback" not in result.text
    lines = result.stdout.splitlines()
    best = next(line for line in lines if "★ best" in line)
    cells = [c.strip() for c in best.split("│")]
    assert cells[1:7] == ["★ best", "·", "·", "1", "·", "300"]   # tiny, slow, good, big, price
    assert "why the 5 cheaper fleets judged fail" in result.stdout
    assert "too slow" in result.stdout and "out of memory" in result.stdout
    assert "searched by enumerate: 24 compositions, 25 candidates judged, 23 simulated" in result.stdout
    for name in ("plan.parquet", "plan.csv", "best.yaml", "plan.html", "plan.json", "plan.yaml"):
        assert (out / name).is_file(), name
    frame = pd.read_parquet(out / "plan.parquet")
    csv = pd.read_csv(out / "plan.csv")
    assert list(csv.candidate) == list(frame.candidate) and len(frame) == 25
    assert list(frame.columns[:5]) == ["candidate", "count.tiny", "count.slow", "count.good", "count.big"]
    assert frame[frame.chosen].candidate.tolist() == ["good=1"]
    marker = json.loads((out / "plan.json").read_text())
    assert marker["best"]["candidate"] == "good=1" and marker["method"] == "enumerate"


def test_best_yaml_runs_as_it_is_and_reaches_the_goal_when_the_plan_said(planned, tmp_path: Path) -> None:
    _, out, _ = planned
    scenario = yaml.safe_load((out / "best.yaml").read_text())
    assert scenario["stop"] == {"sim_time_s": 1000.0, "max_versions": 3}
    assert [(g["name"], g["count"]) for g in scenario["fleet"]] == [("good", 1)]
    run = cli("run", str(out / "best.yaml"), "--out", str(tmp_path / "best-run"))
    assert run.code == 0, run.text
    summary = json.loads((tmp_path / "best-run" / "summary.json").read_text())
    row = pd.read_parquet(out / "plan.parquet").set_index("candidate").loc["good=1"]
    assert summary["versions"] == 3 and summary["stop_reason"] == "max_versions"
    assert summary["makespan_s"] == row.time_to_goal_s and summary["energy_j"] == row.energy_j


def test_the_report_shows_the_front_the_choice_and_why_cheaper_fleets_fail(planned) -> None:
    _, out, _ = planned
    html = (out / "plan.html").read_text(encoding="utf-8")
    for piece in ('id="chart-plan-time"', 'id="chart-plan-energy"', 'id="chart-plan-why"', "Pareto front",
                  "Chosen fleet", "1 × good", "Why the cheaper fleets fail", "out of memory: tiny cannot hold",
                  "too slow: 0 of 3 versions by 1,000 s", 'id="plan-table"'):
        assert piece in html, piece
    assert html.count("<script type=\"text/javascript\">") == 1   # plotly.js once, opens offline
    assert "<script src=" not in html


@pytest.mark.slow
def test_a_goal_no_fleet_meets_exits_1_with_the_closest(tmp_path: Path) -> None:
    # the fastest kind computes 4 steps of 0.1 s per round: 3 rounds need 1.2 s at least
    path = write_plan(tmp_path, plan={"goal": {"versions": 3, "deadline_s": 1}})
    out = tmp_path / "o"
    (out).mkdir()
    (out / "plan.json").write_text("{}")   # an earlier plan's folder, with a best.yaml of its own
    (out / "best.yaml").write_text("name: stale\n")
    result = cli("plan", str(path), "--out", str(out))
    assert result.code == 1, result.text
    assert "NO candidate meets 3 versions by 1 s; the closest:" in result.stdout
    assert "No candidate meets the goal" in result.stdout
    assert not (out / "best.yaml").exists()   # no stale answer is left behind
    frame = pd.read_parquet(out / "plan.parquet")
    assert not frame.feasible.any() and not frame.chosen.any()
    nearest = frame.sort_values(["versions", "price"], ascending=[False, True]).iloc[0]
    lines = result.stdout.splitlines()
    first = lines[next(i for i, line in enumerate(lines) if line.startswith("┡")) + 1]
    cells = [c.strip() for c in first.split("│")]
    counts = [nearest[f"count.{k}"] for k in ("tiny", "slow", "good", "big")]
    assert cells[2:7] == [str(n) if n else "·" for n in counts] + [f"{nearest.price:,.0f}"]
    assert cells[7:9] == [f"{nearest.versions:.0f}", "too slow"]
    assert "No candidate meets the goal" in (out / "plan.html").read_text(encoding="utf-8")


def test_schema_describes_the_plan_file() -> None:
    result = cli("plan", "--schema")
    assert result.code == 0
    schema = json.loads(result.stdout)
    assert {"base", "catalogue", "goal", "minimise", "constraints", "search"} <= set(schema["properties"])
    entry = schema["$defs"]["CatalogueEntry"]
    assert {"profile", "unit_price", "link", "max_count"} <= set(entry["properties"])
    assert entry["additionalProperties"] is False
    assert json.loads(cli("schema", "--plan").stdout) == schema  # the schema command gives the same
    assert "grid" in json.loads(cli("schema", "--kind", "sweep").stdout)["properties"]


def test_a_folder_of_other_files_is_refused(tmp_path: Path) -> None:
    path = write_plan(tmp_path)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    result = cli("plan", str(path), "--out", str(other))
    assert_bad_input(result, file=None, field="--out", value=None, also=("not a plan folder",))
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def _entry(i: int, **change) -> list[dict]:
    catalogue = [dict(e) for e in CATALOGUE]
    catalogue[i].update(change)
    return catalogue


BAD_PLANS = [
    ("unknown profile", {"catalogue": _entry(0, profile="jetson-nano-9gb")}, "catalogue[0].profile",
     "'jetson-nano-9gb'", ("unknown device profile", "jetson-nano-4gb")),
    ("link not in the base", {"catalogue": _entry(1, link="ap-office")}, "catalogue[1].link", "'ap-office'",
     ("unknown link", "ethernet, ap")),
    ("negative price", {"catalogue": _entry(2, unit_price=-5)}, "catalogue[2].unit_price", "-5", (">= 0",)),
    ("negative max_count", {"catalogue": _entry(3, max_count=-1)}, "catalogue[3].max_count", "-1", (">= 0",)),
    ("unknown key", {"catalogue": _entry(3, colour="red")}, "catalogue[3].colour", "'red'", ("unit_price",)),
    ("unknown power mode", {"catalogue": _entry(3, power_mode="turbo")}, "catalogue[3].power_mode", "'turbo'", ()),
    ("accuracy above 1", {"goal": {"target_accuracy": 1.5, "deadline_s": 100}}, "goal.target_accuracy", "1.5", ()),
    ("no versions", {"goal": {"versions": 0, "deadline_s": 100}}, "goal.versions", "0", ()),
    ("two targets", {"goal": {"versions": 3, "target_accuracy": 0.5, "deadline_s": 100}}, "goal", None,
     ("exactly one of versions or target_accuracy",)),
    ("max_price below any fleet that trains", {"constraints": {"max_price": 20}}, "constraints.max_price", "20.0",
     ("the cheapest costs 50.00",)),
    ("unknown objective", {"minimise": "cost"}, "minimise", "'cost'", ("energy_j",)),
]


@pytest.mark.parametrize("label, plan, field, value, also", BAD_PLANS, ids=[b[0] for b in BAD_PLANS])
def test_bad_plans_are_one_paragraph(tmp_path: Path, label: str, plan: dict, field: str, value: str | None,
                                     also: tuple[str, ...]) -> None:
    path = write_plan(tmp_path, plan=plan)
    assert_bad_input(cli("plan", str(path)), file=path, field=field, value=value, also=also)
    assert not (tmp_path / "out").exists()   # nothing written before the input is known good


def test_impossible_goals_are_one_paragraph(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "k", clients_per_round=50)   # the catalogue allows 10 devices
    assert_bad_input(cli("plan", str(path)), file=path, field="catalogue", value="10",
                     also=("no fleet of this catalogue can merge", "clients_per_round is 50"))
    base = base_scenario()
    base["timing_only"] = True
    path = write_plan(tmp_path / "t", base=base, plan={"goal": {"target_accuracy": 0.5, "deadline_s": 100}})
    assert_bad_input(cli("plan", str(path)), file=path, field="goal.target_accuracy", value="0.5",
                     also=("timing-only",))


def test_a_bad_base_names_the_base_file(tmp_path: Path) -> None:
    base = base_scenario()
    base["workload"]["bogus"] = 1
    path = write_plan(tmp_path, base=base)
    assert_bad_input(cli("plan", str(path)), file=tmp_path / "base.yaml", field="workload.bogus", value="1")


def test_bad_options_are_one_paragraph(tmp_path: Path) -> None:
    path = write_plan(tmp_path)
    assert_bad_input(cli("plan", str(path), "--jobs", "0"), file=None, field="--jobs", value="0")
    assert_bad_input(cli("plan", str(path), "--budget-runs", "0"), file=None, field="--budget-runs", value="0")
    assert_bad_input(cli("plan", str(path), "--backend", "dask"), file=None, field="--backend", value="'dask'")
    assert_bad_input(cli("plan", str(path), "--method", "grid"), file=None, field="--method", value="'grid'")
    assert_bad_input(cli("plan"), file=None, field="PLAN_FILE", value=None)
    path = write_plan(tmp_path / "e", plan={"search": {"method": "enumerate", "budget_runs": 5}})
    assert_bad_input(cli("plan", str(path)), file=path, field="search.budget_runs", value="5",
                     also=("enumerating needs 23 runs",))


def test_bad_input_is_the_only_thing_on_stderr(tmp_path: Path) -> None:
    """The progress bar, never drawn before the input is known good, printed a blank line when stopped:
    `fleetsim plan scenario.yaml` showed an empty line above the error."""
    path = write_plan(tmp_path, plan={"catalogue": []})
    result = cli("plan", str(path))
    assert_bad_input(result, file=path, field=None, value=None)
    assert result.stderr.startswith("fleetsim: bad input: "), repr(result.stderr[:80])


def _figure(html: str, div_id: str) -> dict:
    """The data and layout plotly draws in `div_id`, read back from the page."""
    start = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + '",', html).end()
    decoder = json.JSONDecoder()
    pos = html.index("[", start)
    data, end = decoder.raw_decode(html, pos)
    layout, _ = decoder.raw_decode(html, html.index("{", end))
    return {"data": data, "layout": layout}


def test_the_energy_chart_is_in_the_unit_of_the_cards(planned) -> None:
    """plan.html's card said 'energy to goal 36.2 Wh' while its price-vs-energy chart was in joules
    ('130k', axis 'energy to goal (J)') for the same fleet; both must use one unit."""
    from simulator.report.style import fmt_energy

    _, out, _ = planned
    html = (out / "plan.html").read_text(encoding="utf-8")
    frame = pd.read_parquet(out / "plan.parquet")
    chosen = frame[frame.chosen].iloc[0]
    card_unit = fmt_energy(chosen.energy_j).split()[-1]
    fig = _figure(html, "chart-plan-energy")
    assert fig["layout"]["yaxis"]["title"]["text"] == f"energy to goal ({card_unit})"
    star = next(t for t in fig["data"] if t.get("name") == "chosen")
    assert star["y"][0] * {"J": 1.0, "Wh": 3600.0, "kWh": 3.6e6}[card_unit] == pytest.approx(chosen.energy_j)
