"""plan.html's price-vs-energy chart speaks the unit of the page's cards, not raw joules."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from simulator.plan.report import scatter
from simulator.plan.rows import Row
from simulator.plan.table import build_table
from simulator.report.style import fmt_energy


def test_energy_chart_is_in_watt_hours_when_the_card_is() -> None:
    """buy_fleet's card said 'energy to goal 36.2 Wh' (130,234 J) while the chart beside it was in joules
    (ticks '130k', axis 'energy to goal (J)')."""
    rows = [Row((n,), f"a={n}", price=100.0 * n, devices=n, trial=n, reason="meets", ran=True, versions=200.0,
                makespan_s=4000.0 / n, time_to_goal_s=4000.0 / n, energy_j=130_233.85 / n ** 0.5,
                fleet_utilization=0.5) for n in range(4, 8)]
    table = build_table(rows, ["a"], "price")
    result = SimpleNamespace(table=table, best=table.best,
                             loaded=SimpleNamespace(labels=["a"], spec=SimpleNamespace(
                                 goal=SimpleNamespace(deadline_s=7200.0))))
    assert fmt_energy(table.best.energy_j).endswith(" Wh")
    fig = scatter(result, "energy_j", "")
    assert fig.layout.yaxis.title.text == "energy to goal (Wh)"
    star = next(t for t in fig.data if t.name == "chosen")
    assert star.y[0] == pytest.approx(table.best.energy_j / 3600.0)
    points = next(t for t in fig.data if t.name != "chosen" and t.mode == "markers")
    assert sorted(points.y) == pytest.approx(sorted(r.energy_j / 3600.0 for r in rows))
    # the time chart keeps seconds
    assert scatter(result, "time_to_goal_s", "").layout.yaxis.title.text == "time to goal (s)"
