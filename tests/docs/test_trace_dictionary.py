"""docs/trace_columns.md (the users' data dictionary) is generated from the one declaration,
simulator/trace/columns.py: the page's generated blocks are what the generator renders, the generator
renders what a column declares, and every table a real run folder holds is declared, with the
columns and types it is written with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import simulator
from simulator.trace import dictionary
from simulator.trace.columns import RUN_FOLDER_TABLES, TABLES, Column, Table
from tests.helpers.scenarios import base_scenario, write_profile

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "trace_columns.md"
SCRIPT = ROOT / "scripts" / "build_trace_dictionary.py"

TOY = Table("toys", "toy", title="toys for the test", description="Written when asked.", columns=(
    Column("colour", "text", "", "its colour | paint", (("red", "like a fire engine"), ("blue", "like the sea"))),
    Column("mass_bytes", "int64", "bytes", "what it weighs, in bytes"),
    Column("sizes", "list<float64>", "fraction", "each part's share"),
))
TOY_SECTION = """## toys.parquet — toys for the test

One row per toy. Written when asked.

| column | type | unit | meaning |
|---|---|---|---|
| colour | `string` | — | its colour \\| paint:<br>`red`: like a fire engine<br>`blue`: like the sea |
| mass_bytes | `int64` | bytes | what it weighs, in bytes |
| sizes | `list<float64>` | fraction | each part's share |
"""


def test_the_pages_generated_blocks_are_what_the_declaration_renders() -> None:
    text = PAGE.read_text(encoding="utf-8")
    new, changed = dictionary.update_page(text, dictionary.render_blocks())
    assert changed == [], (f"docs/trace_columns.md is out of date for {', '.join(changed)}: run "
                           f"`{dictionary.COMMAND}` after editing simulator/trace/columns.py")
    assert new == text
    assert list(dictionary.page_blocks(text)) == ["units", *RUN_FOLDER_TABLES]


def test_a_declared_columns_type_unit_meaning_and_values_are_rendered() -> None:
    assert dictionary.render_table(TOY) == TOY_SECTION
    # the real declaration: a known value's own explanation reaches the page, and "" renders as —
    events = dictionary.render_table(TABLES["events"])
    assert events.startswith("## events.parquet — what every device did, phase by phase\n\nOne row per device phase.")
    assert "<br>`oom`: the job's planned peak memory exceeds" in events
    assert "| staleness | `int64` | versions |" in dictionary.render_table(TABLES["updates"])
    legend = dictionary.render_units({"": "none", "s": "seconds"})
    assert legend == "| unit | what one is |\n|---|---|\n| — | none |\n| s | seconds |\n"


def test_an_unknown_unit_or_type_is_refused_where_it_is_declared() -> None:
    with pytest.raises(ValueError, match="unknown unit 'furlongs'"):
        Column("distance", "float64", "furlongs", "how far")
    with pytest.raises(ValueError, match="unknown type 'int8'"):
        Column("tiny", "int8", "", "small")


def test_updating_a_page_rewrites_only_the_generated_blocks() -> None:
    page = ("# Title\n\nHand prose.\n\n<!-- generated: toys -->\nstale table\n<!-- /generated -->\n\n"
            "Between.\n\n<!-- generated: gone -->\nold\n<!-- /generated -->\n\n## Hand section\n\nMore prose.\n")
    blocks = {"toys": TOY_SECTION, "units": "| unit |\n"}
    new, changed = dictionary.update_page(page, blocks)
    assert changed == ["toys", "units", "gone"]
    # the stale block rewritten, the undeclared one gone, the missing one added after the last block
    assert new == ("# Title\n\nHand prose.\n\n<!-- generated: toys -->\n" + TOY_SECTION + "<!-- /generated -->\n\n"
                   "<!-- generated: units -->\n| unit |\n<!-- /generated -->\n\nBetween.\n\n\n## Hand section\n\n"
                   "More prose.\n")
    again, changed = dictionary.update_page(new, blocks)
    assert (again, changed) == (new, [])


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_the_script_checks_and_rewrites_a_page(tmp_path: Path) -> None:
    page = tmp_path / "trace_columns.md"
    fresh = PAGE.read_text(encoding="utf-8")
    page.write_text(fresh.replace("| loss | `float64` | nats |", "| loss | `float64` | bits |"), encoding="utf-8")
    check = _script("--check", "--page", str(page))
    assert check.returncode == 1
    assert "out of date for evals" in check.stderr and dictionary.COMMAND in check.stderr
    assert page.read_text(encoding="utf-8") != fresh  # --check writes nothing
    write = _script("--page", str(page))
    assert write.returncode == 0 and "evals" in write.stdout
    assert page.read_text(encoding="utf-8") == fresh
    assert _script("--check", "--page", str(page)).returncode == 0


@pytest.mark.parametrize("shards", ["fixed", "partitioned"])
def test_every_table_of_a_real_run_folder_is_declared_with_the_columns_it_holds(
        tmp_path: Path, profile_dir: Path, shards: str) -> None:
    """A timing-only run's Parquet files: each has a generated section on the page, and its columns
    and types are the declared ones (a column written but not declared fails here)."""
    profile = write_profile(profile_dir, "a", step_s=0.2)
    scenario = base_scenario(tmp_path, [{"profile": str(profile), "count": 3, "name": "edge"}])
    if shards == "partitioned":
        del scenario["workload"]["samples_per_client"]
        scenario["workload"]["partition"] = {"kind": "dirichlet", "alpha": 0.5}
    run = simulator.run(scenario, timing_only=True, out=tmp_path / "run")
    written = {p.name.removesuffix(".parquet"): p for p in run.run_dir.glob("*.parquet")}
    assert sorted(written) == sorted(RUN_FOLDER_TABLES)
    documented = dictionary.page_blocks(PAGE.read_text(encoding="utf-8"))
    for name, path in written.items():
        assert name in documented, f"{name}.parquet has no generated section on docs/trace_columns.md"
        schema = pq.read_schema(path)
        declared = RUN_FOLDER_TABLES[name].schema()
        assert schema.names == declared.names, name
        assert [f.type for f in schema] == [f.type for f in declared], name
    histograms = pq.read_table(written["clients"]).column("label_histogram").to_pylist()
    assert all(h == [] for h in histograms) == (shards == "fixed")
