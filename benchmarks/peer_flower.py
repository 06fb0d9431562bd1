"""Flower's simulation running the workload of ``docs/benchmark_workload.md``, against fleetsim.

Why: issue 16 asks for fleetsim's real-training speed next to a peer's on the same computation.
This runs, alternating in one process (order rotated per repeat): the plain PyTorch loop of
``training_throughput.py``, Flower's simulation (``flwr.simulation.start_simulation``, FedAvg, 16
virtual clients on Ray actors of one CPU each), and fleetsim serial and with a 2-worker process pool.
Ratios are taken against the plain loop of the same repeat; fleetsim's ratio to Flower is printed too.

Flower's client does exactly the documented local work (same shards, seeds, batches, steps, fresh
SGD per round, one intra-op thread); its server is Flower's FedAvg (float32 weighted mean) with a
centralised evaluation after every round (``evaluate_fn``). Ray is started before the clock for
Flower as for fleetsim's Ray executor; Flower's actors start inside it.

flwr is not a fleetsim dependency. Install it apart from fleetsim's environment, so that it changes
none of its packages (it pins typer, rich and its own Ray), and run this script with that Python:

    python -m venv --system-site-packages /tmp/flwr-venv
    /tmp/flwr-venv/bin/pip install "flwr[simulation]"        # check first: pip install --dry-run
    PYTHONPATH=$PWD /tmp/flwr-venv/bin/python benchmarks/peer_flower.py --repeat 3
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_throughput import fleetsim_run, plain_fedavg, scenario  # noqa: E402

_SETUP: dict[str, Any] = {}


def _workload(data: dict[str, Any]) -> dict[str, Any]:
    """Data, shards and the seeded initial weights, loaded once per process (driver or actor)."""
    if not _SETUP:
        import numpy as np
        import torch

        from simulator.config.scenario import Scenario
        from simulator.learning.data import load_dataset, partition
        from simulator.learning.models import build_model

        torch.set_num_threads(1)
        sc = Scenario.model_validate(data)
        wl, seed = sc.workload, int(sc.seed)
        ds = load_dataset(wl.dataset, seed)
        parts = [torch.from_numpy(p) for p in partition(ds.y_train.numpy(), sc.num_devices, wl.partition, seed)]

        def derived(*key: int) -> int:
            return int(np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0] >> 1)

        model = build_model(wl.model, ds.num_classes, ds.input_shape, seed=derived(seed, 0x6D6F64))
        _SETUP.update(sc=sc, wl=wl, seed=seed, ds=ds, shards=[(ds.x_train[p], ds.y_train[p]) for p in parts],
                      model=model, derived=derived, keys=list(model.state_dict()))
    return _SETUP


def _logits(model: Any, x: Any) -> Any:
    h = model.stem(x)
    for block in model.blocks:
        h = block(h)
    return model.exits[len(model.blocks) - 1](h)


def _set(model: Any, keys: list[str], arrays: list[Any]) -> None:
    import torch

    model.load_state_dict({k: torch.from_numpy(a.copy()) for k, a in zip(keys, arrays)})


def flower_run(data: dict[str, Any]) -> dict[str, Any]:
    import flwr as fl
    import torch
    import torch.nn.functional as F
    from flwr.common import ndarrays_to_parameters

    setup = _workload(data)
    clients = setup["sc"].num_devices
    rounds = int(setup["sc"].stop.max_versions)

    class Client(fl.client.NumPyClient):
        def __init__(self, cid: int) -> None:
            self.cid = cid

        def fit(self, parameters: list[Any], config: dict[str, Any]) -> tuple[list[Any], int, dict]:
            s = _workload(data)
            model, wl = s["model"], s["wl"]
            x, y = s["shards"][self.cid]
            n, b, r = len(y), min(int(wl.batch_size), len(y)), int(config["round"])
            _set(model, s["keys"], parameters)
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=wl.optimizer.lr, momentum=wl.optimizer.momentum)
            job_seed = s["derived"](s["seed"], 0x6A6F62, self.cid, clients * r + self.cid)
            gen = torch.Generator().manual_seed(job_seed)
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(job_seed)
                perm, pos = torch.randperm(n, generator=gen), 0
                for _ in range(max(1, math.ceil(float(wl.local_epochs) * n / b))):
                    if pos + b > n:
                        perm, pos = torch.randperm(n, generator=gen), 0
                    idx = perm[pos:pos + b]
                    pos += b
                    loss = F.cross_entropy(_logits(model, x[idx]), y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            return [v.detach().numpy().copy() for v in model.state_dict().values()], n, {}

    def client_fn(context: Any) -> Any:
        return Client(int(context.node_config["partition-id"])).to_client()

    accuracies: list[float] = []

    def evaluate_fn(server_round: int, parameters: list[Any], config: dict[str, Any]) -> tuple[float, dict]:
        s = _workload(data)
        model, ds = s["model"], s["ds"]
        _set(model, s["keys"], parameters)
        model.eval()
        with torch.no_grad():
            acc = float((_logits(model, ds.x_test).argmax(-1) == ds.y_test).double().mean())
        accuracies.append(acc)
        return 0.0, {"accuracy": acc}

    start = time.perf_counter()
    init = [v.detach().numpy().copy() for v in _workload(data)["model"].state_dict().values()]
    strategy = fl.server.strategy.FedAvg(
        fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=clients, min_available_clients=clients,
        initial_parameters=ndarrays_to_parameters(init), evaluate_fn=evaluate_fn,
        on_fit_config_fn=lambda r: {"round": r - 1})
    fl.simulation.start_simulation(
        client_fn=client_fn, num_clients=clients, config=fl.server.ServerConfig(num_rounds=rounds),
        strategy=strategy, client_resources={"num_cpus": 1, "num_gpus": 0.0}, keep_initialised=True,
        ray_init_args={"ignore_reinit_error": True, "include_dashboard": False})
    return {"s": time.perf_counter() - start, "accuracies": accuracies}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="CPUs of Ray and workers of fleetsim's pool")
    args = parser.parse_args()

    import logging

    import ray
    import sklearn.datasets  # noqa: F401
    import torch._dynamo  # noqa: F401

    import simulator.api  # noqa: F401

    logging.getLogger("flwr").setLevel(logging.WARNING)
    data = scenario()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in ("plain", "flower", "serial", "pool")}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FLEETSIM_CACHE_DIR"] = str(Path(tmp) / "cache")
        fleetsim_run(data, Path(tmp) / "warm", "inline", 0)
        order = list(runs)
        for rep in range(args.repeat):
            shift = rep % len(order)
            for name in order[shift:] + order[:shift]:
                if name == "plain":
                    runs[name].append(plain_fedavg(data))
                elif name == "flower":
                    runs[name].append(flower_run(data))
                else:
                    runs[name].append(fleetsim_run(data, Path(tmp) / name, "inline" if name == "serial" else "process",
                                                   args.workers))
                print(f"  repeat {rep + 1} {name:6s} {runs[name][-1]['s']:6.2f} s", file=sys.stderr, flush=True)
            loads.append(os.getloadavg()[0])
    ray.shutdown()
    med = {k: statistics.median(r["s"] / p["s"] for r, p in zip(v, runs["plain"])) for k, v in runs.items()}
    fa, pa = runs["flower"][0]["accuracies"], runs["plain"][0]["accuracies"]
    gap = max(abs(a - b) for a, b in zip(fa, pa))
    same = next((i for i, (a, b) in enumerate(zip(fa, pa)) if a != b), len(fa))
    print(f"small-clients workload, {args.repeat} alternating repeats; load (1 min) "
          + ", ".join(f"{x:.2f}" for x in loads) + f" on {os.cpu_count()} CPUs")
    for k, v in runs.items():
        print(f"{k:6s} " + ", ".join(f"{r['s']:.2f}" for r in v) + f" s   median / plain {med[k]:.3f}x")
    for k in ("serial", "pool"):
        per = [r["s"] / f["s"] for r, f in zip(runs[k], runs["flower"])]
        print(f"fleetsim {k} / Flower per repeat: " + ", ".join(f"{x:.3f}" for x in per)
              + f"; median {statistics.median(per):.3f}x")
    print(f"Flower final accuracy {runs['flower'][0]['accuracies'][-1]:.4f} over {len(runs['flower'][0]['accuracies'])} "
          f"evaluations; the first {same} equal the plain loop's exactly; largest gap {gap:.2e} "
          "(Flower averages in float32, the plain loop and fleetsim in float64)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
