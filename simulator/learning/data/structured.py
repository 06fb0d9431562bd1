"""Seeded compositional tasks that need depth and do not saturate early: shapes and motifs.

fleetsim's accuracy proxies must rank methods the way the planned model would, so the task should
(1) need more than a linear read-out of pixel or token statistics — otherwise a shallow exit solves
it, depth pruning costs nothing and cross-block transfer has nothing to carry — and (2) have an
accuracy ceiling below 1 that is approached slowly, so differences between methods are not squeezed
against a plateau (scikit-learn's digits saturate near 0.93 within minutes). Nothing is downloaded;
both are pure functions of (spec, seed).

``synthetic-shapes`` (images). ``P = num_classes // 2 + 2`` part patterns (smooth random 4×4 textures,
unit energy). Class c is a set of two distinct parts {a_c, b_c}, pasted into two random cells of a
4-pixel grid anywhere on the canvas. Every part belongs to about three classes, so no single part
names the class — the conjunction does, wherever the parts are (a linear read-out of pixels cannot
find a texture at any of 16 places; a network first detects parts, then combines them). With
probability ``overlap`` a third, distractor part is pasted into another cell (it may make the sample
genuinely ambiguous: label overlap, an accuracy ceiling below 1). Pixel noise σ = 0.3 + 1.2·difficulty
on parts of amplitude 1.5 (0 = clean parts, 1 = parts barely above the noise).

``synthetic-motifs`` (token sequences). Class c is a set of two motif tokens {a_c, b_c}, both present
at random positions among background tokens (uniform over the rest of the vocabulary). Motif tokens
are shared between classes (distinct pairs from a small pool of ``num_classes // 2 + 2`` tokens, each
token in about three classes), so one token alone never names a class: the conjunction does. With probability ``overlap`` a third motif token (any) is added, with
probability ``0.6·difficulty`` the second is replaced by a random motif token (noisy evidence, the
ceiling).
"""

from __future__ import annotations

import numpy as np

from simulator.config.workload import DatasetSpec

_PART = 4  # part side in pixels
_AMPLITUDE = 1.5


def _pairs(num_classes: int, pool: int, rng: np.random.Generator, ordered: bool = True) -> np.ndarray:
    """`num_classes` distinct pairs of distinct items of 0..pool-1. `ordered`: both orders of a pair
    are used when possible (so position, not membership, tells those classes apart); else every
    pair is a different set."""
    unordered = [(i, j) for i in range(pool) for j in range(i + 1, pool)]
    rng.shuffle(unordered)
    if len(unordered) * (2 if ordered else 1) < num_classes:
        raise ValueError(f"{pool} items make too few pairs for {num_classes} classes")
    chosen: list[tuple[int, int]] = []
    for i, j in unordered if ordered else ():  # both orders first: (a, b) and (b, a) are different classes
        if len(chosen) + 2 > num_classes:
            break
        chosen += [(i, j), (j, i)]
    for i, j in unordered:
        if len(chosen) >= num_classes:
            break
        if (i, j) not in chosen:
            chosen.append((i, j))
    return np.asarray(chosen[:num_classes], dtype=np.int64)


def _smooth_parts(rng: np.random.Generator, count: int, channels: int, images: bool = True) -> np.ndarray | None:
    """`count` random 4×4 textures per channel, made smooth (2×2 noise upsampled) and of unit energy.
    ``images=False``: the same draws from `rng`, no textures (None) and no torch (labels only)."""
    coarse = rng.standard_normal((count, channels, 2, 2)).astype(np.float32)
    texture = rng.standard_normal((count, channels, _PART, _PART)).astype(np.float32)
    if not images:
        return None
    import torch

    parts = torch.nn.functional.interpolate(torch.from_numpy(coarse), size=(_PART, _PART), mode="bilinear",
                                            align_corners=False).numpy()
    parts = parts + 0.5 * texture  # keep some texture
    parts -= parts.mean(axis=(1, 2, 3), keepdims=True)
    parts /= np.sqrt((parts ** 2).mean(axis=(1, 2, 3), keepdims=True)) + 1e-6
    return parts


def synthetic_shapes(spec: DatasetSpec, seed: int, images: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """Images [N, C, S, S] float32 and labels, as described in the module docstring; ``images=False``:
    (None, the same labels), without torch."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5A9E]))
    n, k = spec.get("num_samples"), spec.get("num_classes")
    c, s = spec.get("channels"), spec.get("image_size")
    pool = k // 2 + 2
    parts = _smooth_parts(rng, pool, c, images)
    pairs = _pairs(k, pool, rng, ordered=False)
    y = rng.permutation(np.arange(n) % k).astype(np.int64)
    if parts is None:
        return None, y
    noise = 0.3 + 1.2 * spec.get("difficulty")
    x = (noise * rng.standard_normal((n, c, s, s))).astype(np.float32)
    # parts sit in distinct cells of a grid of 4-pixel cells (a ViT with 4-pixel patches sees one part
    # per token, a CNN finds them anywhere), wherever on the canvas
    cells_per_side = max(1, s // _PART)
    cells = cells_per_side * cells_per_side
    distract = rng.random(n) < spec.get("overlap")
    d_part = rng.integers(0, pool, n)
    for i in range(n):
        a, b = pairs[y[i]]
        placed = [a, b, d_part[i]] if distract[i] else [a, b]
        where = rng.choice(cells, size=min(cells, len(placed)), replace=False)
        for part, cell in zip(placed, where):
            r, col = _PART * (cell // cells_per_side), _PART * (cell % cells_per_side)
            x[i, :, r:r + _PART, col:col + _PART] += _AMPLITUDE * parts[part]
    return x, y


def synthetic_motifs(spec: DatasetSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences [N, T] int64 and labels, as described in the module docstring."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x307F]))
    n, k = spec.get("num_samples"), spec.get("num_classes")
    t, v = spec.get("seq_len"), spec.get("vocab_size")
    pool = min(v, k // 2 + 2)
    motif_tokens = rng.choice(v, size=pool, replace=False)
    background = np.setdiff1d(np.arange(v), motif_tokens)
    pairs = motif_tokens[_pairs(k, pool, rng, ordered=False)]
    y = rng.permutation(np.arange(n) % k).astype(np.int64)
    x = background[rng.integers(0, len(background), size=(n, t))].astype(np.int64)
    distract = rng.random(n) < spec.get("overlap")
    corrupt = rng.random(n) < 0.6 * spec.get("difficulty")
    for i in range(n):
        a, b = pairs[y[i]]
        pos = rng.choice(t, size=min(t, 3), replace=False)
        x[i, pos[0]] = a
        x[i, pos[1]] = motif_tokens[rng.integers(0, pool)] if corrupt[i] else b
        if distract[i] and t >= 3:  # a motif token of another class: one token alone names no class
            x[i, pos[2]] = motif_tokens[rng.integers(0, pool)]
    return x, y
