"""Time of the learner's streamed merge on issue 16's benchmark model, and a hash of its result.

Why: in a 2-worker pool run the merge (``MergeSum.add`` per result, ``result`` per round) was most of
the engine's own work, and the part added after a round's last result is on the critical path. Run
it under two trees (``PYTHONPATH=<tree>``) to compare them; equal hashes show equal bits.

The merge: 16 full-width contributions of the 155,020-parameter CNN of
``benchmarks/training_small_clients.yaml`` (20 tensors), FedAvg weights, ``absolute`` mode; best of
``--repeat`` on one torch thread, as the engine runs it.

    PYTHONPATH=/path/to/tree-a python benchmarks/merge_sum.py
    PYTHONPATH=/path/to/tree-b python benchmarks/merge_sum.py
"""

from __future__ import annotations

import argparse
import hashlib
import time

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    from simulator.config.workload import ModelSpec
    from simulator.learning.models.registry import build_model
    from simulator.learning.submodel import MergeSum, SubmodelPlan

    torch.set_num_threads(1)
    model = build_model(ModelSpec(name="cnn", width=20, blocks=4), 10, (1, 8, 8), seed=0)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    axes, plan = model.param_axes(), SubmodelPlan(depth=4, width_ratio=1.0)
    gen = torch.Generator().manual_seed(0)
    subs = [{k: v + 1e-2 * torch.randn(v.shape, generator=gen) for k, v in state.items()} for _ in range(16)]
    add_s = result_s = float("inf")
    for _ in range(args.repeat):
        sums = MergeSum(state, axes, 4, mode="absolute")
        start = time.perf_counter()
        for i, sub in enumerate(subs):
            sums.add(sub, plan, 10.0 + i)
        middle = time.perf_counter()
        merged, _ = sums.result()
        add_s, result_s = min(add_s, middle - start), min(result_s, time.perf_counter() - middle)
    digest = hashlib.sha256(b"".join(merged[k].numpy().tobytes() for k in merged)).hexdigest()[:16]
    print(f"16 additions {add_s * 1e3:.2f} ms ({add_s / 16 * 1e3:.3f} ms each), result {result_s * 1e3:.2f} ms, "
          f"merged state sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
