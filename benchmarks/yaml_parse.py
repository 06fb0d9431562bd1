"""Parse time of fleetsim's two YAML loaders, side by side in one process.

Why: scenarios of large Wi-Fi fleets name every cell (a 1,000-cell scenario is ~170 KB of YAML) and
every run reads the device profiles; `simulator.config.loading` parses with libyaml first and keeps
PyYAML's pure-Python parser for wording errors. This prints the best of `--repeat` parses of each
document set with each loader and their ratio.

    python benchmarks/yaml_parse.py --repeat 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import core_throughput

    from simulator.config import loading

    cells = yaml.safe_dump(core_throughput.scenario(100_000, 5, 0, 1000), sort_keys=False)
    profiles = [p.read_text() for p in sorted((ROOT / "device_profiles").glob("*.yaml"))]
    sets = {f"100,000 devices on 1,000 cells ({len(cells) // 1024} KB)": [cells],
            f"{len(profiles)} device profiles ({sum(map(len, profiles)) // 1024} KB)": profiles}
    for label, texts in sets.items():
        best = {}
        for loader in (loading._Loader, loading._FastLoader):
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                for text in texts:
                    yaml.load(text, Loader=loader)  # noqa: S506 - both are SafeLoaders
                times.append(time.perf_counter() - start)
            best[loader.__name__] = min(times)
        print(f"{label}: Python parser {best['_Loader'] * 1e3:.1f} ms, libyaml {best['_FastLoader'] * 1e3:.1f} ms, "
              f"ratio {best['_Loader'] / best['_FastLoader']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
