"""The trace's tables on disk: the part-file writer thread, the joined file and the generic row buffer.

Rows are buffered per table and written as numbered part files under ``<run>/_parts/<table>/`` every
``flush_rows`` rows; :meth:`TableWriter.close` joins the parts into ``<run>/<table>.parquet``. The
two big tables (events, updates) use :class:`~simulator.trace.packed.PackedTableWriter`; the small
ones (versions, evals, devices) keep Python tuples.
"""

from __future__ import annotations

import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from simulator.trace.columns import TABLES
from simulator.trace.files import PARTS_DIR, TraceWriteError

__all__ = ["PARTS_DIR", "ROW_GROUP_ROWS", "SCHEMAS", "JoinedFile", "PartWriter", "TableWriter", "TraceWriteError"]

# Each Parquet file's Arrow schema, derived from the one declaration of every table's columns
# (simulator.trace.columns, which imports no pyarrow).
SCHEMAS: dict[str, pa.Schema] = {name: table.schema() for name, table in TABLES.items()}

# The final file's row group. Rows wait in memory until a whole group is theirs, and those still
# waiting when the loop ends are encoded while the run waits: 2^16 rather than 2^18 took 0.03-0.06 s
# off the end of a 1,000-device, 100-round run (BENCHMARKS.md §1, ninth session).
ROW_GROUP_ROWS = 1 << 16


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns the final file dictionary-encodes: all but the floating-point ones. Floats here are
    measured times and sizes, nearly all distinct: Parquet would build their dictionary and then fall
    back to plain encoding, spending a quarter to a third of the events table's encoding on it, and
    the file came out larger (100,000 events rows by ``pq.write_table``: 16.4 against 21.9 ms of CPU,
    1.90 against 2.18 MB)."""
    return [field.name for field in schema if not pa.types.is_floating(field.type)]


def _write_part(table: pa.Table, path: Path) -> None:
    """One part file. Parts are only read whole (a killed run's tables, resume, exports), never
    filtered, and the final file is encoded from the Arrow rows, not from them: so a part skips
    column statistics and dictionary-encodes only its text columns. That halves its encoding
    (200,000 events rows: 0.085 → 0.044 s of CPU, 4.2 → 4.4 MB), and the part writer runs beside the
    event loop, in its CPU time."""
    tmp = path.with_name(path.name + ".tmp")  # not matched by the part-*.parquet readers
    text = [field.name for field in table.schema if pa.types.is_string(field.type)]
    try:
        pq.write_table(table, tmp, use_dictionary=text, write_statistics=False)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # half a part frees its space; the parts before it stay readable
        raise TraceWriteError(path, exc) from exc


class PartWriter:
    """Runs a table's file writes on one background thread, in submission order.

    At most ``max_pending`` tasks wait (memory stays bounded when the loop outruns the disk). The
    first error in a write (a full disk) is raised once, by the next :meth:`submit` or by
    :meth:`wait`; from then on :attr:`failed` holds it and every later task is skipped, so no joined
    file is ever completed around a missing part and the parts already written stay as they are.
    """

    def __init__(self, max_pending: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetsim-trace")
        self._pending: deque[Future[None]] = deque()
        self.max_pending = max_pending
        self.failed: BaseException | None = None
        self._raised = False

    def submit(self, task: Callable[..., None], *args: Any) -> None:
        if self.failed is not None and self._raised:
            return
        pending = self._pending
        while pending and (pending[0].done() or len(pending) >= self.max_pending):
            self._settle(pending.popleft())
        pending.append(self._pool.submit(self._guarded, task, *args))

    def _guarded(self, task: Callable[..., None], *args: Any) -> None:
        if self.failed is not None:
            return  # queued behind a failed write: skipped
        try:
            task(*args)
        except BaseException as exc:
            self.failed = exc
            raise

    def _settle(self, future: Future[None]) -> None:
        error = future.exception()
        if error is not None and not self._raised:
            self._raised = True
            raise error

    def wait(self) -> None:
        """Return when every submitted task is done (every part on disk)."""
        while self._pending:
            self._settle(self._pending.popleft())

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


class JoinedFile:
    """The table's final ``<table>.parquet``, written a row group at a time as parts are stored.

    Why: joining the parts after the loop re-encoded every row while the run waited (1.5 s of a
    10,000-device, 100-round run). The row groups are cut at :data:`ROW_GROUP_ROWS` rows whatever the
    part sizes, and each is written from one contiguous chunk per column, so the bytes depend on the
    rows alone, not on when buffers were flushed (a checkpoint flushes early). Its methods run on the
    part-writer thread.
    The file is written under a temporary name and renamed when complete.
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.tmp = path.with_suffix(".parquet.tmp")
        self.schema = schema
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._dictionary = _dictionary_columns(schema)

    def add(self, table: pa.Table) -> None:
        """Queue rows; write every whole row group they complete."""
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows < ROW_GROUP_ROWS:
            return
        joined = pa.concat_tables(self._pending)
        whole = joined.num_rows - joined.num_rows % ROW_GROUP_ROWS
        try:
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.tmp, self.schema, use_dictionary=self._dictionary)
            # one chunk per column: Parquet's page and dictionary-fallback cuts follow Arrow chunk
            # boundaries, which follow part boundaries; combined, the bytes depend on the rows alone
            self._writer.write_table(joined.slice(0, whole).combine_chunks(), row_group_size=ROW_GROUP_ROWS)
        except OSError as exc:
            raise TraceWriteError(self.tmp, exc) from exc
        rest = joined.slice(whole)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def finish(self) -> None:
        """Write the last (partial) row group and the footer; rename into place."""
        rest = pa.concat_tables(self._pending).combine_chunks() if self._pending else self.schema.empty_table()
        try:
            if self._writer is None:
                pq.write_table(rest, self.tmp, row_group_size=ROW_GROUP_ROWS, use_dictionary=self._dictionary)
            else:
                if rest.num_rows:
                    self._writer.write_table(rest, row_group_size=ROW_GROUP_ROWS)
                self._writer.close()
            self.tmp.replace(self.path)
        except OSError as exc:
            raise TraceWriteError(self.tmp, exc) from exc
        self._pending, self._writer = [], None

    def discard(self) -> None:
        """Remove the unfinished file (after a failed write: it would miss rows)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - a full disk fails the footer too; the file goes anyway
                pass
            self._writer = None
        self.tmp.unlink(missing_ok=True)


class TableWriter:
    """Row buffer for one table, written as part files of `flush_rows` rows and joined into
    ``<run>/<table>.parquet`` as it goes (:class:`JoinedFile`).

    Rows are kept as the tuples the caller passed and turned into an Arrow table in one C++ pass (a
    struct array from the tuples) when a part is written; the Parquet bytes are the same as
    column-wise buffering.
    """

    def __init__(self, run_dir: Path, table: str, flush_rows: int, parts: PartWriter | None = None) -> None:
        self.table = table
        self.schema = SCHEMAS[table]
        self.row_type = pa.struct(list(self.schema))
        self.rows: list[tuple[Any, ...]] = []
        self.parts_dir = run_dir / PARTS_DIR / table
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self.final_path = run_dir / f"{table}.parquet"
        self.joined = JoinedFile(self.final_path, self.schema)
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
        taken = self._take_rows()
        if taken is not None:
            self._store(*taken)

    def _take_rows(self) -> tuple[Callable[[], pa.Table], int] | None:
        """Empty the buffer: a function making its rows' Arrow table, and their number (None: no rows)."""
        if not self.rows:
            return None
        rows = self.rows
        width = self.row_type.num_fields
        if set(map(len, rows)) != {width}:
            bad = next(row for row in rows if len(row) != width)
            raise ValueError(f"{self.table} row has {len(bad)} values, {width} expected: {bad!r}")
        table = self._build(rows)  # here: converting Python objects holds the GIL anyway
        rows.clear()
        return (lambda: table), table.num_rows

    def _next_part(self, num_rows: int) -> Path:
        path = self.parts_dir / f"part-{self.part_count:06d}.parquet"
        self.part_count += 1
        self.rows_written += num_rows
        return path

    def _store(self, build: Callable[[], pa.Table], num_rows: int) -> None:
        """Write the table `build` makes as the next part file and add it to the joined file; both,
        and `build` itself, run on the writer thread when there is one."""
        path = self._next_part(num_rows)
        if self.parts is not None:
            self.parts.submit(self._store_now, build, path)
        else:
            self._store_now(build, path)

    def _store_now(self, build: Callable[[], pa.Table], path: Path) -> None:
        table = build()
        _write_part(table, path)
        self.joined.add(table)

    def _finish_now(self, taken: tuple[Callable[[], pa.Table], Path] | None) -> None:
        """The last rows go straight into the joined file, which is then completed. Why no part for
        them: a part guards rows while the run may still be killed, and the joined file is about to
        hold them; writing it too was a fifth of the work left after the loop of a 1,000-device run.
        Should the joined file fail (a full disk), they are written as a part after all, so that the
        parts still hold every row written."""
        table = None
        try:
            if taken is not None:
                build, path = taken
                table = build()
                self.joined.add(table)
            self.joined.finish()
        except OSError:
            if table is not None:
                try:
                    _write_part(table, path)
                except OSError:
                    pass  # the disk refuses this too: the joined file's error is the one to report
            raise

    def _build(self, rows: list[tuple[Any, ...]]) -> pa.Table:
        return pa.Table.from_struct_array(pa.array(rows, type=self.row_type))

    def close(self) -> None:
        """Finish ``<run>/<table>.parquet`` and remove the parts."""
        self.start_close()
        self.end_close()

    def start_close(self) -> None:
        """:meth:`close`'s first half: the last rows and the file's completion handed to the part
        writer (done here without one). A recorder starts every table's close before it ends any,
        so that tables on different writer threads finish side by side."""
        taken = self._take_rows()
        last = None if taken is None else (taken[0], self._next_part(taken[1]))
        if self.parts is not None:
            self.parts.submit(self._finish_now, last)
        else:
            self._finish_now(last)

    def end_close(self) -> None:
        """:meth:`close`'s second half: wait for the file, then remove the parts."""
        if self.parts is not None:
            self.parts.wait()
            if self.parts.failed is not None:
                return  # the joined file would miss rows: the parts are what was written
        shutil.rmtree(self.parts_dir, ignore_errors=True)
