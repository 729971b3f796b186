"""Compressed signal files: a header and one message per block, nothing else.

A signal file is a relcode file (spec/format.md) whose base is the *signal base* derived
from a codec (:func:`signal_base`): the codec's prior tiled over the signal's ``P`` patches
as a ``(P, N)`` coded tensor ``w``, and the KL-greedy layout of the codec's training KL,
tiled and multiplied by a rate ``scale``. The file's own metadata holds what the decoder
needs to rebuild that base: the codec's SHA-256, the signal's shape and the scale (metadata
``{"v": 1, "c": codec SHA-256 (32 bytes), "n": shape, "s": scale (float64)}``). The base
itself is never stored; its SHA-256, recorded by the format, proves that the decoder
rebuilt exactly the encoder's. The size of a file is therefore its header (about 300 bytes:
framing, the two SHA-256 values, the metadata, the index and a SHA-256 of the decoded
weights) plus ``bits`` per block.

The layout packs parameters into blocks of at most ``block_bits`` of training KL (and at most
``max_block_size`` members) before the signal is seen, walking them in a seeded random order
over all patches, so blocks mix parameters of different patches (RECOMBINER: budgets shift
between easy and hard patches); per-block betas then pull each block's KL to its budget.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..coding import Blocks
from ..errors import FormatError, InputError
from .codec import Codec, find_codec

__all__ = [
    "SignalBase",
    "SignalFile",
    "base_of",
    "is_signal_metadata",
    "read_signal",
    "scale_for_blocks",
    "signal_base",
    "write_signal",
]

#: Version of the signal metadata layout.
SIGNAL_VERSION = 1


@dataclass
class SignalBase:
    """The base a signal of ``patches`` patches is coded against."""

    data: bytes
    sha256: str
    blocks: Blocks
    p_mean: np.ndarray
    p_std: np.ndarray
    patches: int
    scale: float

    @property
    def num_blocks(self) -> int:
        return self.blocks.num_blocks


def _layout(codec: Codec, patches: int, scale: float):
    from .. import format as fmt

    kl = np.tile(codec.kl_bits.astype(np.float64), patches) * float(scale)
    return fmt.Layout.kl(
        {"w": kl.reshape(patches, codec.arch.num_params)},
        bits_per_block=float(codec.block_bits),
        seed=int(codec.perm_seed),
        max_block_size=int(codec.max_block_size),
    )


def _check_scale(scale: float) -> float:
    s = float(scale)
    if not (math.isfinite(s) and 0 < s <= 1e6):
        raise FormatError(f"invalid rate scale {scale!r}")
    return s


def signal_base(codec: Codec, patches: int, scale: float) -> SignalBase:
    """Derives the base of a signal with ``patches`` patches at rate ``scale`` (a pure
    function of its arguments: encoder and decoder get the same bytes)."""
    from .. import format as fmt

    patches = int(patches)
    if patches < 1:
        raise InputError("a signal has at least one patch")
    scale = _check_scale(scale)
    layout = _layout(codec, patches, scale)
    p_mean = np.tile(codec.prior_mean, patches)
    p_std = np.tile(codec.prior_std, patches)
    N = codec.arch.num_params
    buf = io.BytesIO()
    sha = fmt.write_base(buf, layout, {"w": (p_mean.reshape(patches, N), p_std.reshape(patches, N))})
    return SignalBase(buf.getvalue(), sha, Blocks.from_layout(layout), p_mean, p_std, patches, scale)


def count_blocks(codec: Codec, patches: int, scale: float) -> int:
    return _layout(codec, patches, _check_scale(scale)).num_blocks


def scale_for_blocks(codec: Codec, patches: int, max_blocks: int) -> float:
    """The largest rate scale (to a relative precision of about 1e-3) whose layout has at
    most ``max_blocks`` blocks; :class:`InputError` if even the smallest layout (every
    block full: ``ceil(P N / max_block_size)`` blocks) has more."""
    N = codec.arch.num_params
    floor = math.ceil(patches * N / codec.max_block_size)
    if max_blocks < floor:
        raise InputError(
            f"the rate is too low for this codec: {patches} patches need at least {floor} blocks "
            f"of {codec.bits} bits ({floor * codec.bits / (patches * codec.arch.patch_size):.3f} "
            "bits per sample)"
        )
    lo, hi = 1e-6, 1.0
    while count_blocks(codec, patches, hi) <= max_blocks:
        lo, hi = hi, hi * 4
        if hi > 1e6:
            return lo
    if count_blocks(codec, patches, lo) > max_blocks:
        return lo
    while hi / lo > 1.001:
        mid = math.sqrt(lo * hi)
        if count_blocks(codec, patches, mid) <= max_blocks:
            lo = mid
        else:
            hi = mid
    return lo


def signal_metadata(codec: Codec, shape: tuple[int, ...], scale: float) -> dict[str, Any]:
    if codec.sha256 is None:
        raise InputError("save the codec (or load it from a file) before coding with it")
    # one-letter keys: every byte of a small signal's header is a visible part of its rate
    return {
        "v": SIGNAL_VERSION,
        "c": bytes.fromhex(codec.sha256),
        "n": [int(s) for s in shape],
        "s": float(scale),
    }


def write_signal(
    dest: Any,
    codec: Codec,
    base: SignalBase,
    shape: tuple[int, ...],
    messages: np.ndarray,
    seed: int,
) -> Any:
    """Writes a signal file (atomically for paths); returns the format's report, whose
    ``decoded["w"]`` is exactly what a decoder will decode."""
    from .. import format as fmt

    opts: dict[str, Any] = {"bits": int(codec.bits)}
    if codec.pool:
        opts["pool"] = True
    w = fmt.Writer(
        dest,
        base=base.data,
        seed=int(seed),
        method=codec.method,
        digest="all",
        metadata=signal_metadata(codec, shape, base.scale),
        **opts,
    )
    msgs = np.asarray(messages, dtype=np.uint64)
    for b in range(base.num_blocks):
        w.add_block(b, int(msgs[b]))
    return w.close()


@dataclass
class SignalFile:
    """A decoded signal file: its codec, shape, rate scale, the coded weights (P, N)
    float32 and the file's size."""

    codec: Codec
    shape: tuple[int, ...]
    scale: float
    weights: np.ndarray
    bytes: int
    blocks: int


