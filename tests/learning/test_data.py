"""Datasets (offline, deterministic, stratified) and partitioning invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from simulator.config.workload import DatasetSpec, PartitionSpec
from simulator.errors import InputError
from simulator.learning.data import label_histograms, load_dataset, partition


def test_digits_offline_shapes_and_split():
    d = load_dataset(DatasetSpec(name="digits"), seed=0)
    assert d.input_shape == (1, 16, 16) and d.num_classes == 10
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert len(d.x_train) + len(d.x_test) == 1797
    assert abs(len(d.x_test) / 1797 - 0.2) < 0.01
    assert set(d.y_test.tolist()) == set(range(10))  # stratified: every class held out
    assert float(d.x_train.min()) >= -1.0 and float(d.x_train.max()) <= 1.0
    d3 = load_dataset(DatasetSpec(name="digits", channels=3, image_size=8, test_fraction=0.5), seed=0)
    assert d3.input_shape == (3, 8, 8)
    assert torch.equal(d3.x_train[:, 0], d3.x_train[:, 2])


@pytest.mark.parametrize("spec", [
    DatasetSpec(name="digits"),
    DatasetSpec(name="synthetic-image", num_samples=300),
    DatasetSpec(name="synthetic-sequence", num_samples=300),
])
def test_datasets_are_seed_deterministic(spec):
    a, b, c = load_dataset(spec, 3), load_dataset(spec, 3), load_dataset(spec, 4)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, c.y_train)


def _nearest_centroid_accuracy(d) -> float:
    x = d.x_train.reshape(len(d.x_train), -1).double()
    cent = torch.stack([x[d.y_train == c].mean(0) for c in range(d.num_classes)])
    xt = d.x_test.reshape(len(d.x_test), -1).double()
    return float((torch.cdist(xt, cent).argmin(1) == d.y_test).double().mean())


def test_synthetic_image_difficulty_controls_separation():
    easy = load_dataset(DatasetSpec(name="synthetic-image", num_samples=600, difficulty=0.2), 0)
    hard = load_dataset(DatasetSpec(name="synthetic-image", num_samples=600, difficulty=1.0), 0)
    assert easy.input_shape == (1, 16, 16) and easy.num_classes == 10
    assert _nearest_centroid_accuracy(easy) > 0.9
    assert _nearest_centroid_accuracy(hard) < 0.3  # pure noise: about chance (0.1)


def test_synthetic_sequence_tokens_and_difficulty():
    spec = DatasetSpec(name="synthetic-sequence", num_samples=600, seq_len=16, vocab_size=50, num_classes=5,
                       difficulty=0.0)
    d = load_dataset(spec, 0)
    assert d.x_train.dtype == torch.int64 and d.input_shape == (16,) and d.num_classes == 5
    assert int(d.x_train.min()) >= 0 and int(d.x_train.max()) < 50

    def bag_acc(ds):
        bags = lambda x: torch.nn.functional.one_hot(x, 50).sum(1).double()  # noqa: E731
        cent = torch.stack([bags(ds.x_train)[ds.y_train == c].mean(0) for c in range(5)])
        return float((torch.cdist(bags(ds.x_test), cent).argmin(1) == ds.y_test).double().mean())

    noisy = load_dataset(spec.model_copy(update={"difficulty": 1.0}), 0)
    assert bag_acc(d) > 0.95 and bag_acc(noisy) < 0.4


def test_npz_and_folder(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 2, 4, 4)).astype(np.float64), rng.integers(0, 3, 50)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    d = load_dataset(DatasetSpec(name="npz", path=str(tmp_path / "d.npz")), 0)
    assert d.input_shape == (2, 4, 4) and d.x_train.dtype == torch.float32 and d.num_classes == 3
    assert len(d.x_train) + len(d.x_test) == 50
    np.savez(tmp_path / "e.npz", x=x, y=y, x_test=x[:5], y_test=y[:5])
    e = load_dataset(DatasetSpec(name="npz", path=str(tmp_path / "e.npz")), 0)
    assert len(e.x_train) == 50 and torch.equal(e.y_test, torch.from_numpy(y[:5]))
    for c in ("cat", "dog"):
        (tmp_path / "f" / c).mkdir(parents=True)
        for i in range(4):
            np.save(tmp_path / "f" / c / f"{i}.npy", np.full((1, 3, 3), i, dtype=np.float32))
    f = load_dataset(DatasetSpec(name="folder", path=str(tmp_path / "f"), test_fraction=0.25), 0)
    assert f.num_classes == 2 and f.input_shape == (1, 3, 3) and len(f.x_test) == 2


@pytest.mark.parametrize("name", ["npz", "folder"])
def test_missing_path_names_field_and_path(name, tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(InputError) as err:
        load_dataset(DatasetSpec(name=name, path=missing), 0)
    assert err.value.field == "workload.dataset.path" and missing in err.value.message


def test_dataset_spec_validation():
    with pytest.raises(ValidationError, match="needs 'path'"):
        DatasetSpec(name="npz")
    with pytest.raises(ValidationError, match="'num_samples' does not apply to dataset 'digits'"):
        DatasetSpec(name="digits", num_samples=100)
    with pytest.raises(ValidationError):
        DatasetSpec(name="synthetic-image", difficulty=1.5)
    with pytest.raises(ValidationError):
        DatasetSpec(name="mnist")
    assert hash(DatasetSpec()) == hash(DatasetSpec(name="digits"))


LABELS = np.random.default_rng(0).integers(0, 10, 2000)
KINDS = [
    PartitionSpec(),
    PartitionSpec(kind="dirichlet", alpha=0.1, min_samples_per_client=20),
    PartitionSpec(kind="shards", shards_per_client=2),
    PartitionSpec(kind="quantity", sigma=1.5, min_samples_per_client=5),
    PartitionSpec(kind="quantity", sizes="dirichlet", alpha=0.2, min_samples_per_client=5),
]


@pytest.mark.parametrize("spec", KINDS, ids=lambda s: s.kind)
def test_partition_invariants(spec):
    parts = partition(LABELS, 25, spec, seed=5)
    flat = np.concatenate(parts)
    assert len(parts) == 25
    assert len(flat) == len(np.unique(flat)) == len(LABELS)  # each sample exactly once
    assert min(len(p) for p in parts) >= spec.min_samples_per_client
    again = partition(LABELS, 25, spec, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = partition(LABELS, 25, spec, seed=6)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))
    hist = label_histograms(LABELS, parts, 10)
    assert hist.shape == (25, 10) and list(hist.sum(1)) == [len(p) for p in parts]


def _mean_tv_from_global(parts) -> float:
    hist = label_histograms(LABELS, parts, 10).astype(float)
    local = hist / hist.sum(1, keepdims=True)
    glob = np.bincount(LABELS, minlength=10) / len(LABELS)
    return float(0.5 * np.abs(local - glob).sum(1).mean())


def test_dirichlet_small_alpha_is_more_skewed():
    skewed = _mean_tv_from_global(partition(LABELS, 20, PartitionSpec(kind="dirichlet", alpha=0.05), 0))
    mild = _mean_tv_from_global(partition(LABELS, 20, PartitionSpec(kind="dirichlet", alpha=100.0), 0))
    iid = _mean_tv_from_global(partition(LABELS, 20, PartitionSpec(), 0))
    assert skewed > 0.5 > 0.15 > mild and iid < 0.15


def test_shards_give_few_classes_and_quantity_skews_sizes():
    parts = partition(LABELS, 20, PartitionSpec(kind="shards", shards_per_client=2), 0)
    assert max(int((h > 0).sum()) for h in label_histograms(LABELS, parts, 10)) <= 4
    sizes = [len(p) for p in partition(LABELS, 20, PartitionSpec(kind="quantity", sigma=1.5), 0)]
    iid_sizes = [len(p) for p in partition(LABELS, 20, PartitionSpec(), 0)]
    assert max(iid_sizes) - min(iid_sizes) <= 1 and max(sizes) > 3 * min(sizes)


def test_min_samples_guaranteed_even_for_extreme_skew():
    parts = partition(LABELS[:200], 20, PartitionSpec(kind="dirichlet", alpha=0.01, min_samples_per_client=10), 1)
    assert all(len(p) == 10 for p in parts)  # 200 samples, 20 clients, 10 each: forced exactly
    with pytest.raises(InputError, match="cannot give 20 clients 11 each"):
        partition(LABELS[:200], 20, PartitionSpec(min_samples_per_client=11), 1)


def test_partition_spec_validation():
    with pytest.raises(ValidationError, match="'alpha' does not apply to partition kind 'iid'"):
        PartitionSpec(alpha=0.5)
    with pytest.raises(ValidationError):
        PartitionSpec(kind="dirichlet", alpha=0)
    with pytest.raises(ValidationError, match="takes alpha, not sigma"):
        PartitionSpec(kind="quantity", sizes="dirichlet", sigma=1.0)
    assert PartitionSpec(kind="dirichlet").get("alpha") == 0.5


def _data_files(folder) -> dict[str, str]:
    """An npz without and with its own test split (labels 0..3, class 2 absent from one), and class
    folders of float images [1, 3, 3] (resized when image_size is given) and of int sequences."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((60, 2, 4, 4)), rng.choice([0, 1, 3], 60)
    np.savez(folder / "d.npz", x=x, y=y)
    np.savez(folder / "t.npz", x=x, y=y, x_test=x[:7], y_test=np.full(7, 2))
    for kind, sample in (("img", lambda i: np.full((1, 3, 3), i, dtype=np.float32)),
                         ("seq", lambda i: np.arange(5, dtype=np.int32) + i)):
        for c in ("a", "b", "c"):
            (folder / kind / c).mkdir(parents=True)
            for i in range(5):
                np.save(folder / kind / c / f"{i}.npy", sample(i))
    return {"npz": str(folder / "d.npz"), "npz-test": str(folder / "t.npz"), "img": str(folder / "img"),
            "seq": str(folder / "seq")}


