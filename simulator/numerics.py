"""Portable floating-point kernels for real training: one scenario and seed, the same trained bits on
every x86-64 host with AVX2, whatever wider vector units it has.

Why: PyTorch's CPU kernels each choose the widest instruction set the CPU offers (ATen's own
kernels, MKL's GEMMs, oneDNN's convolutions), and a wider vector sums in another order. The same
commit trained the issue-16 workload (``benchmarks/training_small_clients.yaml``, 20 FedAvg rounds)
to a final accuracy of 0.9777 on an AVX-512 host and 0.9805 on an AVX2 one, and the quickstart
reached its target after 3,494 s there and 3,825.6 s here. Measured on the AVX2 host (2-core AMD
EPYC, torch 2.13.0+cpu), each library's own switch moves that workload's result: final loss
0.092781 native, 0.094170 with ``ATEN_CPU_CAPABILITY=default``; final accuracy 0.9721 with
``MKL_CBWR=COMPATIBLE`` and 0.9777 with ``ONEDNN_MAX_CPU_ISA=SSE41``. With the three at AVX2 the
run there was bit-identical to the native one (loss 0.09278099434263914 both), so the pin costs an
AVX2 host nothing; an AVX-512 host gives up its wider vectors for identical results (not measured
here: no such host was available).

The pin is made when ``simulator`` is imported, before torch chooses its kernels: the libraries
read these variables once, at their first use. Pool workers and a Ray cluster fleetsim starts
inherit the environment; a Ray cluster fleetsim joins gets them in its runtime environment
(:func:`worker_env`). A variable the user set is left as set, and ``FLEETSIM_NATIVE_NUMERICS=1``
turns the pin off. Other architectures (aarch64: a real Jetson) and x86 CPUs without AVX2 keep
their native kernels; their results can differ from an x86 host's.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any

# The variables each library reads for its instruction set, and the AVX2 value of each.
PORTABLE_AVX2: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's vectorised kernels (DispatchStub)
    "MKL_CBWR": "AVX2",  # MKL's conditional numerical reproducibility: the GEMMs' code path
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (mkldnn): convolutions and their gradients
}
OPT_OUT_VARIABLE = "FLEETSIM_NATIVE_NUMERICS"
_X86_MACHINES = ("x86_64", "amd64", "i686", "x86")


@dataclass
class NumericsPin:
    """What :func:`pin_portable_numerics` did, as run.json records it (``numerics``)."""

    level: str | None  # "avx2", or None when the kernels are the CPU's own
    reason: str
    variables: dict[str, str] = field(default_factory=dict)  # the three as in effect after the pin
    kept_from_user: list[str] = field(default_factory=list)  # variables the user had set already
    torch_imported_first: bool = False  # torch was loaded before fleetsim: its choice may be made

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> set[str] | None:
    """The CPU's feature flags (Linux), or None where they cannot be read."""
    try:
        with open(cpuinfo_path, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        return None
    return None


def pin_portable_numerics(environ: MutableMapping[str, str] | None = None, machine: str | None = None,
                          flags: Iterable[str] | None = None, modules: Iterable[str] | None = None) -> NumericsPin:
    """Set the AVX2 kernel variables in `environ` (default ``os.environ``) where the host allows it and
    the user has not set them; what was done. The defaults read this host and process."""
    env = os.environ if environ is None else environ
    machine = (platform.machine() if machine is None else machine).lower()
    torch_first = "torch" in (sys.modules if modules is None else set(modules))
    present = {name: env[name] for name in PORTABLE_AVX2 if name in env}
    if env.get(OPT_OUT_VARIABLE, "").strip() not in ("", "0"):
        return NumericsPin(None, f"{OPT_OUT_VARIABLE} is set: the CPU's own kernels", present, [], torch_first)
    if machine not in _X86_MACHINES:
        return NumericsPin(None, f"{machine} host: its own kernels (results can differ from x86-64)", present, [],
                           torch_first)
    host_flags = cpu_flags() if flags is None else set(flags)
    if host_flags is None or "avx2" not in host_flags:
        return NumericsPin(None, "no AVX2 on this CPU (or its flags are unreadable): its own kernels", present, [],
                           torch_first)
    for name, value in PORTABLE_AVX2.items():
        env.setdefault(name, value)
    return NumericsPin("avx2", "x86-64 with AVX2: ATen, MKL and oneDNN pinned to AVX2",
                       {name: env[name] for name in PORTABLE_AVX2}, sorted(present), torch_first)


def worker_env() -> dict[str, str]:
    """The pinned variables as this process has them, for workers that do not inherit its environment."""
    return {name: os.environ[name] for name in PORTABLE_AVX2 if name in os.environ}


PIN: NumericsPin = pin_portable_numerics()  # at import of simulator (simulator/__init__.py)
