"""Start-up (issue 16 point 4): the commands people run from editors and scripts import no torch.

Behaviour, not timing: each command runs in a fresh interpreter and reports whether `torch` ended up in
sys.modules (benchmarks/startup.py measures the wall times), and which of the other heavy packages only
a run needs (:data:`KEPT_OUT`: pandas ~0.3 s, which only reading a trace table back needs;
scikit-learn ~1.3 s, which only loading a dataset's features needs; pyarrow ~0.15 s with its compute
and parquet modules, which only writing or reading traces needs; plotly, which only a report needs) it
imported. validate, explain
with its plan and a timing-only run need torch only to trace a model the plan cache does not hold: each
is run against an empty cache (it must trace: torch) and again against the cache it filled (no torch),
and both runs must say or write the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.config.workload import ModelSpec
from tests.helpers.cli_runs import REPO

KEPT_OUT = ("pandas", "sklearn", "pyarrow", "plotly")  # imported by no command below, cold cache or warm
SHIPPED = ("scenarios/quickstart.yaml", "scenarios/paper_testbed.yaml", "scenarios/paper_testbed_sequence.yaml",
           "scenarios/scale_10k.yaml")

PROBE = (
    "import runpy, sys, json\n"
    "watched = json.loads(sys.argv[2])\n"
    "sys.argv = ['fleetsim'] + json.loads(sys.argv[1])\n"
    "code = 0\n"
    "try:\n"
    "    runpy.run_module('simulator.cli', run_name='__main__')\n"
    "except SystemExit as stop:\n"
    "    code = stop.code or 0\n"
    "also = [m for m in watched if m in sys.modules]\n"
    "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules, 'also': also}), file=sys.stderr)\n"
)


def probe(*args: str, cache: Path | None = None, stdout: list[str] | None = None,
          watched: tuple[str, ...] = KEPT_OUT) -> dict:
    """Run `fleetsim *args` in a fresh interpreter (with the plan cache at `cache`, if given); its exit
    code, whether torch was imported and which of `watched` (KEPT_OUT unless given) were. `stdout`, if
    given, receives what the command printed."""
    env = {**os.environ, "COLUMNS": "200"}
    if cache is not None:
        env["FLEETSIM_CACHE_DIR"] = str(cache)
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(args)), json.dumps(list(watched))],
                          capture_output=True, text=True, cwd=REPO, timeout=600, env=env)
    if stdout is not None:
        stdout.append(proc.stdout)
    return json.loads(proc.stderr.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("--help",), ("--version",), ("schema",), ("schema", "--kind", "sweep"), ("profiles",),
    ("profiles", "--format", "json"), ("explain", "scenarios/quickstart.yaml", "--no-plan"), ("run", "--help"),
])
def test_command_does_not_import_torch(args: tuple[str, ...]) -> None:
    result = probe(*args)
    if args[:3] == ("schema", "--kind", "sweep"):  # simulator.sweep imports its pandas results table (not a
        # start-up target; that import is the sweep's), and importing pandas imports pyarrow
        result["also"] = [m for m in result["also"] if m not in ("pandas", "pyarrow")]
    assert result == {"code": 0, "torch": False, "also": []}


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("--help",), ("schema",), ("profiles",), ("explain", "scenarios/quickstart.yaml", "--no-plan"),
])
def test_a_command_that_reads_no_data_does_not_import_numpy(args: tuple[str, ...]) -> None:
    """NumPy (~0.1 s) is for shards, latencies and the world a run builds; these commands read the
    schemas, the profiles and the policies' Params only (server.policy names NumPy in an annotation)."""
    assert probe(*args, watched=("numpy",)) == {"code": 0, "torch": False, "also": []}


@pytest.mark.slow
def test_validate_does_not_import_torch(tmp_path: Path) -> None:
    """Every shipped scenario: cold, the planning models are traced (torch, it must); warm, nothing is
    imported for them, and validate says the same."""
    cold_out: list[str] = []
    warm_out: list[str] = []
    assert probe("validate", *SHIPPED, cache=tmp_path, stdout=cold_out) == {"code": 0, "torch": True, "also": []}
    assert probe("validate", *SHIPPED, cache=tmp_path, stdout=warm_out) == {"code": 0, "torch": False, "also": []}
    assert warm_out == cold_out
    assert [line.split(":")[0] for line in warm_out[0].splitlines()] == [f"ok {f}" for f in SHIPPED]


