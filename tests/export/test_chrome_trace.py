"""`fleetsim export --format chrome-trace`: the file is Trace Event Format JSON that Perfetto and
chrome://tracing accept, and its slices are the run's phases to the microsecond.

The validator checks what those importers rely on: the JSON object form; per phase type the keys
they read (X: name ts dur pid tid; b/e: cat id name pid ts; C: numeric args; M: process/thread
names; i: scope); integer microsecond timestamps; slices of one thread never overlapping (a
partial overlap breaks their nesting); every async begin matched by one end of the same name, not
earlier. Headless Chromium cannot load the file into a trace viewer here: chrome://tracing answers
net::ERR_FAILED in headless mode (Chromium 156, even with internal debug pages enabled) and
Perfetto's UI is not available offline.
"""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.helpers.export import run_small

from simulator.export import write_chrome_trace

REQUIRED = {"X": {"name", "ph", "ts", "dur", "pid", "tid"}, "b": {"name", "cat", "ph", "ts", "pid", "id"},
            "e": {"name", "cat", "ph", "ts", "pid", "id"}, "C": {"name", "ph", "ts", "pid", "args"},
            "M": {"name", "ph", "pid", "args"}, "i": {"name", "ph", "ts", "pid", "tid", "s"}}
METADATA = {"process_name", "thread_name", "process_sort_index", "thread_sort_index"}