LABEL_SPECS = [
    {"name": "digits"}, {"name": "digits", "image_size": 8}, {"name": "digits", "image_size": 32, "channels": 3},
    {"name": "synthetic-image", "num_samples": 300, "channels": 2, "image_size": 12},
    {"name": "synthetic-sequence", "num_samples": 200, "seq_len": 8},
    {"name": "synthetic-shapes", "num_samples": 300, "overlap": 0.5, "num_classes": 7},
    {"name": "synthetic-motifs", "num_samples": 300, "seq_len": 12},
    {"name": "npz", "path": "npz"}, {"name": "npz", "path": "npz-test"},
    {"name": "folder", "path": "img"}, {"name": "folder", "path": "img", "image_size": 6}, {"name": "folder", "path": "seq"},
]


@pytest.mark.parametrize("fields", LABEL_SPECS, ids=lambda f: "-".join(str(v) for v in f.values()))
def test_labels_alone_are_the_datasets_labels(fields, tmp_path):
    """load_labels (what validation and timing-only runs read: NumPy only) gives exactly the labels,
    classes and input shape of load_dataset, for every kind of dataset and seed."""
    from simulator.learning.data import load_labels

    files = _data_files(tmp_path)
    spec = DatasetSpec(**{k: files.get(v, v) if k == "path" else v for k, v in fields.items()})
    for seed in (0, 7):
        d, labels = load_dataset(spec, seed), load_labels(spec, seed)
        assert labels.y_train.dtype == np.int64 and labels.y_test.dtype == np.int64
        assert np.array_equal(labels.y_train, d.y_train.numpy()) and np.array_equal(labels.y_test, d.y_test.numpy())
        assert (labels.num_classes, labels.input_shape) == (d.num_classes, d.input_shape)
        assert labels.input_shape == tuple(d.x_train.shape[1:])