@pytest.mark.slow
def test_validate_refuses_a_bad_fleet_before_anything_imports_torch(tmp_path: Path) -> None:
    """K larger than the fleet is found from the config and the profiles alone: exit 2 and no torch,
    even with the plan cache off."""
    import yaml

    data = yaml.safe_load((REPO / "scenarios" / "quickstart.yaml").read_text())
    data["algorithm"]["aggregation"]["k"] = 99
    bad = tmp_path / "k99.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert probe("validate", str(bad), cache=Path("off")) == {"code": 2, "torch": False, "also": []}


@pytest.mark.slow
def test_explain_with_its_plan_does_not_import_torch_when_the_cache_is_warm(tmp_path: Path) -> None:
    cold_out: list[str] = []
    warm_out: list[str] = []
    args = ("explain", "scenarios/quickstart.yaml", "--format", "json")
    assert probe(*args, cache=tmp_path, stdout=cold_out) == {"code": 0, "torch": True, "also": []}
    assert probe(*args, cache=tmp_path, stdout=warm_out) == {"code": 0, "torch": False, "also": []}
    assert json.loads(warm_out[0]) == json.loads(cold_out[0])
    assert json.loads(warm_out[0])["plan"], "the plan per group is there"


RUN = (
    "import sys, simulator\n"
    "simulator.run(sys.argv[1], out=sys.argv[2], timing_only=True, report=False)\n"
    "print(json.dumps({'torch': 'torch' in sys.modules}))\n"
)


def _timing_run(scenario: str, out: Path, cache: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", "import json\n" + RUN, scenario, str(out)], capture_output=True,
                          text=True, cwd=REPO, timeout=600, env={**os.environ, "FLEETSIM_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_timing_only_run_with_a_warm_cache_does_not_import_torch(tmp_path: Path) -> None:
    """simulator.run(timing_only=True) of the quickstart: cold it traces ViT-B (torch); warm it imports
    no torch at all, and writes byte-identical traces and summary."""
    cache = tmp_path / "cache"
    assert _timing_run("scenarios/quickstart.yaml", tmp_path / "cold", cache) == {"torch": True}
    assert _timing_run("scenarios/quickstart.yaml", tmp_path / "warm", cache) == {"torch": False}
    written = sorted(p.name for p in (tmp_path / "cold").iterdir())
    assert {"events.parquet", "updates.parquet", "devices.parquet", "versions.parquet", "summary.json"} <= set(written)
    assert sorted(p.name for p in (tmp_path / "warm").iterdir()) == written
    for name in written:
        if name not in ("run.json", ".fleetsim-run"):  # its own folder; when it was made
            assert (tmp_path / "warm" / name).read_bytes() == (tmp_path / "cold" / name).read_bytes(), name


@pytest.mark.parametrize("spec, shape", [
    (ModelSpec(name="resnet", preset="tiny"), (3, 16, 16)),
    (ModelSpec(name="resnet", preset="resnet18"), (3, 32, 32)),
    (ModelSpec(name="mobilenet", arch="v3-small"), (3, 32, 32)),
    (ModelSpec(name="cnn", preset="tiny"), (1, 16, 16)),
    (ModelSpec(name="mlp"), (1, 8, 8)),
    (ModelSpec(name="vit", preset="tiny"), (3, 16, 16)),
    (ModelSpec(name="text-transformer", preset="tiny"), (16,)),
])
def test_the_blocks_of_a_trace_are_the_models_full_depth(spec: ModelSpec, shape: tuple[int, ...]) -> None:
    """The engine counts the planning model's blocks from its trace (no torch when cached), not from
    learning.models.full_depth (whose import is torch's): the two must agree for every family."""
    from simulator.cost.cache import trace
    from simulator.learning.models import full_depth

    assert len(trace(spec.resolved(), 10, shape, 1.0)) == full_depth(spec)
