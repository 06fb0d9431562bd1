"""Pre-LayerNorm transformers: ViT (image patches) and a text encoder (token ids), one encoder layer
per block, one exit (LayerNorm without affine + mean over tokens + linear) per block.

Axes: ``embed`` is the residual stream (only when ``prune_stream``), ``block{b}.heads`` the attention
heads of block b (``unit_size = head_dim``: q/k/v rows and o columns come in head_dim slices),
``block{b}.mlp`` the MLP hidden neurons. ``head_dim = dim // heads`` is fixed, so a pruned block has
fewer heads of the same size. Attention is written out (matmul, softmax) rather than fused so it is
deterministic on CPU and FlopCounterMode counts it on the meta device.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from simulator.learning.models.base import AxisRef, BlockModel, Scaler, set_axes


def linear(fin: int, fout: int, in_ref: AxisRef | None, out_ref: AxisRef | None) -> nn.Linear:
    lin = set_axes(nn.Linear(fin, fout), weight=(out_ref, in_ref), bias=(out_ref,))
    nn.init.trunc_normal_(lin.weight, std=0.02)
    nn.init.zeros_(lin.bias)
    return lin  # type: ignore[return-value]


def layer_norm(d: int, ref: AxisRef | None) -> nn.LayerNorm:
    return set_axes(nn.LayerNorm(d), weight=(ref,), bias=(ref,))  # type: ignore[return-value]


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, hidden: int,
                 e_ref: AxisRef | None, h_ref: AxisRef, m_ref: AxisRef) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.ln1 = layer_norm(dim, e_ref)
        self.q = linear(dim, inner, e_ref, h_ref)
        self.k = linear(dim, inner, e_ref, h_ref)
        self.v = linear(dim, inner, e_ref, h_ref)
        self.o = linear(inner, dim, h_ref, e_ref)
        self.ln2 = layer_norm(dim, e_ref)
        self.fc1 = linear(dim, hidden, e_ref, m_ref)
        self.fc2 = linear(hidden, dim, m_ref, e_ref)

    def _split(self, t: Tensor) -> Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, h: Tensor) -> Tensor:
        y = self.ln1(h)
        q, k, v = self._split(self.q(y)), self._split(self.k(y)), self._split(self.v(y))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
        z = (att @ v).transpose(1, 2).reshape(h.shape[0], h.shape[1], -1)
        h = h + self.o(z)
        return h + self.fc2(nn.functional.gelu(self.fc1(self.ln2(h))))


class TokenExit(nn.Module):
    """LayerNorm (no affine: nothing to prune or merge) + mean over tokens + linear classifier."""

    def __init__(self, dim: int, num_classes: int, e_ref: AxisRef | None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.fc = linear(dim, num_classes, e_ref, None)

    def forward(self, h: Tensor) -> Tensor:
        return self.fc(self.norm(h).mean(dim=1))


class PatchStem(nn.Module):
    def __init__(self, cin: int, dim: int, patch: int, num_patches: int, e_ref: AxisRef | None) -> None:
        super().__init__()
        self.proj = set_axes(nn.Conv2d(cin, dim, patch, stride=patch), weight=(e_ref, None, None, None),
                             bias=(e_ref,))
        self.pos = nn.Parameter(torch.randn(1, num_patches, dim) * 0.02)
        set_axes(self, pos=(None, None, e_ref))

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2) + self.pos


class TokenStem(nn.Module):
    def __init__(self, vocab: int, dim: int, max_len: int, e_ref: AxisRef | None) -> None:
        super().__init__()
        self.tok = set_axes(nn.Embedding(vocab, dim), weight=(None, e_ref))
        nn.init.normal_(self.tok.weight, std=0.02)
        self.pos = nn.Parameter(torch.randn(1, max_len, dim) * 0.02)
        set_axes(self, pos=(None, None, e_ref))

    def forward(self, x: Tensor) -> Tensor:
        return self.tok(x) + self.pos[:, : x.shape[1]]


def _encoder(params: dict[str, Any], num_classes: int, width_ratio: float, depth: int | None,
             prune_stream: bool, make_stem: Any) -> tuple[nn.Module, list[nn.Module], list[nn.Module], Scaler, int]:
    sc = Scaler(width_ratio)
    full_dim, full_heads, total = params["dim"], params["heads"], int(params["blocks"])
    head_dim = full_dim // full_heads
    hidden_full = max(1, int(round(params["mlp_ratio"] * full_dim)))
    dim, e_ref = (sc.units("embed", full_dim), AxisRef("embed")) if prune_stream else (full_dim, None)
    keep = total if depth is None else depth
    blocks: list[nn.Module] = []
    exits: list[nn.Module] = []
    for b in range(total):
        heads = sc.units(f"block{b}.heads", full_heads)
        hidden = sc.units(f"block{b}.mlp", hidden_full)
        if b < keep:
            blocks.append(EncoderLayer(dim, heads, head_dim, hidden, e_ref,
                                       AxisRef(f"block{b}.heads", head_dim), AxisRef(f"block{b}.mlp")))
            exits.append(TokenExit(dim, num_classes, e_ref))
    return make_stem(dim, e_ref), blocks, exits, sc, total


def build_vit(params: dict[str, Any], num_classes: int, input_shape: tuple[int, ...],
              width_ratio: float, depth: int | None, prune_stream: bool) -> BlockModel:
    if len(input_shape) != 3:
        raise ValueError(f"vit needs image inputs (channels, height, width), got shape {input_shape}")
    cin, height, width = input_shape
    p = params["patch_size"]
    if height < p or width < p:
        raise ValueError(f"vit patch_size {p} is larger than the {height}x{width} image")
    n = (height // p) * (width // p)
    stem, blocks, exits, sc, total = _encoder(
        params, num_classes, width_ratio, depth, prune_stream,
        lambda dim, ref: PatchStem(cin, dim, p, n, ref))
    return BlockModel(stem, blocks, exits, width_axes=sc.axes, num_classes=num_classes,
                      input_shape=input_shape, full_depth=total, width_ratio=width_ratio)


def build_text(params: dict[str, Any], num_classes: int, input_shape: tuple[int, ...],
               width_ratio: float, depth: int | None, prune_stream: bool) -> BlockModel:
    if len(input_shape) != 1:
        raise ValueError(f"text-transformer needs token-id sequences (seq_len,), got shape {input_shape}")
    if input_shape[0] > params["seq_len"]:
        raise ValueError(f"sequences of {input_shape[0]} tokens exceed the model's seq_len {params['seq_len']}")
    stem, blocks, exits, sc, total = _encoder(
        params, num_classes, width_ratio, depth, prune_stream,
        lambda dim, ref: TokenStem(params["vocab_size"], dim, params["seq_len"], ref))
    return BlockModel(stem, blocks, exits, width_axes=sc.axes, num_classes=num_classes,
                      input_shape=input_shape, full_depth=total, width_ratio=width_ratio,
                      input_dtype=torch.int64)
