"""Bad sweep files through `fleetsim sweep`: exit 2, one paragraph, nothing run or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import assert_bad_input, base, cli, write_yaml


def test_sweep_with_an_invalid_swept_value(tmp_path: Path) -> None:
    write_yaml(tmp_path / "base.yaml", base())
    sweep = write_yaml(tmp_path / "my_sweep.yaml", {"base": "base.yaml", "grid": {"fleet[0].count": [2, -1]},
                                                     "timing_only": True, "output": str(tmp_path / "sw")})
    err = assert_bad_input(cli("sweep", str(sweep)), file="my_sweep.yaml", field="grid.fleet[0].count", value="-1")
    assert "fleet[0].count" in err
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("content, field, also", [
    ("base: base.yaml\ngrid: {fleet[0].count: [1, 2]}\n", None, ("not valid YAML", "line 2, column 13")),
    ("base: base.yaml\ngrids: {}\n", "grids", ("unknown key", "grid, name")),
    ("base: base.yaml\nseeds: [1, 1]\n", "seeds", ("repeat",)),
    ("base: base.yaml\ngrid:\n  fleet[0].count: 3\n", "grid.fleet[0].count", ("a list",)),
], ids=["syntax", "unknown_key", "repeated_seeds", "grid_value_not_a_list"])
def test_sweep_file_problems(tmp_path: Path, content: str, field: str | None, also: tuple[str, ...]) -> None:
    write_yaml(tmp_path / "base.yaml", base())
    sweep = tmp_path / "bad_sweep.yaml"
    sweep.write_text(content)
    assert_bad_input(cli("sweep", str(sweep)), file="bad_sweep.yaml", field=field, value=None, also=also)


def test_sweep_with_a_missing_base(tmp_path: Path) -> None:
    sweep = write_yaml(tmp_path / "lost_sweep.yaml", {"base": "nope.yaml", "grid": {"fleet[0].count": [1]}})
    assert_bad_input(cli("sweep", str(sweep)), file="nope.yaml", field=None, value=None, also=("not found",))


def test_sweep_that_sweeps_the_seed(tmp_path: Path) -> None:
    write_yaml(tmp_path / "base.yaml", base())
    sweep = write_yaml(tmp_path / "seed_sweep.yaml", {"base": "base.yaml", "grid": {"seed": [1, 2]}})
    assert_bad_input(cli("sweep", str(sweep)), file="seed_sweep.yaml", field="grid.seed", value=None,
                     also=("seeds",))


def test_sweep_with_unequal_zip_lists(tmp_path: Path) -> None:
    write_yaml(tmp_path / "base.yaml", base())
    sweep = write_yaml(tmp_path / "zip_sweep.yaml", {"base": "base.yaml", "zip": {
        "fleet[0].count": [1, 2], "fleet[1].count": [1, 2, 3]}})
    assert_bad_input(cli("sweep", str(sweep)), file="zip_sweep.yaml", field="zip", value=None,
                     also=("same length",))
