"""The scenario schema: fleet, network, workload, algorithm, evaluation, stop, seed, output.

A scenario is the one place options live (no flag soup): the CLI only chooses the file, the output
folder and the seed. Every model forbids unknown keys so a typo is an error, not a silent default.
Algorithm parts (aggregation, pruning, distillation) are kept as plain mappings here and resolved
against the algorithm preset and the policy registry in :mod:`simulator.config.algorithm`, because
their accepted keys depend on the chosen policy — including a user's own plug-in.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from simulator.errors import InputError
from simulator.config.faults import Fault, LinkDown
from simulator.config.workload import DatasetSpec, ModelSpec, PartitionSpec
from simulator.config.numbers import NoBoolNumbers


class Strict(NoBoolNumbers):
    """Base for every scenario part: unknown keys are errors and NaN/inf are rejected."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


# ---------------------------------------------------------------- fleet


# The shortest duration a scenario may set (churn means, deadlines, evaluation periods): far shorter
# ones make simulated time crawl (or, below the float clock's resolution, stand still) while events
# repeat forever — a hang, not a result.
MIN_DURATION_S = 1e-3
# Upper bounds far beyond any real workload: past them sizes overflow int64 byte counts or float step
# arithmetic (an epoch count of 1e308 makes an infinite number of steps) instead of meaning anything.
MAX_BATCH = 1_000_000
MAX_EPOCHS = 1e6
MAX_STEPS = 10**9
MAX_INPUT_SIDE = 65_536


class AlwaysOn(Strict):
    kind: Literal["always"] = "always"


class Churn(Strict):
    """On/off churn: exponential online and offline durations with the given means."""

    kind: Literal["churn"]
    mean_online_s: float = Field(ge=MIN_DURATION_S)
    mean_offline_s: float = Field(ge=MIN_DURATION_S)
    start_online_probability: float | None = Field(
        default=None, ge=0, le=1, description="default: the stationary share mean_on/(mean_on+mean_off)"
    )


class AvailabilityTrace(Strict):
    """Offline intervals from a CSV file with columns device_index,start_s,end_s (group-relative)."""

    kind: Literal["trace"]
    path: str


Availability = AlwaysOn | Churn | AvailabilityTrace


class FleetGroup(Strict):
    """`count` identical devices of one profile, power mode, link and availability."""

    profile: str = Field(description="a builtin profile name (see `fleetsim profiles`) or a path to a YAML")
    count: int = Field(ge=1, le=1_000_000)
    name: str | None = Field(default=None, description="a label for the group; default: the profile name")
    power_mode: str | None = None
    link: str = Field(default="ethernet", description="'ethernet' (own port) or the name of an access point")
    availability: Availability = Field(default_factory=AlwaysOn, discriminator="kind")
    overrides: dict[str, Any] = Field(default_factory=dict, description="fields of the profile to override")


# ---------------------------------------------------------------- network

# 10 Tb/s: above any link a fleet of edge boards sees. Beyond some bound a rate stops meaning anything
# and, times 1e6 bits, overflows to inf in the fair-share arithmetic; this one is generous.
MAX_MBPS = 1e7


class Latency(Strict):
    """One-way latency per transfer: a mean plus jitter drawn from `distribution`."""

    mean_ms: float = Field(default=1.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    distribution: Literal["normal", "uniform", "exponential"] = "normal"


class ServerLink(Strict):
    downlink_mbps: float = Field(default=1000.0, gt=0, le=MAX_MBPS, description="server → devices capacity, shared")
    uplink_mbps: float = Field(default=1000.0, gt=0, le=MAX_MBPS, description="devices → server capacity, shared")


class AccessPoint(Strict):
    """A shared, half-duplex Wi-Fi cell: uploads and downloads of its devices share `capacity_mbps`."""

    capacity_mbps: float = Field(gt=0, le=MAX_MBPS)
    max_client_mbps: float | None = Field(default=None, gt=0, le=MAX_MBPS, description="one device's own PHY/TCP limit")
    latency: Latency = Field(default_factory=lambda: Latency(mean_ms=4.0, jitter_ms=2.0))


class Ethernet(Strict):
    """Switched Ethernet: each device has its own full-duplex port."""

    rate_mbps: float = Field(default=941.0, gt=0, le=MAX_MBPS, description="TCP goodput of a GbE port")
    latency: Latency = Field(default_factory=lambda: Latency(mean_ms=0.3, jitter_ms=0.0))


class Network(Strict):
    server: ServerLink = Field(default_factory=ServerLink)
    access_points: dict[str, AccessPoint] = Field(default_factory=dict)
    ethernet: Ethernet = Field(default_factory=Ethernet)

    @field_validator("access_points")
    @classmethod
    def _no_reserved_name(cls, value: dict[str, AccessPoint]) -> dict[str, AccessPoint]:
        if "ethernet" in value:
            raise InputError("'ethernet' is reserved for wired ports", field="ethernet",
                             accepted="any other access point name")
        return value


# ---------------------------------------------------------------- workload


class Optimizer(Strict):
    name: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.05, gt=0, le=1e3, description="learning rate (float32 overflows far below 1e39)")
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1e3)


