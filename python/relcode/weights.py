"""Plain weights of a model file written by :func:`relcode.torch.compress`, without torch.

``relcode.decode`` returns a file's tensors as stored: coded float32 variables (one per weight,
or one per shared group under MIRACLE-style weight sharing) and raw entries. A model file's
metadata says how variables become weights (shape, group size, original dtype); the signs of
shared groups are regenerated from the file's seed (:mod:`relcode.sharing`). Expansion only
multiplies by +-1, so these are exactly the weights the encoder froze, bit for bit, and
:func:`relcode.torch.decompress` loads the same values into a model.

>>> import relcode
>>> sd = relcode.weights.state_dict("model.relc")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from . import format as relcode_format
from . import sharing
from .errors import FormatError

__all__ = ["META_KEY", "META_VERSION", "META_VERSION_PRETRAINED", "expand_arrays", "read", "state_dict"]

#: The metadata key of relcode.torch model files and its version.
META_KEY = "relcode.torch"
META_VERSION = 1
#: Version 2 (:mod:`relcode.pretrained`) adds ``order`` (every tensor's name, in the order the
#: model gave them) and, per coded tensor, ``verbatim``: the names of two raw entries, flat
#: indices (int32 or int64) and values (the tensor's dtype), that replace those elements of
#: the decoded tensor; the two entries are not tensors of the model.
META_VERSION_PRETRAINED = 2

Source = str | os.PathLike | bytes | IO[bytes]

#: numpy dtypes of raw entries (bfloat16 has none: such entries decode as float32, exactly).
NUMPY_DTYPES = {
    "float16": np.float16,
    "bfloat16": np.float32,
    "float32": np.float32,
    "float64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "bool": np.bool_,
}


def read(
    source: Source, *, max_elements: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any], int, list[str]]:
    """The decoded arrays, the model metadata, the root seed and the coded tensors' names
    (in file order) of a model file. ``max_elements``: as for :func:`relcode.format.open`."""
    with relcode_format.open(source, lazy=False, max_elements=max_elements) as f:
        meta = f.metadata
        if not isinstance(meta, Mapping) or not isinstance(meta.get(META_KEY), Mapping):
            raise FormatError("not a relcode.torch model file (its metadata has no relcode.torch entry)")
        coded = [n for n, t in f.tensors.items() if t["coded"]]
        return f.decode(), dict(meta[META_KEY]), f.seed, coded


def _shape(value: Any, entry: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(s, int) and s >= 0 for s in value):
        raise FormatError(f"file entry {entry!r} has an invalid shape {value!r}")
    return tuple(value)


def expand_arrays(
    arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any], seed: int, coded_names: list[str]
) -> dict[str, tuple[np.ndarray, str | None]]:
    """Each entry's weights and its original dtype name (None: keep the array's): coded
    variables of shared groups are expanded with the signs of stream (seed, SIGN, position of
    the tensor among the coded tensors in name order)."""
    version = metadata.get("version")
    if version not in (META_VERSION, META_VERSION_PRETRAINED):
        raise FormatError(f"unsupported relcode.torch metadata version {version!r}")
    coded = metadata.get("coded", {})
    raw_dtype = metadata.get("raw_dtype", {})
    if not isinstance(coded, Mapping) or not isinstance(raw_dtype, Mapping):
        raise FormatError("relcode.torch metadata is malformed")
    unknown = [k for k in list(coded) + list(raw_dtype) if k not in arrays]
    if unknown:
        raise FormatError(f"relcode.torch metadata names tensors the file does not hold: {unknown[:5]}")
    order = sorted(coded_names, key=lambda s: s.encode())
    side = _verbatim_entries(coded, arrays) if version == META_VERSION_PRETRAINED else {}
    hidden = {e for pair in side.values() for e in pair}
    out: dict[str, tuple[np.ndarray, str | None]] = {}
    for name, a in arrays.items():
        if name in hidden:
            continue
        entry = coded.get(name, {})
        if not isinstance(entry, Mapping):
            raise FormatError(f"relcode.torch metadata for {name!r} is malformed")
        if "group" in entry:
            shape = _shape(entry.get("shape"), name)
            group = entry["group"]
            if not isinstance(group, int) or group < 1:
                raise FormatError(f"file entry {name!r} has an invalid hashing group {group!r}")
            numel = int(np.prod(shape, dtype=np.int64))
            v = np.asarray(a).reshape(-1)
            if a.dtype != np.float32 or v.size != sharing.n_variables(numel, group):
                raise FormatError(
                    f"file entry {name!r}: {v.size} variables cannot fill {shape} in groups of {group}"
                )
            if name not in coded_names:
                raise FormatError(f"file entry {name!r} has a hashing group but is not a coded tensor")
            a = sharing.expand(v, shape, group, sharing.signs(seed, order.index(name), numel))
        dtype = entry.get("dtype", raw_dtype.get(name))
        if dtype is not None and dtype not in NUMPY_DTYPES:
            raise FormatError(f"file entry {name!r} has unknown dtype {dtype!r}")
        if name in side:
            a = _put_verbatim(name, np.asarray(a), arrays[side[name][0]], arrays[side[name][1]])
        out[name] = (np.asarray(a), dtype)
    if version == META_VERSION_PRETRAINED:
        listed = metadata.get("order")
        if not isinstance(listed, list) or sorted(map(str, listed)) != sorted(out):
            raise FormatError("relcode.torch metadata: 'order' must list every tensor of the model once")
        out = {n: out[n] for n in listed}
    return out


def _verbatim_entries(
    coded: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> dict[str, tuple[str, str]]:
    side = {}
    for name, entry in coded.items():
        pair = entry.get("verbatim") if isinstance(entry, Mapping) else None
        if pair is None:
            continue
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in arrays for p in pair)):
            raise FormatError(
                f"relcode.torch metadata: {name!r} names verbatim entries the file does not hold"
            )
        side[name] = (pair[0], pair[1])
    return side


def _put_verbatim(name: str, a: np.ndarray, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The decoded tensor with its verbatim elements written back exactly (a float64 tensor's
    decoded values are float32 and its verbatim ones float64: the result is float64)."""
    idx = np.asarray(index).reshape(-1)
    if idx.dtype.kind not in "iu" or idx.shape != np.asarray(values).reshape(-1).shape:
        raise FormatError(f"{name!r}: its verbatim entries are malformed")
    if idx.size and (idx.min() < 0 or idx.max() >= a.size):
        raise FormatError(f"{name!r}: a verbatim index is outside the tensor")
    out = np.array(a, dtype=np.result_type(a.dtype, np.asarray(values).dtype), copy=True)
    out.reshape(-1)[idx] = np.asarray(values).reshape(-1)
    return out


def state_dict(source: Source) -> dict[str, np.ndarray]:
    """The plain weights of a model file as numpy arrays (``state_dict`` names and shapes; raw
    entries in their original dtype, bfloat16 as float32)."""
    arrays, metadata, seed, coded = read(source)
    out = {}
    for name, (a, dtype) in expand_arrays(arrays, metadata, seed, coded).items():
        out[name] = a.astype(NUMPY_DTYPES[dtype], copy=False) if dtype is not None else a
    return out
