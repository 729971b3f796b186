"""Compressed signal files: a header and one message per block, nothing else.

New files use the *compact container* of spec/signal.md (:func:`write_compact`,
:func:`read_compact`: 22-24 bytes of header and CRC-32, then the messages). The older container,
still read and written on request, is described here:

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
import zlib
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
    "compact_header_bytes",
    "compact_scale",
    "is_compact",
    "is_signal_metadata",
    "parse_compact",
    "read_compact",
    "read_signal",
    "scale_for_blocks",
    "signal_base",
    "write_compact",
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
    if is_compact(data):
        dirs = list(codec_dirs)
        if isinstance(source, (str, os.PathLike)):
            dirs.append(Path(source).resolve().parent)
        return read_compact(data, codec=codec, codec_dirs=dirs)
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


# -- the compact container (spec/signal.md) ---------------------------------------------------

#: First bytes of a compact signal file, then its version byte.
COMPACT_MAGIC = b"rS"
COMPACT_VERSION = 1
#: Bytes of the codec's SHA-256 that name it in a compact file.
CODEC_ID_BYTES = 8
_MAX_DIM = 1 << 31


def is_compact(data: bytes) -> bool:
    """Whether ``data`` starts like a compact signal file."""
    return bytes(data[:2]) == COMPACT_MAGIC


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_uleb(data: bytes, pos: int, what: str) -> tuple[int, int]:
    n = shift = 0
    for i in range(10):
        if pos + i >= len(data):
            raise FormatError(f"the compact signal file is truncated in its {what}")
        b = data[pos + i]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if b == 0 and i > 0:
                raise FormatError(f"the {what} is not in its shortest encoding")
            if n >= 1 << 64:
                raise FormatError(f"the {what} does not fit in 64 bits")
            return n, pos + i + 1
    raise FormatError(f"the {what} is longer than 10 bytes")


def compact_scale(scale: float) -> float:
    """``scale`` rounded to the float32 at or below it, the value a compact file stores (so a
    layout fitted to at most so many blocks keeps at most that many)."""
    s = np.float32(_check_scale(scale))
    if float(s) > scale:
        s = np.nextafter(s, np.float32(0))
    return _check_scale(float(s))


def compact_header_bytes(codec: Codec, shape: tuple[int, ...], seed: int) -> int:
    """Bytes of a compact signal file that are not message bits (header and check value)."""
    return len(_compact_head(codec, shape, 1.0, seed)) + 4


def _compact_head(codec: Codec, shape: tuple[int, ...], scale: float, seed: int) -> bytes:
    if codec.sha256 is None:
        raise InputError("save the codec (or load it from a file) before coding with it")
    dims = b"".join(_uleb(int(s)) for s in shape)
    scale32 = np.float32(scale).astype("<f4").tobytes()
    return (
        COMPACT_MAGIC + bytes([COMPACT_VERSION]) + bytes.fromhex(codec.sha256)[:CODEC_ID_BYTES]
        + dims + _uleb(int(seed)) + scale32
    )  # fmt: skip


def _pack(messages: np.ndarray, bits: int) -> bytes:
    """Messages as ``bits``-bit big-endian fields, MSB first, zero-padded to a byte."""
    m = np.asarray(messages, dtype=np.uint64).reshape(-1)
    if m.size and int(m.max()) >> bits:
        raise InputError(f"a message does not fit in {bits} bits")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    bitarr = ((m[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.uint8).reshape(-1)
    return np.packbits(bitarr).tobytes()


def _unpack(data: bytes, n: int, bits: int) -> np.ndarray:
    bitarr = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    if bitarr[n * bits :].any():
        raise FormatError("the padding bits after the last message are not zero")
    fields = bitarr[: n * bits].reshape(n, bits).astype(np.uint64)
    weights = np.uint64(1) << np.arange(bits - 1, -1, -1, dtype=np.uint64)
    return (fields * weights[None, :]).sum(axis=1, dtype=np.uint64)


def _coder(codec: Codec, seed: int):
    return codec.channel_options(seed).coder()


@dataclass
class CompactReport:
    """What :func:`write_compact` wrote: sizes, the coded weights (P, N) float32 that a
    decoder will decode, and the file's SHA-256."""

    bytes: int
    bits: int
    header_bytes: int
    decoded: np.ndarray
    file_sha256: str


