"""`fleetsim explain` (issue 17): the resolved algorithm as the run records it, what a null key
means, and the plan per group equal to what the run then reports in summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import yaml

from simulator.config.algorithm import resolve_algorithm
from simulator.config.scenario import AlgorithmSpec
from simulator.server.registry import policy_params
from tests.helpers.cli_runs import fleetsim, two_group_scenario


@pytest.mark.slow
def test_explain_json_matches_the_run(tmp_path: Path) -> None:
    path = two_group_scenario(tmp_path, algorithm={"name": "co-s2p", "aggregation": {"k": 2, "deadline_s": 30}})
    done = fleetsim("explain", str(path), "--format", "json")
    assert done.returncode == 0, done.stderr
    explained = json.loads(done.stdout)
    expected = resolve_algorithm(AlgorithmSpec(name="co-s2p", aggregation={"k": 2, "deadline_s": 30}), policy_params).as_dict()
    assert explained["scenario"]["algorithm"] == expected
    assert explained["scenario"]["algorithm"]["aggregation"]["staleness"] == {"fn": "polynomial", "a": 0.5, "b": 4.0,
                                                                             "value": 1.0}
    run = fleetsim("run", str(path), "--timing-only", "--out", str(tmp_path / "run"), "--quiet")
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    recorded = yaml.safe_load((tmp_path / "run" / "scenario.yaml").read_text())
    assert recorded["algorithm"] == explained["scenario"]["algorithm"]
    keys = ("depth", "width_ratio", "params", "peak_memory_bytes", "fits_memory", "step_time_s", "usable_memory_bytes")
    assert [{k: p[k] for k in keys} | {"name": p["group"], "variants": p["variants"]} for p in explained["plan"]] == \
           [{k: g[k] for k in keys} | {"name": g["name"], "variants": g["variants"]} for g in summary["groups"]]


def test_explain_says_what_a_null_key_means(tmp_path: Path) -> None:
    path = two_group_scenario(tmp_path, algorithm={"name": "co-s2p"})
    done = fleetsim("explain", str(path), "--no-plan", env={"COLUMNS": "60"})
    assert done.returncode == 0, done.stderr
    assert "# algorithm.aggregation.k: null → merge when K updates are in; default: half the fleet" in done.stdout
    body = done.stdout.split("\n", 1)[1]
    document = yaml.safe_load(body)
    assert document["algorithm"]["pruning"]["depth"] == "rolling" and document["algorithm"]["local_work"] == {
        "fit_deadline": False, "min_steps": 1}
    assert "Plan per group" not in done.stdout


def test_explain_of_a_bad_file_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("fleet: []\nalgorithm: {name: nope}\n")
    done = fleetsim("explain", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "bad input" in done.stderr


def test_the_plan_variants_have_a_heading() -> None:
    """The quickstart's explain ended with two bare lines ("  jetson-nano-4gb: depth 4, width 1 ×3; …")
    under the plan table, saying neither what they were nor why a group's devices differ."""
    from tests.helpers.cli import ROOT, cli

    done = cli("explain", str(ROOT / "scenarios" / "quickstart.yaml"))
    assert done.code == 0, done.text
    lines = done.stdout.rstrip().splitlines()
    assert lines[-3].startswith("Groups whose devices differ (their shards' local steps against the deadline)")
    assert lines[-2:] == ["  jetson-nano-4gb: depth 4, width 1 ×3; depth 2, width 1 ×1",
                          "  jetson-xavier-nx: depth 12, width 1 ×3; depth 9, width 1 ×1"]
