"""The on-disk trace cache returns exactly what a fresh trace gives, and never breaks a run.

(That the key moves when the tracer, the cost model or a model file changes: tests/cost/test_cache_fingerprint.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.cost import model as cost
from simulator.cost import cache as cost_cache
from simulator.cost import meta_trace as cost_trace
from simulator.config.workload import ModelSpec

SPEC = ModelSpec(name="vit", preset="tiny")
SHAPE = (3, 32, 32)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLEETSIM_CACHE_DIR", str(tmp_path))
    cost_cache.trace.cache_clear()
    yield tmp_path / "cost"
    cost_cache.trace.cache_clear()


def _fail(*args: object) -> None:
    raise AssertionError("traced although the disk cache holds this model")


def test_a_cached_trace_equals_a_fresh_one_and_skips_tracing(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cold = cost.model_cost(SPEC, 10, SHAPE, width_ratio=0.5, depth=2)
    assert len(list(cache.glob("*.json"))) == 1
    cost_cache.trace.cache_clear()
    monkeypatch.setattr(cost_trace, "trace_on_meta", _fail)
    warm = cost.model_cost(SPEC, 10, SHAPE, width_ratio=0.5, depth=2)
    assert warm == cold
    assert warm.gemm_flops_by_width and warm.elementwise_bytes_per_sample > 0 and warm.ops_per_step > 0


def test_each_width_ratio_and_spec_has_its_own_entry(cache: Path) -> None:
    a = cost.model_cost(SPEC, 10, SHAPE, width_ratio=0.5)
    b = cost.model_cost(SPEC, 10, SHAPE, width_ratio=0.25)
    c = cost.model_cost(ModelSpec(name="cnn", preset="tiny"), 10, SHAPE, width_ratio=0.5)
    assert len(list(cache.glob("*.json"))) == 3
    assert a.params != b.params and a.params != c.params


@pytest.mark.slow
def test_a_corrupt_entry_is_traced_again_and_repaired(cache: Path) -> None:
    fresh = cost.model_cost(SPEC, 10, SHAPE)
    (entry,) = cache.glob("*.json")
    older = '[{"params": 1, "fwd_flops_per_sample": 2.0, "activation_bytes_per_sample": 3.0}]'  # format 1
    for damage in ("{not json", '[{"params": 1}]', '"a string"', older):
        entry.write_text(damage)
        cost_cache.trace.cache_clear()
        assert cost.model_cost(SPEC, 10, SHAPE) == fresh
    assert cost_cache.load(entry.stem) is not None


def test_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETSIM_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cost_cache.trace.cache_clear()
    try:
        cost.model_cost(SPEC, 10, SHAPE)
    finally:
        cost_cache.trace.cache_clear()
    assert cost_cache.cache_dir() is None
    assert not any(tmp_path.iterdir())


def test_user_models_are_never_cached() -> None:
    assert cost_cache.cache_key(ModelSpec(name="mypkg.models:Net"), 10, SHAPE, 1.0) is None
    assert cost_cache.cache_key(SPEC, 10, SHAPE, 1.0) != cost_cache.cache_key(SPEC, 10, SHAPE, 0.5)
    assert cost_cache.cache_key(SPEC, 10, SHAPE, 1.0) != cost_cache.cache_key(SPEC, 100, SHAPE, 1.0)


def test_an_unwritable_cache_does_not_break_planning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("FLEETSIM_CACHE_DIR", str(blocker))
    cost_cache.trace.cache_clear()
    try:
        assert cost.model_cost(SPEC, 10, SHAPE).params > 0
    finally:
        cost_cache.trace.cache_clear()
