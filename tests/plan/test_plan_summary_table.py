"""The plan's terminal table says what its marks mean and how much of the Pareto front it leaves out."""

from __future__ import annotations

from types import SimpleNamespace

from rich.console import Console

from simulator.plan.outputs import summary_tables
from simulator.plan.rows import Row
from simulator.plan.table import build_table


def _text(table) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    return " ".join(console.export_text().split())  # the caption wraps at the table's width


def test_a_long_front_is_cut_with_a_word_and_the_marks_are_explained() -> None:
    """12 fleets each cheaper-and-slower than the next: the best and 11 on the time front. The table
    showed 8 of them marked "pareto" with nothing saying 3 were left out, on which front they lie or
    what "util." is."""
    rows = [Row((n,), f"a={n}", price=100.0 * n, devices=n, trial=n, reason="meets", ran=True, versions=10.0,
                makespan_s=1000.0 / n, time_to_goal_s=1000.0 / n, energy_j=1e5, fleet_utilization=0.5)
            for n in range(1, 13)]
    table = build_table(rows, ["a"], "price")
    loaded = SimpleNamespace(labels=["a"], name="p", spec=SimpleNamespace(goal=SimpleNamespace(text=lambda: "g")))
    main = summary_tables(loaded, table, "price")[0]
    text = _text(main)
    assert text.count("│ pareto │") == 8 and text.count("★ best") == 1
    assert "3 more on the front in plan.csv (pareto_time)" in text
    assert "price-vs-time front" in text and "util.: fleet utilization" in text
    assert main.row_count == 9


def test_a_front_that_fits_says_nothing_is_left_out() -> None:
    rows = [Row((n,), f"a={n}", price=100.0 * n, devices=n, trial=n, reason="meets", ran=True, versions=10.0,
                makespan_s=1000.0 / n, time_to_goal_s=1000.0 / n, energy_j=1e5, fleet_utilization=0.5)
            for n in range(1, 4)]
    table = build_table(rows, ["a"], "price")
    loaded = SimpleNamespace(labels=["a"], name="p", spec=SimpleNamespace(goal=SimpleNamespace(text=lambda: "g")))
    text = _text(summary_tables(loaded, table, "price")[0])
    assert "more on the front" not in text and "price-vs-time front" in text
