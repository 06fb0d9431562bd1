"""Nothing fleetsim reads back from a run folder can execute code; validate imports no plug-in
unless asked (issue 12, "No code from data")."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
import yaml

import simulator
from simulator.output.checkpoint import CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE, Checkpoint, load_checkpoint, save_checkpoint
from tests.helpers.safety import cli, fleetsim, one_paragraph, tiny_scenario, tree, write_scenario


class _Payload:
    """Unpickling this runs `touch <path>`: what a crafted checkpoint.pt did on `fleetsim resume`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        import os

        return (os.system, (f"touch {self.path}",))


def _interrupted_run(tmp_path: Path) -> Path:
    """A run folder that resume would accept (not finished): summary says interrupted."""
    scenario = write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))
    out = tmp_path / "run"
    assert cli("run", str(scenario), "--out", str(out)).code == 0
    summary = json.loads((out / "summary.json").read_text())
    summary.update(stop_reason="interrupted", complete=False)
    (out / "summary.json").write_text(json.dumps(summary))
    return out


@pytest.mark.slow
def test_a_crafted_checkpoint_is_refused_never_run(tmp_path: Path) -> None:
    out = _interrupted_run(tmp_path)
    pwned = tmp_path / "pwned"
    for name in (CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE):
        for stale in (CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE):
            (out / stale).unlink(missing_ok=True)
        (out / name).write_bytes(pickle.dumps(_Payload(pwned)))
        torch.save({"x": _Payload(pwned)}, out / f"{name}.torch")  # a torch.save'd pickle too
        before = tree(out)
        for crafted in (pickle.dumps(_Payload(pwned)), (out / f"{name}.torch").read_bytes()):
            (out / name).write_bytes(crafted)
            before = tree(out)
            # one case as a real process end to end, the others through the same command in-process
            first = name == CHECKPOINT_FILE and crafted[:1] == b"\x80"
            result = fleetsim("resume", str(out)) if first else cli("resume", str(out))
            err = one_paragraph(result, 2)
            assert name in err and "nothing" in err, err
            assert not pwned.exists(), "the pickle's payload ran"
            assert tree(out) == before  # refused before anything was deleted
        (out / f"{name}.torch").unlink()


def test_checkpoint_holds_tensors_and_json_only(tmp_path: Path) -> None:
    """The file is safetensors; its metadata is JSON naming only whitelisted record types."""
    from safetensors import safe_open

    from simulator.learning.submodel import SubmodelPlan

    plan = SubmodelPlan(2, 0.5, {"a": (0, 2)}, 0, 0.0)
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(0)}
    snapshot = {"state": state, "version": 3, "jobs": {7: {"client": 1, "plan": plan, "base": state,
                                                          "base_version": 2, "result": None, "extra": {}}}}
    save_checkpoint(tmp_path, Checkpoint(12.5, 2, snapshot, [(1.0, 1, 0.5, 2.0, [0.25, 0.5])]))
    with safe_open(str(tmp_path / CHECKPOINT_FILE), framework="pt") as handle:
        meta = json.loads(handle.metadata()["data"])
        assert sorted(handle.keys()) == ["t0", "t1"]  # `state` stored once though referenced twice
    assert json.dumps(meta).count("$record") == 1 and '"SubmodelPlan"' in json.dumps(meta)
    back = load_checkpoint(tmp_path)
    assert back is not None and back.time_s == 12.5 and back.tick == 2
    assert back.evals == [(1.0, 1, 0.5, 2.0, [0.25, 0.5])]
    job = back.learner["jobs"][7]
    assert job["plan"] == plan and job["base_version"] == 2
    assert torch.equal(job["base"]["w"], state["w"]) and back.learner["state"]["b"].numel() == 0


