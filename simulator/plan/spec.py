"""The plan file: a base scenario, what can be bought, the goal, the objective and the search.

```yaml
name: buy_fleet                       # default: the file name
base: ../quickstart.yaml              # network, workload, algorithm, seed; its fleet is replaced
catalogue:                            # what can be bought (profile paths relative to this file)
  - {profile: jetson-nano-4gb,      unit_price: 129,  link: ap-lab,   max_count: 40}
  - {profile: jetson-orin-nano-8gb, unit_price: 299,  link: ap-lab,   max_count: 20}
  - {profile: jetson-agx-orin-64gb, unit_price: 1799, link: ethernet, max_count: 4, power_mode: 30w}
goal: {versions: 200, deadline_s: 7200}   # or {target_accuracy: 0.85, deadline_s: 7200}
minimise: price                       # or energy_j, or time_s
constraints: {max_price: 20000, max_energy_j: 5.0e7}   # optional
search: {method: auto, budget_runs: 64, batch: 8, sampler: tpe}   # optional
```

Only the shape is checked here. Whether the base and each catalogue entry make a valid scenario
(profiles exist, links are in the base's network, power modes exist) is checked in
:mod:`simulator.plan.feasibility`, where an error can name the catalogue entry at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simulator.config.based_file import BasedFile, load_based_file
from simulator.config.scenario import MIN_DURATION_S, Availability, AlwaysOn
from simulator.errors import InputError

NAME_PATTERN = r"^[A-Za-z0-9_.\-]+$"
MAX_COUNT = 1_000_000
OBJECTIVES = ("price", "energy_j", "time_s")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


class CatalogueEntry(_Strict):
    """One kind of device that can be bought: a profile, its price, where it plugs in, how many."""

    name: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=60,
                             description="a label for this entry; default: the profile's name (file stem for a path)")
    profile: str = Field(description="a builtin profile name (see `fleetsim profiles`) or a path to a YAML")
    unit_price: float = Field(ge=0, le=1e12, description="price of one device, in any currency (the same for all)")
    link: str = Field(default="ethernet", description="'ethernet' or an access point of the base's network")
    max_count: int = Field(ge=0, le=MAX_COUNT, description="at most this many can be bought")
    min_count: int = Field(default=0, ge=0, le=MAX_COUNT, description="at least this many must be bought")
    power_mode: str | None = Field(default=None, description="default: the profile's default power mode")
    overrides: dict[str, Any] = Field(default_factory=dict, description="fields of the profile to override")
    availability: Availability = Field(default_factory=AlwaysOn, discriminator="kind")

    @model_validator(mode="after")
    def _min_within_max(self) -> "CatalogueEntry":
        if self.min_count > self.max_count:
            raise InputError("min_count is larger than max_count", field="min_count", value=self.min_count,
                             accepted=f"0 … {self.max_count} (the entry's max_count)")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        text = self.profile.strip()
        return Path(text).stem if text.endswith((".yaml", ".yml")) or "/" in text else text


class Goal(_Strict):
    """What a fleet must reach by the deadline: a number of model versions, or an accuracy."""

    versions: int | None = Field(default=None, ge=1, le=10**9, description="model versions (merges) to reach")
    target_accuracy: float | None = Field(default=None, gt=0, le=1,
                                          description="accuracy to reach (real training of the proxy model)")
    deadline_s: float = Field(ge=MIN_DURATION_S, le=1e12, description="simulated seconds to reach it in")

    @model_validator(mode="after")
    def _one_target(self) -> "Goal":
        if (self.versions is None) == (self.target_accuracy is None):
            raise InputError("a goal names exactly one of versions or target_accuracy",
                             accepted="{versions: N, deadline_s: T} or {target_accuracy: a, deadline_s: T}")
        return self

    @property
    def kind(self) -> str:
        return "versions" if self.versions is not None else "accuracy"

    def text(self) -> str:
        what = f"{self.versions:,} versions" if self.versions is not None else f"accuracy {self.target_accuracy:g}"
        return f"{what} by {self.deadline_s:,.0f} s"


class Constraints(_Strict):
    max_price: float | None = Field(default=None, ge=0, le=1e15, description="fleets costing more are not run")
    max_energy_j: float | None = Field(default=None, gt=0, le=1e18, description="energy to the goal, J")


class Search(_Strict):
    """How compositions are searched. The defaults suit catalogues of a few kinds."""

    method: Literal["auto", "enumerate", "optuna"] = Field(
        default="auto", description="auto: enumerate when the candidates left after screening are at most "
                                    "enumerate_max, else Optuna")
    budget_runs: int = Field(default=64, ge=1, le=1_000_000, description=(
        "most candidates simulated timing-only (an accuracy goal's finalists are trained on top of these)"))
    enumerate_max: int | None = Field(default=None, ge=0, le=1_000_000,
                                      description="largest space enumerated (default: budget_runs)")
    sampler: Literal["tpe", "nsga2"] = Field(
        default="tpe", description="tpe: single objective (minimise); nsga2: Pareto search over price, time, energy")
    batch: int = Field(default=8, ge=1, le=4096, description=(
        "candidates asked of the optimiser at once; fixed here (not by --jobs) so that parallelism never "
        "changes which candidates are evaluated"))
    finalists: int = Field(default=4, ge=1, le=100_000,
                           description="accuracy goals: most candidates trained for real after the timing screen")
    screen_versions: int = Field(default=1, ge=1, le=10**9, description=(
        "accuracy goals: a candidate is trained only if its timing-only run reaches this many versions by "
        "the deadline"))


class PlanSpec(_Strict):
    """The validated plan file (see the module docstring)."""

    name: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=120,
                             description="default: the plan file's name without .yaml")
    description: str = ""
    base: str | dict[str, Any] = Field(description="scenario path (relative to the plan file) or inline mapping")
    catalogue: list[CatalogueEntry] = Field(min_length=1, max_length=64)
    goal: Goal
    minimise: Literal["price", "energy_j", "time_s"] = "price"
    constraints: Constraints = Field(default_factory=Constraints)
    search: Search = Field(default_factory=Search)
    seed: int | None = Field(default=None, ge=0, lt=2**63, description="default: the base scenario's seed")
    output: str | None = Field(default=None, description="plan folder; default reports/plans/<name>")

    @field_validator("catalogue")
    @classmethod
    def _labels_distinct(cls, value: list[CatalogueEntry]) -> list[CatalogueEntry]:
        seen: dict[str, int] = {}
        for i, entry in enumerate(value):
            if entry.label in seen:
                raise InputError(
                    f"two catalogue entries are both called '{entry.label}' (entries {seen[entry.label]} and {i})",
                    field=f"[{i}].name", value=entry.name if entry.name else ...,
                    accepted="a distinct name: for each entry (e.g. nano-5w and nano-maxn for two power modes)")
            seen[entry.label] = i
        if all(e.max_count == 0 for e in value):
            raise InputError("every entry has max_count 0, so there is nothing to buy", field="[0].max_count",
                             value=0, accepted="a max_count of at least 1 for some entry")
        return value


@dataclass(frozen=True)
class LoadedPlan(BasedFile[PlanSpec]):
    """A plan file with its base scenario read (not yet validated as a Scenario)."""

    OUTPUT_DIR: ClassVar[str] = "plans"

    @property
    def plan_dir(self) -> Path:
        """The plan file's folder: catalogue profile paths resolve against it."""
        return self.file_dir

    @property
    def seed(self) -> int:
        if self.spec.seed is not None:
            return self.spec.seed
        seed = self.base.get("seed", 0)
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0

    @property
    def labels(self) -> list[str]:
        return [e.label for e in self.spec.catalogue]


def load_plan(path: str | Path) -> LoadedPlan:
    """Read and check a plan YAML and its base scenario file; InputError naming the file on problems."""
    return load_based_file(path, PlanSpec, LoadedPlan)


def plan_schema() -> dict[str, Any]:
    """The plan file's JSON Schema (for editors)."""
    return PlanSpec.model_json_schema()