def write_compact(
    dest: Any, codec: Codec, base: SignalBase, shape: tuple[int, ...], messages: np.ndarray, seed: int
) -> CompactReport:
    """Writes a compact signal file (spec/signal.md; atomically for paths): 22-24 bytes
    of header and check value, then ``bits`` per block. ``base.scale`` must be a float32
    (:func:`compact_scale`)."""
    if float(np.float32(base.scale)) != base.scale:
        raise InputError("a compact file stores its rate scale as a float32: use compact_scale()")
    head = _compact_head(codec, shape, base.scale, seed)
    msgs = np.asarray(messages, dtype=np.uint64).reshape(-1)
    if msgs.size != base.num_blocks:
        raise InputError(f"expected {base.num_blocks} messages, got {msgs.size}")
    body = _pack(msgs, int(codec.bits))
    w = _coder(codec, seed).decode(msgs, base.blocks, base.p_mean, base.p_std)
    check = zlib.crc32(w.astype("<f4").tobytes(), zlib.crc32(head + body))
    data = head + body + check.to_bytes(4, "little")
    if isinstance(dest, (str, os.PathLike)):
        from ..format import write_output

        write_output(Path(dest), data)
    else:
        dest.write(data)
    P, N = base.patches, codec.arch.num_params
    bits = msgs.size * int(codec.bits)
    return CompactReport(len(data), bits, len(head) + 4, w.reshape(P, N), file_sha256(data))


def parse_compact(data: bytes, dim_in: int | None = None) -> dict[str, Any]:
    """The header fields of a compact signal file (spec/signal.md): version and codec id
    (hex), and with ``dim_in`` (the codec's number of dimensions, which the file does not
    store) also the shape, seed, scale and where the messages start."""
    if len(data) < 3 or not is_compact(data):
        raise FormatError("not a compact signal file (the magic bytes are missing)")
    if data[2] != COMPACT_VERSION:
        from ..errors import VersionError

        raise VersionError(f"compact signal version {data[2]} is not supported (this build reads 1)")
    pos = 3 + CODEC_ID_BYTES
    if len(data) < pos:
        raise FormatError("the compact signal file is truncated in its codec id")
    out: dict[str, Any] = {
        "container": "compact",
        "version": int(data[2]),
        "codec_id": bytes(data[3:pos]).hex(),
    }
    if dim_in is None:
        return out
    shape = []
    for k in range(int(dim_in)):
        s, pos = _read_uleb(data, pos, f"signal shape (dimension {k})")
        if not 1 <= s <= _MAX_DIM:
            raise FormatError(f"the signal's shape is invalid (dimension {k} is {s})")
        shape.append(s)
    seed, pos = _read_uleb(data, pos, "seed")
    if len(data) < pos + 4:
        raise FormatError("the compact signal file is truncated in its rate scale")
    scale = float(np.frombuffer(data[pos : pos + 4], dtype="<f4")[0])
    out.update(shape=tuple(shape), seed=int(seed), scale=_check_scale(scale), messages_at=pos + 4)
    return out


def read_compact(
    data: bytes, *, codec: Codec | None = None, codec_dirs: list[str | os.PathLike] | tuple = ()
) -> SignalFile:
    """Decodes a compact signal file to its coded weights, checking its CRC-32 (which covers
    the header, the messages and the decoded weights)."""
    data = bytes(data)
    codec_id = parse_compact(data)["codec_id"]
    if codec is None:
        codec = find_codec(codec_id, list(codec_dirs))
    elif not (codec.sha256 or "").startswith(codec_id):
        raise InputError(f"this file was coded with codec {codec_id}..., not the given codec")
    head = parse_compact(data, codec.arch.dim_in)
    meta = {"shape": head["shape"], "scale": head["scale"]}
    base = _base_for(codec, meta)
    bits = int(codec.bits)
    at, n = head["messages_at"], base.num_blocks
    body_len = (n * bits + 7) // 8
    if len(data) != at + body_len + 4:
        raise FormatError(
            f"the compact signal file has {len(data)} bytes; its header and {n} blocks of {bits} bits "
            f"make {at + body_len + 4}"
        )
    msgs = _unpack(data[at : at + body_len], n, bits)
    w = _coder(codec, head["seed"]).decode(msgs, base.blocks, base.p_mean, base.p_std)
    check = zlib.crc32(w.astype("<f4").tobytes(), zlib.crc32(data[: at + body_len]))
    if check != int.from_bytes(data[-4:], "little"):
        from ..errors import ChecksumError

        raise ChecksumError("the compact signal file's CRC-32 does not match: it is corrupt")
    P, N = base.patches, codec.arch.num_params
    return SignalFile(codec, tuple(head["shape"]), head["scale"], w.reshape(P, N), len(data), n)
