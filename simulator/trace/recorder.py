"""Trace recorder: typed rows → Parquet, flushed incrementally so a killed run keeps what happened.

Each table buffers its rows and writes them as numbered part files under ``<run>/_parts/<table>/``
every ``flush_rows`` rows; :meth:`TraceRecorder.close` joins the parts into ``<run>/<table>.parquet``
and removes them. A run killed mid-way leaves its parts, which :func:`read_table` (and so reports and
resume) read transparently.

- events and updates, several rows per client-round, are packed to bytes as they happen
  (:mod:`simulator.trace.packed`); versions, evals and devices keep Python tuples
  (:mod:`simulator.trace.tables`).
- Part files are encoded on one background thread (:class:`~simulator.trace.tables.PartWriter`):
  Parquet encoding releases the GIL, so it overlaps with the event loop instead of stalling it. Each
  part is written to a temporary name and renamed, so a killed run never leaves half a part.
- Part boundaries depend only on row counts, never on host time, and the joined file re-cuts row
  groups at a fixed size: the same scenario and seed give byte-identical Parquet files.

Importing this module imports no pyarrow (the writers, :mod:`~simulator.trace.tables` and
:mod:`~simulator.trace.packed`, are imported when a recorder is made, pyarrow when a table is read):
fleet.device, the server and the engine import it on the path of `fleetsim validate` and `explain`,
which build a Simulation and write no trace.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from simulator.trace.columns import EVENT_CODES, EVENT_FIELDS, TABLES, UPDATE_FIELDS
from simulator.trace.files import PARTS_DIR, TraceWriteError

if TYPE_CHECKING:  # pandas (~0.3 s to import) only where a table is read: pyarrow's to_pandas imports it
    import pandas as pd

    from simulator.trace.tables import TableWriter

__all__ = ["EVENT_CODES", "PARTS_DIR", "TraceRecorder", "TraceWriteError", "read_table"]


class TraceRecorder:
    """One TableWriter per table of the run folder; `devices` = (name, profile, group) per device index."""

    def __init__(self, run_dir: Path, flush_rows: int = 20_000, devices: Sequence[tuple[str, str, int]] = ()) -> None:
        # the writers import pyarrow (~0.15 s with pyarrow.compute): here, when a run starts, not at import
        from simulator.trace.packed import PackedTableWriter
        from simulator.trace.tables import PartWriter, TableWriter

        self.run_dir = run_dir
        # Two writer threads: the updates table on its own, so that at the end its last rows are encoded
        # beside the events table's while the run waits (the two biggest; the small tables go with events).
        self.parts = PartWriter()
        self.update_parts = PartWriter()
        self.events = PackedTableWriter(run_dir, "events", flush_rows, self.parts, EVENT_FIELDS, devices)
        self.updates = PackedTableWriter(run_dir, "updates", flush_rows, self.update_parts, UPDATE_FIELDS, devices)
        self.tables: dict[str, TableWriter] = {
            name: self.events if name == "events" else self.updates if name == "updates"
            else TableWriter(run_dir, name, flush_rows, self.parts)
            for name in TABLES
        }
        self.versions = self.tables["versions"]
        self.evals = self.tables["evals"]
        self.devices = self.tables["devices"]

    def flush(self) -> None:
        """Every buffered row on disk (as part files) when this returns: a checkpoint relies on it."""
        for writer in self.tables.values():
            writer.flush()
        self.parts.wait()
        self.update_parts.wait()

    def close(self) -> None:
        """Finish every table. After a failed write (a full disk) the tables that were not finished
        keep their part files — all rows written before the failure, readable — and the error is
        raised (a :class:`~simulator.trace.files.TraceWriteError` naming the file)."""
        error: OSError | None = None
        for finish in [w.start_close for w in self.tables.values()] + [w.end_close for w in self.tables.values()]:
            try:
                finish()
            except OSError as exc:
                error = error or exc
        for parts in (self.parts, self.update_parts):
            try:
                parts.close()
            except OSError as exc:
                error = error or exc
        failed = self.parts.failed or self.update_parts.failed
        if failed is not None:
            for writer in self.tables.values():
                writer.joined.discard()
            raise error or failed
        shutil.rmtree(self.run_dir / PARTS_DIR, ignore_errors=True)


def read_table(run_dir: Path, table: str) -> pd.DataFrame:
    """A table of a run folder as a DataFrame, from the final file or, for a killed run, its parts."""
    import pyarrow as pa  # here, not at the top: see the module's docstring
    import pyarrow.parquet as pq

    final = Path(run_dir) / f"{table}.parquet"
    if final.exists():
        return pq.read_table(final).to_pandas()
    parts = sorted((Path(run_dir) / PARTS_DIR / table).glob("part-*.parquet"))
    if not parts:
        return TABLES[table].schema().empty_table().to_pandas()
    return pa.concat_tables([pq.read_table(p) for p in parts]).to_pandas()
