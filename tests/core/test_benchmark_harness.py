"""The benchmark scripts measure what they say: the core-throughput worker and the fingerprint tool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_core_throughput_worker_reports_a_matched_bare_loop() -> None:
    """One size, one repeat: the bare loop processed exactly the run's event count less its idle timers
    (the worker asserts it), every client-round is counted, and the ratios are the quotients of the
    times it reports."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "core_throughput.py"), "--worker", "40", "3", "1"],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row["versions"] == 3 and row["client_rounds"] == 40 * 3
    assert row["events"] > 5 * row["client_rounds"]  # latency, transfer, compute events per round at least
    # the bare loop gets the model's events: all processed less the network's idle timers, counted here
    assert row["idle_events_source"] == "counted" and row["bare_events"] == row["events"] - row["idle_events"]
    assert 0 < row["loop_s"] <= row["total_s"]
    assert row["ratio_total"] == row["total_s"] / row["bare_s"]
    assert row["ratio_loop"] == row["loop_s"] / row["bare_s"]
    assert row["peak_rss_mb"] > row["rss_before_run_mb"] * 0.5


def test_fingerprint_hashes_contents_not_bytes(tmp_path: Path) -> None:
    """Two files with the same rows in different row groups hash alike; a changed value does not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from trace_fingerprint import content_hash
    finally:
        sys.path.pop(0)
    table = pa.table({"x": list(range(100)), "y": [float(i) / 3 for i in range(100)]})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=100)
    pq.write_table(table, tmp_path / "b.parquet", row_group_size=7)
    changed = table.set_column(1, "y", pa.array([float(i) / 3 for i in range(99)] + [0.0]))
    pq.write_table(changed, tmp_path / "c.parquet")
    assert (tmp_path / "a.parquet").read_bytes() != (tmp_path / "b.parquet").read_bytes()
    assert content_hash(tmp_path / "a.parquet") == content_hash(tmp_path / "b.parquet")
    assert content_hash(tmp_path / "a.parquet") != content_hash(tmp_path / "c.parquet")
