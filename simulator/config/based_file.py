"""A file built on a base scenario (a sweep file, a plan file): the file, its checked spec and the
base scenario it names, read but not yet validated as a Scenario.

Why one class: the sweep and the plan read their ``base:`` the same way (a path relative to the file,
or an inline mapping) and must report a missing or malformed base the same way; they differ only in
their spec and where their results go by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from simulator.config.loading import read_yaml, validate_data
from simulator.errors import InputError

SpecT = TypeVar("SpecT", bound=BaseModel)
LoadedT = TypeVar("LoadedT", bound="BasedFile[Any]")


@dataclass(frozen=True)
class BasedFile(Generic[SpecT]):
    """The file, its spec (which has ``name``, ``base`` and ``output`` fields) and its base scenario."""

    spec: SpecT
    file: Path                  # the sweep or plan file
    base: dict[str, Any]        # the base scenario mapping
    base_file: Path | None      # where the base came from (None: inline)
    base_dir: Path              # relative paths inside the base resolve against this folder

    OUTPUT_DIR: ClassVar[str] = "runs"   # default output: reports/<OUTPUT_DIR>/<name>

    @property
    def name(self) -> str:
        return getattr(self.spec, "name", None) or self.file.stem

    @property
    def file_dir(self) -> Path:
        """The file's own folder: relative paths written in it resolve against this."""
        return self.file.resolve().parent

    def default_output(self) -> Path:
        output = getattr(self.spec, "output", None)
        return Path(output) if output else Path("reports") / self.OUTPUT_DIR / self.name


def _refuse_other_kind(data: Any, file: Path, kind: str) -> None:
    """A scenario, or a plan where a sweep is asked for (or a sweep where a plan is), is named as such with
    the command that takes it: read as a `kind` it only said "at 'base': this required field is missing (7
    more problems…)" or "unknown key 'catalogue'", which hides the mistake (load_scenario_file does the same
    the other way round)."""
    if not isinstance(data, dict):
        return
    keys = set(data)
    found = None
    if "fleet" in keys and "base" not in keys:
        found, has, command = "scenario", "it has 'fleet' and no 'base'", "run"
    elif kind == "sweep" and "catalogue" in keys:
        found, has, command = "plan", "it has 'catalogue'", "plan"
    elif kind == "plan" and "catalogue" not in keys and {"grid", "zip", "seeds"} & keys:
        found, has, command = "sweep", f"it has '{sorted({'grid', 'zip', 'seeds'} & keys)[0]}' and no 'catalogue'", "sweep"
    if found is not None:
        raise InputError(f"is a {found} file ({has}), not a {kind} file", file=file,
                         accepted=f"a {kind} file (base, …; `fleetsim schema --kind {kind}`); "
                                  f"`fleetsim {command} {file}` takes this one")


def load_based_file(path: str | Path, spec_type: type[SpecT], loaded_type: type[LoadedT]) -> LoadedT:
    """Read and check the file as `spec_type`, then its base scenario; InputError naming the file
    (and the ``base`` field) on problems."""
    file = Path(path)
    data = read_yaml(file)
    _refuse_other_kind(data, file, "plan" if "catalogue" in spec_type.model_fields else "sweep")
    spec = validate_data(data, spec_type, file=file)
    base_spec = getattr(spec, "base")
    if not isinstance(base_spec, str):
        return loaded_type(spec, file, dict(base_spec), None, file.resolve().parent)
    base_file = Path(base_spec)
    if not base_file.is_absolute():
        base_file = file.resolve().parent / base_file
    if not base_file.is_file():
        raise InputError("the base scenario file is not found", file=file, field="base", value=base_spec,
                         accepted=f"a scenario YAML path relative to {file.name}, or an inline mapping")
    base = read_yaml(base_file)
    if not isinstance(base, dict):
        raise InputError("the base scenario must be a mapping of keys to values", file=base_file,
                         value=base, accepted="a scenario YAML (see `fleetsim schema`)")
    return loaded_type(spec, file, base, base_file, base_file.resolve().parent)
