"""A run that stops with jobs under way books the phases in progress up to the stop (issue 13).

Two boards on their own slow Ethernet ports (no latency, a huge server link) run a semi-asynchronous
policy that merges every arrival (K = 1), so each device repeats download → compute → upload with no
wait: its timeline is the closed form ``[T down, C compute, T up]*`` with T = model bits ÷ port rate.
The run stops at a time S chosen so that the fast board is computing and the slow one uploading.
Before the fix those last phases were booked as idle (a device that computed 90 % of the time was
reported at 56 %); now compute, communication, energy and the events row of each phase in progress
run up to S, with outcome ``unfinished``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import simulator
from simulator.cost import model as cost
from simulator.config.workload import ModelSpec
from tests.helpers.scenarios import base_scenario, write_profile

RATE_BPS = 0.1e6  # each board's own port
STEPS = 64 // 16
BUSY_W, IDLE_W = 10.0, 2.0


def _transfer_s() -> float:
    spec = ModelSpec(name="mlp", preset="tiny")
    return cost.model_bytes(cost.model_cost(spec, 10, (1, 8, 8), exits="final")) * 8 / RATE_BPS


def _booked(stop_s: float, transfer_s: float, compute_s: float) -> tuple[float, float, str, float]:
    """(compute, comm, phase in progress at the stop, when it began) for the cycle [T, C, T]*."""
    compute = comm = 0.0
    t = 0.0
    while True:
        for phase, length in (("download", transfer_s), ("compute", compute_s), ("upload", transfer_s)):
            end = t + length
            part = min(end, stop_s) - t
            if phase == "compute":
                compute += part
            else:
                comm += part
            if end >= stop_s:
                return compute, comm, phase, t
            t = end


def _stop_time(transfer_s: float) -> float:
    """A stop in the slow board's first upload (mid-way) at which the fast board is mid-compute."""
    for fraction in np.linspace(0.1, 0.9, 81):
        stop_s = transfer_s + 8.0 + fraction * transfer_s
        *_, phase, began = _booked(stop_s, transfer_s, 2.0)
        if phase == "compute" and 0.2 < stop_s - began < 1.8:
            return float(stop_s)
    raise AssertionError("no stop time puts the fast board in compute")


@pytest.mark.slow
def test_phases_in_progress_at_the_stop_are_booked_as_what_they_are(tmp_path: Path, profile_dir: Path) -> None:
    transfer_s = _transfer_s()
    stop_s = _stop_time(transfer_s)
    fast = write_profile(profile_dir, "fast", step_s=0.5, busy_w=BUSY_W, idle_w=IDLE_W)
    slow = write_profile(profile_dir, "slow", step_s=2.0, busy_w=BUSY_W, idle_w=IDLE_W)
    scenario = base_scenario(tmp_path, [{"profile": str(fast), "count": 1}, {"profile": str(slow), "count": 1}])
    scenario["network"]["ethernet"] = {"rate_mbps": RATE_BPS / 1e6, "latency": {"mean_ms": 0.0}}
    scenario["algorithm"] = {"name": "fedavg", "aggregation": {"policy": "semi-async", "k": 1, "max_staleness": None}}
    scenario["stop"] = {"sim_time_s": stop_s}
    run = simulator.run(scenario, timing_only=True)
    assert run.summary["makespan_s"] == pytest.approx(stop_s)

    devices = run.devices.set_index("profile")
    events = run.events
    for profile, step_s, phase_at_stop in (("fast", 0.5, "compute"), ("slow", 2.0, "upload")):
        compute, comm, phase, began = _booked(stop_s, transfer_s, STEPS * step_s)
        assert phase == phase_at_stop
        d = devices.loc[profile]
        assert d.compute_s == pytest.approx(compute, rel=1e-9)
        assert d.comm_s == pytest.approx(comm, rel=1e-9)
        assert d.idle_s == pytest.approx(0.0, abs=1e-9)  # it never waited: nothing of S is idle
        assert d.utilization == pytest.approx(compute / stop_s, rel=1e-9)
        assert d.energy_compute_j == pytest.approx(BUSY_W * compute, rel=1e-9)
        assert d.energy_comm_j == pytest.approx(IDLE_W * comm, rel=1e-9)
        assert d.energy_j == pytest.approx(BUSY_W * compute + IDLE_W * comm, rel=1e-9)
        last = events[events.profile == profile].sort_values("start_s").iloc[-1]
        assert (last.phase, last.outcome) == (phase_at_stop, "unfinished")
        assert last.start_s == pytest.approx(began, rel=1e-9) and last.end_s == pytest.approx(stop_s)

    # the slow board's upload got (S − start) / T of the update's bytes; the fast board's compute the
    # same share of its FLOPs
    up = events[(events.profile == "slow") & (events.phase == "upload")].iloc[-1]
    full_up = run.updates[run.updates.job_id == up.job_id].upload_bytes.iloc[0]
    assert up.bytes == pytest.approx((stop_s - up.start_s) / transfer_s * full_up, abs=1)
    done = events[(events.profile == "fast") & (events.phase == "compute") & (events.outcome == "done")]
    unfinished = events[(events.profile == "fast") & (events.outcome == "unfinished")].iloc[0]
    assert unfinished.flops == pytest.approx(done.flops.iloc[0] * (stop_s - unfinished.start_s) / (STEPS * 0.5))

    # the fleet's figures and the per-phase energy add up
    s = run.summary
    assert s["fleet_utilization"] == pytest.approx(devices.compute_s.sum() / (2 * stop_s), rel=1e-9)
    assert sum(s["energy_by_phase_j"].values()) == pytest.approx(s["energy_j"], rel=1e-12)
    assert run.updates.outcome.value_counts()["unfinished"] == 2
