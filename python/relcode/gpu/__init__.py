"""GPU encoding of the fixed-budget samplers (mrc, orc, truncated pfr, and their pool mode).

Fixed-budget coding draws 2^C candidates per block: about 6.6e10 candidate-dimensions for a
million weights at C = 16, minutes on a CPU core. The Triton kernel here generates each
candidate in registers from the normative stream, scores it, adds the encoder noise and keeps
the best key, so nothing of size 2^C ever reaches memory.

Why the result equals the CPU encoder's. A file is decodable only if the GPU scores exactly
the candidates the CPU decoder regenerates, so candidate generation is the stream of
spec/stream.md operation by operation: integer Philox, exact integer-to-float conversions,
correctly rounded binary32 +, -, x and ``sqrt_rn``, compiled with floating-point contraction
off (no fused multiply-add). The kernel also reproduces the CPU encoder's scores, noise and
keys bit for bit (same operations, same order, the binary64 carry chain of the PFR/ORC
arrival times run sequentially as on the CPU), so it selects the same index: a file encoded
on the GPU is byte-identical to one encoded on the CPU with the same inputs and seed. Decoding
(and ``code.sample``) always runs on the CPU, from the message.

What rests on what. Candidates equal the decoder's by construction (the operations above are
exact or correctly rounded on any IEEE-754 device), and the tests compare them bit for bit.
Equal keys, hence equal indices, additionally need the scoring and noise operations to run
as written, which the same compile options ensure; the tests compare keys bit for bit too. If
a toolchain ever broke that (say, contracted the scoring), the GPU would still write a valid
file: any index decodes, on every machine, to the candidate the GPU chose.

Use it through ``relcode.channel.encode(..., device="cuda")``; ``device="cpu"`` (the default)
never imports torch or Triton. Without a GPU, ``TRITON_INTERPRET=1`` runs the same kernels in
Triton's interpreter on the CPU (slow; meant for tests), and the functions below take
``interpret=True`` for the same purpose.

Integration. ``relcode.channel.encode(..., device=...)`` is the single entry point, and the
device never changes a file, so nothing records it:

- model compression (``relcode.torch``) passes ``device="auto"`` (or the device its model is
  on) when it codes blocks with mrc, orc or pfr with ``bits``: the GPU when one is usable,
  the CPU otherwise, with no change for users (:func:`resolve`, :func:`supports`);
- the streaming encoder passes its ``device`` through to ``encode`` chunk by chunk. Chunks of a
  few hundred blocks or more (at C = 16) keep a GPU busy; the pool of (seed, d) is built once
  per device and reused by every chunk (:func:`clear_cache` frees it). ``encode`` returns when
  the indices are back on the host, so a writer overlaps it with I/O by calling it from a worker
  thread.

Other methods run on the CPU only; asking for them on a GPU is an :class:`InputError`.

>>> import relcode
>>> relcode.gpu.is_cpu("cpu"), relcode.gpu.is_cpu("cuda:0")
(True, False)
"""

from __future__ import annotations

import importlib.util
import os
import threading
from types import ModuleType
from typing import Any

import numpy as np

from .._checks import uint64
from ..errors import InputError

__all__ = [
    "available",
    "clear_cache",
    "coefficients",
    "encode",
    "is_cpu",
    "normals",
    "pool_coefficients",
    "resolve",
    "select",
    "supports",
    "transforms",
]

#: Largest pool kept in memory, in float32 elements (as on the CPU: rust channel/pool.rs).
MAX_POOL_ELEMENTS = 1 << 28
#: Largest number of carries (binary64, one per group of sixteen candidates and problem)
#: held at once by the PFR/ORC pipeline: 64 MiB, plus as much for the group totals.
MAX_CARRIES = 1 << 23
#: Largest number of groups of sixteen candidates one launch covers per problem, and of
#: problems per launch.
MAX_GROUPS_PER_LAUNCH = 1 << 20
MAX_ROWS_PER_LAUNCH = 1 << 16

#: Launch parameters on a GPU (groups of sixteen candidates per program, problems per program
#: in pool mode, warps). Results never depend on them.
GROUPS_PER_PROGRAM = 64
POOL_ROWS_PER_PROGRAM = 4
NUM_WARPS = 4
#: Under the interpreter: fewer, larger programs (its cost is per operation, not per element).
INTERPRET_GROUPS = 256
INTERPRET_ELEMENTS = 4096