def test_labels_refuse_what_the_dataset_refuses(tmp_path):
    from simulator.learning.data import load_labels

    np.savez(tmp_path / "neg.npz", x=np.zeros((6, 2)), y=np.array([0, 1, -1, 0, 1, 0]))
    spec = DatasetSpec(name="npz", path=str(tmp_path / "neg.npz"))
    with pytest.raises(InputError) as full:
        load_dataset(spec, 0)
    with pytest.raises(InputError) as alone:
        load_labels(spec, 0)
    assert alone.value.message == full.value.message and "non-negative" in alone.value.message


def test_digits_are_scikit_learns_exactly():
    """The digits are read from the file scikit-learn ships, without importing it: the same pixels
    and labels as sklearn.datasets.load_digits."""
    from sklearn.datasets import load_digits

    from simulator.learning.data.datasets import _digits_table

    table, reference = _digits_table(), load_digits()
    assert np.array_equal(table[:, :-1], reference.data) and np.array_equal(table[:, -1], reference.target)
    d = load_dataset(DatasetSpec(name="digits", image_size=8, test_fraction=0.5), 0)
    pixels = ((reference.images.astype(np.float32) / 16.0 - 0.5) / 0.5)[:, None]
    everything = np.concatenate([d.x_train.numpy(), d.x_test.numpy()])
    assert sorted(map(bytes, everything)) == sorted(map(bytes, pixels))
    # read once per process, and no caller can change it for the next
    assert _digits_table() is table and not table.flags.writeable
    with pytest.raises(ValueError):
        table[0, 0] = 1.0


@pytest.mark.slow
def test_labels_import_neither_torch_nor_scikit_learn():
    import subprocess
    import sys

    code = ("import sys\n"
            "from simulator.config.workload import DatasetSpec\n"
            "from simulator.learning.data import load_labels\n"
            "for f in [{'name': 'digits'}, {'name': 'synthetic-image'}, {'name': 'synthetic-shapes'},\n"
            "          {'name': 'synthetic-sequence'}, {'name': 'synthetic-motifs'}]:\n"
            "    load_labels(DatasetSpec(**f), 0)\n"
            "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
