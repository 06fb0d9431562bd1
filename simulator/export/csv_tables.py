"""A run's tables as CSV files in one folder, for spreadsheet users: the five trace tables
(events, updates, versions, evals, devices; columns as in ARCHITECTURE.md "Trace schema"), the
planner table per scenario group (groups.csv), the fault log (faults.csv) and the scalar summary
figures (summary.csv: key, value).

List columns (block_coverage, exit_accuracy) become ';'-separated text. Tables stream batch by batch
(pyarrow's CSV writer), so a 3-million-row events table costs no more memory than a small one; note
that spreadsheet programs open at most 1,048,576 rows. The folder is marked as fleetsim's
(MARKER): an existing folder without the mark is never written into.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from simulator.errors import InputError
from simulator.export.sources import TABLES, iter_batches, open_run
from simulator.trace.tables import SCHEMAS

MARKER = ".fleetsim-export.json"


def _flat_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """List columns as ';'-joined text (CSV has no lists); everything else as is."""
    columns, names = [], []
    for name, col in zip(batch.schema.names, batch.columns):
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            col = pc.binary_join(pc.cast(col, pa.list_(pa.string())), ";")
        columns.append(col)
        names.append(name)
    return pa.RecordBatch.from_arrays(columns, names=names)


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", field="-o", value=str(out),
                         accepted="a new folder, or one written by an earlier `fleetsim export --format csv`")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise InputError("is a folder fleetsim did not write (no export mark); nothing was written", field="-o",
                         value=str(out), accepted="a new or empty folder, or one from an earlier csv export")


def _atomic(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _write_table(run_dir: Path, table: str, path: Path) -> int:
    tmp, rows = _atomic(path), 0
    writer = None
    try:
        for batch in iter_batches(run_dir, table):
            flat = _flat_batch(batch)
            if writer is None:
                writer = pacsv.CSVWriter(str(tmp), flat.schema)
            writer.write_batch(flat)
            rows += batch.num_rows
        if writer is None:  # no rows: the schema's header line, quoted as pyarrow quotes it
            tmp.write_text(",".join(f'"{name}"' for name in SCHEMAS[table].names) + "\n", encoding="utf-8")
        else:
            writer.close()
            writer = None
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return rows


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return value


def _column(values: list[Any]) -> pa.Array:
    """Numbers stay numbers when the whole column is numeric; otherwise every cell is text."""
    if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else str(_cell(v)) for v in values], pa.string())


def _write_rows(rows: list[dict[str, Any]], path: Path) -> int:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    table = pa.table({k: _column([r.get(k) for r in rows]) for k in keys}) if rows else pa.table({})
    tmp = _atomic(path)
    pacsv.write_csv(table, str(tmp))
    os.replace(tmp, path)
    return len(rows)


def write_csv_tables(run_dir: Path | str, out_dir: Path | str) -> dict[str, int]:
    """Write the CSV files into `out_dir`; returns rows per file name."""
    source = open_run(run_dir)
    out = Path(out_dir)
    _check_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"run_dir": str(source.run_dir)}) + "\n", encoding="utf-8")
    written: dict[str, int] = {}
    for table in TABLES:
        written[f"{table}.csv"] = _write_table(source.run_dir, table, out / f"{table}.csv")
    groups = source.summary.get("groups")
    if not isinstance(groups, list) or not groups:
        from simulator.report.groups import group_rows
        from simulator.report.loading import load_run

        groups = group_rows(load_run(source.run_dir))
    written["groups.csv"] = _write_rows([dict(g) for g in groups], out / "groups.csv")
    faults = [f for f in source.summary.get("faults") or [] if isinstance(f, dict)]
    written["faults.csv"] = _write_rows(faults, out / "faults.csv")
    scalars = [{"key": k, "value": v} for k, v in source.summary.items()
               if v is None or isinstance(v, (int, float, str, bool))]
    scalars += [{"key": f"staleness.{k}", "value": v} for k, v in (source.summary.get("staleness") or {}).items()]
    written["summary.csv"] = _write_rows(scalars, out / "summary.csv")
    return written
