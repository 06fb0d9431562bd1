"""Checkpoint and resume by deterministic replay.

Why replay works: the event timeline of a run depends only on (scenario, seed) — never on what the
models learn (submodel sizes come from the planner, unit choice does not change timing, and the
only learning-dependent event is the target-accuracy stop, which replays from the saved
evaluations). So a checkpoint at simulated time T stores just the learning side: the global model,
the jobs in flight with their pinned inputs or finished results, the importance tracker and the
evaluations so far. ``fleetsim resume`` re-runs the event loop from t = 0 without training (fast),
restores the learner at the very event where the checkpoint was taken, and goes on training — so
the resumed run's traces are byte-identical to an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from simulator.errors import InputError

CHECKPOINT_FILE = "checkpoint.pt"
RUN_OPTIONS_FILE = "run.json"


@dataclass
class Checkpoint:
    time_s: float
    tick: int
    learner: dict[str, Any] | None
    evals: list[tuple[float, int, float, float, list[float]]] = field(default_factory=list)


def save_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint intact."""
    tmp = run_dir / (CHECKPOINT_FILE + ".tmp")
    torch.save(checkpoint.__dict__, tmp)
    os.replace(tmp, run_dir / CHECKPOINT_FILE)


def load_checkpoint(run_dir: Path) -> Checkpoint | None:
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        data = torch.load(path, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a damaged file is the user's to know about
        raise InputError(f"the checkpoint cannot be read ({type(exc).__name__})", file=path,
                         accepted="a checkpoint.pt written by `fleetsim run --checkpoint-every`") from None
    return Checkpoint(**data)


def write_run_options(run_dir: Path, options: dict[str, Any]) -> None:
    tmp = run_dir / (RUN_OPTIONS_FILE + ".tmp")
    tmp.write_text(json.dumps(options, indent=2, sort_keys=True))
    os.replace(tmp, run_dir / RUN_OPTIONS_FILE)


def read_run_options(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_OPTIONS_FILE
    if not path.exists():
        raise InputError("not a resumable run folder (no run.json)", file=run_dir,
                         accepted="a folder written by `fleetsim run` (0.1 or later)")
    return json.loads(path.read_text())


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