class Workload(Strict):
    model: ModelSpec
    train_model: ModelSpec | None = Field(
        default=None, description="a small proxy trained for accuracy while `model` sets time and memory"
    )
    dataset: DatasetSpec
    partition: PartitionSpec = Field(default_factory=lambda: PartitionSpec(kind="iid"))
    batch_size: int = Field(default=32, ge=1, le=MAX_BATCH)
    local_epochs: float | None = Field(default=1.0, gt=0, le=MAX_EPOCHS)
    local_steps: int | None = Field(default=None, ge=1, le=MAX_STEPS, description="overrides local_epochs")
    optimizer: Optimizer = Field(default_factory=Optimizer)
    plan_input_shape: tuple[Annotated[int, Field(ge=1, le=MAX_INPUT_SIDE)], ...] | None = Field(
        default=None, min_length=1, max_length=4,
        description="input shape the planning model is costed at (e.g. [3, 224, 224]); default: the dataset's",
    )
    samples_per_client: int | None = Field(
        default=None, ge=1, le=MAX_STEPS,
        description="timing-only: fix the shard size instead of partitioning the dataset"
    )
    framework_overhead_gb: float = Field(default=0.3, ge=0, le=1e6, description="PyTorch/CUDA allocator overhead")


# ---------------------------------------------------------------- algorithm, evaluation, stop


class AlgorithmSpec(Strict):
    """A preset name plus overrides of its parts (validated in simulator.config.algorithm)."""

    name: str = "co-s2p"
    aggregation: dict[str, Any] = Field(default_factory=dict)
    pruning: dict[str, Any] = Field(default_factory=dict)
    distillation: dict[str, Any] = Field(default_factory=dict)
    local_work: dict[str, Any] = Field(default_factory=dict)


class Evaluation(Strict):
    every_versions: int | None = Field(default=1, ge=1)
    every_s: float | None = Field(default=None, ge=MIN_DURATION_S)
    batch_size: int = Field(default=512, ge=1, le=MAX_BATCH)


class TargetRule:
    """When the run counts as having reached ``target_accuracy``: the target must hold for
    ``patience`` consecutive evaluations (1 = the first crossing). The time to target is the time of
    the FIRST evaluation of that holding run, so a curve that crosses, dips (0.46 → 0.15 → 0.51 was
    seen) and crosses again is timed from where it stayed up. Pure bookkeeping, no clock of its own."""

    def __init__(self, target: float, patience: int = 1) -> None:
        self.target = float(target)
        self.patience = int(patience)
        self._run_start_s: float | None = None
        self._run_length = 0

    def observe(self, time_s: float, accuracy: float) -> float | None:
        """One evaluation; returns the time to target once the rule holds (else None)."""
        if accuracy >= self.target:
            if self._run_length == 0:
                self._run_start_s = float(time_s)
            self._run_length += 1
            if self._run_length >= self.patience:
                return self._run_start_s
        else:
            self._run_start_s, self._run_length = None, 0
        return None

    def describe(self) -> str:
        if self.patience == 1:
            return f"accuracy >= {self.target:g} at one evaluation (the first crossing)"
        return (f"accuracy >= {self.target:g} at {self.patience} consecutive evaluations; "
                "time to target = the first of them")