_RULES = {"mrc": 0, "orc": 1, "pfr": 2}
_NO_INDEX = (1 << 63) - 1
# Compile options every launch passes: no contraction into fused multiply-adds (LLVM and
# ptxas), no flush-to-zero inside library calls (an option of recent Triton versions only;
# the kernels call no library function that could flush).
_EXACT = {"enable_fp_fusion": False, "enable_reflect_ftz": False}


# ------------------------------------------------------------------ devices
def is_cpu(device: Any) -> bool:
    """Whether ``device`` (None, a string or a ``torch.device``) names the CPU."""
    if device is None:
        return True
    if isinstance(device, str):
        return device.split(":")[0].strip() == "cpu"
    return getattr(device, "type", None) == "cpu"


def supports(method: str, **options: Any) -> bool:
    """Whether the GPU encoder runs ``method`` with these options: mrc, orc, and pfr with
    ``bits`` (pool mode included)."""
    return method in ("mrc", "orc") or (method == "pfr" and options.get("bits") is not None)


def resolve(device: Any, method: str, options: dict[str, Any]) -> Any:
    """The device an encode runs on: ``"auto"`` becomes ``"cuda"`` when a GPU is usable and
    the method runs there (:func:`supports`), else ``"cpu"``; other values are unchanged.
    Both give the same result, so callers (model compression, streaming encoders) can pass
    ``device="auto"`` and let the machine decide."""
    if isinstance(device, str) and device == "auto":
        return "cuda" if supports(method, **options) and available() else "cpu"
    return device


def _interpret_env() -> bool:
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")


def _torch() -> ModuleType:
    try:
        import torch
    except ImportError:
        raise InputError(
            "GPU encoding needs torch and triton (pip install torch triton); "
            "encode with device='cpu' instead, which gives the same result"
        ) from None
    return torch


def available() -> bool:
    """Whether a CUDA device and Triton are usable here (never raises)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available()) and importlib.util.find_spec("triton") is not None


def _pow2(x: int) -> int:
    """The smallest power of two >= x (>= 1)."""
    return 1 << max(0, x - 1).bit_length()


class _Target:
    """Where kernels run: a torch device for the tensors, and compiled or interpreted."""

    def __init__(self, device: Any, interpret: bool | None) -> None:
        torch = _torch()
        if importlib.util.find_spec("triton") is None:
            raise InputError(
                "GPU encoding needs triton (pip install triton); encode with device='cpu' instead"
            )
        self.interpret = _interpret_env() if interpret is None else bool(interpret)
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise InputError(
                f"unknown device {device!r}; use 'cpu' or a CUDA device such as 'cuda'"
            ) from None
        if dev.type not in ("cuda", "cpu"):
            raise InputError(f"GPU encoding runs on CUDA devices, got device {device!r}; use 'cpu' or 'cuda'")
        if self.interpret:
            # Triton's interpreter runs on the CPU; tensors stay on the GPU only if there is one
            if dev.type == "cuda" and not torch.cuda.is_available():
                dev = torch.device("cpu")
        elif dev.type == "cpu":
            raise InputError("the GPU kernels need a CUDA device (or interpret=True / TRITON_INTERPRET=1)")
        elif not torch.cuda.is_available():
            raise InputError(
                f"device={device!r} needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is "
                "False). Encode with device='cpu' (the same result, slower), or set TRITON_INTERPRET=1 "
                "to run the GPU kernels in Triton's interpreter on the CPU (for tests)"
            )
        elif dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(
                f"device {device!r} does not exist; {torch.cuda.device_count()} CUDA device(s) found"
            )
        self.device = dev
        self.torch = torch
        self.kernels = _kernels(self.interpret)
        self.options = {} if self.interpret else _exact_options()

    def launch(self, kernel: Any, grid: int, *args: Any, **meta: Any) -> None:
        if self.interpret:
            # the interpreter computes with numpy, which warns where IEEE arithmetic
            # meets infinities or NaN (extreme targets); a GPU computes the same silently
            with np.errstate(all="ignore"):
                kernel[(grid,)](*args, **meta)
        else:
            with self.torch.cuda.device(self.device):
                kernel[(grid,)](*args, num_warps=NUM_WARPS, **self.options, **meta)

    def tile(self, nbc: int, gc: int, pool: bool) -> tuple[int, int]:
        """(problems, groups) per program: powers of two, never larger than needed."""
        if self.interpret:
            groups = min(INTERPRET_GROUPS, _pow2(gc))
            return min(_pow2(nbc), max(1, INTERPRET_ELEMENTS // groups)), groups
        rows = POOL_ROWS_PER_PROGRAM if pool else 1
        return min(rows, _pow2(nbc)), min(GROUPS_PER_PROGRAM, _pow2(gc))

    def key(self) -> tuple[str, bool]:
        return (str(self.device), self.interpret)


def _exact_options() -> dict[str, bool]:
    """``_EXACT``, less the options this Triton's CUDA backend does not know; contraction must
    be switchable, or the candidates would not be the stream's."""
    from triton.backends.nvidia.compiler import CUDAOptions

    known = CUDAOptions.__dataclass_fields__
    if "enable_fp_fusion" not in known:
        raise InputError("this Triton cannot turn floating-point contraction off; upgrade triton")
    return {k: v for k, v in _EXACT.items() if k in known}


