"""Every trace table's columns, declared once: name, type, unit, one-line meaning, known text values.

Why one declaration: the Arrow schema of each Parquet file (:meth:`Table.schema`, collected as
``simulator.trace.tables.SCHEMAS``), the ``struct`` layout
the two big tables are packed with (:func:`packed_fields`), the fixed text-code vocabulary hot
callers pack as constants (:data:`VOCABULARY`) and the reader's column lists
(``simulator.report.loading.SCHEMA``) used to be four hand-kept lists that had to agree. They are now
all derived here, and the units, meanings and value meanings are what the users' data dictionary,
docs/trace_columns.md, is generated from (simulator.trace.dictionary; :data:`RUN_FOLDER_TABLES` adds
the one table the recorder does not write, clients.parquet).

Pure data; no SimPy, no file I/O, and pyarrow only when an Arrow type is asked for (fleet.device and
the server import the text codes from here on every start-up path, `fleetsim validate` included, which
writes no trace).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# type name -> struct/NumPy code of a packed column (text is packed as an int32 code; lists are not packed)
_TYPES: dict[str, str | None] = {
    "int32": "i",
    "int64": "q",
    "float64": "d",
    "text": "i",
    "list<int32>": None,
    "list<int64>": None,
    "list<float64>": None,
}


@cache
def _arrow_type(type_name: str) -> pa.DataType:
    """The Arrow type of a column type name (one of :data:`_TYPES`)."""
    import pyarrow as pa  # here, not at the top: only writing or reading a trace needs Arrow types

    scalar = {"int32": pa.int32(), "int64": pa.int64(), "float64": pa.float64(), "text": pa.string()}
    inner = type_name.removeprefix("list<").removesuffix(">")
    return pa.list_(scalar[inner]) if type_name.startswith("list<") else scalar[type_name]

# Every unit a column may declare, with what one of it is ("" : no unit: an index, a label, a weight).
UNITS: dict[str, str] = {
    "": "no unit: an index, a label, a version number or a weight",
    "s": "simulated seconds since the run started (never wall time)",
    "bytes": "bytes",
    "FLOP": "floating-point operations",
    "J": "joules",
    "fraction": "a share from 0 to 1",
    "versions": "global model versions (a staleness counts the versions made in between)",
    "blocks": "blocks of the model (the unit depth pruning cuts)",
    "parameters": "model parameters",
    "steps": "local training steps, one batch each",
    "updates": "updates (one per job that reached the server)",
    "jobs": "jobs (one dispatch of work to one device)",
    "samples": "training samples",
    "nats": "natural-log units of a cross-entropy",
}

# The text codes the packed writers have always started with, in this order (fleet.device packs some
# as constants): none of them ever moves, wherever a column lists it; a text value declared later
# gets the next free code.
_FIXED_CODES = ("download", "compute", "upload", "offline", "oom", "done", "lost", "unfinished", "accepted",
                "dropped", "")


@dataclass(frozen=True)
class Column:
    """One column: ``unit`` one of :data:`UNITS` ("" for none); ``value_meanings`` the text values
    fleetsim writes, each with what it means (empty for free text); ``per_device`` marks a column a
    packed table takes from the device's own row (name, profile, group), not from the row."""

    name: str
    type: str
    unit: str
    meaning: str
    value_meanings: tuple[tuple[str, str], ...] = ()
    per_device: bool = False

    def __post_init__(self) -> None:
        # a typo here would reach the users' data dictionary: refuse it at import
        if self.type not in _TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")
        if self.unit not in UNITS:
            raise ValueError(f"column {self.name}: unknown unit {self.unit!r}; declare it in UNITS")

    @property
    def values(self) -> tuple[str, ...]:
        """The known text values, in declaration order."""
        return tuple(value for value, _ in self.value_meanings)

    @property
    def arrow_type(self) -> pa.DataType:
        return _arrow_type(self.type)

    @property
    def is_text(self) -> bool:
        return self.type == "text"

    @property
    def is_list(self) -> bool:
        return self.type.startswith("list<")


