"""The trace's tables: their Arrow schemas, the part-file writer thread and the generic row buffer.

Rows are buffered per table and written as numbered part files under ``<run>/_parts/<table>/`` every
``flush_rows`` rows; :meth:`TableWriter.close` joins the parts into ``<run>/<table>.parquet``. The
two big tables (events, updates) use :class:`~simulator.trace_packed.PackedTableWriter`; the small
ones (versions, evals, devices) keep Python tuples.
"""

from __future__ import annotations

import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
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
