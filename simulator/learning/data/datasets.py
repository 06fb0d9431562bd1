"""Offline datasets as torch tensors: digits, synthetic images/sequences (plain, and the compositional
shapes/motifs of ``structured.py``), npz files, class folders; and their labels alone, without torch.

Nothing is downloaded. Every loader is a pure function of (spec, seed): randomness comes from a numpy
Generator seeded with ``SeedSequence([seed, tag])``. The train/test split is stratified per class so
the server's held-out set has every class (``test_fraction`` of each, at least one when a class has
two or more samples). Images are float32 [N, C, H, W], token sequences int64 [N, T], labels int64.

:func:`load_labels` gives what validation and timing-only runs need — the split's labels, the class
count and the input shape — with NumPy only, the same numbers :func:`load_dataset` gives: each loader
takes ``images=False`` to stop before the image work that needs torch (bilinear resizes), drawing
from its generator exactly what it draws otherwise up to the labels. ``fleetsim validate`` then
imports no torch (torch's import is ~2 s of a cold start). The digits are read from the file
scikit-learn ships (what ``load_digits`` reads; importing scikit-learn costs ~1.3 s more).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import gzip
import importlib.util
from typing import TYPE_CHECKING

import numpy as np

from simulator.config.workload import DatasetSpec
from simulator.errors import InputError
from simulator.learning.data.structured import synthetic_motifs, synthetic_shapes

if TYPE_CHECKING:
    from torch import Tensor

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Dataset:
    x_train: "Tensor"
    y_train: "Tensor"
    x_test: "Tensor"
    y_test: "Tensor"
    num_classes: int
    input_shape: tuple[int, ...]  # per sample, no batch dimension


@dataclass(frozen=True)
class Labels:
    """A dataset's labels after the train/test split, as NumPy arrays: equal to ``load_dataset``'s
    ``y_train``/``y_test``, ``num_classes`` and ``input_shape`` for the same (spec, seed)."""

    y_train: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class _Loaded:
    """A loader's result: inputs (None when only labels were asked for), labels, the per-sample input
    shape, and a file's own test split (npz), if it has one."""

    x: np.ndarray | None
    y: np.ndarray
    shape: tuple[int, ...]
    test: tuple[np.ndarray, np.ndarray] | None = None


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
    import torch

    t = torch.nn.functional.interpolate(torch.from_numpy(x), size=(size, size), mode="bilinear",
                                        align_corners=False)
    return t.numpy()


@lru_cache(maxsize=1)
def _digits_table() -> np.ndarray:
    """The 1797 digits as scikit-learn ships them: 64 pixel values (0..16) and the label per row.

    Read from ``sklearn/datasets/data/digits.csv.gz`` as ``load_digits`` reads it (gzip text,
    ``np.loadtxt`` with commas), found without importing scikit-learn; ``load_digits`` itself if
    that file is not where this scikit-learn keeps it. Read once per process (20-35 ms, about 1 %
    of a 1,000-device timing-only run; sweeps and notebooks run many) and read-only: callers copy."""
    found = importlib.util.find_spec("sklearn")
    folders = list(found.submodule_search_locations or []) if found is not None else []
    table = None
    for folder in folders:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with path.open("rb") as raw, gzip.open(raw, mode="rt", encoding="utf-8") as text:
                table = np.loadtxt(text, delimiter=",")
            break
    if table is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        table = np.column_stack([d.data, d.target])
    table.setflags(write=False)
    return table


