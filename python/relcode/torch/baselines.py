"""Conventional baselines: uniform quantisation plus zlib, optionally after magnitude pruning.

Each floating tensor of a state_dict is quantised symmetrically to ``bits`` bits (zero is a
level, so pruned weights cost only zlib's run lengths): level = round(w / scale) with
scale = max|w| / (2^(bits−1) − 1) per tensor. The payload is each tensor's float32 scale and
its levels (one byte each at 8 bits, two per byte at 4 bits), concatenated and compressed with
zlib at level 9; its size counts every byte a decoder needs besides the architecture.

To compare with a relcode file at *equal or larger size*, :func:`prune_to_size` removes the
smallest-magnitude weights globally (a binary search over the pruned fraction) until the
compressed payload is just above a byte target: the baseline gets at least as many bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError

__all__ = ["Quantised", "prune", "prune_to_size", "quantise"]


@dataclass
class Quantised:
    """A quantised state_dict, its compressed size and its reconstruction."""

    bits: int
    pruned: float
    bytes: int
    state_dict: dict[str, torch.Tensor]


def prune(
    state: Mapping[str, torch.Tensor], fraction: float, names: list[str] | None = None
) -> dict[str, torch.Tensor]:
    """Zero the ``fraction`` of smallest-|w| entries among the tensors ``names`` (default:
    every floating tensor), with one global threshold."""
    if not 0 <= fraction <= 1:
        raise InputError("fraction must be in [0, 1]")
    names = [k for k, v in state.items() if torch.is_floating_point(v)] if names is None else names
    out = {k: v.detach().clone() for k, v in state.items()}
    if fraction == 0 or not names:
        return out
    mags = torch.cat([out[k].abs().reshape(-1).float() for k in names])
    k = round(fraction * mags.numel())
    if k == 0:
        return out
    order = torch.argsort(mags, stable=True)
    keep = torch.ones(mags.numel(), dtype=torch.bool)
    keep[order[:k]] = False
    start = 0
    for name in names:
        n = out[name].numel()
        out[name] = out[name] * keep[start : start + n].view(out[name].shape).to(out[name].dtype)
        start += n
    return out


def quantise(state: Mapping[str, torch.Tensor], bits: int, pruned: float = 0.0) -> Quantised:
    """Uniform symmetric quantisation of every floating tensor to ``bits`` (8 or 4) + zlib."""
    if bits not in (4, 8):
        raise InputError("bits must be 8 or 4")
    levels = 2 ** (bits - 1) - 1
    payload = bytearray()
    out: dict[str, torch.Tensor] = {}
    for name, v in state.items():
        if not torch.is_floating_point(v):
            out[name] = v.clone()
            continue
        w = v.detach().to(torch.float32).cpu().numpy().reshape(-1)
        top = float(np.abs(w).max()) if w.size else 0.0
        scale = np.float32(top / levels if top > 0 else 1.0)
        q = np.clip(np.rint(w / scale), -levels, levels).astype(np.int8)
        payload += struct.pack("<f", scale)
        if bits == 8:
            payload += q.tobytes()
        else:
            u = (q + 8).astype(np.uint8)  # 1 … 15
            if u.size % 2:
                u = np.append(u, np.uint8(8))
            payload += (u[0::2] | (u[1::2] << 4)).tobytes()
        out[name] = torch.from_numpy((q.astype(np.float32) * scale).reshape(v.shape)).to(v.dtype)
    return Quantised(bits, pruned, len(zlib.compress(bytes(payload), 9)), out)


def prune_to_size(
    state: Mapping[str, torch.Tensor], bits: int, min_bytes: int, iterations: int = 30
) -> Quantised:
    """The least pruned quantised model whose compressed size is still at least ``min_bytes``
    closest above it: the most-pruned fraction p with size(p) ≥ ``min_bytes``."""
    full = quantise(state, bits)
    if full.bytes <= min_bytes:
        return full
    lo, hi = 0.0, 1.0  # size(lo) >= min_bytes > size(hi) (all zeros compresses to a few bytes)
    best = full
    for _ in range(iterations):
        mid = (lo + hi) / 2
        q = quantise(prune(state, mid), bits, pruned=mid)
        if q.bytes >= min_bytes:
            lo, best = mid, q
        else:
            hi = mid
    return best
