"""The sweep file: one base scenario, the keys to vary, the seeds, and where the runs go.

```yaml
name: straggler_policies            # default: the file name
base: ../quickstart.yaml            # a path relative to this file, or an inline scenario mapping
grid:                               # cartesian product, in this order
  algorithm.name: [fedavg, fedbuff]
  workload.partition.alpha: [0.1, 1.0]
zip:                                # varied together (equal lengths), crossed with the grid
  fleet[0].count: [2, 4, 8]
  fleet[1].count: [8, 4, 2]
seeds: [0, 1, 2]
timing_only: false
output: reports/sweeps/straggler    # default: reports/sweeps/<name>, relative to the current folder
```

Only the shape of the file is checked here; whether each variant is a valid scenario is checked in
:mod:`simulator.sweep.expand`, where an error can name the grid key that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, field_validator, model_validator

from simulator.config.numbers import NoBoolNumbers

from simulator.config.based_file import BasedFile, load_based_file
from simulator.errors import InputError
from simulator.sweep.keys import parse_key

RESERVED_KEYS = {"seed": "list the seeds under 'seeds:' instead"}


class SweepSpec(NoBoolNumbers):
    """The validated sweep file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]+$", max_length=120,
                             description="default: the sweep file's name without .yaml")
    description: str = ""
    base: str | dict[str, Any] = Field(description="scenario path (relative to the sweep file) or inline mapping")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key → values (cartesian product)")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key → values, varied together")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    timing_only: bool = False
    output: str | None = Field(default=None, description="sweep folder; default reports/sweeps/<name>")

    @field_validator("grid", "zip")
    @classmethod
    def _keys_parse(cls, value: dict[str, list[Any]], info: Any) -> dict[str, list[Any]]:
        for key, values in value.items():
            field = f"{info.field_name}.{key}"
            first = parse_key(key, field=field)[0]
            if first in RESERVED_KEYS:
                raise InputError(f"'{first}' cannot be swept: {RESERVED_KEYS[str(first)]}", field=field,
                                 accepted="scenario keys other than seed and output (list seeds under 'seeds:')")
            if not values:
                raise InputError("lists no values", field=field, value=values, accepted="a non-empty list")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds_valid(cls, value: list[int]) -> list[int]:
        if any(s < 0 for s in value):
            raise ValueError("seeds must be >= 0")
        if len(set(value)) != len(value):
            raise ValueError("seeds must not repeat")
        return value

    @model_validator(mode="after")
    def _zip_and_overlap(self) -> "SweepSpec":
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            shown = ", ".join(f"{k}: {len(v)}" for k, v in self.zip.items())
            raise InputError(f"every zip list must have the same length ({shown})", field="zip",
                             accepted="lists of equal length, varied together; use grid: for a product")
        both = sorted(set(self.grid) & set(self.zip))
        if both:
            raise InputError("a key appears in both grid and zip; list each key once",
                             field=f"zip.{both[0]}", accepted="each key under grid: or zip:, not both")
        return self


@dataclass(frozen=True)
class LoadedSweep(BasedFile[SweepSpec]):
    """A sweep file with its base scenario read (not yet validated as a Scenario)."""

    OUTPUT_DIR: ClassVar[str] = "sweeps"

    @property
    def sweep_dir(self) -> Path:
        """The sweep file's folder: relative paths in grid/zip values resolve against it."""
        return self.file_dir


def load_sweep(path: str | Path) -> LoadedSweep:
    """Read and check a sweep YAML and its base scenario file; InputError naming the file on problems."""
    return load_based_file(path, SweepSpec, LoadedSweep)
