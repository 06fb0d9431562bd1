"""Flag mistakes typer finds before a command runs (a bad int, an unknown option, a missing argument)
end as fleetsim's bad-input paragraph — exit status 2, no usage box, no traceback — with a hint to
`--help`; `--help` itself still works."""

from __future__ import annotations

import pytest

from tests.helpers.cli_runs import fleetsim

QUICKSTART = "scenarios/quickstart.yaml"


def _one_paragraph(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("fleetsim: bad input: "), stderr
    for box in ("╭", "│", "Usage:", "Traceback"):
        assert box not in stderr
    return lines[0]


@pytest.mark.parametrize(("flag", "value"), [("--seed", "abc"), ("--workers", "x")])
def test_a_bad_int_names_the_option_the_value_and_what_is_accepted(flag: str, value: str) -> None:
    done = fleetsim("run", QUICKSTART, flag, value)
    assert done.returncode == 2
    line = _one_paragraph(done.stderr)
    assert f"'{flag}'" in line and f"(got '{value}')" in line and "an integer" in line
    assert "see `fleetsim run --help`" in line


def test_a_bad_int_of_sweep_names_sweeps_help() -> None:
    done = fleetsim("sweep", "nothing.yaml", "--jobs", "many")
    assert done.returncode == 2
    line = _one_paragraph(done.stderr)
    assert "'--jobs'" in line and "(got 'many')" in line and "see `fleetsim sweep --help`" in line


def test_sweep_names_its_flags_as_typed() -> None:
    """A value typer accepts but the sweep refuses is named by its flag, as `plan` names it."""
    for args, flag in ((("--jobs", "-3"), "'--jobs'"), (("--backend", "slurm"), "'--backend'")):
        done = fleetsim("sweep", "scenarios/sweeps/straggler_policies.yaml", *args)
        assert done.returncode == 2
        line = _one_paragraph(done.stderr)
        assert f"At {flag}" in line and args[1] in line


def test_an_unknown_option_is_named_with_the_nearest_ones() -> None:
    done = fleetsim("run", QUICKSTART, "--wrokers", "2")
    assert done.returncode == 2
    line = _one_paragraph(done.stderr)
    assert "no such option (got '--wrokers')" in line and "--workers" in line and "`fleetsim run --help`" in line


def test_a_missing_argument_is_named() -> None:
    done = fleetsim("run")
    assert done.returncode == 2
    line = _one_paragraph(done.stderr)
    assert "`fleetsim run` needs its SCENARIO argument" in line and "see `fleetsim run --help`" in line


def test_an_option_without_its_value_names_the_command() -> None:
    done = fleetsim("run", QUICKSTART, "--seed")
    assert done.returncode == 2
    line = _one_paragraph(done.stderr)
    assert "'--seed': no value was given" in line and "see `fleetsim run --help`" in line


def test_help_still_works() -> None:
    done = fleetsim("run", "--help")
    assert done.returncode == 0 and "--seed" in done.stdout and "bad input" not in done.stderr
