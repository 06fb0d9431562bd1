"""Trace recorder: typed rows → Parquet, flushed incrementally so a killed run keeps what happened.

Rows are buffered as tuples in a plain Python list (one append per row in the hot loop) and written as
numbered part files under ``<run>/_parts/<table>/`` every ``flush_rows`` rows. :meth:`close` joins the
parts into ``<run>/<table>.parquet`` and removes them. A run killed mid-way leaves its parts, which
:func:`read_table` (and so reports and resume) read transparently.

Part files are encoded on one background thread (:class:`PartWriter`): Parquet encoding releases the
GIL, so it overlaps with the event loop instead of stalling it (a tenth of a timing-only loop). Each
part is written to a temporary name and renamed, so a killed run never leaves half a part.

Part boundaries depend only on row counts, never on host time, so the same scenario and seed give
byte-identical Parquet files.
"""

from __future__ import annotations

import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SCHEMAS: dict[str, pa.Schema] = {
    "events": pa.schema(
        [
            ("device", pa.int32()), ("device_name", pa.string()), ("profile", pa.string()), ("group", pa.int32()),
            ("phase", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()), ("job_id", pa.int64()),
            ("version", pa.int64()), ("bytes", pa.int64()), ("flops", pa.float64()), ("outcome", pa.string()),
        ]
    ),
    "updates": pa.schema(
        [
            ("job_id", pa.int64()), ("device", pa.int32()), ("profile", pa.string()), ("dispatch_s", pa.float64()),
            ("arrival_s", pa.float64()), ("base_version", pa.int64()), ("applied_version", pa.int64()),
            ("staleness", pa.int64()), ("weight", pa.float64()), ("outcome", pa.string()), ("reason", pa.string()),
            ("depth", pa.int32()), ("width_ratio", pa.float64()), ("submodel_params", pa.int64()),
            ("download_bytes", pa.int64()), ("upload_bytes", pa.int64()), ("peak_memory_bytes", pa.int64()),
            ("local_steps", pa.int64()),
        ]
    ),
    "versions": pa.schema(
        [
            ("version", pa.int64()), ("time_s", pa.float64()), ("trigger", pa.string()), ("n_merged", pa.int32()),
            ("mean_staleness", pa.float64()), ("block_coverage", pa.list_(pa.int32())), ("min_coverage", pa.int32()),
        ]
    ),
    "evals": pa.schema(
        [
            ("time_s", pa.float64()), ("version", pa.int64()), ("accuracy", pa.float64()), ("loss", pa.float64()),
            ("exit_accuracy", pa.list_(pa.float64())),
        ]
    ),
    "devices": pa.schema(
        [
            ("device", pa.int32()), ("device_name", pa.string()), ("profile", pa.string()), ("group", pa.int32()),
            ("power_mode", pa.string()), ("usable_memory_bytes", pa.int64()), ("peak_memory_bytes", pa.int64()),
            ("compute_s", pa.float64()), ("comm_s", pa.float64()), ("idle_s", pa.float64()),
            ("offline_s", pa.float64()), ("wall_s", pa.float64()), ("utilization", pa.float64()),
            ("energy_j", pa.float64()), ("jobs", pa.int64()), ("accepted", pa.int64()), ("dropped", pa.int64()),
            ("lost", pa.int64()), ("ooms", pa.int64()), ("bytes_down", pa.int64()), ("bytes_up", pa.int64()),
        ]
    ),
}

PARTS_DIR = "_parts"
ROW_GROUP_ROWS = 1 << 18


