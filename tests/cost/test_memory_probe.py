"""The memory probe counts what a step holds (closed forms), and the training-memory model is within
15 % of a measured step peak (issue 13, point 7; the full table: scripts/validate_memory.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from simulator.config.workload import ModelSpec
from simulator.cost.model import model_cost, training_memory_bytes
from simulator.learning.models import build_model
from simulator.cost.memory_probe import LiveTensorBytes, measure_step_peak, storage_bytes

torch.set_num_threads(1)


def test_live_bytes_closed_form():
    probe = LiveTensorBytes()
    with probe:
        a = torch.ones(1000)         # 4000 B
        b = torch.ones(500)          # 2000 B: 6000 live
        del a                        # 2000
        c = torch.ones(100)          # 2400
    assert probe.peak_bytes == 6000 and probe.live_bytes == 2400
    del b, c
    assert probe.live_bytes == 0


def test_a_view_keeps_its_storage_counted():
    probe = LiveTensorBytes()
    with probe:
        base = torch.ones(1000)
        view = base[10:20]           # no new storage
        del base
    assert probe.live_bytes == 4000
    del view
    assert probe.live_bytes == 0
    assert storage_bytes([torch.ones(10), {"x": torch.ones(5)}]) == 60


@pytest.mark.parametrize("name,shape,batch", [
    ("resnet", (3, 16, 16), 16), ("mobilenet", (3, 32, 32), 8), ("vit", (3, 16, 16), 32), ("cnn", (3, 16, 16), 32),
])
@pytest.mark.slow
def test_training_memory_model_is_within_15_percent_of_a_measured_step(name, shape, batch):
    spec = ModelSpec(name=name, preset="tiny")
    model = build_model(spec, 10, shape, seed=0)
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def loss_fn(m, xb, yb):
        return torch.stack([F.cross_entropy(z, yb) for z in m(xb)]).sum()

    opt.zero_grad()
    loss_fn(model, x, y).backward()
    opt.step()  # momentum buffers exist from here on
    peak = measure_step_peak(model, x, y, opt, loss_fn)
    params = sum(p.numel() for p in model.parameters())
    # resident: weights + momentum + the batch; the step adds at least every gradient
    assert peak.resident_bytes == 4 * 2 * params + x.numel() * 4 + y.numel() * 8
    assert peak.step_peak_bytes >= 4 * params
    predicted = training_memory_bytes(model_cost(spec, 10, shape), batch, "momentum")
    assert predicted == pytest.approx(peak.peak_bytes, rel=0.15)
