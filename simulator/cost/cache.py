"""On-disk cache of the cost model's per-block traces, shared by every run on this machine.

Why: tracing a model on the meta device (:mod:`simulator.cost.meta_trace`, forward and backward of every
distinct block) needs torch and, on its first trace in a process, torch's lazily imported meta-kernel
machinery (``torch._dynamo``; together ~2 s of CPU), then ~0.07 s per width ratio for a ViT-B/BERT-base
planning model; a planner asks for up to eight ratios, so every run of a paper-scale scenario would pay
2-3 s before its first event, and a sweep once per point. A trace is a pure function of the model code,
the torch version and (spec, classes, input shape, width ratio), so it is kept on disk under a key that
hashes all of these.

- Location: ``$FLEETSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/fleetsim``, else ``~/.cache/fleetsim``;
  ``FLEETSIM_CACHE_DIR=off`` turns the cache off.
- Only built-in models are cached: a user's ``module:Class`` can change without any version moving.
- The cache is an optimisation only. An unreadable, corrupt or unwritable entry is ignored and the
  model is traced again; values round-trip exactly (JSON floats are ``repr``-exact), so a cached run
  writes the same traces as a cold one.
- :func:`trace` is the one door: memory, then disk, then the tracer. A hit imports no torch (the key
  reads torch's version from its installed metadata), so ``fleetsim validate`` / ``explain`` and
  timing-only runs of models traced before start without it (~2 s).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from simulator.config.workload import BUILTIN_MODELS, ModelSpec
from simulator.cost.traced import Traced

FORMAT_VERSION = 3  # 2: per-block elementwise bytes, op counts, GEMM FLOPs by width; 3: body and exit apart
_SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the simulator package


def cache_dir() -> Path | None:
    """Where traces are kept, or None when caching is off."""
    configured = os.environ.get("FLEETSIM_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "none") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fleetsim"


# The cost-model files a trace depends on, relative to the package root (a move must update this list;
# tests/cost/test_cache_fingerprint.py changes each of them and expects a new key).
FINGERPRINT_FILES = ("cost/model.py", "cost/meta_trace.py", "cost/traced.py")


def torch_version() -> str:
    """torch's version as installed (``torch.__version__``, e.g. ``2.13.0+cpu``), read from its package
    metadata so that a cache hit needs no torch import; torch itself only if it has no metadata."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        import torch

        return str(torch.__version__)


@lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """Hash of the code a trace depends on: the cost model, its tracer and the built-in model definitions
    (every ``.py`` under ``learning/models``, so a new family file is covered without listing it)."""
    digest = hashlib.sha256(torch_version().encode())
    files = [*(_SOURCE_ROOT / name for name in FINGERPRINT_FILES),
             *sorted((_SOURCE_ROOT / "learning" / "models").rglob("*.py"))]
    for path in files:
        digest.update(path.relative_to(_SOURCE_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(spec: ModelSpec, num_classes: int, input_shape: Sequence[int], width_ratio: float) -> str | None:
    """The entry's name, or None when this model must not be cached (a user model)."""
    if spec.name not in BUILTIN_MODELS:
        return None
    identity = json.dumps({
        "format": FORMAT_VERSION,
        "code": _code_fingerprint(),
        "spec": spec.model_dump(mode="json"),
        "num_classes": int(num_classes),
        "input_shape": [int(s) for s in input_shape],
        "width_ratio": float(width_ratio).hex(),
    }, sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()


def load(key: str | None) -> list[dict[str, Any]] | None:
    """The cached per-block rows, or None on a miss (or any problem reading them)."""
    root = cache_dir()
    if key is None or root is None:
        return None
    try:
        rows = json.loads((root / "cost" / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return None
    return rows


def store(key: str | None, rows: list[dict[str, Any]]) -> None:
    """Write an entry atomically (a concurrent run sees the old file or the new one, never half)."""
    root = cache_dir()
    if key is None or root is None:
        return
    folder = root / "cost"
    tmp = folder / f".{key}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(rows))
        os.replace(tmp, folder / f"{key}.json")
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


@lru_cache(maxsize=512)
def trace(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...], width_ratio: float) -> tuple[Traced, ...]:
    """Per-block figures of the full-depth model at width: from memory, else from disk when this
    machine traced it before, else traced on the meta device (:mod:`simulator.cost.meta_trace`,
    imported only then: it needs torch) and stored."""
    key = cache_key(spec, num_classes, input_shape, width_ratio)
    cached = load(key)
    if cached is not None:
        try:
            return tuple(Traced.from_row(r) for r in cached)
        except (KeyError, TypeError, ValueError):
            pass  # a damaged or older entry: trace again and overwrite it
    from simulator.cost import meta_trace

    traced = meta_trace.trace_on_meta(spec, num_classes, input_shape, width_ratio)
    store(key, [t.to_row() for t in traced])
    return traced
