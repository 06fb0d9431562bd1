"""`fleetsim export --force` replaces only a trace fleetsim exported: a user's file at -o (plain or
gzip, or a symlink) is refused with one paragraph naming it, and its bytes stay as they were."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from simulator.export.chrome_trace import write_chrome_trace, written_by_fleetsim
from tests.helpers.cli import cli
from tests.helpers.export import run_small


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_small(tmp_path_factory.mktemp("export-force"))


def _export(run_dir: Path, out: Path, *flags: str):  # noqa: ANN202
    return cli("export", str(run_dir), "--format", "chrome-trace", "-o", str(out), *flags)


@pytest.mark.parametrize("name", ["t.json", "t.json.gz"])
def test_force_replaces_a_trace_fleetsim_wrote(run_dir: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    write_chrome_trace(run_dir, out)
    assert written_by_fleetsim(out)
    before = out.stat().st_ino
    done = _export(run_dir, out, "--force")
    assert done.code == 0, done.text
    assert out.stat().st_ino != before  # a new file renamed into place: the old one was replaced
    text = gzip.open(out, "rt").read() if name.endswith(".gz") else out.read_text()
    assert json.loads(text)["otherData"]["source"] == "fleetsim"


@pytest.mark.parametrize(("name", "content"), [
    ("t.json", b"my own notes\n"),
    ("t.json", b'{"traceEvents":[\n{"ph":"M","name":"process_name","pid":1,"args":{"name":"mine"}}\n]}\n'),
    ("t.json.gz", gzip.compress(b'{"traceEvents":[\n]}\n')),
    ("t.json.gz", b"not gzip at all"),
], ids=["text", "someone_elses_trace", "someone_elses_gzip", "broken_gzip"])
def test_force_refuses_a_file_fleetsim_did_not_write_and_leaves_its_bytes(run_dir: Path, tmp_path: Path, name: str,
                                                                         content: bytes) -> None:
    out = tmp_path / name
    out.write_bytes(content)
    done = _export(run_dir, out, "--force")
    assert done.code == 2, done.text
    assert "Traceback" not in done.text
    lines = [line for line in done.stderr.splitlines() if line.startswith("fleetsim: bad input: ")]
    assert len(lines) == 1, done.stderr
    assert str(out) in lines[0] and "fleetsim did not write this file" in lines[0]
    assert "remove that file yourself" in lines[0]
    assert out.read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left either


def test_force_refuses_a_symlink_even_to_a_fleetsim_trace(run_dir: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    write_chrome_trace(run_dir, real)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    done = _export(run_dir, link, "--force")
    assert done.code == 2 and "fleetsim did not write this file" in done.stderr
    assert link.is_symlink()
