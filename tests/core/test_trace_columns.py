"""Each trace table's columns are declared once (simulator.trace.columns); the Arrow schema, the packed
row layout, the text-code vocabulary and the reader's column lists all follow that declaration."""

from __future__ import annotations

import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from simulator.report import loading
from simulator.trace import columns
from simulator.trace.tables import SCHEMAS
from simulator.trace.packed import EVENT_CODES, PackedTableWriter
from simulator.trace.recorder import TraceRecorder


def test_every_column_has_a_meaning_and_a_unit_that_matches_its_name() -> None:
    suffix_units = {"_s": "s", "_bytes": "bytes", "_j": "J"}
    for table in columns.TABLES.values():
        assert len(set(table.names)) == len(table.names), table.name
        for column in table.columns:
            assert column.meaning.strip(), (table.name, column.name)
            for suffix, unit in suffix_units.items():
                if column.name.endswith(suffix):
                    assert column.unit == unit, (table.name, column.name, column.unit)


def test_the_arrow_schema_and_the_readers_lists_are_the_declaration() -> None:
    for name, table in columns.TABLES.items():
        schema = SCHEMAS[name]
        assert schema.names == table.names
        assert [f.type for f in schema] == [c.arrow_type for c in table.columns]
        assert loading.SCHEMA[name] == table.names


def test_packed_rows_hold_every_non_device_column_at_the_declared_width() -> None:
    for name, size in (("events", 60), ("updates", 120)):
        fields = columns.packed_fields(name)
        declared = [c.name for c in columns.TABLES[name].columns if not c.per_device]
        assert [f for f, _ in fields] == declared
        assert struct.calcsize("<" + "".join(code for _, code in fields)) == size


def test_every_declared_text_value_of_a_packed_table_has_a_fixed_code() -> None:
    for table in columns.TABLES.values():
        if table.packed:
            for column in table.columns:
                for value in column.values:
                    assert columns.VOCABULARY[EVENT_CODES[value]] == value
    assert len(set(columns.VOCABULARY)) == len(columns.VOCABULARY) and "" in EVENT_CODES


def test_a_written_run_folder_has_exactly_the_declared_schemas(tmp_path: Path) -> None:
    recorder = TraceRecorder(tmp_path, flush_rows=2, devices=[("a#0", "jetson-tx2", 0), ("b#0", "jetson-nano-4gb", 1)])
    assert isinstance(recorder.events, PackedTableWriter)
    recorder.events.append(1, "compute", 0.5, 2.0, 7, 3, 0, 1.5e9, "done")
    recorder.updates.append(7, 1, 0.0, 2.5, 3, 4, 1, 10.0, "accepted", "", 4, 0.5, 1000, 10, 20, 30, 5)
    recorder.versions.append(4, 2.5, "k", 1, 1.0, [1, 1], 1)
    recorder.close()
    for name, schema in SCHEMAS.items():
        assert pq.read_schema(tmp_path / f"{name}.parquet").remove_metadata().equals(schema), name
    events = pq.read_table(tmp_path / "events.parquet").to_pylist()
    assert events == [{"device": 1, "device_name": "b#0", "profile": "jetson-nano-4gb", "group": 1, "phase": "compute",
                       "start_s": 0.5, "end_s": 2.0, "job_id": 7, "version": 3, "bytes": 0, "flops": 1.5e9,
                       "outcome": "done"}]
    assert pa.types.is_list(SCHEMAS["versions"].field("block_coverage").type)
