"""The users' data dictionary (docs/trace_columns.md), rendered from the one column declaration.

Why generated: the page used to be written by hand beside :mod:`simulator.trace.columns`, and the two
drifted (a phase the page did not list, units only the page had). Now each table's section — heading,
intro, one row per column with its type, unit and meaning, each known text value explained — is
rendered from :data:`~simulator.trace.columns.RUN_FOLDER_TABLES`, and only the blocks between
``<!-- generated: <name> -->`` and ``<!-- /generated -->`` are rewritten, so the hand prose around them
(conventions, summary.json) stays. ``scripts/build_trace_dictionary.py`` writes the page (``--check``:
exit 1 naming the blocks that differ); tests/docs/test_trace_dictionary.py fails when the page is stale.

Pure: strings in, strings out; the script does the file I/O.
"""

from __future__ import annotations

import re
from typing import Mapping

from simulator.trace.columns import RUN_FOLDER_TABLES, UNITS, Column, Table

COMMAND = "python scripts/build_trace_dictionary.py"
UNITS_BLOCK = "units"
NO_UNIT = "—"
_END = "<!-- /generated -->"
_BLOCK = re.compile(r"^<!-- generated: ([a-z_0-9]+) -->\n.*?^<!-- /generated -->\n?", flags=re.S | re.M)


def _cell(text: str) -> str:
    """`text` safe inside a Markdown table cell (a pipe would end the cell)."""
    return text.replace("|", "\\|").replace("\n", " ")


def type_name(column: Column) -> str:
    """The column's Arrow type by pyarrow's constructor name (``float64``, which a schema prints
    ``double``; text is Arrow's ``string``)."""
    return "string" if column.is_text else column.type


def render_meaning(column: Column) -> str:
    """The meaning, then each known text value with what it means, one per line of the cell."""
    if not column.value_meanings:
        return _cell(column.meaning)
    values = "".join(f"<br>`{value}`: {meaning}" for value, meaning in column.value_meanings)
    return _cell(f"{column.meaning}:{values}")


def render_column(column: Column) -> str:
    unit = column.unit or NO_UNIT
    return f"| {column.name} | `{type_name(column)}` | {_cell(unit)} | {render_meaning(column)} |"


def render_table(table: Table) -> str:
    """A table's section: ``## <name>.parquet — <title>``, its intro, its columns."""
    heading = f"## {table.name}.parquet" + (f" — {table.title}" if table.title else "")
    intro = f"One row per {table.row_is}." + (f" {table.description}" if table.description else "")
    rows = [render_column(c) for c in table.columns]
    return "\n".join([heading, "", intro, "", "| column | type | unit | meaning |", "|---|---|---|---|", *rows]) + "\n"


def render_units(units: Mapping[str, str]) -> str:
    """The legend of the unit column."""
    rows = [f"| {_cell(unit or NO_UNIT)} | {_cell(meaning)} |" for unit, meaning in units.items()]
    return "\n".join(["| unit | what one is |", "|---|---|", *rows]) + "\n"


def render_blocks(tables: Mapping[str, Table] = RUN_FOLDER_TABLES,
                  units: Mapping[str, str] = UNITS) -> dict[str, str]:
    """Every generated block's body, by block name: the units legend, then one per table."""
    return {UNITS_BLOCK: render_units(units), **{name: render_table(t) for name, t in tables.items()}}


def _block(name: str, body: str) -> str:
    return f"<!-- generated: {name} -->\n{body}{_END}\n"


def page_blocks(text: str) -> dict[str, str]:
    """The generated blocks on a page, by name, as they stand (their bodies)."""
    found: dict[str, str] = {}
    for match in _BLOCK.finditer(text):
        body = match.group(0).split("\n", 1)[1]
        found[match.group(1)] = body[: body.rindex(_END)]
    return found


def update_page(text: str, blocks: Mapping[str, str]) -> tuple[str, list[str]]:
    """`text` with every generated block replaced by `blocks`' body, and the names that changed.

    A block the page lacks is added after the last generated block (at the end if there is none); a
    generated block no longer declared is removed. Everything outside the markers is kept as is."""
    on_page = page_blocks(text)
    changed = [name for name in blocks if on_page.get(name) != blocks[name]]
    changed += [name for name in on_page if name not in blocks]

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return _block(name, blocks[name]) if name in blocks else ""

    new = _BLOCK.sub(replace, text)
    missing = "".join("\n" + _block(name, body) for name, body in blocks.items() if name not in on_page)
    if missing:
        last = list(_BLOCK.finditer(new))
        at = last[-1].end() if last else len(new)
        if not last and not new.endswith("\n"):
            missing = "\n" + missing
        new = new[:at] + missing + new[at:]
    return new, changed
