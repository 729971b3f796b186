"""Codecs: what every file of one kind shares, stored once and referenced by SHA-256.

A COMBINER codec is the side information that encoder and decoder must agree on before any
signal is coded: the network architecture, the per-parameter prior learned on a training
set (the coding distribution of every block), each parameter's average training KL (from
which the block layout is derived), and the rate settings. A codec is a relcode *base
file* (spec/format.md section 10): its coded tensor ``w`` holds one patch network's
parameters with their prior as exact float32 values, its raw tensor ``kl`` the training
KL, its metadata the rest.

A compressed signal of ``P`` patches codes a ``(P, N)`` tensor against a base derived from
the codec by :func:`signal_base`: the prior tiled over the patches and the KL-greedy
layout of the tiled (and rate-scaled) KL. That derivation is a pure function of the codec,
``P`` and the scale, so the signal file records only the codec's SHA-256, its own size and
the scale; any decoder that has the codec rebuilds the same base, byte for byte, and the
format checks it by its SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError, InputError
from .siren import Architecture

__all__ = [
    "CODEC_VERSION",
    "Codec",
    "candidate_codecs",
    "codec_dirs",
    "find_codec",
    "load_codec",
    "nearest_codec",
    "shipped_codecs",
]

#: Version of the codec metadata layout.
CODEC_VERSION = 1
_MAGIC = b"\x89RELC\r\n\x1a"
#: Where the codecs shipped with the package live.
PACKAGE_CODECS = Path(__file__).resolve().parent / "codecs"


@dataclass
class Codec:
    """Architecture, prior and rate settings shared by every file of one codec.

    ``prior_mean``/``prior_std``/``kl_bits`` are flat (N,) arrays (float32 on disk);
    ``beta`` is the KL weight the prior was trained with (a starting point for new signals);
    ``bits_per_patch`` the average KL per training patch it was trained for; blocks carry at
    most ``block_bits`` bits of training KL and ``max_block_size`` parameters, laid out
    after a permutation seeded with ``perm_seed``; every block is coded with ``method``
    over 2^``bits`` candidates (``pool``: from the shared candidate pool).
    """

    arch: Architecture
    prior_mean: np.ndarray
    prior_std: np.ndarray
    kl_bits: np.ndarray
    beta: float
    bits_per_patch: float
    block_bits: float = 16.0
    max_block_size: int = 25
    perm_seed: int = 22
    method: str = "pfr"
    bits: int = 16
    pool: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    #: SHA-256 (hex) of the file the codec was read from or written to.
    sha256: str | None = None

    def __post_init__(self) -> None:
        N = self.arch.num_params
        self.prior_mean = np.ascontiguousarray(self.prior_mean, dtype=np.float32).reshape(-1)
        self.prior_std = np.ascontiguousarray(self.prior_std, dtype=np.float32).reshape(-1)
        self.kl_bits = np.ascontiguousarray(self.kl_bits, dtype=np.float32).reshape(-1)
        for name in ("prior_mean", "prior_std", "kl_bits"):
            a = getattr(self, name)
            if a.size != N:
                raise InputError(f"codec: {name} has {a.size} values, the architecture {N} parameters")
            if not np.all(np.isfinite(a)):
                raise InputError(f"codec: {name} must be finite")
        if (self.prior_std <= 0).any():
            raise InputError("codec: prior standard deviations must be positive")
        if (self.kl_bits < 0).any():
            raise InputError("codec: KL values must be non-negative")
        if not (math.isfinite(self.beta) and self.beta > 0):
            raise InputError("codec: beta must be positive")
        if not 1 <= int(self.max_block_size) <= 65535:
            raise InputError("codec: max_block_size must be in 1..65535")
        if not (self.block_bits > 0 and math.isfinite(self.block_bits)):
            raise InputError("codec: block_bits must be positive")
        if self.method != "pfr" or not 1 <= int(self.bits) <= 24:
            raise InputError(
                "codec: blocks are coded with truncated pfr over 2^bits candidates, bits in 1..24"
            )

    # -- what the codec implies ---------------------------------------------------------

    @property
    def kind(self) -> str:
        return self.arch.kind

    def channel_options(self, seed: int = 0):
        from .coding import ChannelOptions

        return ChannelOptions(method=self.method, bits=int(self.bits), pool=bool(self.pool), seed=int(seed))

    def metadata(self) -> dict[str, Any]:
        return {
            "relcode_inr": CODEC_VERSION,
            "arch": self.arch.to_dict(),
            "beta": float(self.beta),
            "bits_per_patch": float(self.bits_per_patch),
            "block_bits": float(self.block_bits),
            "max_block_size": int(self.max_block_size),
            "perm_seed": int(self.perm_seed),
            "method": self.method,
            "bits": int(self.bits),
            "pool": bool(self.pool),
            "info": dict(self.info),
        }

    @classmethod
    def from_parts(cls, meta: Any, prior_mean, prior_std, kl_bits, sha256: str | None = None) -> Codec:
        if not isinstance(meta, dict) or meta.get("relcode_inr") != CODEC_VERSION:
            raise FormatError("this file is not a relcode INR codec (or a newer version of one)")
        try:
            return cls(
                arch=Architecture.from_dict(meta["arch"]),
                prior_mean=prior_mean,
                prior_std=prior_std,
                kl_bits=kl_bits,
                beta=float(meta["beta"]),
                bits_per_patch=float(meta["bits_per_patch"]),
                block_bits=float(meta["block_bits"]),
                max_block_size=int(meta["max_block_size"]),
                perm_seed=int(meta["perm_seed"]),
                method=str(meta["method"]),
                bits=int(meta["bits"]),
                pool=bool(meta["pool"]),
                info=dict(meta.get("info") or {}),
                sha256=sha256,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"invalid codec metadata: {e}") from None

    def bits_per_sample(self) -> float:
        """Nominal message bits per sample (pixel) the codec was trained for."""
        return self.bits_per_patch / self.arch.patch_size

    def min_bits_per_sample(self) -> float:
        """The lowest message rate the codec reaches: every block full
        (``max_block_size`` parameters)."""
        blocks = math.ceil(self.arch.num_params / self.max_block_size)
        return blocks * self.bits / self.arch.patch_size

    def __repr__(self) -> str:
        sha = (self.sha256 or "unsaved")[:12]
        return (
            f"Codec({self.kind}, {self.arch.num_params} parameters per {self.arch.patch} patch, "
            f"{self.bits_per_sample():.3f} bits/sample nominal, sha256 {sha})"
        )

    # -- files ----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The codec as a relcode base file."""
        from .. import format as fmt

        layout = fmt.Layout.kl(
            {"w": self.kl_bits.astype(np.float64)},
            bits_per_block=float(self.block_bits),
            seed=int(self.perm_seed),
            max_block_size=int(self.max_block_size),
        )
        buf = io.BytesIO()
        fmt.write_base(
            buf,
            layout,
            {"w": (self.prior_mean, self.prior_std)},
            raw={"kl": self.kl_bits},
            metadata=self.metadata(),
        )
        return buf.getvalue()

    def save(self, path: str | os.PathLike) -> str:
        """Writes the codec file (atomically); returns and records its SHA-256."""
        from ..format import write_output

        data = self.to_bytes()
        write_output(Path(path), data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        return self.sha256

    @classmethod
    def from_bytes(cls, data: bytes) -> Codec:
        from .. import format as fmt

        f = fmt.open(bytes(data), lazy=False)
        if f.base_sha256 is not None or f.info["messages"]:
            raise FormatError("this file is a compressed signal, not a codec")
        names = set(f.names) | {t["name"] for t in f.info["tensors"]}
        if not {"w", "kl"} <= names:
            raise FormatError("this relcode file is not an INR codec (no prior or KL tensors)")
        mean, std = f.prior("w")
        kl = f.tensor("kl")
        return cls.from_parts(f.metadata, mean, std, kl, sha256=hashlib.sha256(bytes(data)).hexdigest())


def load_codec(path: str | os.PathLike) -> Codec:
    """Reads a codec file; a missing or unreadable file is an :class:`InputError`, a file
    that is not a codec a :class:`FormatError`."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read codec {p}: {e.strerror or e}") from None
    return Codec.from_bytes(data)


def codec_dirs(extra: list[str | os.PathLike] | tuple = ()) -> list[Path]:
    """Where codecs are looked up by SHA-256, in order: ``extra``, the directories in
    ``$RELCODE_CODEC_PATH`` (``os.pathsep``-separated), the codecs shipped with the package."""
    out = [Path(d) for d in extra]
    env = os.environ.get("RELCODE_CODEC_PATH", "")
    out += [Path(d) for d in env.split(os.pathsep) if d]
    out.append(PACKAGE_CODECS)
    return out


def candidate_codecs(dirs: list[str | os.PathLike] | tuple = ()) -> Iterator[tuple[str, bytes]]:
    """(SHA-256 hex, bytes) of every file that may be a codec (a relcode file) in
    :func:`codec_dirs`, in search order."""
    for d in codec_dirs(dirs):
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            try:
                if not p.is_file() or p.stat().st_size > 1 << 30:
                    continue
                with p.open("rb") as fh:
                    if fh.read(8) != _MAGIC:
                        continue
                data = p.read_bytes()
            except OSError:
                continue
            yield hashlib.sha256(data).hexdigest(), data


def find_codec(sha256: str, dirs: list[str | os.PathLike] | tuple = ()) -> Codec:
    """The codec whose file's SHA-256 is ``sha256`` (hex) or, for a shorter hex string (a
    compact file's codec id), starts with it, from :func:`codec_dirs`; an id that names two
    different codecs is an error, not a guess."""
    found = {}
    for sha, data in candidate_codecs(dirs):
        if sha == sha256:
            return Codec.from_bytes(data)
        if len(sha256) < 64 and sha.startswith(sha256):
            found.setdefault(sha, data)
    if len(found) > 1:
        raise InputError(f"codec id {sha256} names {len(found)} codecs here: pass the codec explicitly")
    if found:
        return Codec.from_bytes(next(iter(found.values())))
    raise InputError(
        f"codec {sha256[:16]}... not found in {', '.join(str(d) for d in codec_dirs(dirs))}; "
        "pass it with --codec (or set RELCODE_CODEC_PATH)"
    )


def shipped_codecs(kind: str | None = None) -> list[Codec]:
    """The codecs shipped with the package (optionally of one kind), by nominal rate."""
    out = []
    if PACKAGE_CODECS.is_dir():
        for p in sorted(PACKAGE_CODECS.glob("*.relc")):
            c = load_codec(p)
            if kind is None or c.kind == kind:
                out.append(c)
    return sorted(out, key=lambda c: c.bits_per_sample())


def nearest_codec(codecs: list[Codec], bits_per_sample: float | None, samples: int, kind: str) -> Codec:
    """Of ``codecs`` (by nominal rate), the one whose rate is closest in log scale to the
    message rate a whole-file target of ``bits_per_sample`` leaves after a ~330-byte header
    over ``samples`` samples, among those that can reach it; the middle one without a rate."""
    if not codecs:
        raise InputError(f"no {kind} codec is shipped with this installation; pass --codec")
    if bits_per_sample is None:
        return codecs[len(codecs) // 2]
    msg = max(bits_per_sample - 330 * 8 / samples, 1e-3)
    feasible = [c for c in codecs if c.min_bits_per_sample() * 1.02 <= msg] or codecs[:1]
    return min(feasible, key=lambda c: abs(math.log(c.bits_per_sample() / msg)))
