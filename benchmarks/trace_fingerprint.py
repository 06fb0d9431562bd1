"""Fingerprints of timing-only traces, to prove that a speed change leaves every result identical.

Why: the hot loop (network, device, server, trace) is optimised by hand; every such change must give
the same trace contents for the same scenario and seed. This script runs a fixed set of timing-only
scenarios that between them exercise every path of the core (shared Wi-Fi and Ethernet, churn with
interrupted phases, deadlines and cancels, sync / async / buffered / semi-async policies, 1,000
devices) and prints or checks a SHA-256 of each trace file's schema and values.

    python benchmarks/trace_fingerprint.py --save /tmp/before.json     # before a change
    python benchmarks/trace_fingerprint.py --check /tmp/before.json    # after: exits 1 on any difference
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("events", "updates", "devices", "versions")


def _quickstart() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    data["output"] = {"report": False}
    return data


def _fleet_1k(wifi: bool, churn: bool) -> list[dict[str, Any]]:
    profiles = [("jetson-nano-4gb", 250), ("jetson-tx2", 250), ("jetson-xavier-nx", 250),
                ("jetson-orin-nano-8gb", 150), ("jetson-agx-orin-64gb", 100)]
    fleet = []
    for i, (profile, count) in enumerate(profiles):
        group: dict[str, Any] = {"profile": profile, "count": count,
                                 "link": ("ap-a" if i % 2 else "ap-b") if wifi and i < 3 else "ethernet"}
        if churn and i in (1, 2):
            group["availability"] = {"kind": "churn", "mean_online_s": 900, "mean_offline_s": 120}
        fleet.append(group)
    return fleet


def _big(name: str, algorithm: dict[str, Any], *, wifi: bool, churn: bool, stop: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name, "seed": 3, "fleet": _fleet_1k(wifi, churn),
        "network": {
            "server": {"downlink_mbps": 20000, "uplink_mbps": 10000},
            "access_points": {"ap-a": {"capacity_mbps": 4000, "max_client_mbps": 200,
                                       "latency": {"mean_ms": 4, "jitter_ms": 2}},
                              "ap-b": {"capacity_mbps": 3000, "latency": {"mean_ms": 3, "jitter_ms": 1,
                                                                           "distribution": "uniform"}}},
            "ethernet": {"rate_mbps": 941, "latency": {"mean_ms": 0.5, "jitter_ms": 0.1}},
        },
        "workload": {"model": {"name": "resnet", "preset": "resnet18-cifar"},  # the 32×32 layout (was "resnet18")
                     "dataset": {"name": "digits", "image_size": 32, "channels": 3},
                     "samples_per_client": 256, "batch_size": 32, "local_epochs": 1},
        "algorithm": algorithm, "stop": stop, "evaluation": {"every_versions": None},
        "output": {"report": False, "flush_rows": 5000},
    }


def scenarios() -> dict[str, dict[str, Any]]:
    """Name → scenario dict; all run timing-only."""
    out: dict[str, dict[str, Any]] = {"quickstart": _quickstart()}
    for name, algorithm in {
        "quickstart-fedavg-deadline": {"name": "fedavg", "aggregation": {"deadline_s": 60, "over_selection": 1.0}},
        "quickstart-fedavg-overselect": {"name": "fedavg", "aggregation": {"clients_per_round": 6,
                                                                           "over_selection": 1.5}},
        "quickstart-fedasync": {"name": "fedasync"},
        "quickstart-fedbuff": {"name": "fedbuff", "aggregation": {"buffer_k": 4, "max_staleness": 3}},
        "quickstart-timelyfl": {"name": "timelyfl", "aggregation": {"k": 6, "deadline_s": 90}},
    }.items():
        data = _quickstart()
        data["name"] = name
        data["algorithm"] = algorithm
        out[name] = data
    zero = _quickstart()
    zero["name"] = "quickstart-zero-latency"
    zero["network"]["access_points"]["ap-lab"]["latency"] = {"mean_ms": 0, "jitter_ms": 0}
    zero["network"]["ethernet"]["latency"] = {"mean_ms": 0}
    out[zero["name"]] = zero
    for kind in ("uniform", "exponential"):
        data = _quickstart()
        data["name"] = f"quickstart-{kind}-latency"
        data["network"]["access_points"]["ap-lab"]["latency"] = {"mean_ms": 4, "jitter_ms": 2, "distribution": kind}
        data["network"]["ethernet"]["latency"] = {"mean_ms": 0.3, "jitter_ms": 0.1, "distribution": kind}
        out[data["name"]] = data
    out["scale-1k-fedavg"] = _big("scale-1k-fedavg", {"name": "fedavg"}, wifi=False, churn=False,
                                  stop={"max_versions": 20, "sim_time_s": 1e6})
    out["mixed-1k-cos2p"] = _big("mixed-1k-cos2p", {"name": "co-s2p", "aggregation": {"k": 300, "deadline_s": 400}},
                                 wifi=True, churn=True, stop={"sim_time_s": 4000})
    same = _big("mixed-1k-same-instant", {"name": "fedavg", "aggregation": {"deadline_s": 300}},
                wifi=True, churn=True, stop={"sim_time_s": 3000})
    for ap in same["network"]["access_points"].values():
        ap["latency"] = {"mean_ms": 2}
    same["network"]["ethernet"]["latency"] = {"mean_ms": 0}
    out[same["name"]] = same
    # all Ethernet: downloads and uploads in flight at once on the server's two links (independent classes)
    out["ethernet-1k-cos2p-churn"] = _big("ethernet-1k-cos2p-churn", {"name": "co-s2p", "aggregation": {"k": 16}},
                                          wifi=False, churn=True, stop={"max_versions": 300, "sim_time_s": 1e6})
    out["mixed-1k-fedbuff"] = _big("mixed-1k-fedbuff", {"name": "fedbuff", "aggregation": {"buffer_k": 100}},
                                   wifi=True, churn=True, stop={"sim_time_s": 3000})
    return out


def content_hash(path: Path) -> str:
    """SHA-256 of a Parquet file's schema and values (its Arrow IPC stream, chunks combined).

    Not of its bytes: how the writer pages and encodes the same rows is not a result (and changed
    once, when the joined file began to be written from combined chunks). That the same scenario and
    seed give byte-identical files is what tests/core checks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def fingerprint(only: list[str] | None = None, keep: Path | None = None) -> dict[str, dict[str, str]]:
    """Run the scenarios and hash their traces; with `keep`, the run folders stay under that folder."""
    from simulator.api import run

    result: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in scenarios().items():
            if only and name not in only:
                continue
            folder = (keep or Path(tmp)) / name
            run(copy.deepcopy(data), out=folder, timing_only=True, force=True, report=False)
            result[name] = {t: content_hash(folder / f"{t}.parquet") for t in TABLES}
            summary = json.loads((folder / "summary.json").read_text())  # not hashed: it gains keys over time
            print(f"{name}: {summary['jobs']} jobs, {summary['versions']} versions", file=sys.stderr)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save", type=Path, help="write fingerprints to this JSON file")
    parser.add_argument("--check", type=Path, help="compare with fingerprints saved earlier")
    parser.add_argument("--only", nargs="*", help="scenario names to run (default: all)")
    parser.add_argument("--keep", type=Path, help="keep the run folders under this folder")
    args = parser.parse_args()
    return save_or_check(fingerprint(args.only, args.keep), args.save, args.check)


def save_or_check(prints: dict[str, dict[str, str]], save: Path | None, check: Path | None) -> int:
    """Write `prints` to `save`, compare them with `check` (exit status 1 if any file differs), or
    print them; shared with core_fingerprint.py."""
    if save:
        save.write_text(json.dumps(prints, indent=1, sort_keys=True))
    if check:
        expected = json.loads(check.read_text())
        bad = [(n, t) for n, tables in prints.items() for t, h in tables.items() if expected.get(n, {}).get(t) != h]
        for name, table in bad:
            print(f"DIFFERENT: {name} {table}")
        print("identical" if not bad else f"{len(bad)} files differ")
        return 1 if bad else 0
    if not save:
        print(json.dumps(prints, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
