"""Post-training compression of pretrained weights: no training, optionally a little data.

A pretrained model's float tensors become Gaussian posteriors around their weights and are
sent by relative entropy coding; everything else (integer buffers, small tensors such as
LayerNorm gains and biases) is stored verbatim, bit for bit. What the file costs is set by one
number, the target rate in bits per weight of the whole file (header, priors, layout and
verbatim tensors included).

How the posterior is chosen (``../shared`` style reverse water-filling, in the core's standard
coordinates z = (w - m) / s):

- Each coded tensor gets one prior N(m, s²): its own mean and standard deviation (two
  float32 values in the header, exactly reproducible).
- Each weight i gets a posterior N(w_i, σ_i²) with σ_i² = s² / (1 + c·s²·F_i): the
  Lagrangian solution of "minimise Σ F_i σ_i² for the KL spent", F_i the weight's
  sensitivity (1 without data: plain squared error; a diagonal Fisher from calibration data
  otherwise, :func:`sensitivity_from_batches`, :func:`sensitivity_from_sentences`).
- Weights are coded in blocks of S (the fixed layout: a seeded permutation of each group cut
  into blocks of S, so the file stores no block sizes) with fixed-budget truncated PFR over
  2^C candidates. The level c is solved *per block* so that the block's KL equals its
  budget C (never more: no block is coded over budget), and C is chosen per group of
  weights by the classical high-rate bit allocation (more bits where Σ log F s² is larger) so
  that the whole file lands on the requested rate.
- A weight that no block can carry (its KL with σ = s, the least it can cost, is already
  above the block budget, i.e. |z| > sqrt(2 C ln 2)) is stored verbatim in its own dtype with
  its flat index: the documented fallback, counted in the rate and reported per tensor.

The file is an ordinary relcode file whose metadata (``relcode.torch`` entry, version 2, see
:mod:`relcode.weights`) records the original dtypes, the tensor order and the verbatim
weights, so :func:`decompress`, ``relcode decode FILE -o W.safetensors`` and
:func:`relcode.weights.state_dict` return every tensor with its name, shape and dtype.

>>> import relcode.pretrained as rp
>>> rep = rp.compress("model.relc", {"fc.weight": w, "fc.bias": b}, bits_per_weight=4.0)  # doctest: +SKIP
>>> sd = rp.decompress("model.relc")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _checks, _native, weights
from . import format as fmt
from .deps import require
from .errors import InputError, RelcodeError
from .typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover - annotations only; torch is optional
    import torch
    from sentence_transformers import SentenceTransformer

__all__ = [
    "ModelReport",
    "TensorReport",
    "compress",
    "compress_finetuned",
    "compress_model_dir",
    "compress_module",
    "decompress",
    "load_batches",
    "load_tensors",
    "save_tensors",
    "sensitivity_from_batches",
    "sensitivity_from_sentences",
]

#: Float tensors with fewer elements are stored verbatim (LayerNorm gains, biases).
DEFAULT_MIN_CODED = 4096
#: Elements per layout group: the unit of the rate allocation.
DEFAULT_CHUNK_SIZE = 1 << 16
#: The largest message per block by default (2^12 candidates: encode time grows as 2^C).
DEFAULT_MAX_BLOCK_BITS = 12
_LN2 = math.log(2.0)
# a block's KL is solved to its budget minus this margin (bits), so the core's own sum
# (same formula, other rounding) never exceeds it
_MARGIN = 1e-6
# the least rate a group gets: below it the cost of the posterior means (Σ z²/(2 ln 2) per
# block, whatever σ) makes relative entropy coding inefficient
_RMIN = 1.5
# the least sensitivity of a weight, relative to its tensor's mean: calibration data is a
# sample, and a weight it never moved may matter on other inputs
_SENS_FLOOR = 0.03
_FLOAT_KINDS = ("float16", "bfloat16", "float32", "float64")
# file bytes that are neither messages nor tensor data, per group and per tensor (framing,
# LAYO/MSGS chunk headers, index entries, digests); checked against real files in the tests
_GROUP_OVERHEAD_BYTES = 136
_TENSOR_OVERHEAD_BYTES = 100
_FILE_OVERHEAD_BYTES = 300


@dataclass
class TensorReport:
    """What happened to one tensor."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    #: "coded" (relative entropy coded) or "raw" (stored verbatim).
    kind: str
    #: Bits the tensor costs in the file's messages and data (not the shared overhead).
    bits: float
    #: KL(Q || P) of the coded posterior in bits (0 for raw tensors).
    kl_bits: float = 0.0
    #: Weights stored verbatim because no block could carry them.
    verbatim: int = 0
    #: Root mean square of (decoded - original) over the tensor, and over its std.
    rms_error: float = 0.0
    rms_error_rel: float = 0.0

    @property
    def bits_per_weight(self) -> float:
        n = math.prod(self.shape)
        return self.bits / n if n else 0.0


@dataclass
class ModelReport:
    """What :func:`compress` reports."""

    #: File length in bytes and whole-file rate (every byte over every weight).
    bytes: int
    bits_per_weight: float
    #: What was asked.
    target_bits_per_weight: float
    weights: int
    coded_weights: int
    #: Block size S and message bits per block C of each group.
    block_sizes: list[int]
    group_bits: list[int]
    blocks: int
    message_bits: int
    #: Blocks whose KL exceeds the bits they spend (0 by construction; checked by the core).
    over_budget_blocks: int
    verbatim_weights: int
    seconds: float
    tensors: dict[str, TensorReport] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    file_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "tensors"}
        d["tensors"] = {n: dict(t.__dict__, shape=list(t.shape)) for n, t in self.tensors.items()}
        return d

    def summary(self) -> str:
        return (
            f"{self.bytes} bytes, {self.bits_per_weight:.3f} bits/weight "
            f"(asked {self.target_bits_per_weight:g}) "
            f"for {self.weights} weights ({self.coded_weights} coded in {self.blocks} blocks, "
            f"{self.verbatim_weights} verbatim), {self.seconds:.1f} s"
        )


# ---------------------------------------------------------------------------------------
# Tensors in and out


