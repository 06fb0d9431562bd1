"""The trace cache's key covers the code a trace depends on: the tracer, the cost model and every model
definition file, including ones added later.

Why through a copy of the package: the key must change for the *next* process after someone edits that
code, so the test edits a copy of ``simulator/`` and asks a fresh interpreter running from that copy
for the key after each edit (reloading ``simulator.cost.cache`` is what a new process does: load it
afresh over the files as they are now). Nothing here names the cache's private helpers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import simulator
from simulator.config.workload import ModelSpec
from simulator.cost import cache as cost_cache

SPECS = {"vit": (ModelSpec(name="vit", preset="tiny"), (3, 32, 32)),
         "mobilenet": (ModelSpec(name="mobilenet", preset="tiny"), (3, 16, 16))}

# Runs inside the copy. Each step edits the copy, cumulatively, then reads every spec's key afresh.
EDITS = r'''
import importlib, json, sys
from pathlib import Path

import simulator
import simulator.learning.models as models_pkg
from simulator.config.workload import ModelSpec
from simulator.cost import cache, meta_trace, model

assert Path(simulator.__file__).resolve().parent == Path(sys.argv[1]).resolve(), simulator.__file__
specs = {"vit": (ModelSpec(name="vit", preset="tiny"), (3, 32, 32)),
         "mobilenet": (ModelSpec(name="mobilenet", preset="tiny"), (3, 16, 16))}
models = Path(models_pkg.__file__).parent
assert (models / "mobilenet.py").exists()


def edit(path):
    path.write_text(path.read_text() + "\n# changed\n")


def nested():
    (models / "zoo").mkdir()
    (models / "zoo" / "deep.py").write_text("# in a sub-package\n")


steps = [("base", None),
         ("tracer", lambda: edit(Path(meta_trace.__file__))),
         ("cost_model", lambda: edit(Path(model.__file__))),
         ("family_added", lambda: (models / "efficientnet.py").write_text("# a family added later\n")),
         ("nested_added", nested),
         ("model_changed", lambda: edit(models / "mobilenet.py"))]
keys = {}
for name, change in steps:
    if change is not None:
        change()
    importlib.reload(cache)
    keys[name] = {k: cache.cache_key(spec, 10, shape, 1.0) for k, (spec, shape) in specs.items()}
print(json.dumps(keys))
'''


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Every spec's key after each cumulative edit of a copy of the package, from one fresh interpreter."""
    root = tmp_path_factory.mktemp("tree")
    package = root / "simulator"
    shutil.copytree(Path(simulator.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-c", EDITS, str(package)], capture_output=True, text=True, env=env,
                          cwd=root, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_an_unchanged_copy_has_the_same_key(keys: dict[str, dict[str, str]]) -> None:
    """The key hashes the files' contents and their place in the package, not where it is installed."""
    for name, (spec, shape) in SPECS.items():
        assert keys["base"][name] == cost_cache.cache_key(spec, 10, shape, 1.0) is not None


def test_the_key_changes_when_the_tracer_or_the_cost_model_changes(keys: dict[str, dict[str, str]]) -> None:
    assert len({keys[step]["vit"] for step in ("base", "tracer", "cost_model")}) == 3


def test_a_new_or_changed_model_file_changes_the_key(keys: dict[str, dict[str, str]]) -> None:
    steps = ("cost_model", "family_added", "nested_added", "model_changed")
    assert len({keys[step]["mobilenet"] for step in steps}) == 4
    assert len({keys[step]["vit"] for step in steps}) == 4  # a model file's edit moves every model's key


def test_mobilenet_is_a_builtin_and_cached() -> None:
    spec, shape = SPECS["mobilenet"]
    assert cost_cache.cache_key(spec, 10, shape, 1.0) is not None
    other = ModelSpec(name="mobilenet", preset="tiny", width_mult=0.5)
    assert cost_cache.cache_key(other, 10, shape, 1.0) != cost_cache.cache_key(spec, 10, shape, 1.0)
