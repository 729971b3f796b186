"""The INR architecture: a SIREN (sine-activated MLP) on Fourier features of the coordinates.

COMBINER represents each signal by the weights of a small network g(x | w) that maps a
coordinate x to the signal's value there; compressing the signal means compressing w. This
module is the *decoder's* half of that network: the architecture description a codec file
stores, the coordinate grid and Fourier features, the flat parameter layout and a plain-numpy
forward pass. It never imports torch, so decoding an image needs only numpy and the native
module, and the encoder reconstructs its final coded signal with this very function, which
is why decompression reproduces the encoder's output exactly.

Conventions (fixed by the codec's ``Architecture`` and never changed without a new
``ARCH_VERSION``):

- coordinates are pixel (sample) centres mapped to (-1, 1): ``x_i = (2 i + 1) / n - 1``,
  one axis per signal dimension, grid in row-major ('ij') order;
- Fourier features: ``F = dim_emb / (2 dim_in)`` frequencies ``f_j = exp(linspace(0, ln
  max_freq, F))``; features ``cos(pi x_a f_j)`` for every axis a and frequency j (axis-major),
  then the same sines;
- ``layers`` linear layers (``dim_emb -> dim_hid -> ... -> dim_out``); every layer but the
  last is followed by ``sin(w0 * .)``; the last is linear;
- the parameters of layer l are a ``(d_in + 1, d_out)`` matrix, row-major, whose last row is
  the bias; the flat vector of a signal is the layers' matrices concatenated.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["ARCH_VERSION", "PRESETS", "Architecture", "preset"]

#: Version of the conventions above; stored in every codec.
ARCH_VERSION = 1
#: Limits on what a codec may describe (they bound a decoder's memory): widths, layers and
#: samples per patch.
MAX_WIDTH = 1024
MAX_LAYERS = 32
MAX_PATCH_SIZE = 1 << 20


@dataclass(frozen=True)
class Architecture:
    """A SIREN with Fourier features, and the patch shape each network represents.

    ``patch`` is the shape of the piece of signal one network codes: ``(height, width)``
    for images, ``(samples,)`` for audio. Larger signals are cut into patches that are coded
    together (see :mod:`relcode.inr.signals`).
    """

    dim_in: int
    dim_out: int
    dim_emb: int
    dim_hid: int
    layers: int
    patch: tuple[int, ...]
    w0: float = 30.0
    c: float = 6.0
    max_freq: float = 1024.0
    kind: str = field(default="image")

    def __post_init__(self) -> None:
        for name in ("dim_in", "dim_out", "dim_emb", "dim_hid", "layers"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 1 <= v <= MAX_WIDTH:
                raise InputError(f"architecture: {name} must be an integer in 1..{MAX_WIDTH}, got {v!r}")
        if not 2 <= self.layers <= MAX_LAYERS:
            raise InputError(f"architecture: 2 to {MAX_LAYERS} linear layers")
        if self.dim_emb % (2 * self.dim_in):
            raise InputError(f"architecture: dim_emb ({self.dim_emb}) must be a multiple of 2 * dim_in")
        if len(self.patch) != self.dim_in or any(int(p) < 1 for p in self.patch):
            raise InputError(f"architecture: patch {self.patch} must have {self.dim_in} positive sizes")
        if math.prod(int(p) for p in self.patch) > MAX_PATCH_SIZE:
            raise InputError(f"architecture: patches are limited to {MAX_PATCH_SIZE} samples")
        for name in ("w0", "c", "max_freq"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InputError(f"architecture: {name} must be a positive number, got {v!r}")
        if self.max_freq < 1:
            raise InputError("architecture: max_freq must be at least 1")
        if self.kind not in ("image", "audio"):
            raise InputError(f"architecture: kind must be 'image' or 'audio', got {self.kind!r}")
        object.__setattr__(self, "patch", tuple(int(p) for p in self.patch))

    # -- description -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a codec file's metadata."""
        d = asdict(self)
        d["patch"] = list(self.patch)
        d["version"] = ARCH_VERSION
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Architecture:
        """The architecture a codec describes; refuses unknown versions and bad values."""
        if not isinstance(d, dict):
            raise InputError("architecture: expected a map")
        d = dict(d)
        version = d.pop("version", None)
        if version != ARCH_VERSION:
            raise InputError(
                f"architecture version {version!r} is not supported (this build: {ARCH_VERSION})"
            )
        try:
            patch = tuple(int(p) for p in d.pop("patch"))
            return cls(patch=patch, **d)
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"architecture: invalid description ({e})") from None

    @property
    def layer_dims(self) -> list[tuple[int, int]]:
        """(d_in, d_out) of every linear layer."""
        dims = [self.dim_emb] + [self.dim_hid] * (self.layers - 1) + [self.dim_out]
        return list(itertools.pairwise(dims))

    @property
    def layer_offsets(self) -> list[int]:
        """Start of every layer's matrix in the flat parameter vector, and the total."""
        off = [0]
        for din, dout in self.layer_dims:
            off.append(off[-1] + (din + 1) * dout)
        return off

    @property
    def num_params(self) -> int:
        return self.layer_offsets[-1]

    @property
    def patch_size(self) -> int:
        """Samples (pixels) per patch."""
        return math.prod(self.patch)

    @property
    def frequencies(self) -> np.ndarray:
        """The Fourier frequencies (float64)."""
        n = self.dim_emb // (2 * self.dim_in)
        return np.exp(np.linspace(0.0, math.log(self.max_freq), n))

    def init_std(self) -> np.ndarray:
        """Per-parameter SIREN initialisation scale (float64, flat): ``1 / d_in`` in the
        first layer, ``sqrt(c / d_in) / w0`` in the others (weights and biases alike)."""
        out = np.empty(self.num_params)
        off = self.layer_offsets
        for k, (din, _) in enumerate(self.layer_dims):
            out[off[k] : off[k + 1]] = 1.0 / din if k == 0 else math.sqrt(self.c / din) / self.w0
        return out

    def init_weights(self, seed: int) -> np.ndarray:
        """A random SIREN initialisation (float32, flat): uniform on +-(11/12) of
        :meth:`init_std`, as COMBINER does."""
        rng = np.random.default_rng(seed)
        s = self.init_std() * (11.0 / 12.0)
        return rng.uniform(-s, s).astype(np.float32)

    # -- coordinates and features --------------------------------------------------------

    def coordinates(self) -> np.ndarray:
        """(patch_size, dim_in) float32 pixel-centre coordinates in (-1, 1), row-major."""
        axes = [((2.0 * np.arange(n) + 1.0) / n - 1.0) for n in self.patch]
        grid = np.meshgrid(*axes, indexing="ij")
        return np.stack([g.reshape(-1) for g in grid], axis=1).astype(np.float32)

    def features(self, coords: np.ndarray | None = None) -> np.ndarray:
        """(n, dim_emb) float32 Fourier features of coordinates (default: the patch grid),
        computed in float64 and rounded once."""
        x = self.coordinates() if coords is None else np.asarray(coords, dtype=np.float32)
        f = self.frequencies
        arg = math.pi * (x.astype(np.float64)[:, :, None] * f[None, None, :]).reshape(x.shape[0], -1)
        return np.concatenate([np.cos(arg), np.sin(arg)], axis=1).astype(np.float32)

    # -- forward pass ------------------------------------------------------------------

    def split(self, weights: np.ndarray) -> list[np.ndarray]:
        """The ``(S, d_in + 1, d_out)`` matrices of flat weights of shape (S, num_params)."""
        w = np.asarray(weights)
        if w.ndim != 2 or w.shape[1] != self.num_params:
            raise InputError(f"weights must have shape (signals, {self.num_params}), got {w.shape}")
        off = self.layer_offsets
        return [
            w[:, off[k] : off[k + 1]].reshape(w.shape[0], din + 1, dout)
            for k, (din, dout) in enumerate(self.layer_dims)
        ]

    def forward(
        self, weights: np.ndarray, features: np.ndarray | None = None, chunk: int = 4096
    ) -> np.ndarray:
        """Evaluates ``S`` networks (float32 weights of shape (S, num_params)) on shared
        features (default: the patch grid): returns (S, n, dim_out) float32.

        Pure numpy, in float32, one fixed order of operations: the decoder's reconstruction,
        and the encoder's, are this function's output. Rows are processed ``chunk`` at a
        time to keep intermediate arrays in cache.
        """
        with _one_blas_thread():
            return self._forward(weights, features, chunk)

    def _forward(self, weights: np.ndarray, features: np.ndarray | None, chunk: int) -> np.ndarray:
        mats = [np.ascontiguousarray(m, dtype=np.float32) for m in self.split(weights)]
        feats = self.features() if features is None else np.asarray(features, dtype=np.float32)
        S, n = mats[0].shape[0], feats.shape[0]
        out = np.empty((S, n, self.dim_out), dtype=np.float32)
        w0 = np.float32(self.w0)
        last = len(mats) - 1
        # bound the intermediate arrays (signals x rows x width) to about 2^23 floats
        group = max(1, (1 << 23) // (chunk * max(self.dim_emb, self.dim_hid)))
        for s in range(0, S, group):
            ms = [m[s : s + group] for m in mats]
            g = ms[0].shape[0]
            for a in range(0, n, chunk):
                h = np.broadcast_to(feats[a : a + chunk], (g, min(chunk, n - a), feats.shape[1]))
                for k, m in enumerate(ms):
                    din = m.shape[1] - 1
                    h = np.matmul(h, m[:, :din, :])
                    h += m[:, din : din + 1, :]
                    if k != last:
                        h *= w0
                        np.sin(h, out=h)
                out[s : s + g, a : a + chunk] = h
        return out


def _one_blas_thread():
    """One BLAS thread for the forward pass: its matrices are small (4096 x 32), and threads
    fighting over a busy machine's cores made decoding several times slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS uses its own default
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


#: Published configurations. ``cifar``: COMBINER's small CIFAR-10 network (4 layers,
#: 32 Fourier features, 16 hidden: 1,123 parameters per 32x32 image); ``kodak``: COMBINER's
#: whole-image Kodak network (6 layers, 64 features, 48 hidden: 12,675 parameters; GPU work);
#: ``patch64``: RECOMBINER's per-patch size (4 layers, 32 hidden: 3,267 parameters per 64x64
#: patch); ``audio``: the same network on 1-D patches of 800 samples (16 kHz: 50 ms).
PRESETS: dict[str, dict[str, Any]] = {
    "cifar": dict(dim_in=2, dim_out=3, dim_emb=32, dim_hid=16, layers=4, patch=(32, 32), max_freq=32.0),
    "kodak": dict(dim_in=2, dim_out=3, dim_emb=64, dim_hid=48, layers=6, patch=(512, 768), max_freq=1024.0),
    "patch64": dict(dim_in=2, dim_out=3, dim_emb=32, dim_hid=32, layers=4, patch=(64, 64), max_freq=64.0),
    "audio": dict(
        dim_in=1, dim_out=1, dim_emb=32, dim_hid=32, layers=4, patch=(800,), max_freq=800.0, kind="audio"
    ),
}


def preset(name: str, **overrides: Any) -> Architecture:
    """A published configuration (:data:`PRESETS`), with optional overrides."""
    if name not in PRESETS:
        raise InputError(f"unknown architecture preset {name!r}; choose from {', '.join(PRESETS)}")
    return Architecture(**{**PRESETS[name], **overrides})
