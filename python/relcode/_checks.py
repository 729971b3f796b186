"""Argument checks shared by the public modules; each raises :class:`InputError`."""

from __future__ import annotations

import errno
import numbers
import operator
import os
import stat
import tempfile
import threading
from pathlib import Path
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


_umask_lock = threading.Lock()


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file now: 0o666 less the process umask."""
    try:  # Linux: read it without changing it
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # elsewhere: set and restore (briefly visible to other threads)
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def temp_file(dest: os.PathLike, suffix: str = ".tmp") -> tuple[int, str]:
    """A temporary file next to ``dest`` for an atomic write (renamed over ``dest`` when
    complete): ``(fd, path)``. Unlike ``tempfile.mkstemp`` (always 0o600) it gets the mode a
    plain ``open()`` would, so the renamed result is as readable as any other output."""
    dest = os.fspath(dest)
    parent = os.path.dirname(dest) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=suffix, dir=parent)
    try:
        os.fchmod(fd, _new_file_mode())
    except OSError:  # a file system without modes: keep mkstemp's
        pass
    return fd, tmp


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
