"""A run as Chrome trace-event JSON (the Trace Event Format's JSON object form), for Perfetto's UI
and chrome://tracing: the tools people already use to read millions of slices.

Layout:
- process 1 "server & shared links": a `versions` counter (one sample per merge), a utilisation
  counter per shared link (% of its capacity per time bin, each transfer's bytes spread evenly over
  its interval as in the report's traffic chart — an estimate: under fair sharing a transfer's rate
  changes while it runs, so a bin can read a little above 100 %; an access point's counter stacks
  its downloads and uploads, which share the half-duplex cell), and every transfer that crosses a
  shared link as an async slice (`b`/`e`, one track group per link and direction);
- process 2 + g per scenario group g (its own name), one thread per device (its name), with
  `X` complete slices for download, compute, upload and offline, and an instant event per OOM.

Timestamps are integer microseconds of simulated time (start and end rounded separately, so the
slices of one device never overlap where their seconds touched). The file is written as a stream:
event rows are read in batches of 50,000 and formatted per batch, so memory stays flat whatever
the run's size. A name ending in `.gz` is written gzip-compressed (Perfetto opens it as is).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from simulator.export.sources import RunSource, iter_batches, open_run, read_small

SERVER_PID = 1
COUNTER_BINS = 2_000
SLICE_PHASES = ("download", "compute", "upload", "offline")
EVENT_COLUMNS = ["device", "device_name", "group", "phase", "start_s", "end_s", "job_id", "version", "bytes"]


def _us(seconds: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)


_HEAD = b'{"traceEvents":[\n'  # how every trace fleetsim writes begins (written_by_fleetsim)


class _Stream:
    """Writes the JSON object with its traceEvents array one chunk at a time."""

    def __init__(self, handle: TextIO) -> None:
        self.handle, self.count, self.bytes_written = handle, 0, 0
        self._write(_HEAD.decode())

    def _write(self, text: str) -> None:
        self.handle.write(text)
        self.bytes_written += len(text)

    def events(self, lines: list[str]) -> None:
        if lines:
            self._write((",\n" if self.count else "") + ",\n".join(lines))
            self.count += len(lines)

    def close(self, other: dict[str, Any]) -> None:
        self._write('\n],\n"displayTimeUnit":"ms",\n"otherData":' + json.dumps(other, sort_keys=True) + "}\n")


def _meta(pid: int, name: str, tid: int | None = None, sort: int | None = None) -> list[str]:
    what = "thread" if tid is not None else "process"
    where = f'"pid":{pid}' + (f',"tid":{tid}' if tid is not None else "")
    out = [f'{{"ph":"M","name":"{what}_name",{where},"args":{{"name":{json.dumps(name)}}}}}']
    if sort is not None:
        out.append(f'{{"ph":"M","name":"{what}_sort_index",{where},"args":{{"sort_index":{sort}}}}}')
    return out


class _LinkLoad:
    """Bytes per time bin on every shared link, accumulated batch by batch (for the counters)."""

    def __init__(self, links: Iterable[str], makespan_s: float) -> None:
        from simulator.report.binning import time_edges

        self.edges = time_edges(makespan_s, COUNTER_BINS)
        self.bytes = {link: {"download": np.zeros(COUNTER_BINS), "upload": np.zeros(COUNTER_BINS)} for link in links}

    def add(self, link: str, phase: str, start: np.ndarray, end: np.ndarray, nbytes: np.ndarray) -> None:
        from simulator.report.binning import spread_amount_per_bin

        if link in self.bytes and start.size:
            self.bytes[link][phase] += spread_amount_per_bin(start, end, nbytes, self.edges)


def _batch_lines(source: RunSource, cols: dict[str, np.ndarray], load: _LinkLoad, next_id: int,
                 seen: dict[int, tuple[str, int]]) -> tuple[list[str], int]:
    """Every trace event of one batch of events.parquet rows; returns them and the next async id."""
    device, group, phase = cols["device"], cols["group"], cols["phase"]
    for d, name, g in zip(device.tolist(), cols["device_name"].tolist(), group.tolist()):
        if d not in seen:
            seen[d] = (str(name), int(g))
    ts, end = _us(cols["start_s"]), _us(cols["end_s"])
    dur = np.maximum(end - ts, 0)
    pid, tid = group + 2, device + 1
    lines: list[str] = []
    for name in SLICE_PHASES:
        m = phase == name
        if not m.any():
            continue
        if name == "offline":
            lines += [f'{{"ph":"X","cat":"device","name":"offline","pid":{p},"tid":{t},"ts":{a},"dur":{b}}}'
                      for p, t, a, b in zip(pid[m].tolist(), tid[m].tolist(), ts[m].tolist(), dur[m].tolist())]
            continue
        extra = ',"bytes":{}' if name != "compute" else ""
        rows = zip(pid[m].tolist(), tid[m].tolist(), ts[m].tolist(), dur[m].tolist(), cols["job_id"][m].tolist(),
                   cols["version"][m].tolist(), cols["bytes"][m].tolist())
        lines += [f'{{"ph":"X","cat":"device","name":"{name}","pid":{p},"tid":{t},"ts":{a},"dur":{b},'
                  f'"args":{{"job":{j},"version":{v}{extra.format(n) if extra else ""}}}}}'
                  for p, t, a, b, j, v, n in rows]
    m = phase == "oom"
    lines += [f'{{"ph":"i","s":"t","cat":"device","name":"out of memory","pid":{p},"tid":{t},"ts":{a},'
              f'"args":{{"job":{j}}}}}' for p, t, a, j in zip(pid[m].tolist(), tid[m].tolist(), ts[m].tolist(),
                                                          cols["job_id"][m].tolist())]
    for name in ("download", "upload"):
        for g in np.unique(group[phase == name]).tolist():
            m = (phase == name) & (group == g)
            for link in source.shared_links(int(g), name):
                load.add(link, name, cols["start_s"][m], cols["end_s"][m], cols["bytes"][m])
                ids = range(next_id, next_id + int(m.sum()))
                next_id += int(m.sum())
                label = json.dumps(f"{link} {name}")
                for i, d, a, b, n in zip(ids, device[m].tolist(), ts[m].tolist(), end[m].tolist(),
                                         cols["bytes"][m].tolist()):
                    lines.append(f'{{"ph":"b","cat":"link","name":{label},"id":{i},"pid":{SERVER_PID},"ts":{a},'
                                 f'"args":{{"device":{json.dumps(seen[d][0])},"bytes":{n}}}}}')
                    lines.append(f'{{"ph":"e","cat":"link","name":{label},"id":{i},"pid":{SERVER_PID},"ts":{max(a, b)}}}')
    return lines, next_id


def _counter_lines(source: RunSource, load: _LinkLoad) -> list[str]:
    """versions over time, and each shared link's utilisation (% of capacity) per time bin."""
    lines = []
    versions = read_small(source.run_dir, "versions", required=("time_s", "version"))
    if versions.num_rows:
        for t, v in zip(_us(versions.column("time_s").to_numpy()).tolist(), versions.column("version").to_pylist()):
            lines.append(f'{{"ph":"C","name":"versions","pid":{SERVER_PID},"ts":{t},"args":{{"version":{v}}}}}')
    width_s = np.diff(load.edges)
    starts = _us(load.edges[:-1]).tolist()
    for link, capacity in source.link_capacities_mbps().items():
        per = {p: np.where(v > 1e-9, v, 0.0) for p, v in ((p, load.bytes[link][p] * 8 / 1e6 / width_s / capacity * 100) for p in ("download", "upload"))}
        if link.startswith("Wi-Fi "):
            series = {"download %": per["download"], "upload %": per["upload"]}
        else:
            series = {"%": per["download"] if link.endswith("downlink") else per["upload"]}
        if not any(s.any() for s in series.values()):
            continue
        label = json.dumps(f"{link} utilisation")
        for k, t in enumerate(starts):
            args = ",".join(f'"{key}":{float(s[k]):.4g}' for key, s in series.items())
            lines.append(f'{{"ph":"C","name":{label},"pid":{SERVER_PID},"ts":{t},"args":{{{args}}}}}')
    return lines