def test_a_checkpoint_naming_another_type_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save

    data = {"time_s": 1.0, "tick": 1, "learner": {"$record": "Popen", "fields": {"args": ["touch", "x"]}},
            "evals": []}
    (tmp_path / CHECKPOINT_FILE).write_bytes(save({}, metadata={"format": "fleetsim-checkpoint/1",
                                                                "data": json.dumps(data)}))
    try:
        load_checkpoint(tmp_path)
    except simulator.errors.InputError as err:
        assert "damaged fleetsim checkpoint" in err.message
    else:
        raise AssertionError("a checkpoint naming a type outside the whitelist was loaded")


PLUGIN = '''
from pathlib import Path
Path(__file__).with_name("imported.flag").write_text("the module ran")
from simulator.server.policies import Asynchronous as Base


class Loud(Base):
    pass
'''


@pytest.mark.slow
def test_validate_imports_no_plugin_unless_asked(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "loud_policy.py").write_text(PLUGIN)
    data = tiny_scenario(folder)
    data["algorithm"] = {"name": "fedasync", "aggregation": {"policy": "loud_policy:Loud"}}
    scenario = write_scenario(folder / "s.yaml", data)
    result = fleetsim("validate", str(scenario), cwd=tmp_path)
    assert result.code == 0, result.text
    assert not (folder / "imported.flag").exists()
    assert "not imported: policy plug-in 'loud_policy:Loud'" in result.stdout and "--import-plugins" in result.stdout
    # asked to, it imports the module from the scenario's own folder (cwd is elsewhere) and checks it
    result = fleetsim("validate", str(scenario), "--import-plugins", cwd=tmp_path)
    assert result.code == 0, result.text
    assert (folder / "imported.flag").exists() and "not imported" not in result.stdout
    # a broken module is found only when imported
    (folder / "loud_policy.py").write_text("raise ImportError('broken plug-in')\n")
    err = one_paragraph(fleetsim("validate", str(scenario), "--import-plugins", cwd=tmp_path), 2)
    assert "loud_policy" in err and "broken plug-in" in err


@pytest.mark.slow
def test_run_finds_a_plugin_beside_the_scenario(tmp_path: Path) -> None:
    """As sweep always did: `module:Class` next to the scenario file, run from another folder."""
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "beside_policy.py").write_text(PLUGIN.replace("imported.flag", "beside.flag"))
    data = tiny_scenario(folder)
    data["algorithm"] = {"name": "fedasync", "aggregation": {"policy": "beside_policy:Loud"}}
    scenario = write_scenario(folder / "s.yaml", data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = fleetsim("run", str(scenario), "--out", str(tmp_path / "run"), cwd=elsewhere)
    assert result.code == 0, result.text
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["versions"] == 3


@pytest.mark.slow
def test_resume_never_imports_a_module_shipped_in_the_run_folder(tmp_path: Path) -> None:
    """A shared run folder carrying `evil.py`, a scenario.yaml naming `evil:Policy` and a run.json
    pointing plug-ins at the folder itself: resume refuses; run from inside the folder, it still
    cannot find the module there."""
    out = _interrupted_run(tmp_path)
    (out / "evil.py").write_text(PLUGIN.replace("imported.flag", "evil.flag").replace("class Loud", "class Policy"))
    scenario = yaml.safe_load((out / "scenario.yaml").read_text())
    scenario["algorithm"]["aggregation"] = {"policy": "evil:Policy"}
    (out / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    options = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**options, "base_dir": str(out)}))
    before = tree(out)
    err = one_paragraph(fleetsim("resume", str(out)), 2)
    assert "never imports code from a run folder" in err
    (out / "run.json").write_text(json.dumps(options))  # the scenario's real folder, but cwd = the run folder
    err = one_paragraph(fleetsim("resume", ".", cwd=out), 2)
    assert "'evil' does not import" in err
    assert not (out / "evil.flag").exists()
    assert {k: v for k, v in tree(out).items() if k != "run.json"} == {k: v for k, v in before.items() if k != "run.json"}
