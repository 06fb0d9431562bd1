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


def load_based_file(path: str | Path, spec_type: type[SpecT], loaded_type: type[LoadedT]) -> LoadedT:
    """Read and check the file as `spec_type`, then its base scenario; InputError naming the file
    (and the ``base`` field) on problems."""
    file = Path(path)
    spec = validate_data(read_yaml(file), spec_type, file=file)
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
