"""Explain every trace difference between an older commit and this checkout, scenario by scenario.

For each scenario of trace_fingerprint.py it runs three timing-only runs: the older commit, the older
commit with the server downlink's capacity one unit in the last place larger (perturbed_run.py), and
this checkout. It then prints, for "this against old" and for "old+1ulp against old" (trace_diff.py):
the events matched, the time of the first divergence (None: none), the largest relative time
difference before it, and the relative difference of the fleet's total communication time.

A scenario is explained when this checkout's traces agree with the old ones to the last places of
the floats, or when they part where the old code itself parts under a one-ulp change of one input
(the model carries such a difference that far: a near tie between two events flips their order).

    python benchmarks/explain_traces.py c862f1a            # about 3 minutes here
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trace_diff import diff  # noqa: E402
from trace_fingerprint import scenarios  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _run(tree: Path, script: str, args: list[str]) -> None:
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], check=True, capture_output=True,
                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(tree)})


def _summary(d: dict) -> str:
    e = d["events"]
    first = "none" if e["first_divergence_s"] is None else f"{e['first_divergence_s']:.1f} s"
    return (f"{e['matched']:>7}/{e['rows'][0]:<7} apart: {first:>9} of {e['last_s']:.0f} s, before it max rel "
            f"{max(e['max_rel_end_before'], e['max_rel_start_before']):.1e}; comm_s {d['devices']['comm_s'][2]:+.1e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the older commit")
    parser.add_argument("--only", nargs="*", help="scenario names (default: all)")
    args = parser.parse_args()
    names = [n for n in scenarios() if not args.only or n in args.only]
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old_tree), args.base], check=True, cwd=ROOT)
        try:
            old, ulp, new = Path(tmp) / "runs-old", Path(tmp) / "runs-ulp", Path(tmp) / "runs-new"
            _run(old_tree, "trace_fingerprint.py", ["--only", *names, "--keep", str(old)])
            _run(ROOT, "trace_fingerprint.py", ["--only", *names, "--keep", str(new)])
            for name in names:
                _run(old_tree, "perturbed_run.py", [name, str(ulp)])
            print(f"events matched/old rows, first divergence, largest relative time difference before it, "
                  f"fleet comm_s difference; this checkout against {args.base}, and {args.base} with one ulp more "
                  "server downlink against itself")
            for name in names:
                print(f"{name}\n  this:     {_summary(diff(old / name, new / name))}\n"
                      f"  old+1ulp: {_summary(diff(old / name, ulp / name))}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], check=False, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
