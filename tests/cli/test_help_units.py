"""Option help names the unit and default a user needs (found missing by the docs audit of --help)."""

from __future__ import annotations

import typer.main

from simulator.cli.app import app


def option_help(command: str, name: str) -> str:
    """The help text of one option of one fleetsim command, as --help shows it."""
    params = {p.name: p for p in typer.main.get_command(app).commands[command].params}
    return params[name].help or ""


def test_calibrate_power_options_say_watts() -> None:
    # "[default: 15.0]" alone does not say 15 of what
    assert "(W)" in option_help("calibrate", "busy_w")
    assert "(W)" in option_help("calibrate", "idle_w")


def test_run_options_without_a_fixed_default_say_what_happens_when_left_out() -> None:
    assert "default: no checkpoints" in option_help("run", "checkpoint_every")
    # a scenario that declares timing_only: true (scale_10k.yaml) runs timing-only without the flag
    assert "default: the scenario's timing_only" in option_help("run", "timing_only")
    assert "default: start a local one" in option_help("resume", "ray_address")
