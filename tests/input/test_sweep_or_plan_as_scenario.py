"""A sweep or plan file where a scenario is asked for, or a scenario or sweep where a device profile is, is
named as such, with what takes it."""

import pytest
import yaml
from tests.helpers.cli import ROOT, assert_bad_input, cli

SWEEP = ROOT / "scenarios" / "sweeps" / "straggler_policies.yaml"
PLAN = ROOT / "scenarios" / "plans" / "buy_fleet.yaml"


@pytest.mark.parametrize("command", ["run", "validate", "explain"])
@pytest.mark.parametrize(("path", "kind"), [(SWEEP, "sweep"), (PLAN, "plan")])
def test_a_sweep_or_plan_file_is_not_read_as_a_scenario(command, path, kind, tmp_path):
    args = [command, str(path)] + (["--out", str(tmp_path / "run")] if command == "run" else [])
    err = assert_bad_input(cli(*args), file=path, field=None, value=None,
                           also=(f"is a {kind} file (it has 'base' and no 'fleet'), not a scenario",
                                 f"`fleetsim {kind} {path}` takes this one"))
    assert "'fleet': this required field is missing" not in err
    assert not (tmp_path / "run").exists()


def test_a_file_with_only_base_may_be_either(tmp_path):
    path = tmp_path / "half.yaml"
    path.write_text("base: ../quickstart.yaml\n")
    assert_bad_input(cli("validate", str(path)), file=path, field=None, value=None,
                     also=("is a sweep or plan file", "`fleetsim sweep` or `fleetsim plan"))


def test_a_scenario_with_a_base_key_is_still_read_as_a_scenario(tmp_path):
    """'base' beside 'fleet' is a scenario with an unknown key: the schema's own message."""
    path = tmp_path / "s.yaml"
    path.write_text((ROOT / "scenarios" / "quickstart.yaml").read_text() + "\nbase: x.yaml\n")
    assert_bad_input(cli("validate", str(path)), file=path, field="base", value=None, also=("unknown key",))


def test_a_scenario_named_as_a_profile_is_named_as_such(tmp_path):
    """`fleetsim profiles scenario.yaml`, or `profile: other.yaml` pointing at a scenario, said only
    "at 'compute': this required field is missing (13 more problems after this one)"."""
    scenario = ROOT / "scenarios" / "quickstart.yaml"
    problem = f"{scenario} is a scenario file, not a device profile (it has 'fleet' and no 'compute')"
    assert_bad_input(cli("profiles", str(scenario)), file=None, field=None, value="'quickstart.yaml'",
                     also=(problem,))
    data = yaml.safe_load(scenario.read_text())
    data["fleet"][1]["profile"] = str(scenario)
    naming = tmp_path / "s.yaml"
    naming.write_text(yaml.safe_dump(data))
    assert_bad_input(cli("validate", str(naming)), file=naming, field="fleet[1].profile", value=None,
                     also=(problem,))


def test_a_sweep_named_as_a_profile_is_named_as_such():
    assert_bad_input(cli("profiles", str(SWEEP)), file=None, field=None, value=None,
                     also=(f"{SWEEP} is a sweep file, not a device profile (it has 'base' and no 'compute')",))


SCENARIO = ROOT / "scenarios" / "quickstart.yaml"


@pytest.mark.parametrize(("command", "path", "found", "has", "takes"), [
    ("sweep", SCENARIO, "scenario", "it has 'fleet' and no 'base'", "run"),
    ("plan", SCENARIO, "scenario", "it has 'fleet' and no 'base'", "run"),
    ("sweep", PLAN, "plan", "it has 'catalogue'", "plan"),
    ("plan", SWEEP, "sweep", "it has 'seeds' and no 'catalogue'", "sweep"),
], ids=["scenario_as_sweep", "scenario_as_plan", "plan_as_sweep", "sweep_as_plan"])
def test_a_scenario_or_the_other_kind_is_not_read_as_a_sweep_or_plan(command, path, found, has, takes, tmp_path):
    """The other way round: read as a sweep or plan, a scenario only said "at 'base': this required field is
    missing (7 more problems after this one)" and a plan "unknown key 'catalogue'"."""
    err = assert_bad_input(cli(command, str(path), "--out", str(tmp_path / "out")), file=path, field=None, value=None,
                           also=(f"is a {found} file ({has}), not a {command} file",
                                 f"`fleetsim {takes} {path}` takes this one"))
    assert "required field is missing" not in err and "unknown key" not in err
    assert not (tmp_path / "out").exists()
