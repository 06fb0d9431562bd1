"""Every trace table's columns, declared once: name, type, unit, one-line meaning, known text values.

Why one declaration: the Arrow schema of each Parquet file (:data:`SCHEMAS`), the ``struct`` layout
the two big tables are packed with (:func:`packed_fields`), the fixed text-code vocabulary hot
callers pack as constants (:data:`VOCABULARY`) and the reader's column lists
(``simulator.report.loading.SCHEMA``) used to be four hand-kept lists that had to agree. They are now
all derived here, and the units and meanings are what the users' data dictionary is generated from.

Pure data and pyarrow; no SimPy, no file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# type name -> (Arrow type, struct/NumPy code of a packed column; text is packed as an int32 code)
_TYPES: dict[str, tuple[pa.DataType, str | None]] = {
    "int32": (pa.int32(), "i"),
    "int64": (pa.int64(), "q"),
    "float64": (pa.float64(), "d"),
    "text": (pa.string(), "i"),
    "list<int32>": (pa.list_(pa.int32()), None),
    "list<float64>": (pa.list_(pa.float64()), None),
}


@dataclass(frozen=True)
class Column:
    """One column. ``unit`` is "" for a dimensionless value (an index, a count, a ratio, a label);
    ``values`` lists the text values fleetsim writes (empty for free text); ``per_device`` marks a
    column a packed table takes from the device's own row (name, profile, group), not from the row."""

    name: str
    type: str
    unit: str
    meaning: str
    values: tuple[str, ...] = ()
    per_device: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return _TYPES[self.type][0]

    @property
    def is_text(self) -> bool:
        return self.type == "text"

    @property
    def is_list(self) -> bool:
        return self.type.startswith("list<")


@dataclass(frozen=True)
class Table:
    """A table: one Parquet file ``<name>.parquet`` in the run folder, one row per ``row_is``.
    ``packed`` tables are buffered as ``struct``-packed bytes (simulator.trace.packed)."""

    name: str
    row_is: str
    columns: tuple[Column, ...]
    packed: bool = False

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.arrow_type) for c in self.columns])

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _device_columns() -> tuple[Column, ...]:
    return (
        Column("device_name", "text", "", "<fleet group name, or its profile>#<index in the group>",
               per_device=True),
        Column("profile", "text", "", "the device profile it runs (device_profiles/<profile>.yaml)", per_device=True),
        Column("group", "int32", "", "index of its fleet group in the scenario's fleet list", per_device=True),
    )


_NAME, _PROFILE, _GROUP = _device_columns()
_DEVICE = Column("device", "int32", "", "device index, 0 to fleet size − 1")
_JOB = Column("job_id", "int64", "", "the job (one dispatch of work to one device); −1 for an offline spell")

