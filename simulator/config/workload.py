"""Schemas of the learning workload: the model, the dataset and how it is split across clients.

Embedded by the scenario under ``workload.model``, ``workload.train_model`` (optional proxy),
``workload.dataset`` and ``workload.partition``. This module knows nothing of torch: the models and
datasets are built from these specs in ``simulator.learning``.

Family parameters left unset (None) take the value of the chosen ``preset`` (or the family's default
preset); :meth:`ModelSpec.resolved` returns them filled in. Specs are frozen and hashable (the hash is
that of :meth:`key`, a stable JSON string), so the cost model can cache per spec.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from simulator.errors import InputError
from simulator.config.numbers import NoBoolNumbers

BUILTIN_MODELS = ("resnet", "cnn", "vit", "text-transformer", "mlp", "mobilenet")

# Family presets. "default" is what an unset preset means. vit-b and bert-base (~86 M and ~110 M
# parameters) exist for capacity planning: they are traced on the meta device, not trained here.
# resnet18/34/50, mobilenet-v2/-v3-* and vit-b are the torchvision layouts (planned at 224x224);
# resnet18-cifar/resnet34-cifar keep the CIFAR layout (3x3 stride-1 stem, no max-pool) for 32x32 data.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "resnet": {
        "tiny": {"width": 8, "blocks": 3},
        "small": {"width": 16, "blocks": 4},
        "resnet18": {"width": 64, "blocks": [2, 2, 2, 2], "stem": "imagenet"},
        "resnet34": {"width": 64, "blocks": [3, 4, 6, 3], "stem": "imagenet"},
        "resnet50": {"width": 64, "blocks": [3, 4, 6, 3], "stem": "imagenet", "block_type": "bottleneck"},
        "resnet18-cifar": {"width": 64, "blocks": [2, 2, 2, 2], "stem": "cifar"},
        "resnet34-cifar": {"width": 64, "blocks": [3, 4, 6, 3], "stem": "cifar"},
    },
    "cnn": {
        "tiny": {"width": 8, "blocks": 3},
        "small": {"width": 32, "blocks": 4},
    },
    "mlp": {
        "tiny": {"width": 32, "blocks": 2},
        "small": {"width": 128, "blocks": 3},
    },
    "vit": {
        "tiny": {"dim": 32, "blocks": 2, "heads": 2, "mlp_ratio": 2.0, "patch_size": 4},
        "small": {"dim": 64, "blocks": 4, "heads": 4, "mlp_ratio": 2.0, "patch_size": 4},
        "vit-b": {"dim": 768, "blocks": 12, "heads": 12, "mlp_ratio": 4.0, "patch_size": 16},
        # "plan big, train small": ViT-B's family and its 12 blocks at width 32 (8 heads of 4), for
        # 16×16 inputs (16 patches); depth pruning, rolling windows and distillation act on the same blocks
        "vit-b-proxy": {"dim": 32, "blocks": 12, "heads": 8, "mlp_ratio": 2.0, "patch_size": 4},
    },
    "text-transformer": {
        "tiny": {"dim": 32, "blocks": 2, "heads": 2, "mlp_ratio": 2.0, "vocab_size": 64, "seq_len": 32},
        "small": {"dim": 64, "blocks": 4, "heads": 4, "mlp_ratio": 2.0, "vocab_size": 256, "seq_len": 64},
        "bert-base": {
            "dim": 768, "blocks": 12, "heads": 12, "mlp_ratio": 4.0, "vocab_size": 30522, "seq_len": 512,
        },
        # BERT-base's 12 encoder blocks at width 32 (8 heads of 4), 64-token vocabulary, 16 tokens
        "bert-base-proxy": {"dim": 32, "blocks": 12, "heads": 8, "mlp_ratio": 2.0, "vocab_size": 64, "seq_len": 16},
    },
    "mobilenet": {
        "tiny": {"arch": "v2", "width_mult": 0.25},
        "small": {"arch": "v2", "width_mult": 0.5},
        "mobilenet-v2": {"arch": "v2", "width_mult": 1.0},
        "mobilenet-v3-large": {"arch": "v3-large", "width_mult": 1.0},
        "mobilenet-v3-small": {"arch": "v3-small", "width_mult": 1.0},
    },
}
DEFAULT_PRESET = {"resnet": "small", "cnn": "small", "mlp": "small", "vit": "small", "text-transformer": "small",
                  "mobilenet": "small"}
# Values of family fields a preset leaves out.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {"resnet": {"stem": "cifar", "block_type": "basic"}}

# Which family parameters apply to which family (anything else set is a mistake worth reporting).
FAMILY_FIELDS: dict[str, tuple[str, ...]] = {
    "resnet": ("width", "blocks", "stem", "block_type"),
    "cnn": ("width", "blocks"),
    "mlp": ("width", "blocks"),
    "vit": ("dim", "blocks", "heads", "mlp_ratio", "patch_size"),
    "text-transformer": ("dim", "blocks", "heads", "mlp_ratio", "vocab_size", "seq_len"),
    "mobilenet": ("arch", "width_mult"),
}
_ALL_FAMILY_FIELDS = ("width", "blocks", "dim", "heads", "mlp_ratio", "patch_size", "vocab_size", "seq_len",
                      "stem", "block_type", "arch", "width_mult")


def _not_applicable(owner: str, extra: list[str], spec: Any, allowed: tuple[str, ...]) -> InputError:
    """An InputError at the first field that does not apply (validators raise it; loading adds the path)."""
    names = ", ".join(repr(f) for f in extra)
    return InputError(f"{names} {'does' if len(extra) == 1 else 'do'} not apply to {owner}", field=extra[0],
                      value=getattr(spec, extra[0]), accepted=f"for {owner}: {', '.join(allowed)}")


class _Spec(NoBoolNumbers):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def key(self) -> str:
        """A stable text key (sorted JSON of every field) for caching and hashing."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def __hash__(self) -> int:  # dict fields make pydantic's generated hash fail
        return hash((type(self).__name__, self.key()))


