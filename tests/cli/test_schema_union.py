"""`fleetsim schema` types the algorithm (issue 17): one branch per policy with its own parameters,
discriminated by `policy`, and per preset the keys of its policy with the preset's defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from simulator.cli import app
from simulator.config.algorithm import PRESET_NAMES, resolve_algorithm
from simulator.config.scenario import AlgorithmSpec
from simulator.server.registry import policy_params
from simulator.server.registry import registered_names, resolve_policy

jsonschema = pytest.importorskip("jsonschema")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema() -> dict:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    return json.loads(result.stdout)


def test_each_policy_is_a_branch_with_its_own_params(schema: dict) -> None:
    union = schema["$defs"]["AggregationWithPolicy"]
    assert union["discriminator"]["propertyName"] == "policy"
    assert sorted(union["discriminator"]["mapping"]) == registered_names()
    for name, ref in union["discriminator"]["mapping"].items():
        branch = schema["$defs"][ref.rsplit("/", 1)[1]]
        assert branch["properties"]["policy"] == {"const": name, "description": f"the built-in '{name}' policy"}
        assert set(branch["properties"]) == set(resolve_policy(name).Params.model_fields)
    assert "k" in schema["$defs"]["Policy_semi_async"]["properties"]
    assert "k" not in schema["$defs"]["Policy_sync"]["properties"]


def test_presets_show_their_defaults(schema: dict) -> None:
    for preset in PRESET_NAMES:
        resolved = resolve_algorithm(AlgorithmSpec(name=preset), policy_params)
        props = schema["$defs"][f"Preset_{preset.replace('-', '_')}_aggregation"]["properties"]
        assert {k: props[k]["default"] for k in props} == {k: v for k, v in resolved.aggregation.items() if k != "policy"}
        pruning = schema["$defs"][f"Preset_{preset.replace('-', '_')}_pruning"]["properties"]
        assert {k: pruning[k]["default"] for k in pruning} == resolved.pruning.model_dump(mode="json")
    assert schema["$defs"]["Preset_co_s2p_aggregation"]["properties"]["max_staleness"]["default"] == 8


def test_every_shipped_scenario_is_valid_and_a_wrong_key_is_not(schema: dict) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    checked = 0
    for path in sorted((REPO / "scenarios").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "fleet" in data and "workload" in data:
            assert list(validator.iter_errors(data)) == [], path
            checked += 1
    assert checked >= 5
    quick = yaml.safe_load((REPO / "scenarios" / "quickstart.yaml").read_text())
    for algorithm in ({"name": "fedavg", "aggregation": {"k": 8}},              # sync has no K
                      {"name": "fedavg", "aggregation": {"policy": "sync", "k": 8}},
                      {"name": "co-s2p", "pruning": {"width": "half"}},        # not a width strategy
                      {"name": "no-such-preset"}):
        assert list(validator.iter_errors({**quick, "algorithm": algorithm})), algorithm
    assert not list(validator.iter_errors({**quick, "algorithm": {"aggregation": {"policy": "my_mod:MyPolicy", "x": 1}}}))
