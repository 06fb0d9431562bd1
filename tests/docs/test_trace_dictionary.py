"""docs/trace_columns.md (the users' data dictionary) lists exactly the columns the traces declare.

The prose there is written by hand; the column names and types are checked against the one
declaration, simulator/trace/columns.py, so the page cannot drift from what a run folder holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.trace.columns import TABLES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "trace_columns.md"
DOC_TYPE = {"text": "string"}  # the page names Arrow's type, as pyarrow prints it


def _documented(table: str) -> list[tuple[str, str]]:
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(rf"^## {table}\.parquet\b.*?(?=^## )", text, flags=re.S | re.M)
    assert match, f"docs/trace_columns.md has no section '## {table}.parquet'"
    documented = []
    # a row may name several columns of one type ("bytes_down, bytes_up"); a blank type means "as in
    # events" (the per-device columns), which takes the declared type
    for names, kind in re.findall(r"^\| ([a-z_0-9, ]+) \| ([a-z0-9<>]*) ?\|", match.group(0), flags=re.M):
        for name in (n.strip() for n in names.split(",")):
            if name != "column":
                documented.append((name, kind or _declared_type(table, name)))
    return documented


def _declared_type(table: str, name: str) -> str:
    column = TABLES[table].column(name)
    return DOC_TYPE.get(column.type, column.type)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_data_dictionary_lists_every_declared_column_with_its_type(table: str) -> None:
    declared = [(c.name, DOC_TYPE.get(c.type, c.type)) for c in TABLES[table].columns]
    assert _documented(table) == declared