def _write_part(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")  # not matched by the part-*.parquet readers
    pq.write_table(table, tmp)
    tmp.replace(path)


class PartWriter:
    """Writes part files on one background thread, in submission order.

    At most ``max_pending`` tables wait (memory stays bounded when the loop outruns the disk); an
    error in a write (a full disk) is raised by the next :meth:`submit` or by :meth:`wait`.
    """

    def __init__(self, max_pending: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetsim-trace")
        self._pending: deque[Future[None]] = deque()
        self.max_pending = max_pending

    def submit(self, table: pa.Table, path: Path) -> None:
        pending = self._pending
        while pending and (pending[0].done() or len(pending) >= self.max_pending):
            pending.popleft().result()
        pending.append(self._pool.submit(_write_part, table, path))

    def wait(self) -> None:
        """Return when every submitted part is on disk."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


class TableWriter:
    """Row buffer for one table, written as part files of `flush_rows` rows.

    Rows are kept as the tuples the caller passed (one list append per row in the hot loop) and turned
    into an Arrow table in one C++ pass (a struct array from the tuples) when a part is written; the
    Parquet bytes are the same as column-wise buffering.
    """

    def __init__(self, run_dir: Path, table: str, flush_rows: int, parts: PartWriter | None = None) -> None:
        self.table = table
        self.schema = SCHEMAS[table]
        self.row_type = pa.struct(list(self.schema))
        self.rows: list[tuple[Any, ...]] = []
        self.parts_dir = run_dir / PARTS_DIR / table
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self.flush_rows = flush_rows
        self.part_count = 0
        self.rows_written = 0
        self.parts = parts

    def append(self, *values: Any) -> None:
        """Append one row, values in schema order (positional for speed in the hot loop)."""
        rows = self.rows
        rows.append(values)
        if len(rows) >= self.flush_rows:
            self.flush()

    def extend(self, rows: list[tuple[Any, ...]]) -> None:
        """Append many rows (a merge's updates); parts are cut exactly where :meth:`append` would cut them."""
        buffer = self.rows
        start = 0
        while start < len(rows):
            room = max(1, self.flush_rows - len(buffer))
            buffer.extend(rows[start:start + room])
            start += room
            if len(buffer) >= self.flush_rows:
                self.flush()
                buffer = self.rows

    def flush(self) -> None:
        """Hand the buffered rows to the part writer (or write them here without one)."""
        if not self.rows:
            return
        rows = self.rows
        width = self.row_type.num_fields
        if set(map(len, rows)) != {width}:
            bad = next(row for row in rows if len(row) != width)
            raise ValueError(f"{self.table} row has {len(bad)} values, {width} expected: {bad!r}")
        table = self._build(rows)
        path = self.parts_dir / f"part-{self.part_count:06d}.parquet"
        if self.parts is not None:
            self.parts.submit(table, path)
        else:
            _write_part(table, path)
        self.part_count += 1
        self.rows_written += table.num_rows
        rows.clear()  # in place: the hot loop appends to this very list (ClientRound.event_rows)

    def _build(self, rows: list[tuple[Any, ...]]) -> pa.Table:
        return pa.Table.from_struct_array(pa.array(rows, type=self.row_type))

    def close(self, final_path: Path) -> None:
        """Join all parts into `final_path` and remove the parts.

        Row groups are re-cut at a fixed row count, so the file's bytes do not depend on when the
        buffers happened to be flushed (a checkpoint flushes early): same rows, same bytes.
        """
        self.flush()
        if self.parts is not None:
            self.parts.wait()
        parts = sorted(self.parts_dir.glob("part-*.parquet"))
        tmp = final_path.with_suffix(".parquet.tmp")
        tables = [pq.read_table(part, schema=self.schema) for part in parts]
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS)
        tmp.replace(final_path)
        shutil.rmtree(self.parts_dir, ignore_errors=True)


# What an events row carries in the hot loop; the device's name, profile and group are filled in per part.
EVENT_ROW_FIELDS = ("device", "phase", "start_s", "end_s", "job_id", "version", "bytes", "flops", "outcome")


class EventsWriter(TableWriter):
    """events.parquet, whose rows are appended with the device index only:
    ``append(device, phase, start_s, end_s, job_id, version, bytes, flops, outcome)``.

    The device's name, profile and group are looked up per part (Arrow ``take`` over per-device
    arrays). Converting those per-row strings was the costliest part of building a part, and they were
    three of the twelve values every round callback passed. The file is the same, byte for byte.
    """

    def __init__(self, run_dir: Path, flush_rows: int, parts: PartWriter | None = None,
                 devices: Sequence[tuple[str, str, int]] = ()) -> None:
        super().__init__(run_dir, "events", flush_rows, parts)
        self.row_type = pa.struct([self.schema.field(name) for name in EVENT_ROW_FIELDS])
        self.set_devices(devices)

    def set_devices(self, devices: Sequence[tuple[str, str, int]]) -> None:
        """(name, profile, group) of every device, in index order."""
        names, profiles, groups = (list(col) for col in zip(*devices)) if devices else ([], [], [])
        self._device_columns = {
            "device_name": pa.array(names, pa.string()),
            "profile": pa.array(profiles, pa.string()),
            "group": pa.array(groups, pa.int32()),
        }

    def _build(self, rows: list[tuple[Any, ...]]) -> pa.Table:
        compact = pa.Table.from_struct_array(pa.array(rows, type=self.row_type))
        device = compact.column("device")
        columns = {name: compact.column(name) for name in EVENT_ROW_FIELDS}
        columns.update({name: pc.take(values, device) for name, values in self._device_columns.items()})
        return pa.Table.from_arrays([columns[name] for name in self.schema.names], schema=self.schema)


class TraceRecorder:
    """One TableWriter per table of the run folder; `devices` = (name, profile, group) per device index."""

    def __init__(self, run_dir: Path, flush_rows: int = 20_000, devices: Sequence[tuple[str, str, int]] = ()) -> None:
        self.run_dir = run_dir
        self.parts = PartWriter()
        self.tables: dict[str, TableWriter] = {
            name: EventsWriter(run_dir, flush_rows, self.parts, devices) if name == "events"
            else TableWriter(run_dir, name, flush_rows, self.parts)
            for name in SCHEMAS
        }
        self.events: EventsWriter = self.tables["events"]  # type: ignore[assignment]
        self.updates = self.tables["updates"]
        self.versions = self.tables["versions"]
        self.evals = self.tables["evals"]
        self.devices = self.tables["devices"]

    def flush(self) -> None:
        """Every buffered row on disk (as part files) when this returns: a checkpoint relies on it."""
        for writer in self.tables.values():
            writer.flush()
        self.parts.wait()

    def close(self) -> None:
        try:
            for name, writer in self.tables.items():
                writer.close(self.run_dir / f"{name}.parquet")
        finally:
            self.parts.close()
        shutil.rmtree(self.run_dir / PARTS_DIR, ignore_errors=True)


def read_table(run_dir: Path, table: str) -> pd.DataFrame:
    """A table of a run folder as a DataFrame, from the final file or, for a killed run, its parts."""
    final = Path(run_dir) / f"{table}.parquet"
    if final.exists():
        return pq.read_table(final).to_pandas()
    parts = sorted((Path(run_dir) / PARTS_DIR / table).glob("part-*.parquet"))
    if not parts:
        return SCHEMAS[table].empty_table().to_pandas()
    return pa.concat_tables([pq.read_table(p) for p in parts]).to_pandas()
