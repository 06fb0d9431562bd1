"""Documented hardware figures of every built-in Jetson profile, and its power modes from nvpmodel.

Why here: ``scripts/fit_jetson_profiles.py`` fits the measured boards and derives the others by
hardware ratios; the ratios need each module's CUDA cores, top GPU clock, TPC count, top memory
(EMC) clock and DRAM bandwidth, each with its source, and each profile power mode's row in
``device_profiles/measurements/jetson_power.csv`` (NVIDIA's nvpmodel caps). Source tags: ``[S..]``
/work/shared/reference/jetson-and-libraries.md (the profiles' own list); the upper-case ids
(LOS-GALEN, SEEED-GB8, EMWJ, MLPERF-31, ...) device_profiles/measurements/SOURCES.md; ``[N..]`` the
profile file's own header; ``[m]`` from memory, not confirmed in a stored source; ``[d]`` arithmetic.
Two figures were confirmed for this script with the stored-reference search: Orin NX 16GB
1024 cores at 918 MHz (a CUDA deviceQuery of a 16 GB Orin NX, gist atinfinity/8cede915...: "1024
CUDA Cores, GPU Max Clock rate: 918 MHz") and TX2 256 CUDA cores ([S1]).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POWER_CSV = ROOT / "device_profiles" / "measurements" / "jetson_power.csv"


@dataclass(frozen=True)
class Mode:
    """A profile power mode: its nvpmodel row (``nvpmodel_id`` in the board's configuration file) and,
    where the file gives no budget (MAXN-style modes), the watts the profile assumes and why."""

    nvpmodel_id: int
    watts: float | None = None
    watts_source: str = ""


@dataclass(frozen=True)
class Board:
    profile: str
    csv_board: str               # jetson_power.csv ``board`` of its nvpmodel rows
    arch: str
    cuda_cores: int
    cores_source: str
    peak_mhz: float              # the clock FP32 peak is quoted at
    peak_mhz_source: str
    clock_ref_mhz: float         # the GPU clock of clock_scale 1.0 (the highest cap or devfreq step)
    tpcs: int                    # TPCs powered at clock_scale 1.0 (1 where the file has no TPC mask)
    emc_max_mhz: float           # memory clock of bandwidth_scale 1.0
    bandwidth_gbps: float
    bandwidth_source: str
    cpu: str                     # CPU class, for the per-op / per-step overheads
    op_overhead_s: float
    step_overhead_s: float
    idle_w: float
    idle_source: str
    modes: dict[str, Mode] = field(default_factory=dict)

    @property
    def peak_fp32_gflops(self) -> float:
        """CUDA cores x 2 FLOP (one FMA) x clock, GFLOP/s, to 0.1."""
        return round(self.cuda_cores * 2 * self.peak_mhz / 1000.0, 1)

    @property
    def peak_source(self) -> str:
        return (f"derived: {self.cuda_cores} CUDA cores {self.cores_source} x 2 FLOP/FMA x {self.peak_mhz:g} MHz "
                f"{self.peak_mhz_source}")


_CPU_OVERHEADS = {  # the profiles' CPU-class assumptions (per op, per step); none is measured
    "Nano": (60e-6, 3e-3), "TX2": (40e-6, 2e-3), "Carmel": (30e-6, 2e-3), "A78AE": (20e-6, 1e-3)}


def _board(profile: str, csv_board: str, arch: str, cores: tuple[int, str], peak: tuple[float, str],
           clock_ref: float, tpcs: int, emc: float, bandwidth: tuple[float, str], cpu: str,
           idle: tuple[float, str], modes: dict[str, Mode]) -> Board:
    op_s, step_s = _CPU_OVERHEADS[cpu]
    return Board(profile, csv_board, arch, cores[0], cores[1], peak[0], peak[1], clock_ref, tpcs, emc,
                 bandwidth[0], bandwidth[1], cpu, op_s, step_s, idle[0], idle[1], modes)


_IDLE_M = "assumption: [m] no idle measurement of this board found"
BOARDS: dict[str, Board] = {b.profile: b for b in (
    _board("jetson-nano-4gb", "jetson-nano-4gb", "Maxwell", (128, "[S1]"), (921.6, "(MAXN, top devfreq step, SEEED-GB8)"),
           921.6, 1, 1600, (25.6, "datasheet: [S1] (= 8 B x 2 x 1600 MHz EMC [N2])"), "Nano",
           (1.5, _IDLE_M + " (dev kit idle ~1.3-2 W)"), {"maxn": Mode(0), "5w": Mode(1)}),
    _board("jetson-tx2", "jetson-tx2", "Pascal", (256, "[S1]"), (1300, "(Max-N [N3])"), 1300, 1, 1866,
           (59.7, "datasheet: [S3] (= 16 B x 2 x 1866 MHz EMC [d]; 58.4 in [S4])"), "TX2", (2.0, _IDLE_M),
           {"maxn": Mode(0, 18.0, "assumption: no budget in nvpmodel (LOS-QUILL) or [N3]; Max-P's 15 W + 20 %"),
            "max-p": Mode(2, 15.0, "nvpmodel: Max-P budget 15 W [N3] (LOS-QUILL's file names no budget)"),
            "max-q": Mode(1, 7.5, "nvpmodel: Max-Q budget 7.5 W [N3] (LOS-QUILL's file names no budget)")}),
    _board("jetson-xavier-nx", "jetson-xavier-nx", "Volta", (384, "[S5]"), (1100, "[S5] (devfreq step 1109.25, LOS-GALEN)"),
           1109.25, 3, 1866, (59.7, "derived: 16 B x 2 x 1866 MHz EMC (20 W modes, LOS-GALEN); [S5]'s 51.2 is at 1600 MHz"),
           "Carmel", (2.5, _IDLE_M), {"20w": Mode(8), "15w": Mode(2), "10w": Mode(4)}),
    _board("jetson-agx-xavier", "jetson-agx-xavier", "Volta", (512, "(gist discort/2213fcd6, NVIDIA's spec list: '512-core Volta GPU')"),
           (1377, "(MAXN, top devfreq step, EMWJ)"), 1377, 4, 2133,
           (136.5, "derived: 32 B (256-bit) x 2 x 2133 MHz EMC [m]; '32GB 256-Bit LPDDR4x | 137GB/s' (gist discort/2213fcd6)"), "Carmel", (5.0, _IDLE_M),
           {"maxn": Mode(0, 40.0, "assumption: MAXN has no budget (LOS-GALEN); the dev kit is 'within 65 W' [S8]"),
            "30w": Mode(3), "15w": Mode(2), "10w": Mode(1)}),
    _board("jetson-orin-nano-4gb", "jetson-orin-nano-4gb", "Ampere", (512, "[S9]"), (625, "[S9]"), 625, 2, 2133,
           (34.1, "derived: 8 B (64-bit [S9]) x 2 x 2133 MHz EMC (LOS-CONCORD 7 W caps = max [m])"), "A78AE",
           (3.0, _IDLE_M), {"10w": Mode(0), "7w": Mode(1), "7w-cpu": Mode(2)}),
    _board("jetson-orin-nano-8gb", "jetson-orin-nano-8gb", "Ampere", (1024, "[S9]"), (625, "[S9]"), 625, 4, 2133,
           (68.0, "datasheet: [S10] (= 16 B x 2 x 2133 MHz EMC [d])"), "A78AE",
           (3.5, _IDLE_M + " (a stripped-down board idles ~2.2 W VDD_IN, NVIDIA forum t/348662)"),
           {"15w": Mode(0), "7w": Mode(1)}),
    _board("jetson-orin-nano-8gb-super", "jetson-orin-nano-8gb-super", "Ampere", (1024, "[S9]"), (1020, "[S10]"),
           1020, 4, 3199, (102.0, "datasheet: [S10] (= 16 B x 2 x 3199 MHz EMC, LOS-CONCORD super file)"), "A78AE",
           (3.5, _IDLE_M),
           {"maxn-super": Mode(2, 30.0, "assumption: MAXN_SUPER has no budget (LOS-CONCORD); 25 W + 20 %"),
            "25w": Mode(1), "15w": Mode(0)}),
    _board("jetson-orin-nx-16gb", "jetson-orin-nx-16gb", "Ampere",
           (1024, "(CUDA deviceQuery of a 16 GB Orin NX, gist atinfinity/8cede915)"),
           (918, "(same deviceQuery: 'GPU Max Clock rate: 918 MHz')"), 918, 4, 3199,
           (102.4, "derived: 16 B (128-bit [m]) x 2 x 3199 MHz EMC [m]"), "A78AE", (4.0, _IDLE_M),
           {"maxn": Mode(0, 30.0, "assumption: MAXN has no budget (LOS-CONCORD); 25 W + 20 %"),
            "25w": Mode(3), "15w": Mode(2), "10w": Mode(1)}),
    _board("jetson-agx-orin-64gb", "jetson-agx-orin (p3701-0000)", "Ampere", (2048, "[S12]"), (1300, "[S12]"), 1300, 8,
           3199, (204.8, "derived: 32 B (256-bit [m]) x 2 x 3199 MHz EMC [m]"), "A78AE",
           (5.6, "measured: MLPERF-31, AC wall power of an AGX Orin dev kit between MLPerf runs (mean of 8 samples, "
                 "5.47-5.90 W; PSU included, MaxQ clock settings)"),
           {"maxn": Mode(0, 60.0, "assumption: the module maximum 'up to 60 W' [S14,N4]: an upper bound; measured inference "
                                  "draws 14.8-21.3 W (SCALES, tegrastats, MAXN)"),
            "50w": Mode(3), "30w": Mode(2), "15w": Mode(1)}),
)}


def power_rows(path: Path = POWER_CSV) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _mhz(text: str) -> float | None:
    return None if text in ("", "uncapped") else float(text)


def mode_figures(board: Board, mode_name: str, rows: list[dict[str, str]]) -> dict[str, tuple[float, str]]:
    """``watts``, ``clock_scale`` and ``bandwidth_scale`` of one profile mode, each with its source.

    clock_scale = (the clock the mode reaches / ``clock_ref_mhz``) x (TPCs on / ``tpcs``): the clock
    reached is ``gpu_max_mhz_effective`` where a source gives it (the Nano's 5 W cap of 640 MHz is not a
    devfreq step: it runs at 614.4), else the cap, else (uncapped) the board's top clock.
    bandwidth_scale = EMC cap / ``emc_max_mhz`` (uncapped: 1). watts = the mode's nvpmodel budget.
    """
    mode = board.modes[mode_name]
    matches = [r for r in rows if r["board"] == board.csv_board and r["nvpmodel_id"] == str(mode.nvpmodel_id)]
    if len(matches) != 1:
        raise ValueError(f"{board.profile} {mode_name}: {len(matches)} nvpmodel rows for id {mode.nvpmodel_id}")
    r = matches[0]
    where = f"{r['source_id']} nvpmodel id {r['nvpmodel_id']} {r['power_mode']}"
    reached = _mhz(r["gpu_max_mhz_effective"]) or _mhz(r["gpu_max_mhz"]) or board.clock_ref_mhz
    how = ("effective " if r["gpu_max_mhz_effective"] else "cap " if _mhz(r["gpu_max_mhz"]) else "uncapped: top ")
    tpcs_on = int(r["gpu_tpcs_on"]) if r["gpu_tpcs_on"] else board.tpcs
    clock = round(reached / board.clock_ref_mhz * tpcs_on / board.tpcs, 3)
    tpc_text = f" x {tpcs_on}/{board.tpcs} TPCs" if board.tpcs > 1 else ""
    emc = _mhz(r["emc_max_mhz"])
    bandwidth = 1.0 if emc is None else round(min(1.0, emc / board.emc_max_mhz), 3)
    emc_text = "EMC uncapped" if emc is None else f"EMC {emc:g} / {board.emc_max_mhz:g} MHz"
    if r["budget_w"]:
        watts, watts_source = float(r["budget_w"]), f"nvpmodel: the mode's budget ({where}); that training draws it is an assumption"
    elif mode.watts is not None:
        watts, watts_source = mode.watts, mode.watts_source
    else:
        raise ValueError(f"{board.profile} {mode_name}: no budget in {where} and no stated assumption")
    return {
        "watts": (watts, watts_source),
        "clock_scale": (clock, f"derived: GPU {how}{reached:g} / {board.clock_ref_mhz:g} MHz{tpc_text} ({where})"),
        "bandwidth_scale": (bandwidth, f"derived: {emc_text} ({where})"),
    }