class ModelSpec(_Spec):
    """Which model to build: a built-in family (with optional preset) or a user ``module:Name``."""

    name: str = Field("cnn", description="resnet | cnn | vit | text-transformer | mlp | mobilenet | module:ClassName")
    preset: str | None = Field(
        None, description="family preset, e.g. tiny, small, resnet18, resnet18-cifar, mobilenet-v2, vit-b, bert-base")
    width: int | None = Field(None, gt=0, description="base channels (resnet, cnn) or hidden units (mlp)")
    blocks: int | tuple[int, ...] | None = Field(
        None, description="number of blocks; for resnet also a list of blocks per stage"
    )
    dim: int | None = Field(None, gt=0, description="transformer embedding width")
    heads: int | None = Field(None, gt=0, description="attention heads per block")
    mlp_ratio: float | None = Field(None, gt=0, description="transformer MLP hidden = mlp_ratio * dim")
    patch_size: int | None = Field(None, gt=0, description="vit patch side in pixels")
    vocab_size: int | None = Field(None, gt=1, description="text-transformer vocabulary size")
    seq_len: int | None = Field(None, gt=0, description="text-transformer maximum sequence length")
    stem: Literal["cifar", "imagenet"] | None = Field(
        None, description="resnet stem: cifar (3x3 stride 1, no pool) or imagenet (7x7 stride 2 + 3x3 max-pool)")
    block_type: Literal["basic", "bottleneck"] | None = Field(
        None, description="resnet block: basic (two 3x3) or bottleneck (1x1, 3x3, 1x1 with expansion 4)")
    arch: Literal["v2", "v3-large", "v3-small"] | None = Field(None, description="mobilenet layout")
    width_mult: float | None = Field(None, gt=0, le=4, description="mobilenet width multiplier (channels x, /8)")
    prune_stream: bool = Field(
        True,
        description="width pruning also narrows the residual stream (resnet stage channels, transformer "
        "embedding); params then scale ~ width_ratio^2 as in HeteroFL",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="constructor arguments of a user model")

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if v in BUILTIN_MODELS:
            return v
        mod, sep, attr = v.partition(":")
        if sep and mod.strip() and attr.strip() and ":" not in attr:
            return v
        raise InputError("unknown model", value=v,
                         accepted=f"{', '.join(BUILTIN_MODELS)}, or your own model as 'package.module:ClassName'")

    @field_validator("blocks")
    @classmethod
    def _check_blocks(cls, v: int | tuple[int, ...] | None) -> int | tuple[int, ...] | None:
        if v is None:
            return v
        values = (v,) if isinstance(v, int) else v
        if not values or any(b < 1 for b in values):
            raise InputError("blocks must be positive", value=list(values) if len(values) != 1 else values[0],
                             accepted="a positive integer, or for resnet a non-empty list of positive integers")
        return v

    @property
    def is_builtin(self) -> bool:
        return self.name in BUILTIN_MODELS

    @model_validator(mode="after")
    def _check_family(self) -> "ModelSpec":
        if not self.is_builtin:
            bad = [f for f in _ALL_FAMILY_FIELDS if getattr(self, f) is not None]
            if self.preset is not None or bad:
                first = "preset" if self.preset is not None else bad[0]
                raise InputError(f"a user model ({self.name}) takes no preset or family fields", field=first,
                                 value=getattr(self, first), accepted="constructor arguments under 'kwargs'")
            return self
        if self.kwargs:
            raise InputError(f"applies only to user models (module:Name), not to {self.name!r}", field="kwargs",
                             value=self.kwargs, accepted="no 'kwargs' for a built-in model")
        presets = PRESETS[self.name]
        if self.preset is not None and self.preset not in presets:
            raise InputError(f"unknown preset for model {self.name!r}", field="preset", value=self.preset,
                             accepted=", ".join(presets))
        allowed = FAMILY_FIELDS[self.name]
        extra = [f for f in _ALL_FAMILY_FIELDS if f not in allowed and getattr(self, f) is not None]
        if extra:
            raise _not_applicable(f"model {self.name!r}", extra, self, ("preset", *allowed, "prune_stream"))
        if isinstance(self.blocks, tuple) and self.name != "resnet":
            raise InputError(f"must be one integer for model {self.name!r} (lists are for resnet)", field="blocks",
                             value=list(self.blocks), accepted="a positive integer")
        r = self.resolved_params()
        if "heads" in r and r["dim"] % r["heads"]:
            raise InputError(f"dim ({r['dim']}) must be divisible by heads", field="heads", value=r["heads"],
                             accepted=f"a divisor of dim ({r['dim']})")
        return self

    def resolved_params(self) -> dict[str, Any]:
        """Family parameters with preset values filled in (empty dict for user models)."""
        if not self.is_builtin:
            return {}
        preset = PRESETS[self.name][self.preset or DEFAULT_PRESET[self.name]]
        out = {}
        defaults = FAMILY_DEFAULTS.get(self.name, {})
        for f in FAMILY_FIELDS[self.name]:
            v = getattr(self, f)
            out[f] = preset.get(f, defaults.get(f)) if v is None else v
        if isinstance(out.get("blocks"), list):
            out["blocks"] = tuple(out["blocks"])
        return out

    def resolved(self) -> "ModelSpec":
        """The same spec with every family parameter explicit (what a resolved scenario shows)."""
        return self.model_copy(update=self.resolved_params())


