"""A sweep or plan file where a scenario is asked for is named as such, with the command that takes it."""

import pytest
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
