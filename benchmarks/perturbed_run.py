"""Run a fingerprint scenario with one input moved by one unit in the last place, to measure how far
the model itself carries a difference that small.

Why: when a change to the network's arithmetic makes traces part (trace_diff.py), the question is
whether the new code computes something else or the model is that sensitive. A run of the *same*
code with the server downlink's capacity one ulp larger answers it: if that run parts from the
unperturbed one as early and as far, the parting is the model's, and the change only supplied the
first ulp.

    PYTHONPATH=/path/to/tree python benchmarks/perturbed_run.py mixed-1k-fedbuff /tmp/out
    python benchmarks/trace_diff.py /tmp/plain/mixed-1k-fedbuff /tmp/out/mixed-1k-fedbuff
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trace_fingerprint import scenarios  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", help="a trace_fingerprint.py scenario name")
    parser.add_argument("out", type=Path, help="the run folder is OUT/SCENARIO")
    args = parser.parse_args()
    from simulator.api import run

    data = copy.deepcopy(scenarios()[args.scenario])
    server = data["network"]["server"]
    server["downlink_mbps"] = math.nextafter(float(server["downlink_mbps"]), math.inf)
    run(data, out=args.out / args.scenario, timing_only=True, force=True, report=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