class Stop(Strict):
    sim_time_s: float | None = Field(default=3600.0, gt=0)
    max_versions: int | None = Field(default=None, ge=1)
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    target_patience: int = Field(default=1, ge=1, le=1_000_000, description=(
        "target_accuracy must hold for this many consecutive evaluations (time to target: the first of "
        "them); 1 = the first crossing"))

    def target_rule(self) -> TargetRule | None:
        """A fresh rule for one run (None without a target)."""
        return None if self.target_accuracy is None else TargetRule(self.target_accuracy, self.target_patience)

    @model_validator(mode="after")
    def _some_bound(self) -> "Stop":
        if self.sim_time_s is None and self.max_versions is None:
            raise InputError("neither sim_time_s nor max_versions is set, so the run would never end",
                             accepted="sim_time_s (simulated seconds) and/or max_versions (model versions)")
        return self


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.=+,@\-]+")  # sweep variant names use = and +


class Output(Strict):
    folder: str = "reports"
    run_name: str | None = Field(default=None, max_length=120,
                                 description="the run folder's name inside `folder` (a plain name: no '/', no '..'); "
                                             "default: the scenario name")
    report: bool = True
    flush_rows: int = Field(default=20_000, ge=1, description="rows buffered before a Parquet flush")

    @field_validator("run_name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        """A name, never a path: a shared scenario must not aim the run folder (and --force) elsewhere."""
        if value is not None and (not _PLAIN_NAME.fullmatch(value) or set(value) <= {"."}):
            raise InputError("is not a plain folder name", value=value,
                             accepted="a name of letters, digits and _ . - = + , @ (no '/'), other than "
                                      "'.' and '..' (choose the parent folder with output.folder or --out)")
        return value


class Scenario(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", max_length=120)
    description: str = ""
    seed: int = Field(default=0, ge=0, lt=2**63)
    fleet: list[FleetGroup] = Field(min_length=1)
    network: Network = Field(default_factory=Network)
    workload: Workload
    algorithm: AlgorithmSpec = Field(default_factory=AlgorithmSpec)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    stop: Stop = Field(default_factory=Stop)
    output: Output = Field(default_factory=Output)
    faults: list[Fault] = Field(default_factory=list, description="link outages, server pauses, forced offline")
    timing_only: bool = Field(False, description=(
        "simulate time, memory, traffic and energy only, never train: what --timing-only does, for "
        "scenarios that only make sense that way (10,000 devices)"))

    @model_validator(mode="after")
    def _links_exist(self) -> "Scenario":
        known = ["ethernet", *self.network.access_points]
        for i, group in enumerate(self.fleet):
            if group.link not in known:
                raise InputError(
                    "unknown link", field=f"fleet[{i}].link", value=group.link,
                    accepted=", ".join(known) + " (access points are declared under network.access_points)",
                )
        for i, fault in enumerate(self.faults):
            if isinstance(fault, LinkDown) and fault.link != "server" and fault.link not in self.network.access_points:
                raise InputError(
                    "unknown link for a link_down fault", field=f"faults[{i}].link", value=fault.link,
                    accepted=", ".join(["server", *self.network.access_points]),
                )
        return self

    @property
    def num_devices(self) -> int:
        return sum(g.count for g in self.fleet)


def finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def load_scenario_file(path: Any) -> Scenario:
    """Read and validate a scenario YAML. A sweep or plan file given where a scenario is asked for (`run`,
    `validate`, `explain` on scenarios/sweeps/…) is named as such, with the command that takes it: read as a
    scenario it only said "at 'fleet': this required field is missing", which hides the mistake."""
    from simulator.config.loading import read_yaml, validate_data

    data = read_yaml(path)
    if isinstance(data, dict) and "base" in data and "fleet" not in data:
        kind, command = ("plan", "plan") if "catalogue" in data else ("sweep", "sweep")
        if "catalogue" not in data and not ({"grid", "zip", "seeds"} & set(data)):
            kind, command = "sweep or plan", "sweep` or `fleetsim plan"
        raise InputError(f"is a {kind} file (it has 'base' and no 'fleet'), not a scenario", file=path,
                         accepted=f"a scenario file (fleet, network, workload, …); `fleetsim {command} {path}` "
                                  f"takes this one")
    return validate_data(data, Scenario, file=path)