def _digits(spec: DatasetSpec, images: bool = True) -> _Loaded:
    table = _digits_table()  # 1797 8x8 images with values 0..16, bundled with scikit-learn
    y = table[:, -1].astype(np.int64)
    size, channels = spec.get("image_size"), 3 if spec.get("channels") == 3 else 1
    if not images:
        return _Loaded(None, y, (channels, size, size))
    x = (table[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0 - 0.5) / 0.5
    x = _resize(x[:, None], size)
    if channels == 3:
        x = np.repeat(x, 3, axis=1)
    return _Loaded(np.ascontiguousarray(x, dtype=np.float32), y, (channels, size, size))


def _synthetic_image(spec: DatasetSpec, seed: int, images: bool = True) -> _Loaded:
    """Class prototypes are smooth random patterns (4x4 noise upsampled); a sample is
    ``3 (1 - difficulty) * prototype + noise``, so difficulty 1 is pure noise."""
    rng = _rng(seed, 1)
    n, k, c, s = spec.get("num_samples"), spec.get("num_classes"), spec.get("channels"), spec.get("image_size")
    coarse = rng.standard_normal((k, c, 4, 4)).astype(np.float32)
    y = np.arange(n) % k
    y = rng.permutation(y).astype(np.int64)
    if not images:
        return _Loaded(None, y, (c, s, s))
    protos = _resize(coarse, s)
    protos /= protos.std(axis=(1, 2, 3), keepdims=True) + 1e-6
    noise = rng.standard_normal((n, c, s, s)).astype(np.float32)
    x = 3.0 * (1.0 - spec.get("difficulty")) * protos[y] + noise
    return _Loaded(x.astype(np.float32), y, (c, s, s))


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


def _folder(spec: DatasetSpec, images: bool = True) -> _Loaded:
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
    y = np.asarray(ys, dtype=np.int64)
    if x.dtype == np.float32 and x.ndim == 4 and spec.image_size is not None:
        shape = (int(x.shape[1]), spec.image_size, spec.image_size)  # what the resize gives
        return _Loaded(_resize(x, spec.image_size) if images else None, y, shape)
    return _Loaded(x, y, tuple(int(d) for d in x.shape[1:]))


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


def _load(spec: DatasetSpec, seed: int, images: bool) -> _Loaded:
    if spec.name == "digits":
        return _digits(spec, images)
    if spec.name == "synthetic-image":
        return _synthetic_image(spec, seed, images)
    if spec.name == "synthetic-sequence":
        return _plain(*_synthetic_sequence(spec, seed))
    if spec.name == "synthetic-shapes":
        size = spec.get("image_size")
        return _Loaded(*synthetic_shapes(spec, seed, images), (spec.get("channels"), size, size))
    if spec.name == "synthetic-motifs":
        return _plain(*synthetic_motifs(spec, seed))
    if spec.name == "npz":
        x, y, test = _npz(spec)
        return _Loaded(x, y, tuple(int(s) for s in x.shape[1:]), test)
    return _folder(spec, images)


def _plain(x: np.ndarray, y: np.ndarray) -> _Loaded:
    return _Loaded(x, y, tuple(int(s) for s in x.shape[1:]))


def _split(got: _Loaded, spec: DatasetSpec, seed: int) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None,
                                                                  np.ndarray, int]:
    """(x_train, y_train, x_test, y_test, num_classes): the file's own test split, or the stratified one."""
    x, y = got.x, got.y
    if got.test is None:
        tr, te = stratified_split(y, spec.test_fraction, _rng(seed, 0))
        x_tr, y_tr, x_te, y_te = (None if x is None else x[tr]), y[tr], (None if x is None else x[te]), y[te]
    else:
        x_tr, y_tr, (x_te, y_te) = x, y, got.test
    if y.min(initial=0) < 0:
        raise InputError("labels must be non-negative integers", field="workload.dataset", value=int(y.min()))
    num_classes = int(max(y_tr.max(initial=0), y_te.max(initial=0))) + 1
    if spec.name.startswith("synthetic"):
        num_classes = spec.get("num_classes")  # even if a tiny sample misses a class
    return x_tr, y_tr, x_te, y_te, num_classes


def load_labels(spec: DatasetSpec, seed: int) -> Labels:
    """The labels, classes and input shape of ``load_dataset(spec, seed)``, without its inputs and
    without torch (the same checks and InputErrors)."""
    _, y_tr, _, y_te, num_classes = _split(got := _load(spec, seed, images=False), spec, seed)
    return Labels(np.ascontiguousarray(y_tr), np.ascontiguousarray(y_te), num_classes, got.shape)


def load_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    """Load `spec` and split it; same (spec, seed) -> identical tensors."""
    import torch

    got = _load(spec, seed, images=True)
    x_tr, y_tr, x_te, y_te, num_classes = _split(got, spec, seed)
    return Dataset(
        torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(np.ascontiguousarray(y_tr)),
        torch.from_numpy(np.ascontiguousarray(x_te)), torch.from_numpy(np.ascontiguousarray(y_te)),
        num_classes, got.shape,
    )