TAIL_BYTES = 64 * 1024  # the otherData object at a trace's end is a few hundred bytes


def _head_and_tail(path: Path) -> tuple[bytes, bytes]:
    """The JSON text's first len(_HEAD) bytes and its last TAIL_BYTES (of the decompressed stream for a
    .gz, read through once, and not at all past a head that is not a trace's; a plain file seeks to its end)."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            head = tail = handle.read(len(_HEAD))
            while head == _HEAD and (chunk := handle.read(1 << 20)):
                tail = (tail + chunk)[-TAIL_BYTES:]
        return head, tail
    with open(path, "rb") as handle:
        head = handle.read(len(_HEAD))
        handle.seek(max(0, path.stat().st_size - TAIL_BYTES))
        return head, handle.read()


def written_by_fleetsim(path: Path | str) -> bool:
    """Whether `path` is a trace `fleetsim export` wrote: a regular file (not a symlink: fleetsim makes
    none) whose JSON text starts with the trace-event array and ends with the ``otherData`` object
    naming ``"source": "fleetsim"``. Why the end: that is where the writer has always put its metadata,
    so traces from earlier fleetsim versions are recognised too; only `export --force` asks."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False
    try:
        head, tail_bytes = _head_and_tail(path)
    except (OSError, EOFError, zlib.error):  # not gzip, cut short, corrupt: not a trace fleetsim finished
        return False
    if head != _HEAD:
        return False
    tail = tail_bytes.decode("utf-8", errors="replace").rstrip()
    at = tail.rfind('"otherData":')
    if at < 0 or not tail.endswith("}"):
        return False
    try:
        other = json.loads(tail[at + len('"otherData":'):-1])
    except ValueError:
        return False
    return isinstance(other, dict) and other.get("source") == "fleetsim"


