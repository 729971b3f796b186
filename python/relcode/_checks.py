"""Argument checks shared by the public modules; each raises :class:`InputError`."""

from __future__ import annotations

import errno
import numbers
import operator
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _native
from .errors import InputError

U64_MAX = (1 << 64) - 1


def uint64(value: Any, name: str) -> int:
    """A Python int in [0, 2**64); bools, floats and out-of-range values are refused."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be an integer, not a bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise InputError(f"{name} must be an integer, got {type(value).__name__}") from None
    if not 0 <= v <= U64_MAX:
        raise InputError(f"{name} must be in [0, 2**64), got {v}")
    return v


def threads(value: Any) -> int | None:
    if value is None:
        return None
    v = uint64(value, "threads")
    if not 1 <= v <= 1024:
        raise InputError(f"threads must be between 1 and 1024, got {v}")
    return v


def max_excess(value: Any) -> float | None:
    """``None`` or a number of bits (any real but NaN): how far a block's KL may exceed a
    fixed budget before the encoder refuses it."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputError(f"max_excess must be a number of bits or None, got {type(value).__name__}")
    v = float(value)
    if v != v:
        raise InputError("max_excess must be a number of bits or None, got NaN")
    return v


def uint32_array(value: Any, name: str) -> np.ndarray:
    """An integer array whose values all fit in uint32, as a C-contiguous uint32 array."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "ui":
        raise InputError(f"{name} must be an unsigned integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        raise InputError(f"{name} values must fit in 32 bits")
    return np.ascontiguousarray(arr, dtype=np.uint32)


# ---------------------------------------------------------------------------------------
# Posteriors: one rule for relcode.encode, StreamEncoder and the command line

#: The most elements one tensor may have (the readers' default limit).
MAX_TENSOR_ELEMENTS = 1 << 31
#: A posterior std below this fraction (2^-32) of its prior std is refused: coding it
#: takes more than 32 bits per element for the std alone (a unit or scale mistake, most
#: likely), and its decoded float32 sample could not hold that precision anyway.
MIN_STD_RATIO = 2.0**-32
#: An element whose KL(Q||P) is not finite or exceeds this many bits is refused (a mean
#: astronomically many prior stds away). Below it, a block over a method's budget is coded
#: approximately and reported (``Report.rate``; ``max_excess`` refuses it instead).
MAX_ELEMENT_KL_BITS = float(2**20)
_F32_TINY = float(np.finfo(np.float32).tiny)


def posterior_shape(
    name: str,
    what: str,
    dtype: Any,
    shape: tuple[int, ...],
    tensor: tuple[int, ...],
    label: str | None = None,
) -> bool:
    """Checks one part of a coded tensor by its dtype and shape (nothing is read); returns
    True when it is one value for the whole tensor. The posterior mean is a float array
    (float16/32/64) of at most :data:`MAX_TENSOR_ELEMENTS` elements; the posterior std and
    the prior are real numbers (float, or int for a scalar): one value (any one-element
    array) or an array of exactly the tensor's shape. ``label`` names the part in messages
    (default: "the <what> of <name>")."""
    label = label or f"the {what} of {name!r}"
    kind = np.dtype(dtype).kind
    size = 1
    for d in shape:
        size *= int(d)
    if what == "posterior mean":
        if kind != "f":
            raise InputError(f"{label} must be a float array, got dtype {np.dtype(dtype)}")
        if size > MAX_TENSOR_ELEMENTS:
            from .errors import LimitError

            raise LimitError(f"{name!r} has {size} elements; a tensor holds at most {MAX_TENSOR_ELEMENTS}")
        return False
    if kind not in "fiu" or (kind != "f" and size != 1):
        raise InputError(f"{label} must be float numbers, got dtype {np.dtype(dtype)}")
    if size == 1:
        return True
    if tuple(shape) != tuple(tensor):
        raise InputError(
            f"{label} has shape {tuple(shape)}; give one value or the tensor's shape {tuple(tensor)}"
        )
    return False


def input_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path once it names a readable regular file; otherwise the exception
    Python's own ``open`` gives (FileNotFoundError, IsADirectoryError, PermissionError), or
    InputError for a FIFO or device (which a reader would block on or read without end)."""
    p = Path(path)
    st = os.stat(p)  # FileNotFoundError, PermissionError (a directory on the way)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(p))
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p}: not a regular file")
    with open(p, "rb"):  # PermissionError where the file is not readable
        pass
    return p


