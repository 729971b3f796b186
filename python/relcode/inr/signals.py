"""Signals as patches: images and audio cut into the fixed-size pieces one network codes.

RECOMBINER codes a Kodak image as 96 patches of 64x64, each with its own small network, so
that every network is small, all train together as one batch and a decoder evaluates them in
parallel. A signal whose size is not a multiple of the patch is padded by repeating its last
row/column (or sample); padded samples get weight 0 in the distortion, so no bits are spent
on them, and the decoder crops them away.

Values are float32: image pixels ``u8 / 255`` in [0, 1]; audio samples ``i16 / 32768`` in
[-1, 1). :func:`to_pixels` and :func:`to_samples` quantise a reconstruction back, with one
fixed rounding rule, so encoder and decoder produce the same integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = [
    "MAX_PATCHES",
    "Patches",
    "audio_to_patches",
    "from_patches",
    "image_to_patches",
    "patch_grid",
    "psnr",
    "random_crops",
    "to_pixels",
    "to_samples",
]

#: Most patches one signal may have (a 2048x2048 image in 64x64 patches). The encoder trains
#: every patch of a signal at once, so its memory grows with this.
MAX_PATCHES = 1024


@dataclass
class Patches:
    """A signal cut into ``P`` patches: values (P, n, channels) float32 and weights (P, n)
    float32 (1 for real samples, 0 for padding); ``grid`` is patches per axis and ``shape``
    the signal's own shape (without channels)."""

    values: np.ndarray
    weights: np.ndarray
    grid: tuple[int, ...]
    shape: tuple[int, ...]

    @property
    def count(self) -> int:
        return int(self.values.shape[0])


def patch_grid(shape: tuple[int, ...], patch: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) != len(patch):
        raise InputError(f"a signal of shape {shape} does not match patches of shape {patch}")
    if any(s < 1 for s in shape):
        raise InputError(f"the signal is empty (shape {shape})")
    grid = tuple(math.ceil(s / p) for s, p in zip(shape, patch))
    if math.prod(grid) > MAX_PATCHES:
        raise InputError(
            f"a signal of shape {shape} needs {math.prod(grid)} patches of {patch}; at most {MAX_PATCHES}"
        )
    return grid


def image_to_patches(image: np.ndarray, patch: tuple[int, int]) -> Patches:
    """(H, W, C) uint8 -> patches in row-major patch order."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3:
        raise InputError(
            f"images must be (height, width, channels) uint8 arrays, got {img.dtype} {img.shape}"
        )
    H, W, C = img.shape
    gh, gw = patch_grid((H, W), tuple(patch))
    ph, pw = patch
    padded = np.pad(img, ((0, gh * ph - H), (0, gw * pw - W), (0, 0)), mode="edge")
    wmask = np.zeros((gh * ph, gw * pw), dtype=np.float32)
    wmask[:H, :W] = 1.0
    vals = padded.reshape(gh, ph, gw, pw, C).transpose(0, 2, 1, 3, 4).reshape(gh * gw, ph * pw, C)
    wts = wmask.reshape(gh, ph, gw, pw).transpose(0, 2, 1, 3).reshape(gh * gw, ph * pw)
    return Patches(vals.astype(np.float32) / np.float32(255.0), wts, (gh, gw), (H, W))


def audio_to_patches(samples: np.ndarray, patch: int) -> Patches:
    """(n,) int16 -> patches of ``patch`` samples."""
    a = np.asarray(samples)
    if a.dtype != np.int16 or a.ndim != 1:
        raise InputError(f"audio must be a 1-D int16 array, got {a.dtype} {a.shape}")
    (g,) = patch_grid((a.size,), (patch,))
    padded = np.pad(a, (0, g * patch - a.size), mode="edge")
    w = np.zeros(g * patch, dtype=np.float32)
    w[: a.size] = 1.0
    vals = (padded.astype(np.float32) / np.float32(32768.0)).reshape(g, patch, 1)
    return Patches(vals, w.reshape(g, patch), (g,), (a.size,))


def from_patches(values: np.ndarray, grid: tuple[int, ...], patch: tuple[int, ...], shape: tuple[int, ...]):
    """Inverse of the cutting: (P, n, C) -> the signal (shape + (C,)), padding cropped."""
    v = np.asarray(values)
    C = v.shape[-1]
    if len(patch) == 2:
        (gh, gw), (ph, pw) = grid, patch
        full = v.reshape(gh, gw, ph, pw, C).transpose(0, 2, 1, 3, 4).reshape(gh * ph, gw * pw, C)
        return full[: shape[0], : shape[1]]
    full = v.reshape(-1, C)
    return full[: shape[0]]


def to_pixels(values: np.ndarray) -> np.ndarray:
    """float32 reconstruction in [0, 1] -> uint8: ``clip(rint(255 v), 0, 255)`` in float32."""
    v = np.asarray(values, dtype=np.float32) * np.float32(255.0)
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


def to_samples(values: np.ndarray) -> np.ndarray:
    """float32 reconstruction in [-1, 1) -> int16: ``clip(rint(32768 v), -32768, 32767)``."""
    v = np.asarray(values, dtype=np.float32) * np.float32(32768.0)
    return np.clip(np.rint(v), -32768, 32767).astype(np.int16)


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """Peak signal-to-noise ratio in dB between two integer signals (``peak``: 255 for
    8-bit images, 65536 for 16-bit audio, whose full range is [-32768, 32768))."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def random_crops(signals: list[np.ndarray], count: int, patch: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """``count`` random patch-sized crops (as (count, n, C) float32 values) from training
    signals (uint8 images (H, W, C) or int16 audio (n,)), taken from the signals in turn."""
    if not signals:
        raise InputError("no training signals")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(int(count)):
        sig = np.asarray(signals[k % len(signals)])
        if sig.ndim - (1 if sig.dtype == np.uint8 else 0) != len(patch):
            raise InputError(f"a training signal of shape {sig.shape} does not match patches of {patch}")
        if any(s < p for s, p in zip(sig.shape, patch)):
            raise InputError(f"a training signal of shape {sig.shape} is smaller than a patch {patch}")
        start = [int(rng.integers(0, s - p + 1)) for s, p in zip(sig.shape, patch)]
        crop = sig[tuple(slice(a, a + p) for a, p in zip(start, patch))]
        if sig.dtype == np.uint8:
            out.append(crop.reshape(-1, crop.shape[-1]).astype(np.float32) / np.float32(255.0))
        elif sig.dtype == np.int16:
            out.append(crop.reshape(-1, 1).astype(np.float32) / np.float32(32768.0))
        else:
            raise InputError(f"training signals must be uint8 images or int16 audio, got {sig.dtype}")
    return np.stack(out)
