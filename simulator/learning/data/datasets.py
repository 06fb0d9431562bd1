"""Offline datasets as torch tensors: digits, synthetic images/sequences (plain, and the compositional
shapes/motifs of ``structured.py``), npz files, class folders.

Nothing is downloaded. Every loader is a pure function of (spec, seed): randomness comes from a numpy
Generator seeded with ``SeedSequence([seed, tag])``. The train/test split is stratified per class so
the server's held-out set has every class (``test_fraction`` of each, at least one when a class has
two or more samples). Images are float32 [N, C, H, W], token sequences int64 [N, T], labels int64.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from simulator.config.workload import DatasetSpec
from simulator.errors import InputError
from simulator.learning.data.structured import synthetic_motifs, synthetic_shapes

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Dataset:
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    input_shape: tuple[int, ...]  # per sample, no batch dimension


def _rng(seed: int, tag: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), tag]))


def stratified_split(y: np.ndarray, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per class, a seeded `test_fraction` of the indices to test, the rest to train (both sorted)."""
    test: list[np.ndarray] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_fraction * len(idx)))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test.append(idx[:n_test])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx, test_idx


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of [N, C, H, W] float images to size x size (deterministic on CPU)."""
    if x.shape[2] == size and x.shape[3] == size:
        return x
    t = torch.nn.functional.interpolate(torch.from_numpy(x), size=(size, size), mode="bilinear",
                                        align_corners=False)
    return t.numpy()


def _digits(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()  # 1797 8x8 images with values 0..16, bundled with scikit-learn
    x = (d.images.astype(np.float32) / 16.0 - 0.5) / 0.5
    x = _resize(x[:, None], spec.get("image_size"))
    if spec.get("channels") == 3:
        x = np.repeat(x, 3, axis=1)
    return np.ascontiguousarray(x, dtype=np.float32), d.target.astype(np.int64)


def _synthetic_image(spec: DatasetSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class prototypes are smooth random patterns (4x4 noise upsampled); a sample is
    ``3 (1 - difficulty) * prototype + noise``, so difficulty 1 is pure noise."""
    rng = _rng(seed, 1)
    n, k, c, s = spec.get("num_samples"), spec.get("num_classes"), spec.get("channels"), spec.get("image_size")
    protos = _resize(rng.standard_normal((k, c, 4, 4)).astype(np.float32), s)
    protos /= protos.std(axis=(1, 2, 3), keepdims=True) + 1e-6
    y = np.arange(n) % k
    y = rng.permutation(y).astype(np.int64)
    noise = rng.standard_normal((n, c, s, s)).astype(np.float32)
    x = 3.0 * (1.0 - spec.get("difficulty")) * protos[y] + noise
    return x.astype(np.float32), y


