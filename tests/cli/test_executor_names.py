"""`--executor` is checked before anything runs, timing-only too (where no executor is made)."""

from tests.helpers.cli import assert_bad_input, base, cli, write_yaml

from simulator.cli.run import EXECUTOR_NAMES


def test_the_cli_knows_the_factorys_names():
    from simulator.learning.executors.factory import ALIASES, EXECUTORS

    assert set(EXECUTOR_NAMES) == set(EXECUTORS) | set(ALIASES)


def test_an_unknown_executor_is_refused_in_a_timing_only_run(tmp_path):
    scenario = write_yaml(tmp_path / "s.yaml", base())
    out = tmp_path / "run"
    result = cli("run", str(scenario), "--timing-only", "--executor", "gpu", "--out", str(out))
    err = assert_bad_input(result, file=None, field="--executor", value="'gpu'",
                           also=("inline, process, ray",))
    assert err.startswith("fleetsim: bad input: At '--executor': unknown executor")
    assert not out.exists()  # nothing was run, no folder made
    ok = cli("run", str(scenario), "--timing-only", "--executor", "pool", "--out", str(out))
    assert ok.code == 0, ok.text


def test_resume_refuses_an_unknown_executor_before_reading_the_run(tmp_path):
    result = cli("resume", str(tmp_path / "no-such-run"), "--executor", "gpu")
    assert_bad_input(result, file=None, field="--executor", value="'gpu'")
