"""The packed row buffer of events and updates gives exactly the table that plain tuples give."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from simulator.trace.packed import EVENT_FIELDS, UPDATE_FIELDS, PackedTableWriter
from simulator.trace.tables import TableWriter

DEVICES = [("nano#0", "jetson-nano-4gb", 0), ("tx2#0", "jetson-tx2", 1), ("tx2#1", "jetson-tx2", 1)]


def _update_row(i: int) -> tuple:
    return (
        i, i % 3, 0.5 * i, float("nan") if i % 4 == 0 else 2.0 * i, i // 2, -1 if i % 5 == 0 else i, i % 7,
        1.5 * i, ["accepted", "dropped", "lost", "unfinished"][i % 4],
        ["", f"staleness {i} > max_staleness 8", "deadline"][i % 3],
        i % 12, 0.25 * (1 + i % 4), 11_000_000 + i, 44_000_000, 44_000_000 - i, 900_000_000 + i, i % 9,
    )


def _as_full_updates_row(row: tuple) -> tuple:
    """The same row in schema order (profile filled in from the device)."""
    return row[:2] + (DEVICES[row[1]][1],) + row[2:]


def test_updates_parts_equal_tuple_parts_and_cut_at_flush_rows(tmp_path: Path) -> None:
    packed = PackedTableWriter(tmp_path / "packed", "updates", 4, None, UPDATE_FIELDS, DEVICES)
    plain = TableWriter(tmp_path / "plain", "updates", 4)
    for i in range(10):
        packed.append(*_update_row(i))
        plain.append(*_as_full_updates_row(_update_row(i)))
    packed.close()
    plain.close()
    assert packed.part_count == 3 and packed.rows_written == 10
    ours, theirs = pq.read_table(tmp_path / "packed" / "updates.parquet"), pq.read_table(tmp_path / "plain" / "updates.parquet")
    assert ours.to_pandas().equals(theirs.to_pandas())  # NaN-aware, unlike Table.equals
    assert (tmp_path / "packed" / "updates.parquet").read_bytes() == (tmp_path / "plain" / "updates.parquet").read_bytes()
    rows = ours.to_pylist()
    assert rows[1]["reason"] == "staleness 1 > max_staleness 8" and rows[3]["outcome"] == "unfinished"
    assert math.isnan(rows[4]["arrival_s"]) and rows[5]["applied_version"] == -1


def test_events_hot_path_packing_matches_append(tmp_path: Path) -> None:
    """Packing codes into the buffer directly (as rounds do) is the same as append with text."""
    direct = PackedTableWriter(tmp_path / "a", "events", 100, None, EVENT_FIELDS, DEVICES)
    via_append = PackedTableWriter(tmp_path / "b", "events", 100, None, EVENT_FIELDS, DEVICES)
    rows = [(i % 3, ["download", "compute", "upload", "offline"][i % 4], 1.0 * i, 1.0 * i + 0.5, i, i // 3,
             1000 * i, 2.5e9 * i, ["done", "lost", "dropped", "offline", "oom"][i % 5]) for i in range(20)]
    for row in rows:
        via_append.append(*row)
        buffer = direct.buffer
        buffer += direct.pack(row[0], direct.code(row[1]), *row[2:8], direct.code(row[8]))
    direct.close()
    via_append.close()
    table = pq.read_table(tmp_path / "a" / "events.parquet")
    assert table.equals(pq.read_table(tmp_path / "b" / "events.parquet"))
    assert table.column("device_name").to_pylist()[:3] == ["nano#0", "tx2#0", "tx2#1"]
    assert table.column("group").to_pylist()[:3] == [0, 1, 1]
    assert table.column("phase").to_pylist()[:4] == ["download", "compute", "upload", "offline"]
    assert table.column("flops").to_pylist()[3] == 7.5e9


def test_a_row_of_the_wrong_width_is_refused(tmp_path: Path) -> None:
    writer = PackedTableWriter(tmp_path, "events", 10, None, EVENT_FIELDS, DEVICES)
    try:
        writer.append(0, "download", 0.0, 1.0)
    except ValueError as err:
        assert "4 values, 9 expected" in str(err)
    else:
        raise AssertionError("a short row was accepted")


def test_joined_file_bytes_do_not_depend_on_part_sizes(tmp_path: Path, monkeypatch) -> None:
    """Row groups are cut at ROW_GROUP_ROWS across part boundaries; early flushes change no byte."""
    import simulator.trace.tables as tables
    from simulator.trace.tables import PartWriter

    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 7)
    files = []
    for name, flush_rows, early in (("a", 5, {8}), ("b", 3, set()), ("c", 100, {0, 13})):
        parts = PartWriter()
        writer = PackedTableWriter(tmp_path / name, "updates", flush_rows, parts, UPDATE_FIELDS, DEVICES)
        for i in range(23):
            writer.append(*_update_row(i))
            if i in early:
                writer.flush()  # as a checkpoint does
        writer.close()
        parts.close()
        files.append(tmp_path / name / "updates.parquet")
        assert not (tmp_path / name / "_parts" / "updates").exists()
    assert pq.ParquetFile(files[0]).metadata.num_row_groups == 4  # 7 + 7 + 7 + 2
    assert files[0].read_bytes() == files[1].read_bytes() == files[2].read_bytes()
    reference = tmp_path / "reference.parquet"
    rows = pq.read_table(files[0]).combine_chunks()
    pq.write_table(rows, reference, row_group_size=7, use_dictionary=tables._dictionary_columns(rows.schema))
    assert files[0].read_bytes() == reference.read_bytes()


@pytest.mark.slow
def test_big_joined_file_bytes_do_not_depend_on_part_sizes(tmp_path: Path) -> None:
    """200,000 distinct job ids overflow Parquet's 1 MiB dictionary page. Where the writer falls back
    to plain encoding depends on Arrow chunk boundaries (a part of 2^17 int64 ids ends exactly at the
    limit), so the joined file must be written from combined chunks to not depend on the parts."""
    from simulator.trace.tables import PartWriter

    files = []
    for name, flush_rows in (("a", 1 << 17), ("b", 70_000)):
        parts = PartWriter()
        writer = PackedTableWriter(tmp_path / name, "events", flush_rows, parts, EVENT_FIELDS, DEVICES)
        done = writer.code("done")
        for i in range(200_000):
            buffer = writer.buffer
            buffer += writer.pack(i % 3, i % 3, 0.001 * i, 0.001 * i + 0.5, i, i // 1000, 44_000_000, 0.0, done)
            if len(buffer) >= writer.flush_bytes:
                writer.flush()
        writer.close()
        parts.close()
        files.append((tmp_path / name / "events.parquet").read_bytes())
    assert files[0] == files[1]


def test_many_distinct_reasons_do_not_overflow_the_text_codes(tmp_path: Path) -> None:
    """Free-text reasons share the code table with outcomes: 40,000 of them, then a new outcome."""
    writer = PackedTableWriter(tmp_path, "updates", 100_000, None, UPDATE_FIELDS, DEVICES)
    for i in range(40_000):
        writer.append(*(_update_row(i)[:8] + ("dropped", f"staleness {i} > max_staleness 8") + _update_row(i)[10:]))
    writer.append(*(_update_row(1)[:8] + ("a brand-new outcome", "") + _update_row(1)[10:]))
    writer.close()
    table = pq.read_table(tmp_path / "updates.parquet")
    assert table.num_rows == 40_001
    assert table.column("reason")[39_999].as_py() == "staleness 39999 > max_staleness 8"
    assert table.column("outcome")[40_000].as_py() == "a brand-new outcome"


def test_parts_read_back_the_rows_and_skip_what_only_a_filtered_read_needs(tmp_path: Path) -> None:
    """A killed run's parts hold exactly the rows of the final file; they are written without column
    statistics and with dictionaries for text columns only (cheaper to encode beside the loop), while
    the final file has statistics and dictionaries for every column but the floating-point ones."""
    import pyarrow as pa

    writer = PackedTableWriter(tmp_path, "updates", 4, None, UPDATE_FIELDS, DEVICES)
    for i in range(10):
        writer.append(*_update_row(i))
    writer.flush()
    part_paths = sorted((tmp_path / "_parts" / "updates").glob("part-*.parquet"))
    assert len(part_paths) == 3
    from_parts = pa.concat_tables([pq.read_table(p) for p in part_paths])
    text = {f.name for f in from_parts.schema if pa.types.is_string(f.type)}
    assert text == {"profile", "outcome", "reason"}
    for path in part_paths:
        meta = pq.ParquetFile(path).metadata
        for i in range(meta.num_columns):
            column = meta.row_group(0).column(i)
            assert not column.is_stats_set, column.path_in_schema
            assert column.has_dictionary_page == (column.path_in_schema in text), column.path_in_schema
    writer.close()
    final = pq.read_table(tmp_path / "updates.parquet")
    assert from_parts.to_pandas().equals(final.to_pandas())  # NaN-aware
    final_meta = pq.ParquetFile(tmp_path / "updates.parquet").metadata.row_group(0)
    assert all(final_meta.column(i).is_stats_set for i in range(final_meta.num_columns))
    floats = {f.name for f in final.schema if pa.types.is_floating(f.type)}
    assert floats == {"dispatch_s", "arrival_s", "weight", "width_ratio"}
    for i in range(final_meta.num_columns):
        column = final_meta.column(i)
        assert column.has_dictionary_page == (column.path_in_schema not in floats), column.path_in_schema


def test_the_last_rows_skip_the_part_unless_the_final_file_fails(tmp_path: Path, monkeypatch) -> None:
    """At close the rows still buffered go straight into the final file (a part would only guard
    them against a kill); if the final file cannot be finished they are written as a part after all,
    so the parts still hold every row."""
    import simulator.trace.tables as tables
    from simulator.trace.recorder import read_table
    from simulator.trace.tables import PartWriter

    part_rows: list[int] = []
    real_write_part = tables._write_part

    def counting_write_part(table, path):
        part_rows.append(table.num_rows)
        real_write_part(table, path)

    monkeypatch.setattr(tables, "_write_part", counting_write_part)

    def rows_written(run: Path) -> None:
        parts = PartWriter()
        writer = PackedTableWriter(run, "updates", 4, parts, UPDATE_FIELDS, DEVICES)
        for i in range(10):
            writer.append(*_update_row(i))
        try:
            writer.close()
        finally:
            parts.close()

    rows_written(tmp_path / "ok")
    assert part_rows == [4, 4]
    assert pq.read_table(tmp_path / "ok" / "updates.parquet").column("job_id").to_pylist() == list(range(10))
    assert not (tmp_path / "ok" / "_parts" / "updates").exists()

    def disk_full(self) -> None:
        raise tables.TraceWriteError(self.tmp, OSError(28, "No space left on device"))

    monkeypatch.setattr(tables.JoinedFile, "finish", disk_full)
    part_rows.clear()
    with pytest.raises(tables.TraceWriteError, match="No space left on device"):
        rows_written(tmp_path / "full")
    assert part_rows == [4, 4, 2]
    assert not (tmp_path / "full" / "updates.parquet").exists()
    assert read_table(tmp_path / "full", "updates")["job_id"].tolist() == list(range(10))
