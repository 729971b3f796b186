"""Relative-entropy coding of diagonal Gaussian targets (normative: spec/channel.md).

``encode`` sends, for each of ``n`` problems, a sample of Q = N(q_mean, q_std^2) using the
coding distribution P = N(p_mean, p_std^2) that the decoder also knows; ``decode`` turns
the messages back into exactly the encoder's samples, without Q.

>>> import numpy as np, relcode
>>> q_mean, q_std = np.array([[0.5, -0.2]]), np.array([[0.3, 0.4]])
>>> code = relcode.channel.encode(q_mean, q_std, 0.0, 1.0, method="pfr", bits=10, seed=3)
>>> code.sample.shape, int(code.bits[0])
((1, 2), 10)
>>> x = relcode.channel.decode(code.message, 0.0, 1.0, method="pfr", bits=10, seed=3, dim=2)
>>> bool((x == code.sample).all())
True

Problem ``i`` of a batch uses stream id ``ids[i]`` (default ``i``): identical problems in one
batch get independent samples. Q may be float32 or float64; P is used at float32 precision,
the precision files store. Options (``bits``, ``index_code``, ``zeta_k``, ``max_steps``,
``depth``, ``parallel``, ``split``, ``pool``, ``backend``) must be passed identically to
``encode`` and ``decode``; see ``methods()`` for what each method takes.

``encode(..., device="cuda")`` runs the fixed-budget methods (``mrc``, ``orc``, ``pfr`` with
``bits``, pool mode included) on a GPU (:mod:`relcode.gpu`) and returns exactly what the CPU
encoder returns; decoding always runs on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _checks, _native, gpu
from .errors import InputError
from .typing import ArrayLike, Device, Float32Array, Float64Array, Int64Array, UInt64Array

__all__ = [
    "Code",
    "budget_bits",
    "decode",
    "encode",
    "kl_bits",
    "message_bits",
    "message_fields",
    "methods",
    "prepare_pool",
    "with_default_bits",
]


@dataclass(frozen=True)
class Code:
    """The result of :func:`encode` for a batch of ``n`` problems of dimension ``d``."""

    method: str
    #: (n, d) float32: the coded samples, exactly what :func:`decode` returns.
    sample: Float32Array
    #: (n,) uint64, or (n, k) uint64 for methods whose message has k fields (in the order
    #: they are written; see spec/channel.md).
    message: UInt64Array
    #: (n,) int64: code length of each message in bits, exactly what a file spends.
    bits: Int64Array
    #: (n,) int64: proposals, candidates or tree nodes each encode examined.
    steps: Int64Array

    @property
    def total_bits(self) -> int:
        return int(self.bits.sum())


def methods() -> dict[str, dict[str, Any]]:
    """Every method by name: exact or approximate, allowed dimensions, runtime, message."""
    out = {}
    for info in _native.channel_methods():
        info = dict(info)
        out[info.pop("name")] = info
    return out


def budget_bits(method: str, **options: Any) -> int | None:
    """The fixed length in bits of every message of ``method`` with these options (mrc and
    orc, pfr with ``bits``, dad_star with ``depth``): the file's size is then known before
    coding; None for methods whose messages vary in length."""
    return _native.channel_budget_bits(method, **options)


def with_default_bits(method: str, options: dict[str, Any], bits: int) -> dict[str, Any]:
    """``options`` with ``bits`` set to ``bits`` where ``method`` takes a ``bits`` option that
    makes it fixed-budget (mrc, orc, pfr) and the options do not set it already."""
    opts = dict(options)
    if "bits" not in opts:
        try:
            fixed = budget_bits(method, **opts, bits=int(bits)) is not None
        except InputError:  # the method has no bits option
            fixed = False
        if fixed:
            opts["bits"] = int(bits)
    return opts


def message_fields(method: str, **options: Any) -> list[str]:
    """The fields of a message of ``method`` with these options, in the order they are
    written (``["index"]`` for most methods): the columns of :attr:`Code.message`."""
    return list(_native.channel_message_fields(method, **options))


def _fields(method: str, options: dict[str, Any]) -> list[str]:
    return message_fields(method, **options)


def _priors(p_mean: Any, p_std: Any, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for name, value in (("p_mean", p_mean), ("p_std", p_std)):
        a = np.asarray(value)
        if a.dtype.kind not in "fiu":
            raise InputError(f"{name} must be real, got dtype {a.dtype}")
        try:
            b = np.broadcast_to(a.astype(np.float32), (n, d))
        except ValueError:
            raise InputError(f"{name} of shape {a.shape} does not broadcast to ({n}, {d})") from None
        out.append(np.ascontiguousarray(b).reshape(-1))
    return out[0], out[1]


def _ids(ids: Any, n: int) -> np.ndarray:
    if ids is None:
        return np.arange(n, dtype=np.uint64)
    a = np.asarray(ids)
    if a.shape != (n,) or a.dtype.kind not in "ui":
        raise InputError(f"ids must be {n} non-negative integers")
    if a.size and a.min() < 0:
        raise InputError("ids must be non-negative")
    return np.ascontiguousarray(a, dtype=np.uint64)


def encode(
    q_mean: ArrayLike,
    q_std: ArrayLike,
    p_mean: ArrayLike,
    p_std: ArrayLike,
    method: str = "pfr",
    seed: int = 0,
    *,
    ids: ArrayLike | None = None,
    threads: int | None = None,
    device: Device = "cpu",
    **options: Any,
) -> Code:
    """Codes ``n`` problems: ``q_mean`` and ``q_std`` of shape (n, d); ``p_mean`` and ``p_std``
    broadcast to (n, d). Returns a :class:`Code`.

    ``device`` is ``"cpu"`` (default) or a CUDA device (``"cuda"``, ``"cuda:1"``, a
    ``torch.device``) for the fixed-budget methods: same messages, bits and samples, computed
    by the GPU kernels of :mod:`relcode.gpu` (which need torch and triton, and raise
    :class:`InputError` when no GPU is available). ``"auto"`` picks the GPU when one is usable
    and the method runs there, else the CPU."""
    qm = np.asarray(_checks.numpy_value(q_mean))
    qs = np.asarray(_checks.numpy_value(q_std))
    p_mean, p_std = _checks.numpy_value(p_mean), _checks.numpy_value(p_std)
    if qm.ndim != 2:
        raise InputError(f"q_mean must have shape (n, d), got {qm.shape}")
    if qs.shape != qm.shape:
        raise InputError(f"q_std must have the shape of q_mean {qm.shape}, got {qs.shape}")
    for name, a in (("q_mean", qm), ("q_std", qs)):
        if a.dtype.kind not in "fiu":
            raise InputError(f"{name} must be real, got dtype {a.dtype}")
    n, d = qm.shape
    if d == 0:
        raise InputError("blocks must have at least one dimension")
    pm, ps = _priors(p_mean, p_std, n, d)
    fields = _fields(method, options)
    device = gpu.resolve(device, method, options)
    if not gpu.is_cpu(device):
        # the GPU selects the messages; the CPU decodes them: same samples, bits by construction
        seed, ids_ = _checks.uint64(seed, "seed"), _ids(ids, n)
        index = gpu.encode(method, qm, qs, pm.reshape(n, d), ps.reshape(n, d), ids_, seed,
                           device=device, threads=_checks.threads(threads), **options)  # fmt: skip
        sample = decode(index, pm.reshape(n, d), ps.reshape(n, d), method, seed, ids=ids_, threads=threads,
                        **options)  # fmt: skip
        steps = np.full(n, 1 << int(options["bits"]), dtype=np.int64)
        return Code(method, sample, index, message_bits(index, method, **options), steps)
    sample, index, aux, bits, steps = _native.channel_encode(
        method,
        d,
        np.ascontiguousarray(qm, dtype=np.float64).reshape(-1),
        np.ascontiguousarray(qs, dtype=np.float64).reshape(-1),
        pm,
        ps,
        _ids(ids, n),
        _checks.uint64(seed, "seed"),
        _checks.threads(threads),
        **options,
    )
    cols = {"index": index, "aux": aux}
    message = cols["index"] if fields == ["index"] else np.stack([cols[f] for f in fields], axis=1)
    return Code(method, sample.reshape(n, d), message, bits.astype(np.int64), steps.astype(np.int64))


def _split_message(message: Any, method: str, options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    fields = _fields(method, options)
    m = np.asarray(message)
    if m.dtype.kind not in "ui":
        raise InputError(f"messages must be integers, got dtype {m.dtype}")
    if m.size and m.min() < 0:
        raise InputError("messages must be non-negative")
    if len(fields) == 1:
        if m.ndim != 1:
            raise InputError(f"{method} messages must have shape (n,), got {m.shape}")
        idx = np.ascontiguousarray(m, dtype=np.uint64)
        return idx, np.zeros_like(idx)
    if m.ndim != 2 or m.shape[1] != len(fields):
        raise InputError(
            f"{method} messages must have shape (n, {len(fields)}) with fields {fields}, got {m.shape}"
        )
    cols = {f: np.ascontiguousarray(m[:, i], dtype=np.uint64) for i, f in enumerate(fields)}
    return cols["index"], cols.get("aux", np.zeros_like(cols["index"]))


def decode(
    message: ArrayLike,
    p_mean: ArrayLike,
    p_std: ArrayLike,
    method: str = "pfr",
    seed: int = 0,
    *,
    ids: ArrayLike | None = None,
    dim: int | None = None,
    threads: int | None = None,
    **options: Any,
) -> Float32Array:
    """The (n, d) float32 samples of ``n`` messages. ``d`` is the last dimension of a 2-D
    ``p_mean``/``p_std``, or ``dim`` when both priors are scalars or 1-D per-dimension."""
    index, aux = _split_message(message, method, options)
    n = index.size
    shapes = [np.shape(p_mean), np.shape(p_std)]
    d = dim
    if d is None:
        dims = [s[-1] for s in shapes if len(s) >= 1]
        if not dims:
            raise InputError("pass dim=d when p_mean and p_std are scalars")
        d = max(dims)
    d = _checks.uint64(d, "dim")
    if d == 0:
        raise InputError("dim must be positive")
    pm, ps = _priors(p_mean, p_std, n, d)
    out = _native.channel_decode(
        method,
        d,
        index,
        aux,
        pm,
        ps,
        _ids(ids, n),
        _checks.uint64(seed, "seed"),
        _checks.threads(threads),
        **options,
    )
    return out.reshape(n, d)


def prepare_pool(seed: int, dim: int, bits: int, *, threads: int | None = None) -> None:
    """Builds the shared candidate pool of (seed, dim) for 2^bits candidates now (pool mode
    builds it on first use otherwise); pools stay in memory for later calls."""
    seed, dim, bits = _checks.uint64(seed, "seed"), _checks.uint64(dim, "dim"), _checks.uint64(bits, "bits")
    _native.channel_prepare_pool(seed, dim, bits, _checks.threads(threads))


def kl_bits(q_mean: ArrayLike, q_std: ArrayLike, p_mean: ArrayLike, p_std: ArrayLike) -> Float64Array:
    """KL(Q ‖ P) in bits of each element of Gaussian Q = N(q_mean, q_std²) against
    P = N(p_mean, p_std²), broadcast to ``q_mean``'s shape, computed by the core as its
    samplers see it (P rounded to float32). A block's KL is the sum over its elements."""
    qm = np.asarray(q_mean, dtype=np.float64)
    shape = qm.shape
    qs, pm, ps = (np.broadcast_to(np.asarray(a), shape) for a in (q_std, p_mean, p_std))
    out = _native.channel_kl_bits(
        np.ascontiguousarray(qm).reshape(-1),
        np.ascontiguousarray(qs, dtype=np.float64).reshape(-1),
        np.ascontiguousarray(pm, dtype=np.float32).reshape(-1),
        np.ascontiguousarray(ps, dtype=np.float32).reshape(-1),
    )
    return out.reshape(shape)


def message_bits(message: ArrayLike, method: str = "pfr", **options: Any) -> Int64Array:
    """Code lengths in bits of messages, without decoding them."""
    index, aux = _split_message(message, method, options)
    return _native.channel_message_bits(method, index, aux, **options).astype(np.int64)