def _synthetic_sequence(spec: DatasetSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each class favours a random subset of the vocabulary; each token comes from that subset with
    probability ``0.8 (1 - difficulty)`` and is uniform otherwise (bag-of-tokens signal)."""
    rng = _rng(seed, 2)
    n, k, t, v = spec.get("num_samples"), spec.get("num_classes"), spec.get("seq_len"), spec.get("vocab_size")
    favoured = [rng.choice(v, size=max(1, v // k), replace=False) for _ in range(k)]
    y = rng.permutation(np.arange(n) % k).astype(np.int64)
    signal = rng.random((n, t)) < 0.8 * (1.0 - spec.get("difficulty"))
    uniform = rng.integers(0, v, size=(n, t))
    pick = rng.integers(0, 1 << 30, size=(n, t))
    fav = np.stack([favoured[c][pick[i] % len(favoured[c])] for i, c in enumerate(y)])
    return np.where(signal, fav, uniform).astype(np.int64), y


def _check_path(spec: DatasetSpec, want_dir: bool) -> Path:
    p = Path(spec.path or "")
    if not p.exists() or (p.is_dir() != want_dir):
        what = "a folder with one sub-folder per class" if want_dir else "an .npz file with arrays x and y"
        raise InputError(f"{'folder' if want_dir else 'file'} not found", field="workload.dataset.path",
                         value=str(p), accepted=what)
    return p


def _as_inputs(x: np.ndarray) -> np.ndarray:
    return x.astype(np.int64) if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)


def _npz(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    p = _check_path(spec, want_dir=False)
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:
        raise InputError(f"cannot read npz ({type(exc).__name__}: {exc})", field="workload.dataset.path",
                         value=str(p), accepted="an .npz file with arrays x and y") from None
    if "x" not in arrays or "y" not in arrays or len(arrays["x"]) != len(arrays["y"]):
        raise InputError("npz must hold arrays 'x' and 'y' of equal length", field="workload.dataset.path",
                         value=str(p), accepted=f"arrays x, y (found {', '.join(arrays) or 'none'})")
    test = None
    if "x_test" in arrays and "y_test" in arrays:
        test = (_as_inputs(arrays["x_test"]), arrays["y_test"].astype(np.int64))
    return _as_inputs(arrays["x"]), arrays["y"].astype(np.int64), test


def _folder(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    root = _check_path(spec, want_dir=True)
    classes = sorted(d for d in root.iterdir() if d.is_dir())
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for label, d in enumerate(classes):
        for f in sorted(d.iterdir()):
            if f.suffix == ".npy":
                xs.append(np.load(f, allow_pickle=False))
            elif f.suffix.lower() in _IMAGE_SUFFIXES:
                xs.append(_read_image(f, spec))
            else:
                continue
            ys.append(label)
    if len(classes) < 2 or not xs:
        raise InputError("needs at least two class sub-folders holding .npy files (or images)",
                         field="workload.dataset.path", value=str(root),
                         accepted="<path>/<class>/<sample>.npy")
    shapes = {a.shape for a in xs}
    if len(shapes) != 1:
        raise InputError(f"samples have different shapes {sorted(shapes)[:3]}", field="workload.dataset.path",
                         value=str(root), accepted="arrays of one shape (images are resized to image_size)")
    x = _as_inputs(np.stack(xs))
    if x.dtype == np.float32 and x.ndim == 4 and spec.image_size is not None:
        x = _resize(x, spec.image_size)
    return x, np.asarray(ys, dtype=np.int64)


def _read_image(f: Path, spec: DatasetSpec) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise InputError("image files need Pillow, which is not installed", field="workload.dataset.path",
                         value=str(f), accepted=".npy arrays, or install pillow") from None
    mode = "RGB" if spec.get("channels") == 3 else "L"
    size = spec.get("image_size")
    with Image.open(f) as im:
        arr = np.asarray(im.convert(mode).resize((size, size)), dtype=np.float32) / 127.5 - 1.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    """Load `spec` and split it; same (spec, seed) -> identical tensors."""
    test: tuple[np.ndarray, np.ndarray] | None = None
    if spec.name == "digits":
        x, y = _digits(spec)
    elif spec.name == "synthetic-image":
        x, y = _synthetic_image(spec, seed)
    elif spec.name == "synthetic-sequence":
        x, y = _synthetic_sequence(spec, seed)
    elif spec.name == "synthetic-shapes":
        x, y = synthetic_shapes(spec, seed)
    elif spec.name == "synthetic-motifs":
        x, y = synthetic_motifs(spec, seed)
    elif spec.name == "npz":
        x, y, test = _npz(spec)
    else:
        x, y = _folder(spec)
    if test is None:
        tr, te = stratified_split(y, spec.test_fraction, _rng(seed, 0))
        x_tr, y_tr, x_te, y_te = x[tr], y[tr], x[te], y[te]
    else:
        x_tr, y_tr, (x_te, y_te) = x, y, test
    if y.min(initial=0) < 0:
        raise InputError("labels must be non-negative integers", field="workload.dataset", value=int(y.min()))
    num_classes = int(max(y_tr.max(initial=0), y_te.max(initial=0))) + 1
    if spec.name.startswith("synthetic"):
        num_classes = spec.get("num_classes")  # even if a tiny sample misses a class
    return Dataset(
        torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(np.ascontiguousarray(y_tr)),
        torch.from_numpy(np.ascontiguousarray(x_te)), torch.from_numpy(np.ascontiguousarray(y_te)),
        num_classes, tuple(int(s) for s in x.shape[1:]),
    )