def _dtype_name(a: Any) -> str:
    name = getattr(a, "dtype", None)
    s = str(name).replace("torch.", "")
    return s


def _as_numpy(value: Any, name: str) -> tuple[np.ndarray, str]:
    """(array, original dtype name); torch tensors of any dtype (bfloat16, requires_grad)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        dt = _dtype_name(value)
        t = value.detach().cpu()
        if dt == "bfloat16":
            return t.float().numpy(), dt
        return t.numpy(), dt
    a = np.asarray(value)
    if a.dtype.kind not in "fiub":
        raise InputError(f"{name!r}: unsupported dtype {a.dtype}")
    return a, a.dtype.name


def load_tensors(path: str | os.PathLike) -> dict[str, np.ndarray | torch.Tensor]:
    """The tensors of a .safetensors file, or of the model file in a model directory
    (``model.safetensors``, as transformers and sentence-transformers save it), in file
    order. bfloat16 tensors come back as torch tensors (numpy has no bfloat16)."""
    p = Path(path)
    if p.is_dir():
        cands = sorted(p.glob("*.safetensors"))
        if not cands:
            raise FileNotFoundError(f"{p}: no .safetensors model file in this directory")
        p = p / "model.safetensors" if (p / "model.safetensors").exists() else cands[0]
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    try:
        from safetensors import safe_open
    except ImportError as e:  # pragma: no cover - safetensors is a dependency
        raise InputError("reading .safetensors needs the safetensors package") from e
    out: dict[str, Any] = {}
    try:
        with safe_open(str(p), framework="numpy") as f:
            keys = list(f.keys())
            for k in keys:
                try:
                    out[k] = f.get_tensor(k)
                except (TypeError, ValueError):
                    out[k] = None  # bfloat16 and other dtypes numpy lacks: read with torch
        if any(v is None for v in out.values()):
            require("torch", f"reading the bfloat16 tensors of {p.name}")
            from safetensors.torch import load_file

            tt = load_file(str(p))
            out = {k: (tt[k] if v is None else v) for k, v in out.items()}
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{p}: not a readable .safetensors file ({e})") from e
    except Exception as e:
        if type(e).__name__ == "SafetensorError":
            raise InputError(f"{p}: not a readable .safetensors file ({e})") from e
        raise
    return out


def save_tensors(
    path: str | os.PathLike,
    tensors: Mapping[str, ArrayLike | torch.Tensor],
    dtypes: Mapping[str, str],
    *,
    inputs: Any = (),
) -> None:
    """Writes tensors to .safetensors (atomically) with their original dtypes; bfloat16 needs
    torch."""
    from ._output import AtomicOutput

    out = AtomicOutput(Path(path), inputs=inputs)
    try:
        if any(d == "bfloat16" for d in dtypes.values()):
            require("torch", "writing bfloat16 tensors")
            import torch
            from safetensors.torch import save_file

            tt = {}
            for k, v in tensors.items():
                t = torch.from_numpy(np.ascontiguousarray(v))
                tt[k] = t.to(torch.bfloat16) if dtypes.get(k) == "bfloat16" else t
            save_file(tt, str(out.path))
        else:
            from safetensors.numpy import save_file

            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out.path))
        out.commit()
    except BaseException:
        out.discard()
        raise


# ---------------------------------------------------------------------------------------
# The rate model (planning only: the file's KL accounting is the core's)


def _kl_z(z2: np.ndarray, f: np.ndarray, c: Any) -> np.ndarray:
    """KL(N(z, σ²) || N(0, 1)) in bits with σ² = 1 / (1 + f c), in standard coordinates."""
    fc = f * c
    return (np.log1p(fc) + 1.0 / (1.0 + fc) - 1.0 + z2) / (2.0 * _LN2)


def _solve_blocks(
    z2: np.ndarray, f: np.ndarray, block_of: np.ndarray, nblocks: int, budget: float
) -> np.ndarray:
    """Per block, the level c >= 0 whose KL is at most ``budget`` and within 1e-9 of it (or 0
    when even c = 0 costs more, which the caller has ruled out). Bisection in log c."""
    target = budget - _MARGIN
    lo = np.full(nblocks, -60.0)
    hi = np.full(nblocks, 60.0)
    for _ in range(56):
        mid = 0.5 * (lo + hi)
        kl = np.bincount(block_of, weights=_kl_z(z2, f, np.exp(mid)[block_of]), minlength=nblocks)
        over = kl > target
        hi = np.where(over, mid, hi)
        lo = np.where(over, lo, mid)
    c = np.exp(lo)
    kl0 = np.bincount(block_of, weights=_kl_z(z2, f, 0.0), minlength=nblocks)
    kl_lo = np.bincount(block_of, weights=_kl_z(z2, f, c[block_of]), minlength=nblocks)
    c = np.where(kl_lo <= target, c, 0.0)
    c = np.where(kl0 <= target, c, 0.0)
    return c


@dataclass
class _Coded:
    name: str
    shape: tuple[int, ...]
    dtype: str
    w: np.ndarray  # float32 (float64 for float64 tensors), flat
    m: np.float32  # prior mean and std (float32, as the file stores them)
    s: np.float32
    std: float  # the tensor's own std (the prior's is prior_scale times it)
    f: np.ndarray | None = None  # sensitivity, flat, or None (1)


_OUTLIER_PREFIX = "relcode.verbatim/"


def _prepare(
    tensors: Mapping[str, Any], min_coded: int, prior_scale: float
) -> tuple[list[_Coded], dict[str, np.ndarray], dict[str, str], list[str], int]:
    if not isinstance(tensors, Mapping) or not tensors:
        raise InputError("tensors must be a non-empty mapping of names to arrays")
    coded: list[_Coded] = []
    raw: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    order: list[str] = []
    n_all = 0
    for name, value in tensors.items():
        if not isinstance(name, str) or not name:
            raise InputError("tensor names must be non-empty strings")
        if name.startswith(_OUTLIER_PREFIX):
            raise InputError(f"{name!r}: names starting with {_OUTLIER_PREFIX!r} are reserved")
        a, dt = _as_numpy(value, name)
        order.append(name)
        dtypes[name] = dt
        n_all += a.size
        if dt in _FLOAT_KINDS:
            flat = a.reshape(-1)
            finite = np.isfinite(flat)
            if not finite.all():
                bad = int(np.flatnonzero(~finite)[0])
                raise InputError(f"{name!r}: element {bad} is {flat[bad]} (weights must be finite)")
            std = float(flat.std(dtype=np.float64))
            if a.size >= min_coded and std > 0:
                m = np.float32(flat.mean(dtype=np.float64))
                s = np.float32(std * prior_scale)
                if not (np.isfinite(s) and s > 0 and np.isfinite(m)):
                    raise InputError(f"{name!r}: its spread {std} is not representable in float32")
                w = flat.astype(np.float64 if dt == "float64" else np.float32, copy=False)
                coded.append(_Coded(name, tuple(a.shape), dt, w, m, s, std))
                continue
            if dt == "bfloat16":
                raise InputError(
                    f"{name!r}: bfloat16 tensors this small are not coded; store them as float32"
                )
        raw[name] = a
    if not coded:
        raise InputError(
            f"no float tensor with at least {min_coded} elements to code "
            "(integer and small tensors are stored verbatim, but a model file needs weights to compress)"
        )
    return coded, raw, dtypes, order, n_all


# How many bits per weight fixed-budget coding in blocks of S loses against ideal
# entropy-coded scalar quantisation at the same squared error (measured with truncated pfr,
# block KL = budget, Gaussian weights; beyond 4 the random-coding trend): blocks of one or two
# weights are expensive, which the allocation weighs against the rate it moves.
_BLOCK_GAP = {1: 1.9, 2: 1.0, 3: 0.7, 4: 0.45, 5: 0.37, 6: 0.31, 7: 0.27, 8: 0.24}


def _block_gap(S: int) -> float:
    return _BLOCK_GAP.get(S, 0.24 * 8 / S if S > 8 else 0.24)


def _allocate(
    logg: np.ndarray,
    counts: np.ndarray,
    bits_left: float,
    s_fixed: int | None,
    cmax: int,
    smax: int,
    rmin: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(S_g, C_g) per group. Each group's distortion is modelled as
    G_g · 2^(−2 (C/S − gap(S))) per weight (G_g the geometric mean of s²F over the group:
    the high-rate law with the loss of blocks of S); for a price λ per bit every group takes
    the (S, C) that minimises distortion + λ·bits, λ solved so that the message bits are the
    most that fit ``bits_left``; single-bit steps with the best marginal gain spend the rest."""
    sizes = [int(s_fixed)] if s_fixed else list(range(1, smax + 1))
    opts = [(S, C) for S in sizes for C in range(1, max(cmax, 1) + 1) if C / S >= rmin or C == max(cmax, 1)]
    S_o = np.array([o[0] for o in opts])
    C_o = np.array([o[1] for o in opts])
    gap = np.array([_block_gap(int(x)) for x in S_o])
    blocks = -(-counts[:, None] // S_o[None, :])  # (groups, options)
    bits = blocks * C_o[None, :]
    # log2 of distortion x weights (a common factor dropped)
    logd = logg[:, None] + np.log2(counts[:, None]) - 2.0 * (C_o[None, :] / S_o[None, :] - gap[None, :])

    def pick(loglam: float) -> np.ndarray:
        return np.argmin(np.logaddexp2(logd, loglam + np.log2(bits)), axis=1)

    lo, hi = -200.0, 200.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if bits[np.arange(len(counts)), pick(mid)].sum() > bits_left:
            lo = mid  # too many bits: a higher price
        else:
            hi = mid
    k = pick(hi)
    rows = np.arange(len(counts))
    t = float(bits[rows, k].sum())
    # spend what is left: repeatedly move the one group to another (S, C) that lowers the
    # modelled distortion most per extra bit and still fits
    dist = np.exp2(logd - logd.max())
    while True:
        extra = bits - bits[rows, k][:, None]
        better = dist[rows, k][:, None] - dist
        ok = (extra > 0) & (extra <= bits_left - t) & (better > 0)
        if not ok.any():
            break
        score = np.where(ok, better / np.maximum(extra, 1), -1.0)
        g, o = np.unravel_index(int(np.argmax(score)), score.shape)
        t += float(extra[g, o])
        k[g] = o
    S, C = S_o[k].astype(np.int64), C_o[k].astype(np.int64)
    return S, C


def _verbatim_set(z2: np.ndarray, S: int, C: int) -> np.ndarray:
    """Which elements of a group (in member order, blocks of S) are stored verbatim so that
    every block can meet its budget of C bits: the least a block's KL can be is
    Σ z²/(2 ln 2) (every σ equal to the prior's); while a block is above C, its largest |z|
    leaves it."""
    n = z2.size
    nb = -(-n // S)
    block_of = np.arange(n) // S
    vmask = np.zeros(n, dtype=bool)
    while True:
        kl0 = np.bincount(block_of, weights=np.where(vmask, 0.0, z2) / (2 * _LN2), minlength=nb)
        bad = np.flatnonzero(kl0 > C - 2 * _MARGIN)
        if bad.size == 0:
            return vmask
        for j in bad:
            seg = slice(j * S, min((j + 1) * S, n))
            vals = np.where(vmask[seg], -1.0, z2[seg])
            vmask[seg.start + int(np.argmax(vals))] = True


class _Vector:
    """The coded vector (coded tensors in name order, flattened) without copying it: slices
    of the tensors, their priors and sensitivities, in standard coordinates."""

    def __init__(self, coded: list[_Coded]):
        self.coded = coded
        self.starts = np.cumsum([0] + [t.w.size for t in coded]).astype(np.int64)

    def pieces(self, a: int, n: int) -> list[tuple[int, int, int]]:
        """(tensor position, first element in the tensor, count) tiling [a, a + n)."""
        out = []
        k = int(np.searchsorted(self.starts, a, side="right") - 1)
        while n > 0:
            off = a - int(self.starts[k])
            c = min(n, self.coded[k].w.size - off)
            if c > 0:
                out.append((k, off, c))
            a, n, k = a + c, n - c, k + 1
        return out

    def gather(self, a: int, n: int, what: str) -> np.ndarray:
        parts = []
        for k, off, c in self.pieces(a, n):
            t = self.coded[k]
            if what == "w":
                parts.append(t.w[off : off + c].astype(np.float64))
            elif what == "z":
                parts.append((t.w[off : off + c].astype(np.float64) - np.float64(t.m)) / np.float64(t.s))
            elif what == "f":
                f = np.ones(c) if t.f is None else t.f[off : off + c].astype(np.float64)
                parts.append(f * float(t.s) ** 2)
            elif what == "pm":
                parts.append(np.full(c, t.m, dtype=np.float32))
            elif what == "ps":
                parts.append(np.full(c, t.s, dtype=np.float32))
        return np.concatenate(parts) if parts else np.zeros(0)


def compress(
    dest: str | os.PathLike,
    tensors: Mapping[str, ArrayLike | torch.Tensor],
    bits_per_weight: float,
    *,
    sensitivity: Mapping[str, ArrayLike | torch.Tensor] | None = None,
    seed: int = 0,
    block_size: int | None = None,
    max_block_bits: int = DEFAULT_MAX_BLOCK_BITS,
    max_block_size: int = 8,
    prior_scale: float = 1.2,
    min_coded: int = DEFAULT_MIN_CODED,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    threads: int | None = None,
    progress: bool | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ModelReport:
    """Compresses ``tensors`` (name -> numpy array or torch tensor, e.g. a state_dict) into
    ``dest`` at ``bits_per_weight`` for the whole file.

    ``sensitivity`` maps coded tensor names to non-negative arrays of their shape (a diagonal
    Fisher or mean squared gradient, e.g. from :func:`sensitivity_from_batches`; tensors it
    lacks count as the median tensor); without it every weight's squared error counts the
    same. Each group of ``chunk_size`` weights gets its own block size (at most
    ``max_block_size``) and message bits per block (at most ``max_block_bits``; encode time
    grows as 2^bits), or the one ``block_size`` given. ``prior_scale`` widens each tensor's
    prior beyond its std (fewer weights too far out to code, for a few hundredths of a bit).
    Tensors are written in name order; :func:`decompress` returns them in the order given.
    """
    t0 = time.perf_counter()
    rate = float(bits_per_weight)
    if not (math.isfinite(rate) and rate > 0):
        raise InputError(f"bits_per_weight must be positive, got {bits_per_weight!r}")
    seed = _checks.uint64(seed, "seed")
    cmax = int(max_block_bits)
    if not 1 <= cmax <= 24:
        raise InputError("max_block_bits must be in 1..24")
    smax = int(max_block_size)
    if not 1 <= smax <= 64:
        raise InputError("max_block_size must be in 1..64")
    if block_size is not None and not 1 <= _checks.uint64(block_size, "block_size") <= 64:
        raise InputError("block_size must be in 1..64")
    if not (math.isfinite(prior_scale) and 1.0 <= prior_scale <= 4.0):
        raise InputError("prior_scale must be in [1, 4]")
    coded, raw, dtypes, order, n_all = _prepare(tensors, int(min_coded), float(prior_scale))
    coded.sort(key=lambda t: t.name.encode())
    if sensitivity is not None:
        _attach_sensitivity(coded, sensitivity)
    vec = _Vector(coded)
    n_coded = int(vec.starts[-1])
    raw_bits = sum(a.nbytes * 8 for a in raw.values())
    # Groups: each costs about _GROUP_OVERHEAD_BYTES, and one more bit per block in a group is
    # the finest step of rate; sqrt(weights / (8·overhead·S)) groups balance the two.
    s_guess = 12 / max(rate, 1.0)
    want = max(1, round(math.sqrt(n_coded / (8 * _GROUP_OVERHEAD_BYTES * s_guess))))
    chunk_size = int(min(chunk_size, max(1024, -(-n_coded // want))))
    groups = fmt.Layout._ranges(n_coded, chunk_size)
    counts = np.array([c for _, c in groups], dtype=np.int64)
    overhead_bits = 8 * (
        _FILE_OVERHEAD_BYTES
        + _TENSOR_OVERHEAD_BYTES * len(order)
        + _GROUP_OVERHEAD_BYTES * len(groups)
        + len(json.dumps(order))
    )
    budget = rate * n_all - raw_bits - overhead_bits
    if budget / n_coded < _RMIN:
        least = (_RMIN * n_coded + raw_bits + overhead_bits) / n_all
        raise InputError(
            f"{rate:g} bits/weight is too few for this model: after its verbatim tensors and the file's "
            f"overhead ({(raw_bits + overhead_bits) / n_all:.3f} bits/weight) the coded weights would get "
            f"{budget / n_coded:.3f} bits each, and this coder needs at least {_RMIN:g} "
            f"(the least rate for this model is about {least:.2f} bits/weight)"
        )
    # sensitivity per group (standard coordinates, normalised): log2 of its geometric mean
    logg = np.zeros(len(groups))
    if sensitivity is not None:
        logg = np.array([float(np.mean(np.log2(vec.gather(a, c, "f")))) for a, c in groups])
    logg -= float(np.average(logg, weights=counts))
    s_fixed = None if block_size is None else int(block_size)
    # two passes: without verbatim weights, then with what each group's (S, C) implies
    perms = [_native.layout_permutation(seed, g, c) for g, (_, c) in enumerate(groups)]

    def vsets_for(S: np.ndarray, C: np.ndarray, old: Any = None) -> list[np.ndarray]:
        out = []
        for g, (a, c) in enumerate(groups):
            if old is not None and old[0][g] == S[g] and old[1][g] == C[g]:
                out.append(old[2][g])
                continue
            z = vec.gather(a, c, "z")[perms[g]]
            out.append(np.flatnonzero(_verbatim_set(z * z, int(S[g]), int(C[g]))))
        return out

    vbits = 32 + 8 * max(t.w.dtype.itemsize for t in coded)
    S_g, C_g = _allocate(logg, counts, budget, s_fixed, cmax, smax, _RMIN)
    vsets = vsets_for(S_g, C_g)
    n_verb = sum(v.size for v in vsets)
    side_bits = 8 * 2 * _TENSOR_OVERHEAD_BYTES * len(coded) if n_verb else 0  # at most two entries each
    S2, C2 = _allocate(logg, counts, budget - vbits * n_verb - side_bits, s_fixed, cmax, smax, _RMIN)
    vsets = vsets_for(S2, C2, (S_g, C_g, vsets))
    S_g, C_g = S2, C2
    # the file: tensors, verbatim side entries, metadata
    verbatim: dict[str, list[np.ndarray]] = {t.name: [] for t in coded}
    for g, (a, _) in enumerate(groups):
        if vsets[g].size:
            elems = a + perms[g][vsets[g]].astype(np.int64)
            owner = np.searchsorted(vec.starts, elems, side="right") - 1
            for k in np.unique(owner):
                verbatim[coded[k].name].append(elems[owner == k] - vec.starts[k])
    extra_raw: dict[str, np.ndarray] = {}
    side: dict[str, list[str]] = {}
    for t in coded:
        if not verbatim[t.name]:
            continue
        local = np.sort(np.concatenate(verbatim[t.name]))
        iname, vname = f"{_OUTLIER_PREFIX}{t.name}/index", f"{_OUTLIER_PREFIX}{t.name}/value"
        extra_raw[iname] = local.astype(np.int32 if t.w.size < 2**31 else np.int64)
        extra_raw[vname] = t.w[local]  # exact: float32 holds float16 and bfloat16 values
        side[t.name] = [iname, vname]
    specs: dict[str, dict[str, Any]] = {
        t.name: {"shape": list(t.shape), "prior": (float(t.m), float(t.s))} for t in coded
    }
    all_raw = {**raw, **extra_raw}
    for n, arr in all_raw.items():
        specs[n] = {"shape": list(arr.shape), "dtype": arr.dtype.name}
    entry: dict[str, Any] = {
        "version": weights.META_VERSION_PRETRAINED,
        "order": order,
        "coded": {
            t.name: ({"dtype": t.dtype, "verbatim": side[t.name]} if t.name in side else {"dtype": t.dtype})
            for t in coded
        },
        "raw_dtype": {n: dtypes[n] for n in raw},
    }
    meta: dict[str, Any] = {weights.META_KEY: entry}
    if metadata:
        meta.update(dict(metadata))

    from tqdm.auto import tqdm

    kl_t = np.zeros(len(coded))
    bits_t = np.zeros(len(coded))
    sq_t = np.zeros(len(coded))
    over_budget = total_blocks = message_bits = 0
    sw = fmt.StreamWriter(dest, specs, seed=seed, chunk_size=chunk_size, digest="tensor", metadata=meta)
    bar = tqdm(
        total=n_coded, desc="compressing", unit="weight", unit_scale=True, leave=False, dynamic_ncols=True,
        disable=None if progress is None else not progress,
    )  # fmt: skip
    try:
        for n in sw.names:
            if n in all_raw:
                sw.write_raw(n, all_raw[n])
        for g, (a, cnt) in enumerate(groups):
            S, C = int(S_g[g]), int(C_g[g])
            perm = perms[g].astype(np.int64)
            w = vec.gather(a, cnt, "w")
            pm, ps = vec.gather(a, cnt, "pm"), vec.gather(a, cnt, "ps")
            z = (w - pm) / ps
            zz = (z * z)[perm]
            ff = vec.gather(a, cnt, "f")[perm]
            vmask = np.zeros(cnt, dtype=bool)
            vmask[vsets[g]] = True
            zz[vmask] = 0.0
            block_of = np.arange(cnt) // S
            cb = _solve_blocks(zz, ff, block_of, -(-cnt // S), float(C))
            sig = np.where(vmask, 1.0, 1.0 / np.sqrt(1.0 + ff * cb[block_of]))
            q_std = np.empty(cnt)
            q_std[perm] = sig * ps[perm].astype(np.float64)
            q_mean = w.copy()
            q_mean[perm[vmask]] = pm[perm[vmask]]
            pieces = [(coded[k].name, off, c) for k, off, c in vec.pieces(a, cnt)]
            layo, msgs, vals, rep = fmt.encode_group_interruptibly(
                g, seed, a, q_mean, q_std, pm, ps, method="pfr", bits_per_block=float(C), layout="fixed",
                block_size=S, threads=threads, tensors=pieces, max_excess=0.0, bits=C,
            )  # fmt: skip
            sw.write_group(g, layo, msgs, vals, p_mean=pm, p_std=ps)
            err = vals.astype(np.float64) - w
            err[perm[vmask]] = 0.0
            total_blocks += int(rep["blocks"])
            message_bits += int(rep["bits"])
            rows = {r["name"]: r for r in rep["rate"]}
            pos = 0
            for (k, _, c), (nm, _, _) in zip(vec.pieces(a, cnt), pieces):
                sq_t[k] += float(np.square(err[pos : pos + c]).sum())
                pos += c
                r = rows.get(nm)
                if r is not None:
                    kl_t[k] += float(r["kl_bits"])
                    bits_t[k] += float(r["message_bits"])
                    over_budget += int(r["over_budget_blocks"])
            bar.update(cnt)
        digests = sw.close()
    except BaseException:
        bar.close()
        sw.abort()
        raise
    bar.close()
    nbytes = Path(dest).stat().st_size
    reports: dict[str, TensorReport] = {}
    for k, t in enumerate(coded):
        nverb = int(sum(v.size for v in verbatim[t.name]))
        extra = sum(extra_raw[e].nbytes * 8 for e in side.get(t.name, []))
        rms = math.sqrt(sq_t[k] / t.w.size)
        reports[t.name] = TensorReport(
            t.name,
            t.shape,
            t.dtype,
            "coded",
            float(bits_t[k] + extra),
            float(kl_t[k]),
            nverb,
            rms,
            rms / t.std,
        )
    for n, arr in raw.items():
        reports[n] = TensorReport(n, tuple(arr.shape), dtypes[n], "raw", float(arr.nbytes * 8))
    return ModelReport(
        bytes=nbytes,
        bits_per_weight=nbytes * 8 / n_all,
        target_bits_per_weight=rate,
        weights=n_all,
        coded_weights=n_coded,
        block_sizes=[int(x) for x in S_g],
        group_bits=[int(c) for c in C_g],
        blocks=total_blocks,
        message_bits=message_bits,
        over_budget_blocks=over_budget,
        verbatim_weights=int(sum(v.size for v in vsets)),
        seconds=time.perf_counter() - t0,
        tensors={n: reports[n] for n in order},
        sha256=dict(zip(sw.names, digests)),
        file_sha256=_file_sha256(dest),
    )


def _file_sha256(path: str | os.PathLike) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for blk in iter(lambda: fh.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def _attach_sensitivity(coded: list[_Coded], sensitivity: Mapping[str, Any]) -> None:
    """Checks the sensitivities and gives every coded tensor one: missing or all-zero tensors
    the median tensor mean, and every weight at least _SENS_FLOOR of its tensor's mean (a weight the
    calibration never moved still counts a little)."""
    if not isinstance(sensitivity, Mapping):
        raise InputError("sensitivity must map tensor names to arrays")
    known = {t.name for t in coded}
    means = []
    for t in coded:
        if t.name not in sensitivity:
            continue
        f, _ = _as_numpy(sensitivity[t.name], t.name)
        f = np.asarray(f, dtype=np.float32)
        if f.size != t.w.size:
            raise InputError(f"{t.name!r}: sensitivity of {f.size} elements for {t.w.size} weights")
        f = f.reshape(-1)
        if not np.all(np.isfinite(f) & (f >= 0)):
            raise InputError(f"{t.name!r}: sensitivities must be finite and non-negative")
        t.f = f
        if f.any():
            means.append(float(f.mean(dtype=np.float64)))
    unknown = [n for n in sensitivity if n not in known]
    del unknown  # sensitivities of raw (verbatim) tensors are simply not needed
    ref = float(np.median(means)) if means else 1.0
    for t in coded:
        if t.f is None or not t.f.any():
            t.f = np.full(t.w.size, ref, dtype=np.float32)
        t.f = np.maximum(t.f, np.float32(_SENS_FLOOR * float(t.f.mean(dtype=np.float64))))


def decompress(source: fmt.Source) -> dict[str, np.ndarray]:
    """Every tensor of a model file, in the order it was given to :func:`compress`, with its
    shape and dtype (bfloat16 as float32: numpy has none; :func:`decompress_to` and
    ``relcode decode`` restore it)."""
    return weights.state_dict(source)


def is_model_file(source: str | os.PathLike, *, max_elements: int | None = None) -> bool:
    """Whether a relcode file was written by :func:`compress` (its metadata has a
    ``relcode.torch`` entry of version 2). False for anything unreadable: the caller's own
    decoder then reports why."""
    try:
        with fmt.open(source, max_elements=max_elements) as f:
            meta = f.metadata
    except RelcodeError:
        return False
    entry = meta.get(weights.META_KEY) if isinstance(meta, Mapping) else None
    return isinstance(entry, Mapping) and entry.get("version") == weights.META_VERSION_PRETRAINED


def decompress_to(
    source: str | os.PathLike, dest: str | os.PathLike, *, max_elements: int | None = None
) -> int:
    """Decodes a model file into ``dest`` (atomically): ``.safetensors``, ``.npz`` or a torch
    ``.pt``/``.pth`` state_dict that the original model loads, with the names, order, shapes
    and dtypes given to :func:`compress` (bfloat16 needs .safetensors or .pt, and torch).
    Returns the number of tensors. ``max_elements``: as for :func:`relcode.format.open`."""
    from ._output import check_destination
    from ._tensorfiles import open_writer

    check_destination(dest, [source])  # before any work
    arrays, meta, seed, coded = weights.read(source, max_elements=max_elements)
    expanded = weights.expand_arrays(arrays, meta, seed, coded)
    out, dtypes = {}, {}
    for name, (a, dtype) in expanded.items():
        dtypes[name] = dtype or a.dtype.name
        out[name] = a.astype(weights.NUMPY_DTYPES[dtype], copy=False) if dtype is not None else a
    suffix = Path(dest).suffix
    if "bfloat16" in dtypes.values():
        if suffix == ".safetensors":
            save_tensors(dest, out, dtypes, inputs=[source])
            return len(out)
        if suffix not in (".pt", ".pth"):
            raise InputError(f"{dest}: bfloat16 tensors need a .safetensors or .pt output")
        require("torch", "writing bfloat16 tensors")
        import torch

        from ._output import AtomicOutput

        sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}
        sd = {k: (v.to(torch.bfloat16) if dtypes[k] == "bfloat16" else v) for k, v in sd.items()}
        af = AtomicOutput(Path(dest), inputs=[source])
        try:
            torch.save(sd, str(af.path))
            af.commit()
        except BaseException:
            af.discard()
            raise
        return len(out)
    with open_writer(dest, [(k, v.dtype, v.shape) for k, v in out.items()]) as w:
        for k, v in out.items():
            w.write(k, v)
    return len(out)


# ---------------------------------------------------------------------------------------
# Sensitivities from calibration data (torch)


def _output_fisher(
    module: Any, forward: Any, batches: Iterable[Any], projections: int, seed: int
) -> dict[str, Any]:
    """E over batches and random projections v of (∂ v·y / ∂θ)²: the diagonal of JᵀJ, the
    Gauss-Newton sensitivity of the outputs y (first order: E|Δy|² = Σ F_i Δθ_i²)."""
    import torch

    params = {n: p for n, p in module.named_parameters()}
    acc = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in params.items()}
    gen = torch.Generator().manual_seed(seed)
    was = module.training
    module.eval()
    count = 0
    try:
        for batch in batches:
            for _ in range(projections):
                module.zero_grad(set_to_none=True)
                y = forward(batch)
                v = torch.randn(y.shape, generator=gen, dtype=y.dtype).to(y.device)
                (y * v).sum().backward()
                for n, p in params.items():
                    if p.grad is not None:
                        acc[n] += p.grad.detach().to(torch.float64) ** 2
                count += 1
    finally:
        module.zero_grad(set_to_none=True)
        module.train(was)
    if count == 0:
        raise InputError("the calibration data has no batches")
    out = {}
    for n, a in acc.items():
        f = (a / count).cpu().numpy()
        if f.ndim == 2 and f.any():
            # a linear map's gradient is an outer product (output error x input), so its
            # squared gradients are close to rank one: row mean x column mean / mean, far less
            # noisy than each weight's few samples
            f = np.outer(f.mean(axis=1), f.mean(axis=0)) / f.mean()
        # lookup tables (embeddings): rows the calibration never touched are used, on average,
        # as often as the average row: they get the column's mean over all rows
        if f.ndim == 2 and f.any():
            seen = f.sum(axis=1) > 0
            if seen.mean() < 0.5:
                f = f + f.mean(axis=0, keepdims=True)
        out[n] = f
    return out


def sensitivity_from_batches(
    module: torch.nn.Module,
    batches: Iterable[Any],
    *,
    projections: int = 4,
    seed: int = 0,
    output: Callable[[Any], torch.Tensor] | None = None,
) -> dict[str, np.ndarray]:
    """Per-parameter sensitivity of any ``torch.nn.Module`` from a few input batches (each a
    tensor, a tuple of positional inputs or a dict of keyword inputs): the diagonal
    Gauss-Newton matrix of its outputs, estimated with random projections. ``output`` picks
    the tensor to protect from what the module returns (default: the module's output, or
    its first element / ``last_hidden_state``)."""
    import torch

    def pick(y: Any) -> Any:
        if output is not None:
            return output(y)
        if isinstance(y, torch.Tensor):
            return y
        if hasattr(y, "last_hidden_state"):
            return y.last_hidden_state
        if isinstance(y, (tuple, list)):
            return y[0]
        if isinstance(y, Mapping):
            return next(iter(y.values()))
        raise InputError(f"cannot tell which output to protect from a {type(y).__name__}; pass output=")

    def forward(b: Any) -> Any:
        if isinstance(b, Mapping):
            return pick(module(**b))
        if isinstance(b, (tuple, list)):
            return pick(module(*b))
        return pick(module(b))

    return _output_fisher(module, forward, batches, projections, seed)


def sensitivity_from_sentences(
    model: str | os.PathLike | SentenceTransformer,
    sentences: Sequence[str],
    *,
    batch_size: int = 16,
    projections: int = 4,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Sensitivity of a sentence-embedding model (a ``sentence_transformers.SentenceTransformer``
    or a directory it loads) from calibration sentences: the Gauss-Newton diagonal of its
    sentence embeddings. Keys are the names in the model's weight file."""
    sentences = [s for s in sentences if s.strip()]
    if not sentences:
        raise InputError("the calibration file has no sentences")
    st = _load_sentence_model(model)
    inner = st[0].auto_model

    def batches() -> Iterable[Any]:
        for i in range(0, len(sentences), batch_size):
            yield (
                st.tokenize(sentences[i : i + batch_size])
                if not hasattr(st, "preprocess")
                else st.preprocess(sentences[i : i + batch_size])
            )

    def forward(feats: Any) -> Any:
        return st(dict(feats))["sentence_embedding"]

    fis = _output_fisher(st, forward, batches(), projections, seed)
    prefix = ""
    for n in fis:
        if n.endswith("embeddings.word_embeddings.weight"):
            prefix = n[: -len("embeddings.word_embeddings.weight")]
            break
    keys = set(inner.state_dict())
    out = {}
    for n, a in fis.items():
        k = n[len(prefix) :] if n.startswith(prefix) else n
        if k in keys:
            out[k] = a
    return out


def _load_sentence_model(model: Any) -> Any:
    if isinstance(model, (str, os.PathLike)):
        require("pretrained", "calibration with sentences", ("torch", "sentence_transformers"))
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(model), device="cpu")
    return model


def load_batches(path: str | os.PathLike) -> list[Any]:
    """Calibration batches from a .safetensors or .npz file, as torch tensors. Entries named
    ``"0"``, ``"1"``, … are one positional input per batch; entries named ``"0.input_ids"``,
    ``"0.attention_mask"``, ``"1.input_ids"``, … are keyword inputs, grouped by batch. Batches
    come in numeric order of their index."""
    require("torch", "calibration batches")
    import torch

    p = _checks.input_file(path)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
    elif p.suffix == ".safetensors":
        flat = load_tensors(p)
    else:
        raise InputError(f"{p}: calibration batches must be a .safetensors or .npz file")
    groups: dict[int, dict[str, Any]] = {}
    for key, a in flat.items():
        idx, dot, name = key.partition(".")
        if not idx.isdigit() or (dot and not name):
            raise InputError(
                f"{p}: entry {key!r} is not named like a batch ('0', '1', … or '0.input_ids', …)"
            )
        groups.setdefault(int(idx), {})[name] = a if isinstance(a, torch.Tensor) else torch.from_numpy(a)
    if not groups:
        raise InputError(f"{p}: no calibration batches")
    out: list[Any] = []
    for i in sorted(groups):
        g = groups[i]
        if "" in g:
            if len(g) > 1:
                raise InputError(f"{p}: batch {i} has both a positional and keyword inputs")
            out.append(g[""])
        else:
            out.append(g)
    return out


def compress_module(
    module: torch.nn.Module,
    dest: str | os.PathLike,
    bits_per_weight: float,
    *,
    calibration: str | os.PathLike | Iterable[Any] | None = None,
    output: Callable[[Any], torch.Tensor] | None = None,
    **kwargs: Any,
) -> ModelReport:
    """:func:`compress` of a torch module's state_dict (parameters and buffers, every dtype),
    weighted by its sensitivity on ``calibration`` when given: a .safetensors/.npz file of
    input batches (see :func:`load_batches`) or an iterable of batches (tensors, tuples of
    positional inputs or dicts of keyword inputs). ``output`` picks the output to protect
    (see :func:`sensitivity_from_batches`). ``relcode decode`` or :func:`decompress` give the
    state_dict back, loadable with ``module.load_state_dict``."""
    require("torch", "compress_module")
    sens = None
    if calibration is not None:
        batches = load_batches(calibration) if isinstance(calibration, (str, os.PathLike)) else calibration
        sens = sensitivity_from_batches(module, batches, output=output)
    return compress(dest, dict(module.state_dict()), bits_per_weight, sensitivity=sens, **kwargs)


def compress_finetuned(
    module: torch.nn.Module,
    dest: str | os.PathLike,
    bits_per_weight: float,
    data: Iterable[Any],
    *,
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
    bits: int = 16,
    fit_steps: int = 300,
    rounds: int = 10,
    steps: int = 20,
    seed: int = 0,
    progress: bool | None = None,
) -> Any:
    """For users with training data: compress a pretrained ``module`` to ``bits_per_weight``
    for the whole file by fine-tuning with :mod:`relcode.torch` instead of coding the
    weights as they are. Mean-KL posteriors start at the pretrained weights, are fitted for
    ``fit_steps`` steps on ``data`` (an iterable of ``(inputs, targets)`` batches, re-iterated
    as needed, e.g. :func:`relcode.torch.batches`), then coded progressively in ``rounds``
    rounds of ``bits``-bit blocks with ``steps`` fine-tuning steps between rounds. The block
    size is the smallest whose file (headers and verbatim tensors included) fits the rate.
    ``loss_fn`` defaults to cross-entropy. Returns the
    :class:`relcode.torch.CompressionReport`; :func:`relcode.torch.decompress` loads the file
    into a fresh module, and ``relcode decode`` gives its tensors."""
    require("torch", "compress_finetuned")
    import torch.nn.functional as F

    from . import torch as rt

    rate = float(bits_per_weight)
    if not (math.isfinite(rate) and rate > 0):
        raise InputError(f"bits_per_weight must be positive, got {bits_per_weight!r}")
    n = sum(int(t.numel()) for t in module.state_dict().values())
    if n == 0:
        raise InputError("the module has no weights")

    def view(block_size: int, copy: bool = False) -> Any:
        # sizing views share the module (a view never changes it); only the trained one copies
        return rt.BayesianModel(module, bits=bits, block_size=block_size, seed=seed, copy_model=copy)

    lo, hi = 1, 65535  # the smallest block size whose file fits the rate: bisection on file_size
    while lo < hi:
        mid = (lo + hi) // 2
        if rt.file_size(view(mid)) * 8 <= rate * n:
            hi = mid
        else:
            lo = mid + 1
    if rt.file_size(view(lo)) * 8 > rate * n:
        raise InputError(f"{rate:g} bits/weight is below what the verbatim tensors and headers need")
    bm = view(lo, copy=True)
    loss = F.cross_entropy if loss_fn is None else loss_fn
    show = bool(progress) if progress is not None else False
    rt.fit(bm, data, steps=fit_steps, loss_fn=loss, progress=show)
    return rt.compress(bm, dest, data, loss_fn=loss, rounds=rounds, steps=steps, progress=show)


def compress_model_dir(
    model: str | os.PathLike,
    dest: str | os.PathLike,
    bits_per_weight: float,
    *,
    calibration: str | os.PathLike | Sequence[str] | None = None,
    **kwargs: Any,
) -> ModelReport:
    """:func:`compress` for a model directory or .safetensors file; ``calibration`` is a text
    file (one sample per line) or a list of sentences for a sentence-transformers /
    transformers model directory (the weight file's own folder, with config and tokenizer)."""
    path = Path(model)
    tensors = load_tensors(path)
    sens = None
    if calibration is not None:
        mdir = path if path.is_dir() else path.parent
        if isinstance(calibration, (str, os.PathLike)):
            cp = _checks.input_file(calibration)
            if cp.suffix in (".safetensors", ".npz"):
                return compress(
                    dest, tensors, bits_per_weight, sensitivity=_batch_sensitivity(mdir, cp, set(tensors)),
                    **kwargs,
                )  # fmt: skip
            lines = cp.read_text(encoding="utf-8").splitlines()
        else:
            lines = list(calibration)
        if (mdir / "modules.json").exists():
            sens = sensitivity_from_sentences(mdir, lines)
        elif (mdir / "config.json").exists():
            sens = _transformers_sensitivity(mdir, lines, set(tensors))
        else:
            raise InputError(
                f"{mdir}: text calibration needs a sentence-transformers or transformers model directory "
                "(config.json and tokenizer beside the weights); for other modules use "
                "relcode.pretrained.sensitivity_from_batches in Python"
            )
        if not set(sens) & set(tensors):
            raise InputError("the calibration model's parameter names do not match the weight file")
    return compress(dest, tensors, bits_per_weight, sensitivity=sens, **kwargs)


def _batch_sensitivity(mdir: Path, batches: Path, keys: set[str]) -> dict[str, np.ndarray]:
    """Sensitivities of a transformers model directory from a file of tokenised batches."""
    if not (mdir / "config.json").exists():
        raise InputError(
            f"{mdir}: calibration batches from the command line need a transformers model directory "
            "(config.json beside the weights); for other modules use relcode.pretrained.compress_module"
        )
    require("pretrained", "calibration batches", ("torch", "transformers"))
    from transformers import AutoModel

    mod = AutoModel.from_pretrained(str(mdir))
    return _match_names(sensitivity_from_batches(mod, load_batches(batches)), keys)


def _match_names(fis: Mapping[str, np.ndarray], keys: set[str]) -> dict[str, np.ndarray]:
    """``fis`` keyed by the weight file's names (with or without the model's base prefix)."""
    out = {}
    for n, a in fis.items():
        for k in (n, n.split(".", 1)[-1]):
            if k in keys:
                out[k] = a
    if not out:
        raise InputError("the calibration model's parameter names do not match the weight file")
    return out


def _transformers_sensitivity(
    mdir: Path, lines: Sequence[str], keys: set[str], batch_size: int = 16
) -> dict[str, np.ndarray]:
    """Sensitivities of a transformers model directory, keyed by ``keys`` (the names in its
    weight file, with or without the model's base prefix)."""
    require("pretrained", "calibration with text", ("torch", "transformers"))
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(mdir))
    mod = AutoModel.from_pretrained(str(mdir))
    lines = [s for s in lines if s.strip()]
    batches = [
        dict(tok(lines[i : i + batch_size], padding=True, truncation=True, return_tensors="pt"))
        for i in range(0, len(lines), batch_size)
    ]
    return _match_names(sensitivity_from_batches(mod, batches), keys)