@dataclass(frozen=True)
class Table:
    """A table: one Parquet file ``<name>.parquet`` in the run folder, one row per ``row_is``;
    ``title`` and ``description`` head its section of the data dictionary. ``packed`` tables are
    buffered as ``struct``-packed bytes (simulator.trace.packed)."""

    name: str
    row_is: str
    columns: tuple[Column, ...]
    packed: bool = False
    title: str = ""
    description: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def schema(self) -> pa.Schema:
        import pyarrow as pa  # only writing or reading a trace needs the schema (see the module's docstring)

        return pa.schema([(c.name, c.arrow_type) for c in self.columns])

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _device_columns() -> tuple[Column, ...]:
    return (
        Column("device_name", "text", "", "`<fleet entry's name, or its profile>#<k>`, k counting from 0 over "
               "the `fleet:` entries of that label, so every name is unique", per_device=True),
        Column("profile", "text", "", "name of the device profile it runs", per_device=True),
        Column("group", "int32", "", "index of its entry in the scenario's `fleet:` list, from 0", per_device=True),
    )


_NAME, _PROFILE, _GROUP = _device_columns()
_DEVICE = Column("device", "int32", "", "device index, 0 to fleet size − 1, in `fleet:` order")
_JOB = Column("job_id", "int64", "", "the job the phase belongs to (updates.job_id); −1 for an offline spell")
_CUT = "the device went offline during it, or a `link_down` fault with `drop_transfers` cut its transfer"