def _read_bytes(source: Any) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if hasattr(source, "read"):
        return bytes(source.read())
    try:
        return Path(source).read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {source}: {e.strerror or e}") from None


def is_signal_metadata(meta: Any) -> bool:
    """Whether a relcode file's metadata marks it as a compressed signal (its checks are
    :func:`peek_metadata`'s)."""
    return isinstance(meta, dict) and meta.get("v") == SIGNAL_VERSION and "c" in meta and "s" in meta


def peek_metadata(data: bytes) -> dict[str, Any]:
    """The signal metadata of a file, checked; without decoding anything."""
    from .. import format as fmt

    f = fmt.open(data)
    meta = f.metadata
    if f.base_sha256 is None or not is_signal_metadata(meta):
        raise FormatError("this is not a compressed INR signal (a codec, or another relcode file?)")
    codec_sha = meta.get("c")
    shape = meta.get("n")
    if not isinstance(codec_sha, (bytes, bytearray)) or len(codec_sha) != 32:
        raise FormatError("the signal's codec reference is invalid")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2 or not all(isinstance(s, int) for s in shape):
        raise FormatError("the signal's shape is invalid")
    if not all(1 <= s <= 1 << 31 for s in shape):
        raise FormatError("the signal's shape is invalid")
    scale = meta.get("s")
    if not isinstance(scale, float):
        raise FormatError("the signal's rate scale is invalid")
    return {"codec": bytes(codec_sha).hex(), "shape": tuple(shape), "scale": _check_scale(scale)}


def base_of(
    source: Any, *, codec: Codec | None = None, codec_dirs: list[str | os.PathLike] | tuple = ()
) -> tuple[bytes, dict[str, Any]]:
    """The base a signal file is coded against, rebuilt from its codec (found as in
    :func:`read_signal`), and the file's signal metadata with the codec's name: what
    ``relcode verify`` and ``relcode inspect`` pass as the file's base."""
    data = _read_bytes(source)
    meta = peek_metadata(data)
    if codec is None:
        dirs = list(codec_dirs)
        if isinstance(source, (str, os.PathLike)):
            dirs.append(Path(source).resolve().parent)
        codec = find_codec(meta["codec"], dirs)
    elif codec.sha256 != meta["codec"]:
        raise InputError(f"this file was coded with codec {meta['codec'][:16]}..., not the given codec")
    base = _base_for(codec, meta)
    return base.data, {**meta, "codec_kind": codec.kind, "codec_bits_per_sample": codec.bits_per_sample()}


def _base_for(codec: Codec, meta: dict[str, Any]) -> SignalBase:
    from .signals import patch_grid

    shape = meta["shape"]
    if len(shape) != codec.arch.dim_in:
        raise FormatError(f"a {len(shape)}-D signal shape for a {codec.arch.dim_in}-D codec")
    try:
        patches = math.prod(patch_grid(shape, codec.arch.patch))
    except InputError as e:
        raise FormatError(f"the signal's shape is invalid: {e}") from None
    return signal_base(codec, patches, meta["scale"])


def read_signal(
    source: Any,
    *,
    codec: Codec | None = None,
    codec_dirs: list[str | os.PathLike] | tuple = (),
) -> SignalFile:
    """Decodes a signal file (a path, bytes or a binary file) to its coded weights. The
    codec is ``codec`` (which must be the one the file references) or found by SHA-256 in
    ``codec_dirs``, ``$RELCODE_CODEC_PATH``, the package's codecs and the file's directory."""
    from .. import format as fmt

    data = _read_bytes(source)
    meta = peek_metadata(data)
    if codec is not None:
        if codec.sha256 != meta["codec"]:
            raise InputError(
                f"this file was coded with codec {meta['codec'][:16]}..., not the given codec "
                f"{(codec.sha256 or 'unsaved')[:16]}..."
            )
    else:
        dirs = list(codec_dirs)
        if isinstance(source, (str, os.PathLike)):
            dirs.append(Path(source).resolve().parent)
        codec = find_codec(meta["codec"], dirs)
    shape = meta["shape"]
    base = _base_for(codec, meta)
    f = fmt.open(data, base=base.data, lazy=False)
    w = f.decode()["w"]
    return SignalFile(codec, shape, meta["scale"], w, len(data), base.num_blocks)


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
