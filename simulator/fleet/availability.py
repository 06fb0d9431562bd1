"""When devices are online: always, exponential on/off churn, or offline intervals from a trace file.

Each availability model yields a sequence of offline intervals [start_s, end_s) per device; one
SimPy process per non-always-on device walks them and calls the engine's hooks. A device going
offline mid-phase loses that work (the engine interrupts its client-round process).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from simulator.config.input_files import read_input_text
from simulator.config.scenario import AlwaysOn, AvailabilityTrace, Churn
from simulator.errors import InputError

if TYPE_CHECKING:  # annotations only: validate reads traces with load_trace, no SimPy
    import simpy


def churn_intervals(spec: Churn, rng: np.random.Generator) -> Iterator[tuple[float, float]]:
    """Endless offline intervals of an alternating exponential on/off process."""
    p_online = spec.start_online_probability
    if p_online is None:
        p_online = spec.mean_online_s / (spec.mean_online_s + spec.mean_offline_s)
    now = 0.0
    if rng.random() >= p_online:
        end = rng.exponential(spec.mean_offline_s)
        yield (0.0, end)
        now = end
    while True:
        start = now + rng.exponential(spec.mean_online_s)
        end = start + rng.exponential(spec.mean_offline_s)
        yield (start, end)
        now = end


def load_trace(spec: AvailabilityTrace, base_dir: Path, group_index: int, count: int) -> list[list[tuple[float, float]]]:
    """Offline intervals per device of a group from a CSV (device_index,start_s,end_s)."""
    field = f"fleet[{group_index}].availability.path"
    path = (base_dir / spec.path) if not Path(spec.path).is_absolute() else Path(spec.path)
    accepted = "a CSV with columns device_index,start_s,end_s"
    try:
        text = read_input_text(path, accepted)  # a regular file within the size limit, BOM or not
    except InputError as err:
        # the file at fault is the scenario naming this path (the caller adds it); the path is the value
        what = "availability trace" if err.problem.startswith("file ") else "availability trace file"  # not "file file not found"
        raise InputError(f"{what} {err.problem}", field=field, value=str(path), accepted=err.accepted) from None
    intervals: list[list[tuple[float, float]]] = [[] for _ in range(count)]
    try:
        _read_rows(csv.DictReader(io.StringIO(text, newline="")), path, field, count, intervals)
    except csv.Error as exc:
        raise InputError(f"the trace cannot be read ({type(exc).__name__}: {exc})", file=path, field=field,
                         accepted="a UTF-8 CSV with header device_index,start_s,end_s") from None
    for device_intervals in intervals:
        device_intervals.sort()
    return intervals


def _read_rows(reader: csv.DictReader, path: Path, field: str, count: int,
               intervals: list[list[tuple[float, float]]]) -> None:
    if reader.fieldnames:
        reader.fieldnames = [name.strip() for name in reader.fieldnames]  # "device_index, start_s" is fine
    missing = {"device_index", "start_s", "end_s"} - set(reader.fieldnames or [])
    if missing:
        raise InputError(f"trace is missing columns {sorted(missing)}", file=path, field=field,
                         value=reader.fieldnames, accepted="a CSV with header device_index,start_s,end_s")
    for line_no, row in enumerate(reader, start=2):
        try:
            index, start, end = int(row["device_index"]), float(row["start_s"]), float(row["end_s"])
        except (TypeError, ValueError):
            raise InputError(f"line {line_no} has a missing or non-numeric value", file=path, field=field,
                             value=row, accepted="integer device_index, numeric start_s < end_s") from None
        if not 0 <= index < count or not (0 <= start < end):
            raise InputError(f"line {line_no} is out of range", file=path, field=field, value=row,
                             accepted=f"0 <= device_index < {count} (the group's size) and 0 <= start_s < end_s")
        intervals[index].append((start, end))


def availability_process(
    env: simpy.Environment,
    intervals: Iterator[tuple[float, float]],
    go_offline: Callable[[], None],
    go_online: Callable[[], None],
) -> Iterator[simpy.Event]:
    """Walk offline intervals, calling the hooks at their edges (overlaps are merged)."""
    for start, end in intervals:
        if end <= env.now:
            continue
        start = max(start, env.now)
        yield env.timeout(start - env.now)
        go_offline()
        yield env.timeout(end - env.now)
        go_online()


def is_always_on(spec: object) -> bool:
    return isinstance(spec, AlwaysOn)
