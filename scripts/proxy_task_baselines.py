"""How hard the paper testbed's image task is: a linear read-out against the ViT proxy trained centrally.

Why: the README says the testbed's `synthetic-shapes` task needs more than a linear model and does not
saturate early; these are the two numbers behind that sentence, measured on the testbed's own data
(``scenarios/paper_testbed.yaml``'s dataset spec and seed) and its held-out split:

- **linear read-out**: scikit-learn's multinomial logistic regression on the raw pixels (standardised);
- **central proxy**: the testbed's trained model (``vit-b-proxy``: ViT-B's 12 blocks, width 32) trained
  on all training samples in one place with the testbed's optimizer and batch size (Adam 0.001,
  batch 32), deepest exit, accuracy after each epoch.

    python scripts/proxy_task_baselines.py               # 15 epochs, about 2 minutes on one core
    python scripts/proxy_task_baselines.py --epochs 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "paper_testbed.yaml")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()

    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from simulator.config.workload import DatasetSpec, ModelSpec
    from simulator.learning.data import load_dataset
    from simulator.learning.models.registry import build_model

    data = yaml.safe_load(args.scenario.read_text())
    seed = int(data.get("seed", 0))
    workload = data["workload"]
    ds = load_dataset(DatasetSpec(**workload["dataset"]), seed)
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    print(f"{args.scenario.name}: {workload['dataset']['name']}, {len(y_train)} train / {len(y_test)} test samples, "
          f"{ds.num_classes} classes, input {tuple(ds.input_shape)}, seed {seed}")

    scaler = StandardScaler().fit(x_train.reshape(len(x_train), -1).numpy())
    linear = LogisticRegression(max_iter=2000).fit(scaler.transform(x_train.reshape(len(x_train), -1).numpy()),
                                                   y_train.numpy())
    linear_acc = linear.score(scaler.transform(x_test.reshape(len(x_test), -1).numpy()), y_test.numpy())
    print(f"linear read-out (logistic regression on standardised pixels): test accuracy {linear_acc:.3f}")

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    spec = workload.get("train_model", workload["model"])
    model = build_model(ModelSpec(**spec), ds.num_classes, ds.input_shape, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(workload["optimizer"]["lr"]))
    batch = int(workload["batch_size"])
    rng = np.random.default_rng(seed)
    start = time.process_time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        for idx in np.array_split(rng.permutation(len(y_train)), max(1, len(y_train) // batch)):
            loss = F.cross_entropy(model(x_train[idx])[-1], y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(x_test)[-1].argmax(dim=-1) == y_test).float().mean())
        print(f"central {spec.get('preset', spec['name'])}, epoch {epoch:2d}: test accuracy {accuracy:.3f} "
              f"({time.process_time() - start:.0f} CPU-s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