TABLES: dict[str, Table] = {t.name: t for t in (
    Table("events", "device phase", packed=True, columns=(
        _DEVICE, _NAME, _PROFILE, _GROUP,
        Column("phase", "text", "", "what the device was doing (oom: a job refused for memory, zero length)",
               ("download", "compute", "upload", "offline", "oom")),
        Column("start_s", "float64", "s", "simulated time the phase began"),
        Column("end_s", "float64", "s", "simulated time the phase ended (the stop, for a phase under way)"),
        _JOB,
        Column("version", "int64", "", "global model version the job started from; −1 for an offline spell"),
        Column("bytes", "int64", "bytes", "bytes moved in the phase (download/upload), else 0"),
        Column("flops", "float64", "FLOP", "floating-point operations computed in the phase, else 0"),
        Column("outcome", "text", "", "how the phase ended (unfinished: still under way when the run stopped, "
               "booked up to the stop)", ("done", "lost", "oom", "offline", "unfinished")),
    )),
    Table("updates", "dispatched job", packed=True, columns=(
        _JOB, _DEVICE, _PROFILE,
        Column("dispatch_s", "float64", "s", "simulated time the server dispatched the job"),
        Column("arrival_s", "float64", "s", "simulated time its update reached the server; NaN if it never did"),
        Column("base_version", "int64", "", "global model version the job trained from"),
        Column("applied_version", "int64", "", "version its merge produced; −1 unless accepted"),
        Column("staleness", "int64", "", "versions merged between its dispatch and its arrival"),
        Column("weight", "float64", "", "its weight in the merge (policy-defined: samples × s(τ), FedAsync's α)"),
        Column("outcome", "text", "", "what became of the update",
               ("accepted", "dropped", "lost", "oom", "unfinished")),
        Column("reason", "text", "", "why it was dropped or cancelled (free text); empty otherwise"),
        Column("depth", "int32", "", "blocks of the submodel the device trained"),
        Column("width_ratio", "float64", "", "share of each block's width the submodel kept"),
        Column("submodel_params", "int64", "", "parameters of the submodel"),
        Column("download_bytes", "int64", "bytes", "bytes the device downloaded for the job"),
        Column("upload_bytes", "int64", "bytes", "bytes of the update it uploaded"),
        Column("peak_memory_bytes", "int64", "bytes", "training memory the job needed on the device"),
        Column("local_steps", "int64", "", "local training steps (batches) of the job"),
    )),
    Table("versions", "aggregation", columns=(
        Column("version", "int64", "", "the global model version the merge produced"),
        Column("time_s", "float64", "s", "simulated time of the merge"),
        Column("trigger", "text", "", "what made the policy merge", ("all", "k", "deadline", "each", "buffer")),
        Column("n_merged", "int32", "", "updates merged"),
        Column("mean_staleness", "float64", "", "mean staleness of the merged updates"),
        Column("block_coverage", "list<int32>", "", "per block: how many merged updates trained it"),
        Column("min_coverage", "int32", "", "the smallest of block_coverage"),
    )),
    Table("evals", "evaluation", columns=(
        Column("time_s", "float64", "s", "simulated time of the evaluation"),
        Column("version", "int64", "", "global model version evaluated"),
        Column("accuracy", "float64", "", "top-1 accuracy on the test split, 0 to 1"),
        Column("loss", "float64", "", "mean cross-entropy on the test split"),
        Column("exit_accuracy", "list<float64>", "", "accuracy of each exit, shallowest first"),
    )),
    Table("devices", "device", columns=(
        _DEVICE, _NAME, _PROFILE, _GROUP,
        Column("power_mode", "text", "", "the profile's power mode the device ran in"),
        Column("usable_memory_bytes", "int64", "bytes", "memory training may use on the device"),
        Column("peak_memory_bytes", "int64", "bytes", "largest training memory of a job it started computing"),
        Column("compute_s", "float64", "s", "simulated time spent computing"),
        Column("comm_s", "float64", "s", "simulated time spent downloading or uploading"),
        Column("idle_s", "float64", "s", "simulated time online and neither computing nor communicating"),
        Column("offline_s", "float64", "s", "simulated time offline"),
        Column("wall_s", "float64", "s", "simulated duration of the run"),
        Column("utilization", "float64", "", "compute_s ÷ wall_s, 0 to 1 (the paper's resource utilization)"),
        Column("energy_j", "float64", "J", "energy_compute_j + energy_comm_j + energy_idle_j"),
        Column("energy_compute_j", "float64", "J", "compute time at the power mode's busy power"),
        Column("energy_comm_j", "float64", "J", "communication time at idle power"),
        Column("energy_idle_j", "float64", "J", "idle time at idle power (offline counts 0)"),
        Column("jobs", "int64", "", "jobs dispatched to the device"),
        Column("accepted", "int64", "", "its updates merged"),
        Column("dropped", "int64", "", "its updates dropped by the policy"),
        Column("lost", "int64", "", "its jobs lost (the device went offline)"),
        Column("ooms", "int64", "", "its jobs that did not fit in memory"),
        Column("bytes_down", "int64", "bytes", "bytes it downloaded"),
        Column("bytes_up", "int64", "bytes", "bytes it uploaded"),
    )),
)}

SCHEMAS: dict[str, pa.Schema] = {name: table.schema() for name, table in TABLES.items()}
COLUMN_NAMES: dict[str, list[str]] = {name: table.names for name, table in TABLES.items()}


def packed_fields(table: str) -> tuple[tuple[str, str], ...]:
    """(column, struct code) of a packed table's row, in column order; per-device columns are not in it."""
    return tuple((c.name, _TYPES[c.type][1]) for c in TABLES[table].columns if not c.per_device)  # type: ignore[misc]


def _vocabulary() -> tuple[str, ...]:
    """The packed tables' known text values in declaration order, then "": the codes 0, 1, … every
    packed writer starts with (fleet.device packs phase and outcome codes as constants)."""
    seen: dict[str, None] = {}
    for table in TABLES.values():
        if table.packed:
            for column in table.columns:
                if column.is_text and not column.per_device:
                    seen.update(dict.fromkeys(column.values))
    seen[""] = None
    return tuple(seen)


VOCABULARY = _vocabulary()
EVENT_CODES: dict[str, int] = {text: code for code, text in enumerate(VOCABULARY)}
EVENT_FIELDS = packed_fields("events")
UPDATE_FIELDS = packed_fields("updates")