TABLES: dict[str, Table] = {t.name: t for t in (
    Table("events", "device phase", packed=True, title="what every device did, phase by phase",
          description="A job's phases share `job_id`: download, compute, upload, each written when it ends; a "
          "job refused for memory ends with a zero-length `oom` phase after its download. About three rows "
          "per job, plus one per offline spell: the largest table.", columns=(
        _DEVICE, _NAME, _PROFILE, _GROUP,
        Column("phase", "text", "", "what the device was doing", (
            ("download", "from dispatch to the end of the submodel's download, the latency wait included"),
            ("compute", "local training and its extras (importance scoring, a global teacher's forward pass)"),
            ("upload", "from the end of compute to the end of the update's upload, the latency wait included"),
            ("offline", "the device was unavailable (churn, an availability trace, a `devices_offline` fault)"),
            ("oom", "the job's planned peak memory exceeds the device's usable memory: zero length, at the end "
                    "of the download, and the job ends there"))),
        Column("start_s", "float64", "s", "simulated time the phase began"),
        Column("end_s", "float64", "s", "simulated time the phase ended (the stop, for a phase under way then)"),
        _JOB,
        Column("version", "int64", "", "global model version the job started from (its updates.base_version); "
               "−1 for an offline spell"),
        Column("bytes", "int64", "bytes", "bytes moved by a download or upload: all of them when `done`, those "
               "moved so far when cut short; 0 for the other phases"),
        Column("flops", "float64", "FLOP", "floating-point operations of a compute phase: all of its work when "
               "`done`, the share done when cut short; 0 for the other phases"),
        Column("outcome", "text", "", "how the phase ended", (
            ("done", "the phase completed"),
            ("lost", _CUT),
            ("dropped", "the server cancelled the job during it (a round deadline passed, or an over-selected "
                        "round had enough updates)"),
            ("oom", "the `oom` phase: the job did not fit in memory"),
            ("offline", "an offline spell"),
            ("unfinished", "still under way when the run stopped; booked up to the stop"))),
    )),
    Table("updates", "dispatched job", packed=True, title="what became of every job and its update",
          description="Written when the job ends, so every dispatched job appears exactly once: merged, "
          "dropped by the policy, lost, refused for memory, or still under way when the run stopped.", columns=(
        Column("job_id", "int64", "", "the job: one dispatch of work to one device, numbered from 0 in dispatch "
               "order (events.job_id)"),
        _DEVICE, _PROFILE,
        Column("dispatch_s", "float64", "s", "simulated time the server dispatched the job"),
        Column("arrival_s", "float64", "s", "simulated time its update reached the server; NaN if it never did "
               "(lost, oom, cancelled or still in flight at the stop)"),
        Column("base_version", "int64", "", "global model version the job trained from"),
        Column("applied_version", "int64", "", "version its merge produced (versions.version); −1 unless accepted"),
        Column("staleness", "int64", "versions", "versions the server made after its base version: up to its "
               "merge when accepted, up to its end when dropped or unfinished; −1 when lost or oom"),
        Column("weight", "float64", "", "its weight in the merge, as the policy set it (FedAvg: its samples; "
               "FedBuff, Co-S²P: samples × s(τ); FedAsync: the mixing share α·s(τ)); 0 unless accepted"),
        Column("outcome", "text", "", "what became of the job", (
            ("accepted", "merged, into applied_version"),
            ("dropped", "refused by the policy after it arrived (too stale, after its round ended) or cancelled "
                        "in flight (a deadline, an over-selected round)"),
            ("lost", _CUT),
            ("oom", "it did not fit in the device's usable memory; the device gets no more jobs"),
            ("unfinished", "in flight or waiting to be merged when the run stopped"))),
        Column("reason", "text", "", "why it was not merged (free text); empty when accepted. fleetsim writes "
               "`deadline`, `over-selected`, `arrived after its round ended`, `staleness τ > max_staleness m` "
               "(dropped), `offline`, `link down` (lost), `needs X GB, usable Y GB` (oom), `run stopped` "
               "(unfinished); a plug-in policy gives its own"),
        Column("depth", "int32", "blocks", "blocks of the submodel the device held; under TimelyFL's partial "
               "depth and Co-S²P's rolling windows it trains only the last ones, behind a frozen prefix"),
        Column("width_ratio", "float64", "fraction", "share of each block's width the submodel kept (1.0: full)"),
        Column("submodel_params", "int64", "parameters", "parameters of the submodel, frozen ones included"),
        Column("download_bytes", "int64", "bytes", "bytes the job downloads: the submodel's weights, plus the rest "
               "of the global model under `distillation.mode: global` (the teacher)"),
        Column("upload_bytes", "int64", "bytes", "bytes of its update: 4 per trained parameter (frozen blocks are "
               "not sent back), plus the importance scores under importance pruning"),
        Column("peak_memory_bytes", "int64", "bytes", "peak memory the planner estimated for the job (the larger "
               "of its training step and its extra passes); above the device's usable memory it ends `oom`"),
        Column("local_steps", "int64", "steps", "local training steps of the job, one batch each "
               "(`local_work.fit_deadline` may cut them to fit the round deadline)"),
    )),
    Table("versions", "aggregation", title="every global model the server made",
          description="Each merge makes the next version; version 0, the initial model, has no row.", columns=(
        Column("version", "int64", "", "the version the merge produced (1, 2, …)"),
        Column("time_s", "float64", "s", "simulated time of the merge"),
        Column("trigger", "text", "", "what made the policy merge (a plug-in policy may name its own)", (
            ("all", "every job of a synchronous round that did not fail arrived"),
            ("k", "enough updates arrived: Co-S²P's K, or an over-selected FedAvg round's clients_per_round "
                  "(the rest are cancelled)"),
            ("deadline", "the round deadline (`deadline_s`) passed"),
            ("each", "FedAsync: every arrival is merged on its own"),
            ("buffer", "FedBuff: `buffer_k` updates were buffered"))),
        Column("n_merged", "int32", "updates", "updates merged into it"),
        Column("mean_staleness", "float64", "versions", "mean staleness of the merged updates"),
        Column("block_coverage", "list<int32>", "updates", "per block of the full model, shallowest first: how "
               "many of the merged updates trained it"),
        Column("min_coverage", "int32", "updates", "the smallest entry of block_coverage (0: a block none trained)"),
    )),
    Table("evals", "evaluation", title="accuracy of the global model",
          description="Training runs evaluate every `evaluation.every_versions` versions (a resumed run "
          "replays the evaluations it recorded); a timing-only run writes this table empty.", columns=(
        Column("time_s", "float64", "s", "simulated time of the evaluation (that of the merge that made the "
               "version)"),
        Column("version", "int64", "", "global model version evaluated"),
        Column("accuracy", "float64", "fraction", "top-1 accuracy of the full global model (its deepest exit) on "
               "the test split"),
        Column("loss", "float64", "nats", "mean cross-entropy of the deepest exit on the test split"),
        Column("exit_accuracy", "list<float64>", "fraction", "top-1 accuracy at each block's exit, shallowest "
               "first (the last is accuracy)"),
    )),
    Table("devices", "device", title="what each device did over the whole run",
          description="Written when the run stops. For every device compute_s + comm_s + idle_s + offline_s "
          "= wall_s.", columns=(
        _DEVICE, _NAME, _PROFILE, _GROUP,
        Column("power_mode", "text", "", "the power mode it ran in (its `fleet:` entry's, else the profile's "
               "default)"),
        Column("usable_memory_bytes", "int64", "bytes", "memory training may use on it (the profile's "
               "`memory.usable_gb`)"),
        Column("peak_memory_bytes", "int64", "bytes", "largest planned peak (updates.peak_memory_bytes) of the "
               "jobs it started computing, so a job refused for memory does not count; 0 if none"),
        Column("compute_s", "float64", "s", "simulated time in compute phases"),
        Column("comm_s", "float64", "s", "simulated time in download and upload phases: latency waits and "
               "transfers, a transfer's wait for its share of a link included"),
        Column("idle_s", "float64", "s", "simulated time online with no phase under way (waiting for work or "
               "for the merge)"),
        Column("offline_s", "float64", "s", "simulated time offline"),
        Column("wall_s", "float64", "s", "the run's simulated length: the time it stopped"),
        Column("utilization", "float64", "fraction", "compute_s ÷ wall_s (the paper's resource utilization)"),
        Column("energy_j", "float64", "J", "energy drawn: energy_compute_j + energy_comm_j + energy_idle_j "
               "(README, \"How energy is counted\")"),
        Column("energy_compute_j", "float64", "J", "compute_s × the power mode's busy power (the profile's "
               "`power_modes.<mode>.watts`)"),
        Column("energy_comm_j", "float64", "J", "comm_s × the profile's `idle_w` (a radio's extra draw is not "
               "modelled)"),
        Column("energy_idle_j", "float64", "J", "idle_s × `idle_w`; offline time draws nothing"),
        Column("jobs", "int64", "jobs", "jobs dispatched to it: accepted + dropped + lost + ooms + those "
               "unfinished at the stop"),
        Column("accepted", "int64", "jobs", "its jobs whose update was merged"),
        Column("dropped", "int64", "jobs", "its jobs the policy dropped or cancelled"),
        Column("lost", "int64", "jobs", "its jobs lost (offline, or a transfer cut by a `link_down` fault)"),
        Column("ooms", "int64", "jobs", "its jobs refused for memory (after one, it gets no more)"),
        Column("bytes_down", "int64", "bytes", "bytes it downloaded, transfers cut short included"),
        Column("bytes_up", "int64", "bytes", "bytes it uploaded, transfers cut short included"),
    )),
)}

