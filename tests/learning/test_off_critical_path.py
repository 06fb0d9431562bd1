"""The server's work off the critical path (issue 16): evaluations in the learner's thread, merges
streamed result by result. Each must leave every number as it was: same bits, same version, same
simulated time."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import simulator
from simulator.config.workload import DatasetSpec, ModelSpec, PartitionSpec
from simulator.learning.learner import Learner
from simulator.learning.submodel import MergeSum, extract, merge
from simulator.learning.trainer import TrainingSettings
from tests.helpers.scenarios import executor_scenario

CNN = ModelSpec(name="cnn", preset="tiny")
DIGITS = DatasetSpec(name="digits", image_size=8)


def _learner(seed: int = 0) -> Learner:
    return Learner(CNN, DIGITS, PartitionSpec(kind="iid"), 6, TrainingSettings(batch_size=16, lr=0.05), seed=seed)


def _bits_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].view(torch.int32), b[k].view(torch.int32)) for k in a)


def _contributions(lrn: Learner) -> list:
    """Five sub-states of mixed widths and magnitudes spread over 2^-20..2^4 (so that the order of
    float64 additions shows in the last bits)."""
    gen = torch.Generator().manual_seed(3)
    out = []
    for i, ratio in enumerate((1.0, 0.5, 1.0, 0.75, 1.0)):
        plan = lrn.plan(i, 0, lrn.num_blocks, ratio)
        sub = extract(lrn.global_state, plan, lrn.param_axes)
        scale = lambda t: torch.randn(t.shape, generator=gen) * 2.0 ** torch.randint(-20, 5, t.shape, generator=gen)
        out.append(({k: scale(t).to(t.dtype) for k, t in sub.items()}, plan, 1.0 + 0.37 * i))
    return out


@pytest.mark.parametrize("mode", ["absolute", "delta", "damped"])
def test_streamed_sums_have_the_bits_of_the_merge_and_the_order_is_the_callers(mode: str) -> None:
    lrn = _learner()
    contributions = _contributions(lrn)
    kw = {"server_lr": 0.5} if mode == "damped" else {"base_weight": 0.25}
    norms = [float(10 + i) for i in range(len(contributions))]
    want, cover = merge(lrn.global_state, contributions, lrn.param_axes, lrn.num_blocks, mode=mode,
                        norm_weights=norms if mode == "damped" else None, **kw)
    sums = MergeSum(lrn.global_state, lrn.param_axes, lrn.num_blocks, mode=mode, **kw)
    for (sub, plan, w), m in zip(contributions, norms):
        sums.add(sub, plan, w, m if mode == "damped" else None)
    got, got_cover = sums.result()
    assert _bits_equal(got, want) and got_cover == cover
    # the same contributions added in another order change last bits of the float64 sums (rounding
    # to float32 hides that for all but ~2^-28 of the elements, so it is not a guarantee): a
    # streamed sum must keep the merge's order, not the order in which results came back
    backwards = MergeSum(lrn.global_state, lrn.param_axes, lrn.num_blocks, mode=mode, **kw)
    for (sub, plan, w), m in reversed(list(zip(contributions, norms))):
        backwards.add(sub, plan, w, m if mode == "damped" else None)
    assert sums._sums.keys() == backwards._sums.keys()
    assert any(not torch.equal(sums._sums[k][0], backwards._sums[k][0]) for k in sums._sums)


def test_merge_jobs_adds_in_the_order_given_whatever_order_results_were_computed_in() -> None:
    results = {}
    for name in ("streamed", "whole"):
        lrn = _learner()
        for j in range(4):
            lrn.dispatch_job(j, j, 0, lrn.num_blocks, 1.0)
            lrn.start(j, 2 + j)
        weighted = [(j, float(lrn.num_samples(j))) for j in range(4)]
        if name == "streamed":
            for j in reversed(range(4)):  # results in, last first (as a pool's longest-first order may be)
                lrn.result(j)
            lrn.merge_jobs(weighted)
        else:
            lrn.merge([(lrn.result(j), lrn._jobs[j].plan, w) for j, w in weighted])
        results[name] = lrn.global_state
    assert _bits_equal(results["streamed"], results["whole"])


def test_an_evaluation_started_before_a_merge_is_of_its_version_and_on_one_thread(monkeypatch) -> None:
    lrn = _learner()
    threads: list[int] = []
    real = Learner._evaluate

    def spy(self, state, version):
        threads.append(torch.get_num_threads())
        return real(self, state, version)

    monkeypatch.setattr(Learner, "_evaluate", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the main thread's count must not leak into the evaluation thread
    try:
        lrn.dispatch_job(0, 0, 0, lrn.num_blocks, 1.0)
        lrn.start(0, 4)
        v0 = lrn.evaluate_later()
        lrn.merge_jobs([(0, 1.0)])  # the global state moves on while v0 is (maybe) still evaluated
        v1 = lrn.evaluate()
    finally:
        torch.set_num_threads(before)
    first = v0.result()
    assert first.version == 0 and v1.version == 1 and first.accuracy != v1.accuracy
    assert first == _learner().evaluate()  # exactly what a learner still at version 0 says
    assert threads == [1, 1, 1]  # v0, v1 and the fresh learner's
    lrn.close()


@pytest.mark.slow
def test_deferred_evaluations_record_the_rows_a_waiting_run_records(tmp_path: Path, profile_dir: Path) -> None:
    """Without a target the rows are recorded once each evaluation is done; with one (never reached)
    each is waited for at once. Same times, versions and values, byte for byte."""
    runs = {}
    for name, stop in (("deferred", {}), ("waiting", {"target_accuracy": 0.999, "target_patience": 50})):
        scenario = executor_scenario(tmp_path, profile_dir)
        scenario["stop"].update(stop)
        run = simulator.run(scenario, out=tmp_path / name, report=False)
        assert run.summary["stop_reason"] == "max_versions"
        runs[name] = (run.run_dir / "evals.parquet").read_bytes()
    assert runs["deferred"] == runs["waiting"]