def posterior_values(
    name: str,
    start: int,
    q_mean: Any,
    q_std: Any,
    p_mean: Any,
    p_std: Any,
    labels: Sequence[str | None] = (None, None, None, None),
) -> None:
    """Checks the values of elements ``start...`` of a coded tensor (each part an array of
    the piece or one value), in the precision the encoder uses (float64 for the posterior,
    float32, what the file stores, for the prior): all finite, stds positive, the prior std
    a normal float32 (at least 1.2e-38), the posterior std at least :data:`MIN_STD_RATIO`
    times the prior std and every element's KL finite and at most
    :data:`MAX_ELEMENT_KL_BITS` bits. Raises :class:`InputError` naming the first bad one
    (``labels``: how to name each part, e.g. the file tensor it is read from). Never warns."""
    raws = (q_mean, q_std, p_mean, p_std)
    with np.errstate(all="ignore"):
        qm, qs, pm, ps = np.broadcast_arrays(
            np.asarray(q_mean, dtype=np.float64).reshape(-1),
            np.asarray(q_std, dtype=np.float64).reshape(-1),
            np.asarray(p_mean, dtype=np.float32).astype(np.float64).reshape(-1),
            np.asarray(p_std, dtype=np.float32).astype(np.float64).reshape(-1),
        )
        rules = (
            ("posterior mean", ~np.isfinite(qm), "must be finite"),
            ("posterior std", ~(np.isfinite(qs) & (qs > 0)), "must be finite and positive"),
            ("prior mean", ~np.isfinite(pm), "must be finite as a float32"),
            (
                "prior std",
                ~(np.isfinite(ps) & (ps >= _F32_TINY)),
                "must be a finite float32 of at least 1.2e-38",
            ),
        )
        for k, (what, bad, why) in enumerate(rules):
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raw = np.asarray(raws[k])
                label = f"the {what} of {name!r}"
                if labels[k]:
                    label = f"{labels[k]} ({label})"
                if raw.size == 1:
                    raise InputError(f"{label} is {raw.reshape(-1)[0]}; it {why}")
                shown = raw.reshape(-1)[i]
                raise InputError(f"{label}: element {start + i} is {shown}; it {why}")
        narrow = ~(qs >= ps * MIN_STD_RATIO)
        if narrow.any():
            i = int(np.flatnonzero(narrow)[0])
            raise InputError(
                f"{name!r} element {start + i}: the posterior std {qs[i]:.4g} is less than 2^-32 times "
                f"the prior std {ps[i]:.4g}; no method codes such a posterior faithfully (check the units)"
            )
        kl = _native.channel_kl_bits(  # the core's KL, as its samplers see it
            np.ascontiguousarray(qm), np.ascontiguousarray(qs),
            np.ascontiguousarray(pm, dtype=np.float32), np.ascontiguousarray(ps, dtype=np.float32),
        )  # fmt: skip
        bad = ~(kl <= MAX_ELEMENT_KL_BITS)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{name!r} element {start + i}: its KL(Q||P) is {float(kl[i]):.4g} bits (posterior mean "
                f"{qm[i]:.4g}, std {qs[i]:.4g}; prior mean {pm[i]:.4g}, std {ps[i]:.4g}); at most "
                f"{MAX_ELEMENT_KL_BITS:.0f} bits per element can be coded"
            )


def numpy_value(value: Any) -> Any:
    """A torch tensor as numpy (detached, on the CPU; bfloat16, which numpy lacks, upcast
    exactly to float32); anything else unchanged. Every entry point that takes arrays passes
    its arguments through this, so ``nn.Parameter`` values work as they are."""
    if hasattr(value, "detach") and hasattr(value, "numpy") and hasattr(value, "dtype"):
        t = value.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.numpy()
    return value
