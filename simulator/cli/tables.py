"""Tables that fit the terminal, and the same rows as JSON or CSV.

Why not plain rich tables: rich squeezes columns it may not wrap and cuts their text (`F…` headers,
`2,13… ±` cells at 80 columns). A :class:`Grid` is printed as a table only when its natural width
fits the console; otherwise as a vertical list, one block per row and one `header: value` line per
cell, so every character stays readable at any width. `--format json|csv` prints the records
behind a table instead (numbers as numbers), for scripts and spreadsheets.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


@dataclass
class Grid:
    """A titled table of text cells; `right` are the indices of right-aligned (numeric) columns."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str | None = None
    right: frozenset[int] = frozenset()
    original: Table | None = None  # a rich table this grid was read from: printed as it is when it fits
    # the vertical list heads each block with the first cell; when that column is a value (a sweep's
    # first swept key) rather than a name, the heading must say which key it is: "stop.sim_time_s = 1800"
    label_first: bool = False

    def as_table(self) -> Table:
        if self.original is not None:
            return self.original
        table = Table(title=self.title, caption=self.caption, box=box.SIMPLE_HEAD, title_justify="left")
        for i, header in enumerate(self.headers):
            table.add_column(header, justify="right" if i in self.right else "left", no_wrap=True)
        for row in self.rows:
            table.add_row(*row)
        return table


def grid_from_rich(table: Table) -> Grid:
    """A rich Table (e.g. the sweep's or the planner's) as a Grid, so it too never gets cut."""
    headers = [str(c.header) for c in table.columns]
    cells = [[str(cell) for cell in c.cells] for c in table.columns]
    rows = [list(r) for r in zip(*cells)] if cells else []
    right = frozenset(i for i, c in enumerate(table.columns) if c.justify == "right")
    title = str(table.title) if table.title is not None else ""
    caption = str(table.caption) if table.caption is not None else None
    return Grid(title, headers, rows, caption, right, original=table)


def fits(grid: Grid, console: Console) -> bool:
    """True when the table, no cell wrapped, is no wider than the console."""
    wide = console.options.update_width(1_000_000)  # measured unconstrained: rich clamps to the width asked
    return Measurement.get(console, wide, grid.as_table()).maximum <= console.width


def print_grid(grid: Grid, console: Console) -> None:
    """The grid as a table if it fits the console's width, else as a vertical list."""
    if fits(grid, console):
        console.print(grid.as_table())
        return
    if grid.title:
        console.print(Text(grid.title, style="bold"))
    labels = [" ".join(h.replace("-\n", "").split()) for h in grid.headers]  # "effi-\nciency" -> "efficiency"
    pad = min(max((len(x) for x in labels[1:]), default=0), max(8, console.width // 2))
    first = labels[0] if labels else ""
    for row in grid.rows:
        heading = " ".join(row[0].split())
        console.print(Text(f"{first} = {heading}" if grid.label_first and first else heading, style="bold"))
        for label, cell in zip(labels[1:], row[1:]):
            lines = cell.split("\n") or [""]
            indent = " " * (pad + 4)
            text = f"  {label:<{pad}}  {lines[0]}" + "".join(f"\n{indent}{line}" for line in lines[1:])
            console.print(Text(text), overflow="fold")
    if grid.caption:
        console.print(Text(grid.caption, style="dim"))


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_records(records: Sequence[dict[str, Any]], fmt: str, out: Any = None) -> None:
    """`records` to stdout (or `out`) as a JSON array or as CSV with a header row (the union of keys,
    in first-seen order). Nested values (lists, dicts) become compact JSON inside a CSV cell."""
    out = out or sys.stdout
    clean = [{k: _plain(v) for k, v in r.items()} for r in records]
    if fmt == "json":
        out.write(json.dumps(clean, indent=2, ensure_ascii=False) + "\n")
        return
    keys: list[str] = []
    for r in clean:
        keys += [k for k in r if k not in keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for r in clean:
        writer.writerow({k: json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else
                         ("" if v is None else v) for k, v in r.items()})
    out.write(buffer.getvalue())


def records_of_frame(frame: Any) -> list[dict[str, Any]]:
    """A pandas DataFrame's rows as dicts, each column's own type kept."""
    return list(frame.to_dict("records"))
