"""`fleetsim validate` refuses what `run` would refuse about a user model: pruning a `module:Class`
model (one block, no prunable axes), naming the key to change — with or without importing it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.cli_runs import REPO, fleetsim

MODEL = """from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes=10, input_shape=(1, 8, 8)):
        super().__init__()
        c, h, w = input_shape
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 16), nn.ReLU(), nn.Linear(16, num_classes))

    def forward(self, x):
        return self.body(x)
"""


def _scenario(folder: Path, algorithm: dict) -> Path:
    (folder / "my_models.py").write_text(MODEL)
    data = yaml.safe_load((REPO / "scenarios" / "quickstart.yaml").read_text())
    data["workload"]["model"] = {"name": "my_models:Net"}
    data["workload"].pop("train_model", None)
    data["workload"].pop("plan_input_shape", None)
    data["algorithm"] = algorithm
    path = folder / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_pruning_a_plain_user_model_is_refused_by_validate_naming_the_key(tmp_path: Path) -> None:
    path = _scenario(tmp_path, {"name": "co-s2p"})
    unchecked = fleetsim("validate", str(path), cwd=tmp_path)  # not imported: it cannot know, and says so
    assert unchecked.returncode == 0 and "whether it can be pruned" in " ".join(unchecked.stdout.split())
    done = fleetsim("validate", "--import-plugins", str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert "'algorithm.name'" in message and "'my_models:Net' is a plain nn.Module" in message
    assert "width: importance" in message and "{width: none, depth: none}" in message
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_same_model_with_pruning_off_validates(tmp_path: Path) -> None:
    path = _scenario(tmp_path, {"name": "co-s2p", "pruning": {"width": "none", "depth": "none"}})
    done = fleetsim("validate", "--import-plugins", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


EXAMPLE = REPO / "docs" / "examples" / "my_block_models.py"


@pytest.mark.slow
def test_a_block_model_builder_of_ones_own_is_pruned_and_trained_like_a_family(tmp_path: Path) -> None:
    """The README's worked example: validate passes with Co-S²P, and a real run trains its three exits."""
    import shutil

    import simulator

    shutil.copy(EXAMPLE, tmp_path / "my_block_models.py")
    path = _scenario(tmp_path, {"name": "co-s2p"})
    data = yaml.safe_load(path.read_text())
    data["workload"]["model"] = {"name": "my_block_models:build_mlp", "kwargs": {"hidden": 32}}
    data["stop"] = {"max_versions": 4, "sim_time_s": 600}
    path.write_text(yaml.safe_dump(data))
    done = fleetsim("validate", "--import-plugins", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = simulator.run(path, out=tmp_path / "run", report=False)
    assert run.summary["complete"] and len(run.evals) == 5
    assert all(len(exits) == 3 for exits in run.evals.exit_accuracy)  # one exit per block, every evaluation
    assert run.updates.depth.max() == 3


def test_a_block_model_builder_gives_the_full_models_names_at_every_width_and_depth(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    import shutil

    from simulator.config.workload import ModelSpec
    from simulator.learning.models import build_model

    shutil.copy(EXAMPLE, tmp_path / "my_block_models.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ModelSpec(name="my_block_models:build_mlp", kwargs={"hidden": 64})
    full = dict(build_model(spec, 10, (1, 8, 8)).named_parameters())
    part = dict(build_model(spec, 10, (1, 8, 8), width_ratio=0.5, depth=2).named_parameters())
    assert set(part) < set(full) and "blocks.2.fc.weight" not in part
    assert full["blocks.0.fc.weight"].shape == (64, 64) and part["blocks.0.fc.weight"].shape == (32, 64)
    assert part["blocks.1.fc.weight"].shape == (32, 32) and part["exits.1.fc.weight"].shape == (10, 32)