DATASETS = ("digits", "synthetic-image", "synthetic-sequence", "synthetic-shapes", "synthetic-motifs", "npz", "folder")
_DATASET_FIELDS: dict[str, tuple[str, ...]] = {
    "digits": ("image_size", "channels"),
    "synthetic-image": ("image_size", "channels", "num_samples", "num_classes", "difficulty"),
    "synthetic-sequence": ("seq_len", "vocab_size", "num_samples", "num_classes", "difficulty"),
    "synthetic-shapes": ("image_size", "channels", "num_samples", "num_classes", "difficulty", "overlap"),
    "synthetic-motifs": ("seq_len", "vocab_size", "num_samples", "num_classes", "difficulty", "overlap"),
    "npz": ("path",),
    "folder": ("path", "image_size", "channels"),
}


class DatasetSpec(_Spec):
    """Where training data comes from. Everything is offline: nothing is downloaded.

    - ``digits``: scikit-learn's 8x8 handwritten digits (1797 images, shipped in the wheel), upsampled
      to ``image_size`` (default 16); ``channels: 3`` tiles the grey image.
    - ``synthetic-image`` / ``synthetic-sequence``: seeded class-conditional data; ``difficulty`` in
      [0, 1] moves from well separated (0) to pure noise (1).
    - ``synthetic-shapes`` / ``synthetic-motifs``: seeded compositional tasks (a class is a pair of 4×4
      textures pasted anywhere on the canvas / a pair of motif tokens at random positions, each part
      shared by about three classes) that need depth and approach their ceiling slowly; ``difficulty``
      adds noise, ``overlap`` distractors shared between classes (see simulator.learning.data.structured).
    - ``npz``: a file with arrays ``x`` and ``y`` (and optionally ``x_test``, ``y_test``).
    - ``folder``: one sub-folder per class holding ``.npy`` arrays (or images if Pillow is installed).
    ``test_fraction`` is the server's held-out split.
    """

    name: Literal["digits", "synthetic-image", "synthetic-sequence", "synthetic-shapes", "synthetic-motifs", "npz",
                  "folder"] = "digits"
    path: str | None = Field(None, description="npz file or class folder (npz, folder)")
    image_size: int | None = Field(None, ge=4, le=1024, description="image side in pixels (default 16)")
    channels: int | None = Field(None, ge=1, le=4, description="image channels (default 1)")
    num_samples: int | None = Field(None, ge=2, description="synthetic samples in total (default 2000)")
    num_classes: int | None = Field(None, ge=2, description="synthetic classes (default 10)")
    difficulty: float | None = Field(None, ge=0.0, le=1.0, description="synthetic noise, 0 easy .. 1 noise")
    overlap: float | None = Field(None, ge=0.0, le=1.0, description=(
        "synthetic-shapes/-motifs: share of samples carrying another class's parts or tokens (default 0.3)"))
    seq_len: int | None = Field(None, ge=1, description="synthetic-sequence length (default 32)")
    vocab_size: int | None = Field(None, ge=2, description="synthetic-sequence vocabulary (default 64)")
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="held-out share for server evaluation")

    @model_validator(mode="after")
    def _check_fields(self) -> "DatasetSpec":
        allowed = _DATASET_FIELDS[self.name]
        extra = [f for f in ("path", "image_size", "channels", "num_samples", "num_classes", "difficulty",
                             "seq_len", "vocab_size", "overlap") if f not in allowed and getattr(self, f) is not None]
        if extra:
            raise _not_applicable(f"dataset {self.name!r}", extra, self, allowed + ("test_fraction",))
        if self.name in ("npz", "folder") and not self.path:
            raise InputError(f"dataset {self.name!r} needs 'path'", field="path", value=self.path,
                             accepted="an .npz file" if self.name == "npz" else "a folder of class sub-folders")
        if self.name == "digits" and self.channels not in (None, 1, 3):
            raise InputError("not a channel count the digits dataset offers", field="channels",
                             value=self.channels, accepted="1 or 3")
        return self

    def get(self, field: str) -> Any:
        """A field with its documented default applied."""
        defaults = {"image_size": 16, "channels": 1, "num_samples": 2000, "num_classes": 10,
                    "difficulty": 0.5, "seq_len": 32, "vocab_size": 64, "overlap": 0.3}
        v = getattr(self, field)
        return defaults.get(field) if v is None else v