# Tables of a run folder that the TraceRecorder does not write: clients.parquet is written once, when
# the run starts (engine.workload_info), with this schema. Kept out of TABLES so the recorder, the
# report reader and the exports, which iterate TABLES, are unchanged.
CLIENTS = Table("clients", "device (client)", title="each client's data shard",
                description="Written when the run starts. Under `workload.samples_per_client` (timing-only) "
                "no shards are drawn: every client has that many samples and an empty histogram.", columns=(
    _DEVICE, _NAME, _PROFILE,
    Column("num_samples", "int64", "samples", "training samples in its shard"),
    Column("label_histogram", "list<int64>", "samples", "samples of each class in its shard, by class index; "
           "empty when `samples_per_client` fixes the sizes"),
))
RUN_FOLDER_TABLES: dict[str, Table] = {**TABLES, CLIENTS.name: CLIENTS}

COLUMN_NAMES: dict[str, list[str]] = {name: table.names for name, table in TABLES.items()}


def packed_fields(table: str) -> tuple[tuple[str, str], ...]:
    """(column, struct code) of a packed table's row, in column order; per-device columns are not in it."""
    return tuple((c.name, _TYPES[c.type]) for c in TABLES[table].columns if not c.per_device)  # type: ignore[misc]


def _vocabulary() -> tuple[str, ...]:
    """The codes 0, 1, … every packed writer starts with: :data:`_FIXED_CODES`, then any other known
    text value of a packed table in declaration order (fleet.device packs phase and outcome codes as
    constants, so a code once given never moves)."""
    seen = dict.fromkeys(_FIXED_CODES)
    for table in TABLES.values():
        if table.packed:
            for column in table.columns:
                if column.is_text and not column.per_device:
                    seen.update(dict.fromkeys(column.values))
    return tuple(seen)


VOCABULARY = _vocabulary()
EVENT_CODES: dict[str, int] = {text: code for code, text in enumerate(VOCABULARY)}
EVENT_FIELDS = packed_fields("events")
UPDATE_FIELDS = packed_fields("updates")
