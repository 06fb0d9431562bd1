"""Read a run folder (ARCHITECTURE.md, "Trace schema") into DataFrames, tolerating what is missing.

A report must still open for a run that crashed half-way, a timing-only run (no evals), or a folder
written by an older fleetsim: a missing Parquet file becomes an empty frame with the schema's
columns, a missing key in summary.json shows as "n/a". What cannot be read at all (not a folder, a
corrupt file) raises :class:`~simulator.errors.InputError` naming the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from simulator.trace.files import PARTS_DIR
from simulator.trace.columns import COLUMN_NAMES, TABLES

from simulator.config.loading import read_yaml  # YAML errors become InputError there
from simulator.config.input_files import read_input_text
from simulator.errors import InputError

SCHEMA: dict[str, list[str]] = COLUMN_NAMES  # every table's columns, from simulator.trace.columns
EVENT_COLUMNS_USED = ["device", "profile", "phase", "start_s", "end_s", "bytes"]
_TEXT_COLUMNS = {c.name for t in TABLES.values() for c in t.columns if c.is_text}
_LIST_COLUMNS = {c.name for t in TABLES.values() for c in t.columns if c.is_list}


@dataclass
class RunData:
    """Everything a report reads from one run folder.

    `events` holds only EVENT_COLUMNS_USED (it is by far the largest table); the others hold every
    schema column.
    """

    run_dir: Path
    events: pd.DataFrame
    updates: pd.DataFrame
    versions: pd.DataFrame
    evals: pd.DataFrame
    devices: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    scenario: dict[str, Any] = field(default_factory=dict)
    makespan_s: float = 0.0
    timing_only: bool | None = None  # run.json's, written when the run starts: a killed run has no summary

    @property
    def name(self) -> str:
        """The scenario's name, else the folder's name."""
        for value in (self.summary.get("scenario_name"), self.scenario.get("name")):
            if isinstance(value, str) and value.strip():
                return value
        return self.run_dir.name


def _normalise(df: pd.DataFrame, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Add missing columns (of `columns`, default the schema's) as blanks/NaN and turn categoricals
    into plain str, numbers stored as text into numbers."""
    for col in SCHEMA[table] if columns is None else columns:
        if col not in df.columns:
            if col in _TEXT_COLUMNS:
                df[col] = np.full(len(df), "", dtype=object)
            elif col in _LIST_COLUMNS:
                df[col] = pd.Series([[] for _ in range(len(df))], index=df.index, dtype=object)
            else:
                df[col] = np.nan
    for col in df.columns:
        if col in _TEXT_COLUMNS:
            df[col] = df[col].astype(str) if len(df) else df[col].astype(object)
        elif col not in _LIST_COLUMNS and not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def _read_parquet(path: Path, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read `columns` (default all) of a table; absent columns are added by _normalise.

    A run killed before it finished has no final file, only the part files flushed so far; they are
    read instead, so a killed run still gets a (partial) report."""
    if not path.exists():
        parts = sorted((path.parent / PARTS_DIR / table).glob("part-*.parquet"))
        if not parts:
            return _normalise(pd.DataFrame(), table, columns)
        frames = [_read_parquet(part, table, columns) for part in parts]
        return _normalise(pd.concat(frames, ignore_index=True), table, columns)
    try:
        present = None
        if columns is not None:
            names = set(pq.read_schema(path).names)
            present = [c for c in columns if c in names]
        df = pd.read_parquet(path, columns=present)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(f"cannot be read as Parquet ({type(exc).__name__}: {exc})", file=path,
                         accepted=f"the {table} table written by fleetsim") from None
    return _normalise(df, table, columns)


def read_summary(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        # checked first: a summary.json that is a FIFO or /dev/zero must not hang or fill memory
        data = json.loads(read_input_text(path, "the summary.json written by fleetsim"))
    except json.JSONDecodeError as exc:
        raise InputError(f"is not valid JSON ({exc})", file=path,
                         accepted="the summary.json written by fleetsim") from None
    if not isinstance(data, dict):
        raise InputError("must hold a JSON object", file=path, value=type(data).__name__,
                         accepted="a JSON object of summary figures")
    return data


def _read_timing_only(path: Path) -> bool | None:
    """run.json's `timing_only` (the run's own, --timing-only included; folders written before
    scenario.yaml recorded the flag keep the file's key there), or None when there is none to trust: a
    report never fails on it."""
    if not path.exists():
        return None
    try:
        data = json.loads(read_input_text(path, "the run.json written by fleetsim"))
    except (InputError, ValueError):
        return None
    value = data.get("timing_only") if isinstance(data, dict) else None
    return value if isinstance(value, bool) else None


def _read_scenario(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = read_yaml(path)
    return data if isinstance(data, dict) else {}


def _derive_devices(events: pd.DataFrame, makespan_s: float) -> pd.DataFrame:
    """Per-device time shares from events, for run folders without devices.parquet."""
    if events.empty:
        return _normalise(pd.DataFrame(), "devices")
    ev = events.assign(dur=(events["end_s"] - events["start_s"]).clip(lower=0))
    ident = ev.groupby("device", sort=True)[["device_name", "profile", "group"]].first()
    by_phase = ev.pivot_table(index="device", columns="phase", values="dur", aggfunc="sum",
                              fill_value=0.0)
    get = lambda name: by_phase[name] if name in by_phase else 0.0  # noqa: E731
    df = ident.copy()
    df["compute_s"] = get("compute")
    df["comm_s"] = get("download") + get("upload")
    df["offline_s"] = get("offline")
    df["wall_s"] = makespan_s
    df["idle_s"] = (df["wall_s"] - df["compute_s"] - df["comm_s"] - df["offline_s"]).clip(lower=0)
    df["utilization"] = df["compute_s"] / df["wall_s"] if makespan_s > 0 else np.nan
    df["ooms"] = ev[ev["phase"] == "oom"].groupby("device").size().reindex(df.index, fill_value=0)
    return _normalise(df.reset_index(), "devices")


def finite_or_none(value: Any) -> float | None:
    """A summary or table value as a finite float, None if it is missing, not a number or not finite
    (summary.json writes null where a figure was not measured; the report shows "—" for it)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _group_label(g: int, summary: dict[str, Any], scenario: dict[str, Any], members: pd.DataFrame) -> str:
    """A scenario group's own name, as the engine names its devices (`name` or the profile's name):
    from summary.json's groups, else the scenario's fleet list, else the device names' prefix."""
    for entry in summary.get("groups") or []:
        if isinstance(entry, dict) and entry.get("index") == g and entry.get("name"):
            return str(entry["name"])
    fleet = scenario.get("fleet")
    if isinstance(fleet, list) and 0 <= g < len(fleet) and isinstance(fleet[g], dict):
        if fleet[g].get("name"):
            return str(fleet[g]["name"])
    prefixes = members["device_name"].astype(str).str.rsplit("#", n=1).str[0]
    named = members["device_name"].astype(str).str.contains("#")
    if named.all() and prefixes.nunique() == 1:
        return str(prefixes.iloc[0])
    return str(members["profile"].iloc[0]) if len(members) else f"group {g}"


def group_names(devices: pd.DataFrame, summary: dict[str, Any], scenario: dict[str, Any]) -> pd.Series:
    """The group label of every device row; two groups with one label get `(fleet[i])` appended."""
    if devices.empty:
        return pd.Series([], index=devices.index, dtype=object)
    group = pd.to_numeric(devices["group"], errors="coerce").fillna(-1).astype(int)
    labels = {int(g): _group_label(int(g), summary, scenario, devices[group == g]) for g in group.unique()}
    taken = pd.Series(labels).value_counts()
    labels = {g: f"{name} (fleet[{g}])" if taken[name] > 1 else name for g, name in labels.items()}
    return group.map(labels).astype(object)


def load_run(run_dir: Path | str) -> RunData:
    """Read a run folder; raise InputError if it is not one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("is not a folder", file=run_dir,
                         accepted="a run folder such as reports/<run>/ written by `fleetsim run`")
    names = [f"{t}.parquet" for t in SCHEMA] + ["summary.json"]
    if not any((run_dir / n).exists() for n in names) and not (run_dir / PARTS_DIR).is_dir():
        raise InputError("holds none of the files of a run", file=run_dir,
                         accepted=f"a folder with some of {', '.join(names)}")
    # events can hold millions of rows: read only what the report draws (names and groups come
    # from devices.parquet, unless it is missing and the device table is derived from events)
    event_columns = EVENT_COLUMNS_USED
    if not (run_dir / "devices.parquet").exists() and not any((run_dir / PARTS_DIR / "devices").glob("*.parquet")):
        event_columns = event_columns + ["device_name", "group"]
    tables = {t: _read_parquet(run_dir / f"{t}.parquet", t,
                               event_columns if t == "events" else None) for t in SCHEMA}
    summary = read_summary(run_dir / "summary.json")
    scenario = _read_scenario(run_dir / "scenario.yaml")

    makespan = finite_or_none(summary.get("makespan_s"))
    if makespan is None or makespan <= 0:
        candidates = [tables["events"]["end_s"].max(), tables["versions"]["time_s"].max(),
                      tables["evals"]["time_s"].max(), tables["devices"]["wall_s"].max()]
        found = [c for c in (finite_or_none(v) for v in candidates) if c is not None]
        makespan = max(found) if found else 0.0
    devices = tables["devices"]
    if devices.empty:
        devices = _derive_devices(tables["events"], makespan)
    names_missing = devices["device_name"].isin(["", "nan", "None"])
    devices.loc[names_missing, "device_name"] = "device " + devices.loc[names_missing, "device"].astype(
        "Int64").astype(str)
    devices["group_name"] = group_names(devices, summary, scenario)
    devices = devices.sort_values(["group", "device"], kind="stable").reset_index(drop=True)
    return RunData(run_dir=run_dir, events=tables["events"], updates=tables["updates"],
                   versions=tables["versions"], evals=tables["evals"], devices=devices,
                   summary=summary, scenario=scenario, makespan_s=float(makespan),
                   timing_only=_read_timing_only(run_dir / "run.json"))
