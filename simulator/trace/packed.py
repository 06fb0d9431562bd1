"""Rows packed to bytes as they happen: the buffer of the two big tables, events and updates.

Why: a 10,000-device run writes three events rows and one updates row per client-round. Kept as
Python tuples, a part cost 0.45-0.67 µs per row to convert to Arrow inside the event loop (2.5× what
a fresh micro-benchmark shows, since by then the tuples' objects lie scattered in memory): 12 % of
the loop. ``struct.pack`` into one ``bytearray`` costs what building the tuple did. The buffer holds
60 bytes per events row (120 per updates row) instead of ~200 in objects, and a part decodes as a
zero-copy NumPy record view, on the part-writer thread.

Text columns are stored as small codes into the writer's table of the strings seen so far (a fixed
vocabulary first, so hot callers can use constant codes). The device's name, profile and group are
not in the row: they come from per-device arrays, indexed by the row's device column. The table is
the same as from tuples (tests/core/test_trace_packed.py).
"""

from __future__ import annotations

import struct
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator.trace.columns import EVENT_CODES, EVENT_FIELDS, TABLES, UPDATE_FIELDS, VOCABULARY
from simulator.trace.tables import PartWriter, TableWriter

__all__ = ["EVENT_CODES", "EVENT_FIELDS", "UPDATE_FIELDS", "VOCABULARY", "PackedTableWriter"]

# The fixed text codes (VOCABULARY, EVENT_CODES) and each packed table's row layout (EVENT_FIELDS,
# UPDATE_FIELDS: column and struct code, text as int32 codes into one table of strings per writer)
# are derived from the column declaration (simulator.trace.columns).
PER_DEVICE = {c.name: c for t in TABLES.values() for c in t.columns if c.per_device}


class PackedTableWriter(TableWriter):
    """A table whose rows are ``struct``-packed into :attr:`buffer` as they are appended.

    Hot callers append rows whose text columns are already codes (:meth:`append_codes`, codes from
    :meth:`code`); :meth:`flush` empties :attr:`buffer` in place.
    """

    def __init__(self, run_dir: Path, table: str, flush_rows: int, parts: PartWriter | None,
                 fields: Sequence[tuple[str, str]], devices: Sequence[tuple[str, str, int]] = ()) -> None:
        super().__init__(run_dir, table, flush_rows, parts)
        layout = struct.Struct("<" + "".join(code for _, code in fields))
        self.pack = layout.pack
        self.row_bytes = layout.size
        self.dtype = np.dtype([(name, "<" + code) for name, code in fields])  # packed: the same layout
        self.fields = [name for name, _ in fields]
        self.text_fields = {name for name in self.fields if pa.types.is_string(self.schema.field(name).type)}
        self._text_positions = [i for i, name in enumerate(self.fields) if name in self.text_fields]
        self.buffer = bytearray()
        self.flush_bytes = flush_rows * self.row_bytes
        self._codes: dict[str, int] = {}
        self._strings: list[str] = []
        for text in VOCABULARY:
            self.code(text)
        self.set_devices(devices)

    def code(self, text: str) -> int:
        """The code a text value is packed as (new strings get the next code)."""
        code = self._codes.get(text)
        if code is None:
            code = self._codes[text] = len(self._strings)
            self._strings.append(text)
        return code

    def set_devices(self, devices: Sequence[tuple[str, str, int]]) -> None:
        """(name, profile, group) of every device, in index order: the per-device columns' order in
        :mod:`simulator.trace.columns`."""
        values = (list(col) for col in zip(*devices)) if devices else ([] for _ in PER_DEVICE)
        columns = {name: pa.array(col, column.arrow_type) for (name, column), col in zip(PER_DEVICE.items(), values)}
        self._device_columns = {name: values for name, values in columns.items()
                                if name in self.schema.names and name not in self.fields}

    def append(self, *values: Any) -> None:
        """One row, values in :attr:`fields` order, text as text."""
        if len(values) != len(self.fields):
            raise ValueError(f"{self.table} row has {len(values)} values, {len(self.fields)} expected: {values!r}")
        row = list(values)
        for i in self._text_positions:
            row[i] = self.code(row[i])
        self.buffer += self.pack(*row)
        if len(self.buffer) >= self.flush_bytes:
            self.flush()

    def append_codes(self, *values: Any) -> None:
        """One row whose text columns are already codes (from :meth:`code`, or constants of the
        fixed vocabulary): what the hot loop appends, without the per-value text lookups."""
        buffer = self.buffer
        buffer += self.pack(*values)
        if len(buffer) >= self.flush_bytes:
            self.flush()

    def _take_rows(self) -> tuple[Callable[[], pa.Table], int] | None:
        buffer = self.buffer
        if not buffer:
            return None
        # A copy of the rows and of the strings known now; decoding them (NumPy, Arrow) runs on the
        # writer thread, off the event loop. The buffer is emptied in place: hot callers hold it.
        data = bytes(buffer)
        buffer.clear()
        return partial(self._build, data, list(self._strings)), len(data) // self.row_bytes

    def _build(self, data: bytes, strings_seen: list[str]) -> pa.Table:  # type: ignore[override]
        records = np.frombuffer(data, dtype=self.dtype)
        strings = pa.array(strings_seen, pa.string())
        columns: dict[str, pa.Array] = {}
        for name in self.fields:
            values = np.ascontiguousarray(records[name])
            if name in self.text_fields:
                columns[name] = pc.take(strings, pa.array(values))
            else:
                columns[name] = pa.array(values, type=self.schema.field(name).type)
        device = columns["device"]
        for name, values in self._device_columns.items():
            columns[name] = pc.take(values, device)
        return pa.Table.from_arrays([columns[name] for name in self.schema.names], schema=self.schema)