def _open_text(path: Path, compress: bool) -> TextIO:
    if compress:
        return io.TextIOWrapper(gzip.open(path, "wb", compresslevel=5), encoding="utf-8")
    return open(path, "w", encoding="utf-8")


def write_chrome_trace(run_dir: Path | str, out_path: Path | str) -> dict[str, Any]:
    """Write the run in `run_dir` as trace-event JSON at `out_path` (written to a temporary file
    beside it and renamed, so a reader never opens half a trace). Returns {"events", "bytes"} (bytes
    of JSON text, before any gzip)."""
    source = open_run(run_dir, device_columns=("device", "device_name", "group", "profile"))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    groups = source.group_names()
    seen: dict[int, tuple[str, int]] = {}
    if source.devices.num_rows:
        for d, name, g in zip(*(source.devices.column(c).to_pylist() for c in ("device", "device_name", "group"))):
            seen[int(d)] = (str(name), int(g))
    load = _LinkLoad(source.link_capacities_mbps(), source.makespan_s)
    try:
        with _open_text(tmp, out.name.endswith(".gz")) as handle:
            stream = _Stream(handle)
            next_id = 1
            for batch in iter_batches(source.run_dir, "events", EVENT_COLUMNS, required=EVENT_COLUMNS):
                cols = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in EVENT_COLUMNS}
                cols["phase"] = cols["phase"].astype(str)
                lines, next_id = _batch_lines(source, cols, load, next_id, seen)
                stream.events(lines)
            stream.events(_counter_lines(source, load))
            meta = _meta(SERVER_PID, "server & shared links", sort=0)
            for g in sorted({g for _, g in seen.values()} | set(groups)):
                meta += _meta(g + 2, groups.get(g, f"group {g}"), sort=g + 1)
            for d, (name, g) in sorted(seen.items()):
                meta += _meta(g + 2, name, tid=d + 1, sort=d)
            stream.events(meta)
            stream.close({"source": "fleetsim", "run_dir": str(source.run_dir),
                          "scenario": source.summary.get("scenario_name") or source.scenario.get("name"),
                          "time": "simulated seconds × 1e6 (µs)",
                          "link_counter_bin_s": float(np.diff(load.edges)[0])})
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"events": stream.count, "bytes": stream.bytes_written}
