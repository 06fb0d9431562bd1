"""Portable kernels (simulator/numerics.py): the pin's rules, that importing fleetsim makes it before
torch chooses its kernels, that each pinned variable does move trained bits (so the three are the
right ones to pin), and that run.json records what a run used."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.numerics import OPT_OUT_VARIABLE, PORTABLE_AVX2, cpu_flags, pin_portable_numerics

ROOT = Path(__file__).resolve().parents[2]
AVX2_HOST = platform.machine().lower() in ("x86_64", "amd64") and "avx2" in (cpu_flags() or set())

# Five SGD steps of a small conv net on fixed data: the bits of its loss and of its parameters' sum.
_PROBE = """
import sys
if sys.argv[1] == "fleetsim-first":
    import simulator  # noqa: F401
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
m = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3), torch.nn.Flatten(),
                        torch.nn.Linear(32 * 4 * 4, 10))
x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
opt = torch.optim.SGD(m.parameters(), lr=0.1)
for _ in range(5):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(m(x), y)
    loss.backward()
    opt.step()
with torch.no_grad():
    print(float(loss).hex(), float(sum(p.double().sum() for p in m.parameters())).hex(),
          torch.backends.cpu.get_cpu_capability())
"""


def _probe(order: str, **env_set: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_AVX2 and k != OPT_OUT_VARIABLE}
    env.update(env_set)
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", _PROBE, order], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_pin_sets_the_three_on_an_avx2_x86_host_and_keeps_what_the_user_set() -> None:
    env = {"MKL_CBWR": "COMPATIBLE"}
    pin = pin_portable_numerics(env, machine="x86_64", flags={"sse4_2", "avx", "avx2", "avx512f"}, modules=())
    assert pin.level == "avx2"
    assert env == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert pin.kept_from_user == ["MKL_CBWR"] and pin.variables == env


@pytest.mark.parametrize("machine, flags, env, why", [
    ("aarch64", {"asimd", "sve"}, {}, "aarch64"),
    ("x86_64", {"sse4_2", "avx"}, {}, "no AVX2"),
    ("x86_64", {"avx2"}, {OPT_OUT_VARIABLE: "1"}, OPT_OUT_VARIABLE),
])
def test_no_pin_off_avx2_x86_or_when_turned_off(machine: str, flags: set[str], env: dict[str, str], why: str) -> None:
    before = dict(env)
    pin = pin_portable_numerics(env, machine=machine, flags=flags, modules=())
    assert pin.level is None and why in pin.reason
    assert env == before  # nothing set


def test_torch_loaded_before_fleetsim_is_recorded() -> None:
    pin = pin_portable_numerics({}, machine="x86_64", flags={"avx2"}, modules=("torch", "numpy"))
    assert pin.torch_imported_first


@pytest.mark.skipif(not AVX2_HOST, reason="the pin applies to x86-64 hosts with AVX2 only")
def test_importing_fleetsim_pins_torchs_kernels_before_torch_chooses() -> None:
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_AVX2}
    env["PYTHONPATH"] = str(ROOT)
    code = ("import os, simulator, torch; print([os.environ.get(k) for k in "
            "('ATEN_CPU_CAPABILITY', 'MKL_CBWR', 'ONEDNN_MAX_CPU_ISA')], torch.backends.cpu.get_cpu_capability())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300).stdout
    assert out.split(maxsplit=3)[:3] == ["['avx2',", "'AVX2',", "'AVX2']"]
    assert out.split()[-1] == "AVX2"  # ATen reports the pinned level, not a wider one the CPU may have


@pytest.mark.skipif(not AVX2_HOST, reason="the pin applies to x86-64 hosts with AVX2 only")
def test_each_pinned_variable_moves_trained_bits_and_the_pin_equals_explicit_avx2() -> None:
    pinned = _probe("fleetsim-first")
    explicit = _probe("torch-only", **PORTABLE_AVX2)
    assert pinned == explicit
    # Each library's own switch, one level lower, changes the parameters' bits: these three are what
    # decides the trained result (were one of them inert, pinning it would prove nothing).
    for name, lower in (("ATEN_CPU_CAPABILITY", "default"), ("MKL_CBWR", "COMPATIBLE"), ("ONEDNN_MAX_CPU_ISA", "SSE41")):
        moved = _probe("torch-only", **{**PORTABLE_AVX2, name: lower})
        assert moved[1] != explicit[1], name
    # A variable the user set wins over the pin.
    assert _probe("fleetsim-first", ONEDNN_MAX_CPU_ISA="SSE41")[1] != pinned[1]


def test_run_json_records_the_kernels_a_run_used(tmp_path: Path) -> None:
    from simulator.api import run

    run(ROOT / "scenarios" / "quickstart.yaml", out=tmp_path / "qs", timing_only=True, report=False)
    record = json.loads((tmp_path / "qs" / "run.json").read_text())["numerics"]
    assert set(record) == {"level", "reason", "variables", "kept_from_user", "torch_imported_first"}
    if AVX2_HOST and not os.environ.get(OPT_OUT_VARIABLE):
        assert record["level"] == "avx2" and set(record["variables"]) == set(PORTABLE_AVX2)
