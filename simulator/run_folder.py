"""The run folder on disk: where it goes, never overwriting a finished run by accident, atomic writes."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import InputError


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a run folder is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def prepare_run_dir(run_dir: Path, force: bool) -> Path:
    """Create an empty run folder; an existing non-empty one is an error unless `force`."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError("the output path exists and is not a folder", field="output", value=str(run_dir),
                         accepted="a new or empty folder path")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            raise InputError(
                "the run folder already exists and is not empty; nothing was overwritten",
                field="output", value=str(run_dir),
                accepted="another --out folder, another output.run_name, or --force to replace it",
            )
        shutil.rmtree(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"the run folder cannot be written ({exc.strerror})", field="output",
                         value=str(run_dir), accepted="a folder you can write to") from None
    return run_dir
