"""What an export reads from a run folder: table batches (streamed, never a whole events table in
memory), the device list, the scenario's groups and shared links.

A killed run has no final `<table>.parquet`, only part files under `_parts/<table>/`; both are read
the same way, in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from simulator.config.loading import read_yaml
from simulator.errors import InputError
from simulator.trace.files import PARTS_DIR
from simulator.trace.tables import SCHEMAS

TABLES = ("events", "updates", "versions", "evals", "devices")
BATCH_ROWS = 50_000  # ~40 MB of formatted JSON per batch at most


def table_files(run_dir: Path, table: str) -> list[Path]:
    final = run_dir / f"{table}.parquet"
    if final.exists():
        return [final]
    return sorted((run_dir / PARTS_DIR / table).glob("part-*.parquet"))


def iter_batches(run_dir: Path, table: str, columns: list[str] | None = None,
                 required: Sequence[str] = ()) -> Iterator[pa.RecordBatch]:
    """The table's rows in file order, BATCH_ROWS at a time (empty iterator when it has none).

    A file lacking a `required` column (a Parquet file from something else under fleetsim's name) is
    bad input naming the file and the columns: reading on failed later as a KeyError in pyarrow, which
    the last net took for a plug-in's failure (exit 1)."""
    for path in table_files(run_dir, table):
        try:
            handle = pq.ParquetFile(path)
            names = handle.schema_arrow.names
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"cannot be read as Parquet ({type(exc).__name__}: {exc})", file=path,
                             accepted=f"the {table} table written by fleetsim") from None
        missing = [c for c in required if c not in names]
        if missing:
            raise InputError(f"is not fleetsim's {table} table: it has no column {', '.join(missing)}", file=path,
                             value=names, accepted=f"the {table} table written by fleetsim (columns "
                                               f"{', '.join(SCHEMAS[table].names)})")
        present = None if columns is None else [c for c in columns if c in names]
        try:
            yield from handle.iter_batches(batch_size=BATCH_ROWS, columns=present)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"cannot be read as Parquet ({type(exc).__name__}: {exc})", file=path,
                             accepted=f"the {table} table written by fleetsim") from None


def read_small(run_dir: Path, table: str, required: Sequence[str] = ()) -> pa.Table:
    """A small table (devices, versions, evals) whole."""
    batches = list(iter_batches(run_dir, table, required=required))
    return pa.Table.from_batches(batches) if batches else SCHEMAS[table].empty_table()


@dataclass(frozen=True)
class RunSource:
    """The run folder and what every export needs besides the big tables."""

    run_dir: Path
    summary: dict[str, Any]
    scenario: dict[str, Any]
    devices: pa.Table

    @property
    def makespan_s(self) -> float:
        value = self.summary.get("makespan_s")
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
        walls = self.devices.column("wall_s").to_pylist() if self.devices.num_rows else []
        return float(max(walls, default=0.0) or 0.0)

    def group_names(self) -> dict[int, str]:
        """Group index -> the group's own name (summary.json groups, else scenario fleet, else profile)."""
        names: dict[int, str] = {}
        for entry in self.summary.get("groups") or []:
            if isinstance(entry, dict) and isinstance(entry.get("index"), int):
                names[entry["index"]] = str(entry.get("name"))
        fleet = self.scenario.get("fleet") if isinstance(self.scenario.get("fleet"), list) else []
        groups = self.devices.column("group").to_pylist() if self.devices.num_rows else []
        profiles = self.devices.column("profile").to_pylist() if self.devices.num_rows else []
        for g, profile in zip(groups, profiles):
            if g not in names:
                entry = fleet[g] if 0 <= g < len(fleet) and isinstance(fleet[g], dict) else {}
                names[g] = str(entry.get("name") or profile)
        return names

    def group_link(self, g: int) -> str:
        fleet = self.scenario.get("fleet") if isinstance(self.scenario.get("fleet"), list) else []
        entry = fleet[g] if 0 <= g < len(fleet) and isinstance(fleet[g], dict) else {}
        return str(entry.get("link", "ethernet"))

    def link_capacities_mbps(self) -> dict[str, float]:
        """Shared link name -> capacity: the server's two links and every access point."""
        net = self.scenario.get("network") if isinstance(self.scenario.get("network"), dict) else {}
        server = net.get("server") if isinstance(net.get("server"), dict) else {}
        out = {"server downlink": float(server.get("downlink_mbps", 1000.0)),
               "server uplink": float(server.get("uplink_mbps", 1000.0))}
        for name, ap in (net.get("access_points") or {}).items():
            if isinstance(ap, dict) and "capacity_mbps" in ap:
                out[f"Wi-Fi {name}"] = float(ap["capacity_mbps"])
        return out

    def shared_links(self, g: int, phase: str) -> tuple[str, ...]:
        """The shared links a group's download or upload crosses (an Ethernet port is its own)."""
        server = "server downlink" if phase == "download" else "server uplink"
        link = self.group_link(g)
        return (server,) if link == "ethernet" else (f"Wi-Fi {link}", server)


def open_run(run_dir: Path | str, device_columns: Sequence[str] = ("device",)) -> RunSource:
    """The run folder's summary, scenario and device table (which must hold `device_columns`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("is not a folder", file=run_dir, accepted="a run folder written by `fleetsim run`")
    if not any(table_files(run_dir, t) for t in TABLES) and not (run_dir / "summary.json").exists():
        raise InputError("holds none of the files of a run", file=run_dir,
                         accepted="a run folder written by `fleetsim run` (events.parquet, summary.json, …)")
    summary: dict[str, Any] = {}
    if (run_dir / "summary.json").exists():
        try:
            data = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            summary = data if isinstance(data, dict) else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"is not valid JSON ({exc})", file=run_dir / "summary.json",
                             accepted="the summary.json written by fleetsim") from None
    scenario = read_yaml(run_dir / "scenario.yaml") if (run_dir / "scenario.yaml").exists() else {}
    devices = read_small(run_dir, "devices", required=device_columns).sort_by("device")
    return RunSource(run_dir, summary, scenario if isinstance(scenario, dict) else {}, devices)