class PartitionSpec(_Spec):
    """How the training split is divided among clients (each sample goes to at most one client).

    - ``iid``: a seeded shuffle cut into near-equal parts;
    - ``dirichlet``: per class, client shares ~ Dir(alpha) (small alpha = few classes per client);
    - ``shards``: sort by label, cut into ``num_clients * shards_per_client`` shards, deal them out;
    - ``quantity``: IID labels, skewed sizes: ``lognormal`` (sigma) or ``dirichlet`` (alpha) sizes.
    """

    kind: Literal["iid", "dirichlet", "shards", "quantity"] = "iid"
    alpha: float | None = Field(None, gt=0.0, description="Dirichlet concentration (dirichlet; quantity)")
    shards_per_client: int | None = Field(None, ge=1, description="label shards per client (default 2)")
    sizes: Literal["lognormal", "dirichlet"] | None = Field(None, description="quantity skew law")
    sigma: float | None = Field(None, gt=0.0, description="lognormal sigma of client sizes (default 1.0)")
    min_samples_per_client: int = Field(1, ge=1, description="every client gets at least this many")

    @model_validator(mode="after")
    def _check_fields(self) -> "PartitionSpec":
        allowed = {"iid": (), "dirichlet": ("alpha",), "shards": ("shards_per_client",),
                   "quantity": ("sizes", "sigma", "alpha")}[self.kind]
        extra = [f for f in ("alpha", "shards_per_client", "sizes", "sigma")
                 if f not in allowed and getattr(self, f) is not None]
        if extra:
            raise _not_applicable(f"partition kind {self.kind!r}", extra, self, allowed + ("min_samples_per_client",))
        if self.kind == "quantity":
            law = self.sizes or "lognormal"
            if law == "lognormal" and self.alpha is not None:
                raise InputError("quantity with sizes 'lognormal' takes sigma, not alpha", field="alpha", value=self.alpha,
                                 accepted="sigma with sizes 'lognormal', or sizes: dirichlet with alpha")
            if law == "dirichlet" and self.sigma is not None:
                raise InputError("quantity with sizes 'dirichlet' takes alpha, not sigma", field="sigma", value=self.sigma,
                                 accepted="alpha with sizes 'dirichlet', or sizes: lognormal with sigma")
        return self

    def get(self, field: str) -> Any:
        """A field with its documented default applied."""
        defaults = {"alpha": 0.5, "shards_per_client": 2, "sizes": "lognormal", "sigma": 1.0}
        v = getattr(self, field)
        return defaults.get(field) if v is None else v


def _label_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "/".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def model_label(spec: ModelSpec) -> str:
    """A short, stable name of a model spec, used for measured step times and in reports: ``family``
    or ``family-preset``, then every family field set away from the preset's value and
    ``prune_stream=false`` in brackets — ``resnet-resnet18[stem=cifar]``, ``resnet[blocks=8,width=32]``
    — so two different models never share a label (a measured step time is looked up by it). A user
    model: its ``module:Name``, then its kwargs as compact JSON when it has any."""
    if not spec.is_builtin:
        return spec.name + (json.dumps(spec.kwargs, sort_keys=True, separators=(",", ":")) if spec.kwargs else "")
    base = f"{spec.name}-{spec.preset}" if spec.preset else spec.name
    preset = ModelSpec(name=spec.name, preset=spec.preset).resolved_params()
    changed = [f"{k}={_label_value(v)}" for k, v in sorted(spec.resolved_params().items()) if v != preset[k]]
    if not spec.prune_stream:
        changed.append("prune_stream=false")
    return base + (f"[{','.join(changed)}]" if changed else "")
