"""Argument checks shared by the public modules; each raises :class:`InputError`."""

from __future__ import annotations

import numbers
import operator
from typing import Any

import numpy as np

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