def validate(trace: dict) -> dict[str, list[dict]]:
    """Assert the format rules above; return the events by phase type."""
    assert isinstance(trace, dict) and isinstance(trace["traceEvents"], list)
    assert trace["displayTimeUnit"] in ("ms", "ns")
    by_ph: dict[str, list[dict]] = defaultdict(list)
    for ev in trace["traceEvents"]:
        ph = ev["ph"]
        assert ph in REQUIRED, ev
        assert REQUIRED[ph] <= ev.keys(), ev
        assert isinstance(ev["name"], str) and isinstance(ev["pid"], int)
        if ph != "M":
            assert isinstance(ev["ts"], int) and ev["ts"] >= 0, ev  # integer µs
        if ph == "X":
            assert isinstance(ev["dur"], int) and ev["dur"] >= 0 and isinstance(ev["tid"], int), ev
        if ph == "C":
            assert ev["args"] and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                      for v in ev["args"].values()), ev
        if ph == "M":
            assert ev["name"] in METADATA, ev
            assert ("tid" in ev) == ev["name"].startswith("thread"), ev
        if ph == "i":
            assert ev["s"] in ("g", "p", "t"), ev
        by_ph[ph].append(ev)
    threads: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for ev in by_ph["X"]:
        threads[(ev["pid"], ev["tid"])].append((ev["ts"], ev["dur"]))
    for key, slices in threads.items():
        slices.sort()
        for (t0, d0), (t1, _) in zip(slices, slices[1:]):
            assert t1 >= t0 + d0, f"overlapping slices on {key}: {t0}+{d0} > {t1}"
    opened: dict[tuple[str, object], dict] = {}
    for ev in by_ph["b"]:
        key = (ev["cat"], ev["id"])
        assert key not in opened, f"async id reused: {key}"
        opened[key] = ev
    for ev in by_ph["e"]:
        begin = opened.pop((ev["cat"], ev["id"]))
        assert begin["name"] == ev["name"] and ev["ts"] >= begin["ts"] and begin["pid"] == ev["pid"]
    assert not opened, f"{len(opened)} async begins without an end"
    named = {(e["pid"], e.get("tid")) for e in by_ph["M"] if e["name"].endswith("_name")}
    for pid, tid in threads:
        assert (pid, tid) in named and (pid, None) in named, (pid, tid)
    return by_ph


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_small(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def trace(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    out = tmp_path_factory.mktemp("trace") / "trace.json"
    stats = write_chrome_trace(run_dir, out)
    return out, json.loads(out.read_text(encoding="utf-8")), stats


@pytest.mark.slow
def test_trace_follows_the_format(trace):
    _, data, stats = trace
    by_ph = validate(data)
    assert stats["events"] == len(data["traceEvents"])
    assert by_ph["X"] and by_ph["b"] and by_ph["C"] and by_ph["M"]


def test_one_process_per_group_one_thread_per_device(trace, run_dir):
    _, data, _ = trace
    names = {e["pid"]: e["args"]["name"] for e in data["traceEvents"] if e["name"] == "process_name"}
    assert names == {1: "server & shared links", 2: "nano-ap1", 3: "nano-ap2", 4: "jetson-agx-orin-64gb"}
    devices = pd.read_parquet(run_dir / "devices.parquet")
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in data["traceEvents"] if e["name"] == "thread_name"}
    assert threads == {(int(g) + 2, int(d) + 1): n for d, n, g in
                       zip(devices["device"], devices["device_name"], devices["group"])}


def test_slices_are_the_phases_in_microseconds(trace, run_dir):
    _, data, _ = trace
    events = pd.read_parquet(run_dir / "events.parquet")
    phases = events[events["phase"] != "oom"]
    slices = [e for e in data["traceEvents"] if e["ph"] == "X"]
    assert len(slices) == len(phases)
    got = sorted((e["tid"] - 1, e["name"], e["ts"], e["ts"] + e["dur"]) for e in slices)
    want = sorted(zip(phases["device"].astype(int), phases["phase"],
                      np.rint(phases["start_s"] * 1e6).astype(int), np.rint(phases["end_s"] * 1e6).astype(int)))
    assert got == [tuple(w) for w in want]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert max(e["ts"] + e["dur"] for e in slices) == round(summary["makespan_s"] * 1e6)
    ooms = [e for e in data["traceEvents"] if e["ph"] == "i"]
    assert len(ooms) == int((events["phase"] == "oom").sum())


def test_transfers_on_shared_links_and_counters(trace, run_dir):
    _, data, _ = trace
    events = pd.read_parquet(run_dir / "events.parquet")
    moved = events[events["phase"].isin(["download", "upload"])]
    on_ap = moved["group"].isin([0, 1])  # nano-ap1, nano-ap2 cross their AP and a server link
    begins = [e for e in data["traceEvents"] if e["ph"] == "b"]
    assert len(begins) == len(moved) + int(on_ap.sum())
    names = {e["name"] for e in begins}
    assert names == {"Wi-Fi ap1 download", "Wi-Fi ap1 upload", "Wi-Fi ap2 download", "Wi-Fi ap2 upload",
                     "server downlink download", "server uplink upload"}
    ap1 = sum(e["args"]["bytes"] for e in begins if e["name"].startswith("Wi-Fi ap1"))
    assert ap1 == int(moved.loc[moved["group"] == 0, "bytes"].sum())
    versions = pd.read_parquet(run_dir / "versions.parquet")
    counted = [e for e in data["traceEvents"] if e["ph"] == "C" and e["name"] == "versions"]
    assert [e["args"]["version"] for e in counted] == versions["version"].tolist()
    util = [e for e in data["traceEvents"] if e["ph"] == "C" and e["name"].endswith("utilisation")]
    bin_s = data["otherData"]["link_counter_bin_s"]
    # each transfer's bytes are spread evenly over it: the counter carries every byte, once
    scenario = json.loads(json.dumps(__import__("yaml").safe_load((run_dir / "scenario.yaml").read_text())))
    capacity = {"server downlink": scenario["network"]["server"]["downlink_mbps"],
                "Wi-Fi ap1": scenario["network"]["access_points"]["ap1"]["capacity_mbps"]}
    down = sum(e["args"]["%"] for e in util if e["name"] == "server downlink utilisation")
    assert down / 100 * capacity["server downlink"] * 1e6 / 8 * bin_s == pytest.approx(
        moved.loc[moved["phase"] == "download", "bytes"].sum(), rel=1e-3)
    ap1 = sum(sum(e["args"].values()) for e in util if e["name"] == "Wi-Fi ap1 utilisation")
    assert ap1 / 100 * capacity["Wi-Fi ap1"] * 1e6 / 8 * bin_s == pytest.approx(
        moved.loc[moved["group"] == 0, "bytes"].sum(), rel=1e-3)
    assert all(v >= 0 for e in util for v in e["args"].values())


def test_gzip_output_holds_the_same_json(trace, run_dir, tmp_path):
    path, data, _ = trace
    write_chrome_trace(run_dir, tmp_path / "t.json.gz")
    with gzip.open(tmp_path / "t.json.gz", "rt", encoding="utf-8") as handle:
        assert json.load(handle) == data
    assert (tmp_path / "t.json.gz").stat().st_size < path.stat().st_size / 4


@pytest.mark.slow
def test_cli_export_writes_and_never_overwrites_without_force(run_dir, tmp_path):
    out = tmp_path / "t.json"
    cmd = [sys.executable, "-m", "simulator.cli", "export", str(run_dir), "--format", "chrome-trace", "-o", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"chrome trace: {out} (") and " events, " in first.stdout
    validate(json.loads(out.read_text()))
    out.write_text("mine")
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "already exists; nothing was overwritten" in again.stderr
    assert out.read_text() == "mine" and "Traceback" not in again.stderr
    refused = subprocess.run(cmd + ["--force"], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "fleetsim did not write this file" in refused.stderr  # not a trace
    assert out.read_text() == "mine"
    write_chrome_trace(run_dir, out)
    forced = subprocess.run(cmd + ["--force"], capture_output=True, text=True, timeout=300)
    assert forced.returncode == 0 and out.read_text().startswith('{"traceEvents":[')
    bad = subprocess.run(cmd[:-4] + ["--format", "svg"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown export format" in bad.stderr and "chrome-trace, csv" in bad.stderr


@pytest.mark.parametrize("table", ["events", "devices", "versions"])
def test_a_table_from_something_else_is_bad_input_naming_it(run_dir, tmp_path, table):
    """A Parquet file of other columns under a fleetsim table's name ended as exit 1, "plug-in code in
    table.pxi raised KeyError": now exit 2 naming the file and the columns it lacks; no trace is left."""
    import shutil

    from tests.helpers.cli import assert_bad_input, cli

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    pd.DataFrame({"x": [1, 2]}).to_parquet(copy / f"{table}.parquet")
    out = tmp_path / "t.json"
    err = assert_bad_input(cli("export", str(copy), "-o", str(out)), file=copy / f"{table}.parquet", field=None,
                           value="['x']", also=(f"is not fleetsim's {table} table: it has no column ",))
    assert "plug-in" not in err and not out.exists()
