"""Fingerprints of the Wi-Fi fleets the core benchmark times, to prove a speed change left them alone.

Why: ``trace_fingerprint.py`` covers every path of the core on fleets of at most two access points;
the incremental re-division (simulator/network) earns its keep on fleets of many cells sharing the
server's links, where stars form and dissolve and components split. This script runs the scenarios
``core_throughput.py`` times (its ``scenario()``: 50 and 100 cells, FedAvg and Co-S²P merging every
16 arrivals, so downloads and uploads overlap) at a size that takes seconds, and hashes each trace's
schema and values as ``trace_fingerprint.content_hash`` does.

    python benchmarks/core_fingerprint.py --save /tmp/before.json     # before a change
    python benchmarks/core_fingerprint.py --check /tmp/before.json    # after: exits 1 on any difference
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core_throughput import scenario  # noqa: E402
from trace_fingerprint import TABLES, content_hash, save_or_check  # noqa: E402

# name → (devices, rounds, Co-S²P K or 0 for FedAvg, access points); a smaller server link in the last
# one makes the server bind (the cells' star on it), not only the cells
CASES: dict[str, tuple[int, int, int, int]] = {
    "wifi-1000-50ap-fedavg": (1000, 10, 0, 50),
    "wifi-2000-100ap-fedavg": (2000, 5, 0, 100),
    "wifi-1000-50ap-cos2p16": (1000, 60, 16, 50),
    "wifi-1000-50ap-cos2p16-server-binds": (1000, 60, 16, 50),
}


def case(name: str) -> dict[str, Any]:
    devices, rounds, k, access_points = CASES[name]
    data = scenario(devices, rounds, k, access_points)
    data["name"] = name
    data["output"] = {"report": False, "flush_rows": 5000}
    if name.endswith("server-binds"):  # 50 cells × 600 Mbit/s above it: the server link binds
        data["network"]["server"] = {"downlink_mbps": 12000, "uplink_mbps": 9000}
    return data


def fingerprint() -> dict[str, dict[str, str]]:
    from simulator.api import run

    result: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            folder = Path(tmp) / name
            run(case(name), out=folder, timing_only=True, force=True, report=False)
            result[name] = {t: content_hash(folder / f"{t}.parquet") for t in TABLES}
            summary = json.loads((folder / "summary.json").read_text())
            print(f"{name}: {summary['jobs']} jobs, {summary['versions']} versions", file=sys.stderr)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save", type=Path, help="write fingerprints to this JSON file")
    parser.add_argument("--check", type=Path, help="compare with fingerprints saved earlier")
    args = parser.parse_args()
    return save_or_check(fingerprint(), args.save, args.check)

if __name__ == "__main__":
    sys.exit(main())