_KERNELS: dict[bool, ModuleType] = {}
_LOCK = threading.Lock()


def _kernels(interpret: bool) -> ModuleType:
    """The kernel module, compiled (``triton.jit``) or interpreted. Triton decides which when
    a function is decorated, so the module is executed once per mode, as a private copy."""
    with _LOCK:
        mod = _KERNELS.get(interpret)
        if mod is None:
            spec = importlib.util.find_spec(f"{__name__}._kernels")
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            try:
                from triton import knobs
            except ImportError:  # Triton before knobs read the environment when decorating
                saved = os.environ.get("TRITON_INTERPRET")
                os.environ["TRITON_INTERPRET"] = "1" if interpret else "0"
                try:
                    spec.loader.exec_module(mod)
                finally:
                    if saved is None:
                        del os.environ["TRITON_INTERPRET"]
                    else:
                        os.environ["TRITON_INTERPRET"] = saved
            else:
                with knobs.runtime.scope():
                    knobs.runtime.interpret = interpret
                    spec.loader.exec_module(mod)
            _KERNELS[interpret] = mod
        return mod


# ------------------------------------------------------------------ keys and coefficients
def _key_table(seed: int, purposes: tuple[str, ...]) -> np.ndarray:
    from .. import stream

    return np.concatenate([stream.derive_key(seed, p) for p in purposes]).view(np.int32)


