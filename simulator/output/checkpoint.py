"""Checkpoint and resume by deterministic replay, in a file format that cannot run code.

Why replay works: the event timeline of a run depends only on (scenario, seed) — never on what the
models learn (submodel sizes come from the planner, unit choice does not change timing, and the
only learning-dependent event is the target-accuracy stop, which replays from the saved
evaluations). So a checkpoint at simulated time T stores just the learning side: the global model,
the jobs in flight with their pinned inputs or finished results, the importance tracker and the
evaluations so far. ``fleetsim resume`` re-runs the event loop from t = 0 without training (fast),
restores the learner at the very event where the checkpoint was taken, and goes on training — so
the resumed run's traces are byte-identical to an uninterrupted run's.

Why not pickle: a run folder is meant to be shared, and unpickling a stranger's ``checkpoint.pt``
runs whatever it says. ``checkpoint.safetensors`` holds every tensor (safetensors: a JSON header and
raw bytes) and, in the header's metadata, everything else as JSON. Reading it only ever builds
tensors, plain JSON values and three whitelisted record types (:data:`_RECORDS`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.errors import InputError

if TYPE_CHECKING:  # torch is imported when a checkpoint is written or read, not by the engine's import
    import torch

CHECKPOINT_FILE = "checkpoint.safetensors"
LEGACY_CHECKPOINT_FILE = "checkpoint.pt"  # pickled by fleetsim 0.1: never loaded
RUN_OPTIONS_FILE = "run.json"
_FORMAT = "fleetsim-checkpoint/1"


@dataclass
class Checkpoint:
    time_s: float
    tick: int
    learner: dict[str, Any] | None
    evals: list[tuple[float, int, float, float, list[float]]] = field(default_factory=list)


def _records() -> dict[str, type]:
    """The only types a checkpoint may name (imported lazily: learning is torch-heavy)."""
    from simulator.learning.pruning import ImportanceTracker
    from simulator.learning.submodel import SubmodelPlan
    from simulator.learning.trainer import TrainResult

    return {"SubmodelPlan": SubmodelPlan, "TrainResult": TrainResult, "ImportanceTracker": ImportanceTracker}


_TRACKER_FIELDS = ("sizes", "ema", "score", "last", "updates")


class _Encoder:
    """Python values → JSON-able tree + named tensors (each tensor object stored once)."""

    def __init__(self) -> None:
        import torch

        self._tensor_type = torch.Tensor
        self.tensors: dict[str, torch.Tensor] = {}
        self._names: dict[Any, str] = {}
        self._records = _records()

    def encode(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, self._tensor_type):
            return {"$tensor": self._tensor(value)}
        if isinstance(value, (list, tuple)):
            items = [self.encode(v) for v in value]
            return items if isinstance(value, list) else {"$tuple": items}
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in value):
                return {k: self.encode(v) for k, v in value.items()}
            return {"$items": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        name = type(value).__name__
        if self._records.get(name) is type(value):
            if dataclasses.is_dataclass(value):
                fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            else:
                fields = {key: getattr(value, key) for key in _TRACKER_FIELDS}
            return {"$record": name, "fields": self.encode(fields)}
        raise TypeError(f"a checkpoint cannot hold a {type(value).__name__}")

    def _tensor(self, tensor: torch.Tensor) -> str:
        t = tensor.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        key: Any = id(tensor) if t.numel() == 0 else (
            t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = f"t{len(self.tensors)}"
            self.tensors[name] = t.contiguous()
        return name


def _decode(node: Any, tensors: dict[str, torch.Tensor], records: dict[str, type]) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors, records) for v in node]
    if not isinstance(node, dict):
        return node
    if "$tensor" in node:
        return tensors[node["$tensor"]]
    if "$tuple" in node:
        return tuple(_decode(v, tensors, records) for v in node["$tuple"])
    if "$items" in node:
        return {_decode(k, tensors, records): _decode(v, tensors, records) for k, v in node["$items"]}
    if "$record" in node:
        cls = records[node["$record"]]  # KeyError for any other name: refused by the caller
        fields = _decode(node["fields"], tensors, records)
        if dataclasses.is_dataclass(cls):
            return cls(**fields)
        obj = cls.__new__(cls)
        for key in _TRACKER_FIELDS:
            setattr(obj, key, fields[key])
        return obj
    return {k: _decode(v, tensors, records) for k, v in node.items()}


def save_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint intact."""
    from safetensors.torch import save

    encoder = _Encoder()
    meta = encoder.encode({"time_s": checkpoint.time_s, "tick": checkpoint.tick, "learner": checkpoint.learner,
                           "evals": checkpoint.evals})
    header = {"format": _FORMAT, "data": json.dumps(meta, separators=(",", ":"))}
    try:
        data = save(encoder.tensors, metadata=header)
    except RuntimeError:  # tensors sharing memory in a way safetensors refuses: store copies
        data = save({k: v.clone() for k, v in encoder.tensors.items()}, metadata=header)
    tmp = run_dir / (CHECKPOINT_FILE + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, run_dir / CHECKPOINT_FILE)


