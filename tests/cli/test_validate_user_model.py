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
@pytest.mark.parametrize("import_plugins", [False, True])
def test_pruning_a_user_model_is_refused_by_validate_naming_the_key(tmp_path: Path, import_plugins: bool) -> None:
    path = _scenario(tmp_path, {"name": "co-s2p"})
    done = fleetsim("validate", *(["--import-plugins"] if import_plugins else []), str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert "'algorithm.name'" in message and "'my_models:Net'" in message  # the user's model, not a stand-in
    assert "width: importance" in message and "{width: none, depth: none}" in message
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_same_model_with_pruning_off_validates(tmp_path: Path) -> None:
    path = _scenario(tmp_path, {"name": "co-s2p", "pruning": {"width": "none", "depth": "none"}})
    done = fleetsim("validate", "--import-plugins", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout
