"""Deterministic random streams (normative definition: ``spec/stream.md``).

A stream is named by a root ``seed``, a purpose tag and a 64-bit ``stream`` id; value
``p`` of it depends on those and ``p`` alone, so any machine, thread count or SIMD width
regenerates the same bits. Normal ``j`` of candidate ``k`` of a ``d``-dimensional block whose
stream id is ``s`` is normal ``(k // 16) * 16 * d + 16 * j + k % 16`` of the ``CAND`` stream
``s`` (candidates are interleaved in groups of sixteen), scaled as
``prior_mean + prior_std * z`` in float32 (``relcode.reference.candidate``).

>>> import relcode
>>> z = relcode.stream.normals(seed=0, stream=0, start=0, count=4)
>>> z.dtype, z.shape
(dtype('float32'), (4,))
>>> bool((relcode.stream.normals(0, 0, 2, 2) == z[2:]).all())
True
>>> float(relcode.stream.ndtri([0.5])[0])
0.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _checks, _native
from .errors import InputError
from .typing import ArrayLike, Float32Array, Float64Array, UInt32Array

__all__ = [
    "PURPOSES",
    "STREAM_VERSION",
    "backends",
    "derive_key",
    "ndtri",
    "normals",
    "philox4x32_10",
    "uniforms",
    "words",
]

STREAM_VERSION: int = _native.STREAM_VERSION

#: Purpose tags: four ASCII bytes read as a little-endian uint32 (spec/stream.md).
PURPOSES: dict[str, int] = {
    name: int.from_bytes(name.encode("ascii"), "little")
    for name in ("CAND", "NODE", "NOIS", "POOL", "XFRM", "PERM", "SIGN")
}


def _purpose(value: Any) -> int:
    if isinstance(value, str):
        if value not in PURPOSES:
            raise InputError(f"unknown purpose {value!r}; expected one of {sorted(PURPOSES)}")
        return PURPOSES[value]
    v = _checks.uint64(value, "purpose")
    if v > 0xFFFFFFFF:
        raise InputError("purpose must fit in 32 bits")
    return v


def philox4x32_10(counters: ArrayLike, key: ArrayLike) -> UInt32Array:
    """Philox4x32-10 (Random123 constants) of each row of ``counters`` (n, 4) under ``key`` (2,)."""
    c = _checks.uint32_array(counters, "counters")
    k = _checks.uint32_array(key, "key")
    if c.ndim != 2 or c.shape[1] != 4:
        raise InputError(f"counters must have shape (n, 4), got {c.shape}")
    if k.shape != (2,):
        raise InputError(f"key must have shape (2,), got {k.shape}")
    return _native.philox4x32_10(c, k)


def derive_key(seed: int, purpose: str | int) -> UInt32Array:
    """The Philox key of (seed, purpose) as a uint32 array of shape (2,)."""
    k0, k1 = _native.derive_key(_checks.uint64(seed, "seed"), _purpose(purpose))
    return np.array([k0, k1], dtype=np.uint32)


def normals(
    seed: int,
    stream: int,
    start: int,
    count: int,
    *,
    backend: str = "auto",
    threads: int | None = None,
    purpose: str | int = "CAND",
) -> Float32Array:
    """Standard normals at positions ``start .. start + count - 1`` of stream ``stream``.

    ``backend`` ("auto", "scalar", "avx2", "avx512") and ``threads`` choose how the values are
    computed, never what they are; a backend this CPU cannot run (see :func:`backends`) raises
    :class:`InputError`. ``purpose`` defaults to the candidate stream.
    """
    seed = _checks.uint64(seed, "seed")
    stream = _checks.uint64(stream, "stream")
    start = _checks.uint64(start, "start")
    count = _checks.uint64(count, "count")
    if start + count > _checks.U64_MAX + 1:
        raise InputError("start + count must not exceed 2**64")
    return _native.normals(seed, stream, start, count, backend, _checks.threads(threads), _purpose(purpose))


def words(seed: int, purpose: str | int, stream: int, start: int, count: int) -> UInt32Array:
    """Raw 32-bit words ``start .. start + count - 1`` of stream (seed, purpose, stream)."""
    return _native.words(
        _checks.uint64(seed, "seed"),
        _purpose(purpose),
        _checks.uint64(stream, "stream"),
        _checks.uint64(start, "start"),
        _checks.uint64(count, "count"),
    )


def uniforms(seed: int, purpose: str | int, stream: int, start: int, count: int) -> Float64Array:
    """Uniforms in (0, 1) at positions ``start .. start + count - 1`` (52-bit, float64)."""
    return _native.uniforms(
        _checks.uint64(seed, "seed"),
        _purpose(purpose),
        _checks.uint64(stream, "stream"),
        _checks.uint64(start, "start"),
        _checks.uint64(count, "count"),
    )


def ndtri(u: ArrayLike, *, threads: int | None = None) -> Float64Array:
    """Inverse standard normal CDF in float64, elementwise; every value must be in (0, 1)."""
    arr = np.asarray(u)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"ndtri needs a real array, got dtype {arr.dtype}")
    flat = np.ascontiguousarray(arr, dtype=np.float64).reshape(-1)
    out = _native.ndtri(flat, _checks.threads(threads))
    return out.reshape(arr.shape)


def backends() -> list[str]:
    """The bulk-normal backends this CPU can run ("scalar" always)."""
    return list(_native.backends())