def load_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The run's checkpoint, or None if it has none; InputError for anything else (never executed)."""
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        if (run_dir / LEGACY_CHECKPOINT_FILE).exists():
            raise InputError("holds a pickled checkpoint.pt (fleetsim 0.1's format); fleetsim never loads pickles "
                             "from a run folder, since unpickling can run any code; nothing was changed",
                             file=run_dir / LEGACY_CHECKPOINT_FILE,
                             accepted=f"a {CHECKPOINT_FILE} written by `fleetsim run --checkpoint-every`, or run "
                                      "the scenario again")
        return None
    accepted = f"a {CHECKPOINT_FILE} written by `fleetsim run --checkpoint-every`"
    try:
        data = _read(path)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged or crafted file is the user's to know about
        raise InputError(f"is not a fleetsim checkpoint (it cannot be read as safetensors: {type(exc).__name__}); "
                         "nothing in it was run and nothing was changed", file=path, accepted=accepted) from None
    return data


def _read(path: Path) -> Checkpoint:
    from safetensors import safe_open

    accepted = f"a {CHECKPOINT_FILE} written by `fleetsim run --checkpoint-every`"
    if not path.is_file():
        raise InputError("is not a regular file", file=path, accepted=accepted)
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
        if header.get("format") != _FORMAT:
            raise InputError("is a safetensors file but not a fleetsim checkpoint; nothing was changed", file=path,
                             accepted=accepted)
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    try:
        meta = _decode(json.loads(header["data"]), tensors, _records())
        return Checkpoint(time_s=float(meta["time_s"]), tick=int(meta["tick"]), learner=meta["learner"],
                          evals=[tuple(row) for row in meta["evals"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"is a damaged fleetsim checkpoint ({type(exc).__name__}: {exc}); nothing was changed",
                         file=path, accepted=accepted) from None


def write_run_options(run_dir: Path, options: dict[str, Any]) -> None:
    tmp = run_dir / (RUN_OPTIONS_FILE + ".tmp")
    tmp.write_text(json.dumps(options, indent=2, sort_keys=True))
    os.replace(tmp, run_dir / RUN_OPTIONS_FILE)


def read_run_options(run_dir: Path) -> dict[str, Any]:
    from simulator.config.input_files import read_input_text

    path = run_dir / RUN_OPTIONS_FILE
    if not path.exists():
        raise InputError("not a resumable run folder (no run.json)", file=run_dir,
                         accepted="a folder written by `fleetsim run` (0.1 or later)")
    try:
        options = json.loads(read_input_text(path, "the run.json written by `fleetsim run`"))
    except ValueError:
        options = None
    if not isinstance(options, dict) or not isinstance(options.get("base_dir"), str):
        raise InputError("is not a run.json written by fleetsim", file=path,
                         accepted="the run.json written by `fleetsim run`")
    return options


class ReplayClock:
    """Which evaluations to replay and when the learner goes live again."""

    def __init__(self, checkpoint: Checkpoint | None) -> None:
        self.checkpoint = checkpoint
        self.live = checkpoint is None
        self._evals = list(checkpoint.evals) if checkpoint else []

    def next_eval(self) -> tuple[float, int, float, float, list[float]]:
        if not self._evals:
            raise RuntimeError("replay asked for more evaluations than the checkpoint holds")
        return self._evals.pop(0)