def coefficients(
    q_mean: np.ndarray, q_std: np.ndarray, p_mean: np.ndarray, p_std: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Score coefficients (a, b) of log r(z) = sum_j (a_j z_j + b_j) z_j + c, float32, computed
    exactly as the CPU encoder does: mu = (q_mean - p_mean) / p_std, s = q_std / p_std,
    a = (1 - 1/s^2) / 2, b = mu / s^2 in binary64 (P at float32 precision), then rounded."""
    pm = np.asarray(p_mean, dtype=np.float32).astype(np.float64)
    ps = np.asarray(p_std, dtype=np.float32).astype(np.float64)
    qm = np.asarray(q_mean, dtype=np.float64)
    qs = np.asarray(q_std, dtype=np.float64)
    with np.errstate(all="ignore"):
        mu = (qm - pm) / ps
        s = qs / ps
        inv = 1.0 / (s * s)
        a = 0.5 * (1.0 - inv)
        b = mu * inv
        # extreme targets overflow float32 to infinities, exactly as on the CPU
        return a.astype(np.float32), b.astype(np.float32)


def transforms(seed: int, ids: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The pool-mode block transforms (spec/channel.md section 7) of blocks ``ids``:
    ``perm`` (n, d) int64 and ``neg`` (n, d) bool, block dimension j reading pool dimension
    perm[j], negated when neg[j]. Vectorised over blocks."""
    from .. import stream

    ids = np.asarray(ids, dtype=np.uint64).reshape(-1)
    n = ids.size
    nsign = (d + 31) // 32
    nwords = nsign + d - 1
    nblk = (nwords + 3) // 4
    blk = np.arange(nblk, dtype=np.uint64)
    ctr = np.empty((n, nblk, 4), dtype=np.uint64)
    ctr[:, :, 0] = blk[None, :] & np.uint64(0xFFFFFFFF)
    ctr[:, :, 1] = blk[None, :] >> np.uint64(32)
    ctr[:, :, 2] = (ids & np.uint64(0xFFFFFFFF))[:, None]
    ctr[:, :, 3] = (ids >> np.uint64(32))[:, None]
    words = stream.philox4x32_10(ctr.reshape(-1, 4), stream.derive_key(seed, "XFRM"))
    words = words.reshape(n, nblk * 4).astype(np.uint64)
    j = np.arange(d)
    neg = ((words[:, j // 32] >> (j % 32).astype(np.uint64)) & np.uint64(1)) == 1
    perm = np.tile(np.arange(d, dtype=np.int64), (n, 1))
    rows = np.arange(n)
    for step, i in enumerate(range(d - 1, 0, -1)):
        r = ((words[:, nsign + step] * np.uint64(i + 1)) >> np.uint64(32)).astype(np.int64)
        pi, pr = perm[rows, i].copy(), perm[rows, r].copy()
        perm[rows, i] = pr
        perm[rows, r] = pi
    return perm, neg


def pool_coefficients(
    a: np.ndarray, b: np.ndarray, seed: int, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients moved through each block's transform: pool dimension perm[j] gets a_j and
    -b_j or b_j (negation is exact), so scoring the pool scores the transformed candidates."""
    d = a.shape[1]
    perm, neg = transforms(seed, ids, d)
    ap = np.empty_like(a)
    bp = np.empty_like(b)
    np.put_along_axis(ap, perm, a, axis=1)
    np.put_along_axis(bp, perm, np.where(neg, -b, b), axis=1)
    return ap, bp


# ------------------------------------------------------------------ the stream on the device
def normals(
    seed: int,
    stream: int,
    start: int,
    count: int,
    *,
    purpose: str = "CAND",
    device: Any = "cuda",
    interpret: bool | None = None,
) -> np.ndarray:
    """Normals ``start .. start + count - 1`` of stream (seed, purpose, stream), computed by
    the GPU kernels: the twin of :func:`relcode.stream.normals`, bit for bit."""
    seed = uint64(seed, "seed")
    stream = uint64(stream, "stream")
    start = uint64(start, "start")
    count = uint64(count, "count")
    if start + count > 1 << 64:
        raise InputError("start + count must not exceed 2**64")
    if count == 0:
        return np.zeros(0, dtype=np.float32)
    target = _Target(device, interpret)
    b0, b1 = start >> 2, (start + count - 1) >> 2
    z = _stream_normals(target, seed, purpose, stream, b0, b1 - b0 + 1)
    off = start - 4 * b0
    return z[off : off + count].cpu().numpy()


def _stream_normals(target: _Target, seed: int, purpose: str, stream: int, first: int, nblocks: int) -> Any:
    torch = target.torch
    dev = target.device
    out = torch.empty(4 * nblocks, dtype=torch.float32, device=dev)
    keys = torch.from_numpy(_key_table(seed, (purpose,))).to(dev)
    ids = torch.from_numpy(np.array([stream], dtype=np.uint64).view(np.int64)).to(dev)
    start = torch.from_numpy(np.array([first], dtype=np.uint64).view(np.int64)).to(dev)
    block = 1024
    grid = (nblocks + block - 1) // block
    target.launch(target.kernels._normals_kernel, grid, out, keys, ids, start, nblocks, BLOCK=block)
    return out


_POOLS: dict[tuple[Any, ...], tuple[int, Any]] = {}


def _pool(target: _Target, seed: int, d: int, bits: int) -> Any:
    """The pool of (seed, d) on the target device (at least 2^bits candidates, in groups of
    sixteen, group-interleaved), built once by the stream kernel and cached."""
    ngroups = ((1 << bits) + 15) // 16
    elements = ngroups * 16 * d
    if elements > MAX_POOL_ELEMENTS:
        raise InputError(
            f"a pool of 2^{bits} candidates of dimension {d} needs {elements} "
            f"floats, more than the {MAX_POOL_ELEMENTS} pool mode keeps in memory; use fewer bits or the "
            "per-block mode"
        )
    key = (*target.key(), seed, d)
    with _LOCK:
        hit = _POOLS.get(key)
        if hit is not None and hit[0] >= ngroups:
            return hit[1]
    table = _stream_normals(target, seed, "POOL", d, 0, elements // 4)
    with _LOCK:
        if sum(g * 16 * dd for (*_, dd), (g, _) in _POOLS.items()) + elements > MAX_POOL_ELEMENTS:
            _POOLS.clear()
        _POOLS[key] = (ngroups, table)
    return table


def clear_cache() -> None:
    """Frees the pools kept on devices (they are rebuilt when next needed)."""
    with _LOCK:
        _POOLS.clear()


# ------------------------------------------------------------------ selection
def select(
    method: str,
    a: np.ndarray,
    b: np.ndarray,
    ids: np.ndarray,
    seed: int,
    bits: int,
    *,
    pool: bool = False,
    device: Any = "cuda",
    interpret: bool | None = None,
    dump: bool = False,
) -> Any:
    """The selected candidate index of each problem (uint64, shape (n,)), the CPU encoder's.

    ``a`` and ``b`` (n, d) float32 are the score coefficients (:func:`coefficients`; in pool
    mode moved through the block transforms, :func:`pool_coefficients`), ``ids`` the stream
    ids. With ``dump=True`` (small inputs only) also returns every scored candidate value,
    (n, 2^bits, d) float32, and every key, (n, 2^bits) float32: the tests compare them bit
    for bit with the stream and with the CPU encoder's arithmetic.
    """
    if method not in _RULES:
        raise InputError(f"GPU selection runs mrc, orc and pfr (with bits), not {method!r}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.uint64)
    if a.ndim != 2 or b.shape != a.shape or ids.shape != (a.shape[0],):
        raise InputError("a and b must have shape (n, d) and ids shape (n,)")
    if not 0 <= bits <= 32:
        raise InputError(f"bits must be in 0..32, got {bits}")
    n, d = a.shape
    if d == 0:
        raise InputError("blocks must have at least one dimension")
    target = _Target(device, interpret)
    torch = target.torch
    dev = target.device
    rule = _RULES[method]
    n_cand = 1 << bits
    ngroups = (n_cand + 15) // 16
    gc_max = min(ngroups, MAX_GROUPS_PER_LAUNCH)
    nbc_max = max(1, min(MAX_ROWS_PER_LAUNCH, MAX_CARRIES // gc_max))
    if dump and (n > nbc_max or ngroups > gc_max):
        raise InputError("dump=True is for small inputs (one launch)")
    rows, groups = target.tile(min(n, nbc_max), gc_max, pool)
    keys = torch.from_numpy(_key_table(seed, ("CAND", "NOIS"))).to(dev)
    table = _pool(target, seed, d, bits) if pool else torch.zeros(1, dtype=torch.float32, device=dev)
    k = target.kernels
    out = torch.empty(n, dtype=torch.int64, device=dev)
    dump_z = dump_key = None
    for r0 in range(0, n, nbc_max):
        nbc = min(nbc_max, n - r0)
        ca = torch.from_numpy(a[r0 : r0 + nbc]).to(dev)
        cb = torch.from_numpy(b[r0 : r0 + nbc]).to(dev)
        cid = torch.from_numpy(ids[r0 : r0 + nbc].view(np.int64)).to(dev)
        best_v = torch.full((nbc,), float("-inf"), dtype=torch.float32, device=dev)
        best_i = torch.full((nbc,), _NO_INDEX, dtype=torch.int64, device=dev)
        carry_in = torch.zeros(nbc, dtype=torch.float64, device=dev)
        for g0 in range(0, ngroups, gc_max):
            gc = min(gc_max, ngroups - g0)
            tiles = (gc + groups - 1) // groups
            grid = tiles * ((nbc + rows - 1) // rows)
            if rule == 0:
                carry = torch.zeros(1, dtype=torch.float64, device=dev)
            else:
                totals = torch.empty(gc * nbc, dtype=torch.float64, device=dev)
                carry = torch.empty(gc * nbc, dtype=torch.float64, device=dev)
                target.launch(k._totals_kernel, grid, cid, keys, totals, n_cand, g0, gc, nbc, tiles,
                              RULE=rule, B=rows, G=groups)  # fmt: skip
                lanes = 128
                target.launch(k._carry_kernel, (nbc + lanes - 1) // lanes, totals, carry, carry_in, gc, nbc,
                              B=lanes, U=8)  # fmt: skip
                del totals
            part_v = torch.empty(tiles * nbc, dtype=torch.float32, device=dev)
            part_i = torch.empty(tiles * nbc, dtype=torch.int64, device=dev)
            if dump:
                dump_z = torch.empty(nbc * gc * 16 * d, dtype=torch.float32, device=dev)
                dump_key = torch.empty(nbc * gc * 16, dtype=torch.float32, device=dev)
            else:
                dump_z = dump_key = part_v  # never written
            target.launch(k._fixed_kernel, grid, ca, cb, cid, keys, table, carry, part_v, part_i, dump_z,
                          dump_key, d, n_cand, g0, gc, nbc, tiles, RULE=rule, POOL=bool(pool),
                          DUMP=bool(dump), B=rows, G=groups)  # fmt: skip
            # the best tile (ties: the first), then the best launch so far (ties: the earlier)
            part_v = part_v.view(tiles, nbc)
            part_i = part_i.view(tiles, nbc)
            vmax = part_v.max(dim=0).values
            first = torch.where(part_v == vmax[None, :], part_i, _NO_INDEX).min(dim=0).values
            better = vmax > best_v
            best_v = torch.where(better, vmax, best_v)
            best_i = torch.where(better, first, best_i)
        out[r0 : r0 + nbc] = torch.where(best_i == _NO_INDEX, 0, best_i)
    index = out.cpu().numpy().view(np.uint64)
    if dump:
        assert dump_z is not None and dump_key is not None
        zs = dump_z.cpu().numpy().reshape(n, ngroups * 16, d)[:, :n_cand]
        ks = dump_key.cpu().numpy().reshape(n, ngroups * 16)[:, :n_cand]
        return index, zs, ks
    return index


# ------------------------------------------------------------------ relcode.channel.encode
def encode(
    method: str,
    q_mean: np.ndarray,
    q_std: np.ndarray,
    p_mean: np.ndarray,
    p_std: np.ndarray,
    ids: np.ndarray,
    seed: int,
    *,
    device: Any,
    threads: int | None = None,
    **options: Any,
) -> np.ndarray:
    """The messages (n,) uint64 ``relcode.channel.encode`` selects on a GPU: arrays already
    checked and shaped (n, d) (P as float32, broadcast), ids uint64; the same messages the
    CPU encoder selects for the same arguments (``relcode.channel`` decodes the samples)."""
    from .. import _native

    if not supports(method, **options):
        raise InputError(
            f"device={device!r} runs the fixed-budget methods (mrc, orc, pfr with bits=C); "
            f"{method} with these options runs on the CPU (device='cpu')"
        )
    bits = options.get("bits")
    if bits is None:
        raise InputError(f"{method} needs bits=C (2^C candidates)")
    d = q_mean.shape[1]
    qm = np.ascontiguousarray(q_mean, dtype=np.float64)
    qs = np.ascontiguousarray(q_std, dtype=np.float64)
    # the CPU encoder's own option and target checks (pool off: it would build the CPU pool)
    _native.channel_check_targets(
        method, d, qm.reshape(-1), qs.reshape(-1),
        np.ascontiguousarray(p_mean, dtype=np.float32).reshape(-1),
        np.ascontiguousarray(p_std, dtype=np.float32).reshape(-1), **{**options, "pool": False},
    )  # fmt: skip
    a, b = coefficients(qm, qs, p_mean, p_std)
    pool = bool(options.get("pool") or False)
    if pool:
        a, b = pool_coefficients(a, b, seed, ids)
    return select(method, a, b, ids, seed, int(bits), pool=pool, device=device)
