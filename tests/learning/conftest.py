"""Shared setup of the learning tests: everything trains on one thread (fast on the shared 2-core
machine, and bitwise reproducible)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
