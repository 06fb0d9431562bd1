"""The trace cache's key covers every model definition file, including ones added later."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simulator.cost import cache as cost_cache
from simulator.config.workload import ModelSpec

SPEC, SHAPE = ModelSpec(name="mobilenet", preset="tiny"), (3, 16, 16)


def _key_with(root: Path, monkeypatch: pytest.MonkeyPatch) -> str | None:
    monkeypatch.setattr(cost_cache, "_SOURCE_ROOT", root)
    cost_cache._code_fingerprint.cache_clear()
    try:
        return cost_cache.cache_key(SPEC, 10, SHAPE, 1.0)
    finally:
        cost_cache._code_fingerprint.cache_clear()


def test_a_new_or_changed_model_file_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = cost_cache._SOURCE_ROOT
    (tmp_path / "learning").mkdir()
    shutil.copytree(root / "learning" / "models", tmp_path / "learning" / "models")
    for name in cost_cache.FINGERPRINT_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / name, tmp_path / name)
    base = _key_with(tmp_path, monkeypatch)
    assert (tmp_path / "learning" / "models" / "mobilenet.py").exists()
    (tmp_path / "learning" / "models" / "efficientnet.py").write_text("# a family added later\n")
    added = _key_with(tmp_path, monkeypatch)
    sub = tmp_path / "learning" / "models" / "zoo"
    sub.mkdir()
    (sub / "deep.py").write_text("# in a sub-package\n")
    nested = _key_with(tmp_path, monkeypatch)
    (tmp_path / "learning" / "models" / "mobilenet.py").write_text(
        (tmp_path / "learning" / "models" / "mobilenet.py").read_text() + "\n# changed\n")
    changed = _key_with(tmp_path, monkeypatch)
    assert len({base, added, nested, changed}) == 4


def test_mobilenet_is_a_builtin_and_cached() -> None:
    assert cost_cache.cache_key(SPEC, 10, SHAPE, 1.0) is not None
    other = ModelSpec(name="mobilenet", preset="tiny", width_mult=0.5)
    assert cost_cache.cache_key(other, 10, SHAPE, 1.0) != cost_cache.cache_key(SPEC, 10, SHAPE, 1.0)
