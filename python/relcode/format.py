"""relcode files (normative: spec/format.md): encode, decode, inspect, verify, and the
lower-level :class:`Layout`, :class:`Writer` and :class:`File` for encoders that code blocks
themselves.

A file holds the root seed, the tensors (name, shape, dtype), their priors as exact float32
bits (inline, or in a shared *base* file referenced by SHA-256), the block layout, one
message per block and a SHA-256 of every decoded tensor.

>>> import io, numpy as np, relcode
>>> rng = np.random.default_rng(0)
>>> q_mean = rng.normal(0, 0.1, (4, 8))
>>> buf = io.BytesIO()  # or a path: written to a temporary file, then renamed
>>> report = relcode.encode(buf, {"w": (q_mean, 0.05, 0.0, 0.1)}, seed=1, bits_per_block=12)
>>> w = relcode.decode(buf.getvalue())["w"]
>>> w.shape, w.dtype, bool((w == report.decoded["w"]).all())
((4, 8), dtype('float32'), True)

Blocks are numbered across the layout's groups; block ``b`` of group ``g`` at position
``j`` reads the random streams with id ``g * 2**32 + j`` (:meth:`Layout.stream_id`), so
groups code independently and in any order.

Which tool for which job: :func:`encode` codes whole posteriors in memory; :class:`Writer`
takes blocks a caller codes one at a time, in any order (progressive encoders that fine-tune
between blocks), and with ``base=`` writes small files that share a codec file's prior and
layout (:func:`write_base`), optionally holding many instances (image patches);
:class:`StreamWriter` and :func:`encode_group_payloads` write weight sets larger than memory
group by group, and let groups be encoded on other machines. :func:`open` reads lazily,
tensor by tensor; :func:`decode`, :func:`verify` and :func:`inspect` read whole files.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np

from . import _checks, _native, _output
from . import channel as _channel
from .errors import FormatError, InputError
from .typing import ArrayLike, Float32Array, TensorValue

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMAT_VERSION",
    "RAW_DTYPES",
    "File",
    "Layout",
    "Report",
    "StreamWriter",
    "Writer",
    "channel_options",
    "check_group_budget",
    "decode",
    "encode",
    "encode_group_payloads",
    "inspect",
    "merge_rate",
    "open",
    "verify",
    "write_base",
    "write_output",
]

#: (major, minor) of the format this build writes.
FORMAT_VERSION: tuple[int, int] = tuple(_native.FORMAT_VERSION)
#: Default number of elements per layout group (the unit of parallel, bounded-memory work).
DEFAULT_CHUNK_SIZE = 1 << 20
_MAX_BLOCK = 65535
#: The dtypes a raw (verbatim) tensor may have in a file.
RAW_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")

PathLike = str | os.PathLike
Source = Union[PathLike, bytes, bytearray, memoryview, BinaryIO, "File"]


# ---------------------------------------------------------------------------------------
# Layouts


class Layout:
    """Which elements of which coded tensors form each block, and in what order.

    The coded vector is every coded tensor flattened row-major, tensors sorted by name.
    It is cut into *groups* of at most ``chunk_size`` elements; each group is split into
    blocks by a rule: ``fixed`` (a seeded permutation of the group cut into equal blocks,
    MIRACLE), ``sizes`` (a seeded permutation cut into listed sizes: the KL-greedy packing
    of COMBINER) or ``explicit`` (listed members). Build one with :meth:`fixed`,
    :meth:`kl` or :meth:`explicit`, then query it before coding:

    >>> lay = Layout.fixed({"b": (3,), "a": (2, 2)}, block_size=3, seed=0)
    >>> lay.names, lay.num_blocks, lay.block_sizes.tolist()
    (['a', 'b'], 3, [3, 3, 1])
    >>> sorted(m for b in range(lay.num_blocks) for m in lay.block(b))[:3]
    [('a', 0), ('a', 1), ('a', 2)]
    """

    def __init__(self, names: Sequence[str], shapes: Sequence[tuple[int, ...]], groups: Sequence[dict]):
        self.names: list[str] = list(names)
        self.shapes: dict[str, tuple[int, ...]] = {n: tuple(int(d) for d in s) for n, s in zip(names, shapes)}
        if list(self.names) != sorted(self.names, key=lambda s: s.encode()) or len(set(self.names)) != len(
            self.names
        ):
            raise InputError("layout tensor names must be unique and sorted")
        sizes = [math.prod(self.shapes[n]) for n in self.names]
        self._tensor_start = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        self.groups: list[dict] = [dict(g) for g in groups]
        args = [_group_arg(g) for g in self.groups]
        checked = _native.layout_check(args) if args else []
        members, block_sizes, block_group, block_j = [], [], [], []
        for g, (order, bs) in zip(self.groups, checked):
            members.append(order.astype(np.int64) + int(g["start"]))
            block_sizes.append(bs.astype(np.int64))
            block_group.append(np.full(bs.size, g["id"], dtype=np.int64))
            block_j.append(np.arange(bs.size, dtype=np.int64))
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64)  # noqa: E731
        self._members = cat(members)
        self.block_sizes: np.ndarray = cat(block_sizes)
        self._offsets = np.concatenate([[0], np.cumsum(self.block_sizes)]).astype(np.int64)
        self._block_group = cat(block_group)
        self._block_j = cat(block_j)
        covered = sum(int(g["count"]) for g in self.groups)
        if covered != int(self._tensor_start[-1]):
            raise InputError(
                f"the groups cover {covered} elements, the tensors have {int(self._tensor_start[-1])}"
            )

    # -- constructors --------------------------------------------------------------------

    @staticmethod
    def _sorted_shapes(shapes: Mapping[str, Any]) -> tuple[list[str], list[tuple[int, ...]]]:
        if not isinstance(shapes, Mapping):
            raise InputError("shapes must map tensor names to shapes")
        names = sorted(shapes, key=lambda s: s.encode())
        out = []
        for n in names:
            if not isinstance(n, str) or not n:
                raise InputError("tensor names must be non-empty strings")
            s = shapes[n]
            s = (int(s),) if isinstance(s, (int, np.integer)) else tuple(int(d) for d in s)
            if any(d < 0 for d in s):
                raise InputError(f"{n!r}: negative dimension in {s}")
            out.append(s)
        return names, out

    @staticmethod
    def _ranges(total: int, chunk_size: int) -> list[tuple[int, int]]:
        chunk_size = int(chunk_size)
        if not 1 <= chunk_size <= 1 << 26:
            raise InputError(f"chunk_size must be in 1..2**26, got {chunk_size}")
        return [(s, min(chunk_size, total - s)) for s in range(0, total, chunk_size)]

    @classmethod
    def fixed(
        cls,
        shapes: Mapping[str, Any],
        block_size: int,
        *,
        seed: int = 0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Layout:
        """A seeded permutation of each group cut into blocks of ``block_size`` (MIRACLE)."""
        names, shp = cls._sorted_shapes(shapes)
        bs = _checks.uint64(block_size, "block_size")
        if not 1 <= bs <= _MAX_BLOCK:
            raise InputError(f"block_size must be in 1..{_MAX_BLOCK}, got {bs}")
        seed = _checks.uint64(seed, "seed")
        total = sum(math.prod(s) for s in shp)
        groups = [
            {"id": i, "rule": "fixed", "seed": seed, "start": s, "count": c, "block_size": bs}
            for i, (s, c) in enumerate(cls._ranges(total, chunk_size))
        ]
        return cls(names, shp, groups)

    @classmethod
    def kl(
        cls,
        kl: Mapping[str, Any],
        bits_per_block: float = 16.0,
        *,
        seed: int = 0,
        max_block_size: int = 25,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Layout:
        """KL-greedy blocks (COMBINER): ``kl`` maps each coded tensor to its per-element KL in
        bits (for example averaged over training posteriors). Each group's elements are taken
        in seeded-permutation order and packed into blocks of at most ``bits_per_block`` of
        KL and ``max_block_size`` elements. The result is stored as block sizes, so a decoder
        needs no KL values."""
        shapes = {n: np.shape(v) for n, v in kl.items()}
        names, shp = cls._sorted_shapes(shapes)
        seed = _checks.uint64(seed, "seed")
        mbs = _checks.uint64(max_block_size, "max_block_size")
        if not 1 <= mbs <= _MAX_BLOCK:
            raise InputError(f"max_block_size must be in 1..{_MAX_BLOCK}")
        if not (bits_per_block > 0 and math.isfinite(bits_per_block)):
            raise InputError("bits_per_block must be positive")
        flat = (
            np.concatenate([np.asarray(kl[n], dtype=np.float64).reshape(-1) for n in names])
            if names
            else np.zeros(0)
        )
        if not np.all(np.isfinite(flat)):
            raise InputError("KL values must be finite")
        groups = []
        for i, (s, c) in enumerate(cls._ranges(flat.size, chunk_size)):
            perm = _native.layout_permutation(seed, i, c).astype(np.int64)
            sizes = _native.layout_kl_sizes(np.ascontiguousarray(flat[s + perm]), float(bits_per_block), mbs)
            groups.append({"id": i, "rule": "sizes", "seed": seed, "start": s, "count": c, "sizes": sizes})
        return cls(names, shp, groups)

    @classmethod
    def explicit(cls, shapes: Mapping[str, Any], blocks: Sequence[Sequence[tuple[str, int]]]) -> Layout:
        """Blocks listed as (tensor name, flat index) members; together they must cover every
        element of every tensor in ``shapes`` exactly once. Stored as one group."""
        names, shp = cls._sorted_shapes(shapes)
        start = {n: s for n, s in zip(names, np.cumsum([0] + [math.prod(s) for s in shp]).tolist())}
        total = sum(math.prod(s) for s in shp)
        members, sizes = [], []
        for b, blk in enumerate(blocks):
            if not 1 <= len(blk) <= _MAX_BLOCK:
                raise InputError(f"block {b} must have 1 to {_MAX_BLOCK} members")
            sizes.append(len(blk))
            for name, idx in blk:
                if name not in start or not 0 <= int(idx) < math.prod(shp[names.index(name)]):
                    raise InputError(f"block {b}: ({name!r}, {idx}) is not an element of the tensors")
                members.append(start[name] + int(idx))
        groups = []
        if total:
            groups.append(
                {
                    "id": 0,
                    "rule": "explicit",
                    "seed": 0,
                    "start": 0,
                    "count": total,
                    "sizes": np.asarray(sizes, dtype=np.uint16),
                    "members": np.asarray(members, dtype=np.uint32),
                }
            )
        elif blocks:
            raise InputError("blocks were given but the tensors are empty")
        return cls(names, shp, groups)

    # -- queries -------------------------------------------------------------------------

    @property
    def num_blocks(self) -> int:
        return int(self.block_sizes.size)

    @property
    def num_elements(self) -> int:
        return int(self._tensor_start[-1])

    def __len__(self) -> int:
        return self.num_blocks

    def __repr__(self) -> str:
        return (
            f"Layout({len(self.names)} tensors, {self.num_elements} elements, "
            f"{self.num_blocks} blocks, {len(self.groups)} groups)"
        )

    def _check_block(self, b: int) -> int:
        b = int(b)
        if not 0 <= b < self.num_blocks:
            raise InputError(f"block {b} is out of range (the layout has {self.num_blocks} blocks)")
        return b

    def stream_id(self, b: int, instance: int = 0) -> int:
        """The random-stream id of block ``b`` (spec/format.md §6.3): ``(instance * G + group)
        * 2**32 + position in group``, G the number of groups; instance 0 for a file without
        instances."""
        b = self._check_block(b)
        g = int(instance) * len(self.groups) + int(self._block_group[b])
        return (g << 32) | int(self._block_j[b])

    def group_of(self, b: int) -> tuple[int, int]:
        """(group id, position in the group) of block ``b``."""
        b = self._check_block(b)
        return int(self._block_group[b]), int(self._block_j[b])

    def block_elements(self, b: int) -> np.ndarray:
        """Coded-vector indices of block ``b``'s members, in the order they are coded."""
        b = self._check_block(b)
        return self._members[self._offsets[b] : self._offsets[b + 1]]

    def block_indices(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(tensor positions in :attr:`names`, flat indices) of block ``b``'s members."""
        e = self.block_elements(b)
        t = np.searchsorted(self._tensor_start, e, side="right") - 1
        return t, e - self._tensor_start[t]

    def block(self, b: int) -> list[tuple[str, int]]:
        """The (tensor name, flat index) members of block ``b``, in coding order."""
        t, i = self.block_indices(b)
        return [(self.names[int(a)], int(c)) for a, c in zip(t, i)]

    def gather(self, b: int, arrays: Mapping[str, ArrayLike]) -> np.ndarray:
        """The values of block ``b``'s members from per-tensor arrays (or scalars)."""
        t, i = self.block_indices(b)
        out = np.empty(t.size, dtype=np.float64)
        for k in np.unique(t):
            name = self.names[int(k)]
            a = np.asarray(arrays[name])
            sel = t == k
            out[sel] = a if a.ndim == 0 else a.reshape(-1)[i[sel]]
        return out

    def scatter(self, b: int, values: ArrayLike, arrays: Mapping[str, np.ndarray]) -> None:
        """Writes block ``b``'s values into per-tensor arrays, in place."""
        t, i = self.block_indices(b)
        v = np.asarray(values).reshape(-1)
        if v.size != t.size:
            raise InputError(f"block {b} has {t.size} members, got {v.size} values")
        for k in np.unique(t):
            a = arrays[self.names[int(k)]]
            sel = t == k
            a.reshape(-1)[i[sel]] = v[sel]

    def tensor_range(self, name: str) -> tuple[int, int]:
        """The coded-vector range [start, end) of a tensor."""
        k = self.names.index(name)
        return int(self._tensor_start[k]), int(self._tensor_start[k + 1])


def _group_arg(g: dict) -> tuple:
    sizes = g.get("sizes")
    members = g.get("members")
    return (
        int(g["id"]),
        str(g["rule"]),
        int(g["seed"]),
        int(g["start"]),
        int(g["count"]),
        int(g.get("block_size", 0)),
        None if sizes is None else np.ascontiguousarray(sizes, dtype=np.uint16),
        None if members is None else np.ascontiguousarray(members, dtype=np.uint32),
    )


# ---------------------------------------------------------------------------------------
# Reading


def _read_source(source: Any) -> tuple[Path | None, bytes | None]:
    if isinstance(source, (str, os.PathLike)):
        return _checks.input_file(source), None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return None, bytes(source)
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InputError("file objects must be opened in binary mode")
        return None, bytes(data)
    raise InputError(f"expected a path, bytes or a binary file, got {type(source).__name__}")


def _native_open(path: Path | None, data: bytes | None, *, eager: bool, max_elements: int | None):
    if path is not None:
        return _native.FormatReader.open(path=str(path), eager=eager, max_elements=max_elements)
    return _native.FormatReader.open(data=data, max_elements=max_elements)


def _find_base(sha: str, dirs: Iterable[PathLike]) -> Path | None:
    """The first regular file in ``dirs`` whose SHA-256 is ``sha`` (relcode files only)."""
    magic = b"\x89RELC\r\n\x1a"
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            try:
                if not p.is_file() or p.stat().st_size > 1 << 31:
                    continue
                with p.open("rb") as f:
                    if f.read(8) != magic:
                        continue
                    f.seek(0)
                    h = hashlib.sha256()
                    for blk in iter(lambda f=f: f.read(1 << 20), b""):
                        h.update(blk)
                if h.hexdigest() == sha:
                    return p
            except OSError:
                continue
    return None


def _tensor_array(info: dict, arr: np.ndarray) -> np.ndarray:
    shape = tuple(info["shape"])
    if info["coded"]:
        return arr.reshape(shape)
    return (
        arr.view(np.dtype(info["dtype"]).newbyteorder("<")).astype(info["dtype"], copy=False).reshape(shape)
    )


class File:
    """An opened relcode file: header, layout and priors at once, tensors decoded on demand.

    Use :func:`open`. Tensors decode lazily, one at a time (:meth:`tensor`), with their
    SHA-256 checked when the file records one per tensor; :meth:`decode` decodes everything
    in parallel and checks every digest.
    """

    def __init__(self, native: Any, path: Path | None, data: bytes | None, base: File | None):
        self._n = native
        self._path = path
        self._data = data
        self.base: File | None = base
        self._info = native.info()

    # -- what the file holds --

    @property
    def paths(self) -> list[Path]:
        """The paths this file and its base file were read from (none for bytes)."""
        own = [self._path] if self._path is not None else []
        return own + (self.base.paths if self.base is not None else [])

    @property
    def info(self) -> dict[str, Any]:
        """Header fields, chunk list, tensors and groups (see :func:`inspect`)."""
        return self._info

    @property
    def seed(self) -> int:
        return int(self._info["seed"])

    @property
    def metadata(self) -> Any:
        """The file's free-form metadata (the base's is :attr:`base_metadata`)."""
        return self._info["metadata"]

    @property
    def base_metadata(self) -> Any:
        return self._info["base_metadata"]

    @property
    def base_sha256(self) -> str | None:
        return self._info["base"]

    def _need_model(self) -> None:
        if self._info["base"] is not None and not self._info["base_attached"]:
            raise FormatError(
                f"this file references base file {self._info['base']}, which was not found: pass it "
                "(base= or base_dirs= in Python; --base FILE or --base-dir DIR on the command line)"
            )

    @property
    def tensors(self) -> dict[str, dict[str, Any]]:
        """Name -> {shape, dtype, coded, prior_mean, prior_std} for every tensor."""
        self._need_model()
        return {t["name"]: t for t in self._info["tensors"]}

    @property
    def names(self) -> list[str]:
        """Names of the tensors the file decodes to, in file order."""
        self._need_model()
        ts = self._info["tensors"]
        return [ts[i]["name"] for i in self._n.decoded_tensors()]

    @property
    def layout(self) -> Layout:
        """The block layout of the coded tensors (the base's, for a file with a base)."""
        self._need_model()
        if self.base is not None:
            return self.base.layout
        coded = [t for t in self._info["tensors"] if t["coded"]]
        return Layout([t["name"] for t in coded], [t["shape"] for t in coded], self._info["groups"])

    def sha256(self) -> str:
        """SHA-256 of the whole file: what files that use it as a base record."""
        return self._n.file_sha256()

    @property
    def instances(self) -> int | None:
        """K when the file holds K instances of its base's coded tensors (decoded stacked)."""
        return self._info["instances"]

    def prior(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) float32 arrays of a coded tensor's prior, in its shape."""
        if self.base is not None:
            return self.base.prior(name)
        t = self.tensors[name]
        if not t["coded"]:
            raise InputError(f"{name!r} is a raw tensor; it has no prior")
        a, b = self.layout.tensor_range(name)
        m, s = self._n.prior_range(a, b)
        return m.reshape(t["shape"]), s.reshape(t["shape"])

    def messages(self, group: int) -> tuple[str, dict[str, Any], np.ndarray]:
        """(method, options, messages) of one group: messages are (n,) or (n, fields)."""
        method, opts, index, aux = self._n.messages(int(group))
        fields = _channel.message_fields(method, **opts)
        cols = {"index": index, "aux": aux}
        msg = index if fields == ["index"] else np.stack([cols[f] for f in fields], axis=1)
        return method, dict(opts), msg

    # -- decoding --

    def tensor(self, name: str, *, threads: int | None = None) -> np.ndarray:
        """Decodes one tensor (checking its SHA-256 in per-tensor digest mode)."""
        ts = self._info["tensors"]
        self._need_model()
        for i, t in enumerate(ts):
            if t["name"] == name:
                if t["coded"] and not self._info["messages"]:
                    raise InputError(f"{name!r} has no messages: this is a base file")
                arr = self._n.decode_tensor(i, threads=_checks.threads(threads))
                return _tensor_array(t, arr)
        raise KeyError(name)

    def decode_range(self, start: int, stop: int, *, threads: int | None = None) -> np.ndarray:
        """Decodes elements ``start:stop`` of the coded vector (the coded tensors in header
        order, flattened) as float32, group by group in parallel. Every chunk it reads is
        CRC-checked; the SHA-256 digests cover whole tensors and are checked by the callers
        that decode whole tensors (:meth:`tensor`, ``relcode.open_decoder``)."""
        return self._n.decode_range(int(start), int(stop), threads=_checks.threads(threads))

    def check_chunks(self) -> None:
        """Reads every chunk one at a time and checks its CRC32C, without decoding."""
        self._n.check_chunks()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def items(self, *, threads: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """(name, array) pairs decoded one tensor at a time (bounded memory)."""
        for n in self.names:
            yield n, self.tensor(n, threads=threads)

    def decode(self, *, threads: int | None = None) -> dict[str, np.ndarray]:
        """Every tensor, decoded in parallel, with every digest checked."""
        self._need_model()
        ts = self._info["tensors"]
        out = {}
        for i, arr in self._n.decode_all(threads=_checks.threads(threads)):
            out[ts[i]["name"]] = _tensor_array(ts[i], arr)
        return out

    def verify(self, *, threads: int | None = None) -> None:
        """Raises unless every CRC matches and the file decodes to its recorded SHA-256."""
        self._need_model()
        self._n.verify(threads=_checks.threads(threads))

    def __enter__(self) -> File:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._data = None

    def __repr__(self) -> str:
        where = str(self._path) if self._path else f"{len(self._data or b'')} bytes"
        return f"<relcode.format.File {where}: {len(self._info['tensors'])} tensors>"


def open(
    source: Source,
    *,
    base: Source | None = None,
    base_dirs: Iterable[PathLike] = (),
    max_elements: int | None = None,
    lazy: bool = True,
) -> File:
    """Opens a file. ``source`` is a path (read on demand when ``lazy``), bytes or a binary
    file. A file that references a base file gets it from ``base`` (a path, bytes or an
    opened :class:`File`), else from the first file in ``base_dirs`` or in the source's own
    directory whose SHA-256 matches.

    ``max_elements`` bounds the total number of elements the file (and its base) may decode
    to, which bounds what a decode allocates; exceeding it raises
    :class:`~relcode.errors.LimitError` before anything is allocated. By default
    (``None``) the limit is 2**31 elements (spec/format.md, section 12) and, as decoder
    policy, at most 4096 elements per byte of the file and its base (at least 2**24): a
    coded element needs no bytes of its own, so this keeps a small hostile file from
    claiming gigabytes, while any trained model (far more than 1/512 bit per weight; a
    100M-parameter model takes at least 24 KiB) decodes. Pass an int to accept exactly that
    many elements whatever the file's length (for trusted files); memory the machine cannot
    provide is a ``LimitError`` too, never a crash."""
    if isinstance(source, File):
        return source
    path, data = _read_source(source)
    if max_elements is not None:
        max_elements = _checks.uint64(max_elements, "max_elements")
    nat = _native_open(path, data, eager=not lazy or path is None, max_elements=max_elements)
    info = nat.info()
    if info["base"] is None:
        if base is not None:
            raise InputError("this file has no base file; do not pass base=")
        return File(nat, path, data, None)
    base_file: File | None = None
    if base is not None:
        base_file = base if isinstance(base, File) else open(base, max_elements=max_elements, lazy=False)
    else:
        dirs = list(base_dirs) + ([path.parent] if path is not None else [])
        found = _find_base(info["base"], dirs)
        if found is None:
            return File(nat, path, data, None)
        base_file = open(found, max_elements=max_elements, lazy=False)
    nat2 = _native.FormatReader.open_with_base(
        base_file._n, path=None if path is None else str(path), data=data, max_elements=max_elements
    )
    return File(nat2, path, data, base_file)


def decode(
    source: Source,
    *,
    base: Source | None = None,
    base_dirs: Iterable[PathLike] = (),
    threads: int | None = None,
    max_elements: int | None = None,
) -> dict[str, np.ndarray]:
    """Decodes a file to a dict of arrays (float32 for coded tensors; raw tensors keep their
    dtype), checking every CRC32C and SHA-256. ``source``: a path, bytes or a binary file.
    ``max_elements``: as for :func:`open`."""
    with open(source, base=base, base_dirs=base_dirs, max_elements=max_elements, lazy=False) as f:
        return f.decode(threads=threads)


def verify(
    source: Source,
    *,
    base: Source | None = None,
    base_dirs: Iterable[PathLike] = (),
    threads: int | None = None,
    max_elements: int | None = None,
) -> dict[str, Any]:
    """Raises :class:`~relcode.errors.FormatError` (or a subclass) unless the file is intact
    and decodes to the SHA-256 it records. Returns a short summary."""
    with open(source, base=base, base_dirs=base_dirs, max_elements=max_elements, lazy=False) as f:
        f.verify(threads=threads)
        return {"tensors": len(f.names), "digests": f.info["digests"], "bytes": f.info["bytes"]}


def inspect(
    source: Source,
    *,
    base: Source | None = None,
    base_dirs: Iterable[PathLike] = (),
    max_elements: int | None = None,
) -> dict[str, Any]:
    """What a file holds, without decoding it: version, seed, tensors, priors, groups with
    their method, options, block count and message bits, chunks, digests and metadata.
    ``max_elements``: as for :func:`open`."""
    with open(source, base=base, base_dirs=base_dirs, max_elements=max_elements, lazy=True) as f:
        info = dict(f.info)
        groups = [dict(g) for g in info["groups"]]
        for g in groups:
            for k in ("sizes", "members"):
                if k in g:
                    arr = g.pop(k)
                    if k == "sizes":
                        g["max_block_size"] = int(arr.max()) if arr.size else 0
        summary = f._n.message_summary() if info["groups"] or info["base"] is None else []
        for g, (method, opts, blocks, bits) in zip(groups, summary):
            g.update(method=method, options=dict(opts), message_blocks=blocks, bits=bits)
        info["groups"] = groups
        info["tensors"] = [dict(t, shape=list(t["shape"])) for t in info["tensors"]]
        info["blocks"] = sum(int(g["blocks"]) for g in groups)
        info["bits"] = sum(int(s[3]) for s in summary)
        info["file_sha256"] = f.sha256()
        return info


# ---------------------------------------------------------------------------------------
# Writing


def write_output(dest: Any, data: bytes, *, inputs: Iterable[Any] = ()) -> None:
    """Writes ``data`` to a path atomically (:mod:`relcode._output`: checked, complete or
    absent, flushed to disk), or to a binary file object."""
    if isinstance(dest, (str, os.PathLike)):
        _output.write_bytes(dest, data, inputs=inputs)
    elif hasattr(dest, "write"):
        dest.write(data)
    else:
        raise InputError(f"dest must be a path or a binary file, got {type(dest).__name__}")


@dataclass
class Report:
    """What :func:`encode` and :meth:`Writer.close` report."""

    #: Number of blocks (one message each) and of layout groups.
    blocks: int
    groups: int
    #: Message bits in all, and the file's length in bytes.
    bits: int
    bytes: int
    #: KL(Q||P) in bits per coded tensor (empty when the encoder was not given Q).
    kl: dict[str, float]
    #: SHA-256 (hex) of each decoded tensor's little-endian bytes.
    sha256: dict[str, str]
    #: SHA-256 of the whole file (what a file that uses it as a base records).
    file_sha256: str
    #: The decoded coded tensors, exactly what a decoder returns.
    decoded: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    #: Proposals the encoder examined.
    steps: int = 0
    #: Rate accounting per coded tensor, computed by the native encoder (empty when the
    #: encoder was not given Q): ``kl_bits`` (its KL), ``message_bits`` (the bits of its
    #: blocks; a block shared by several tensors splits its bits in proportion to their KL
    #: in it), ``blocks`` (blocks holding its elements), ``over_budget_blocks`` (of those,
    #: the blocks whose KL exceeds their fixed budget, coded approximately; always 0 for
    #: exact methods, which have no budget) and ``worst_excess_bits`` (the largest block KL
    #: minus message bits, negative when every block has slack; None without blocks).
    rate: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def overhead_bytes(self) -> int:
        """Bytes that are not message bits (header, layout, priors, framing, index)."""
        return self.bytes - (self.bits + 7) // 8

    @property
    def over_budget(self) -> dict[str, dict[str, Any]]:
        """The rows of :attr:`rate` with at least one block over its budget."""
        return {n: r for n, r in self.rate.items() if r["over_budget_blocks"]}


_RATE_KEYS = ("kl_bits", "message_bits", "blocks", "over_budget_blocks", "worst_excess_bits")


def _rate_row(row: Mapping[str, Any]) -> dict[str, Any]:
    w = row["worst_excess_bits"]
    return {
        "kl_bits": float(row["kl_bits"]),
        "message_bits": float(row["message_bits"]),
        "blocks": int(row["blocks"]),
        "over_budget_blocks": int(row["over_budget_blocks"]),
        "worst_excess_bits": None if w is None else float(w),
    }


def merge_rate(into: dict[str, dict[str, Any]], name: str, row: Mapping[str, Any]) -> None:
    """Adds one group's row of a tensor (native accounting) to its running total."""
    row = _rate_row(row)
    t = into.get(name)
    if t is None:
        into[name] = row
        return
    for k in ("kl_bits", "message_bits", "blocks", "over_budget_blocks"):
        t[k] += row[k]
    ws = [w for w in (t["worst_excess_bits"], row["worst_excess_bits"]) if w is not None]
    t["worst_excess_bits"] = max(ws) if ws else None


def _as_posterior(name: str, value: Any) -> tuple[np.ndarray, ...] | np.ndarray:
    if isinstance(value, tuple):
        if len(value) != 4:
            raise InputError(f"{name!r}: expected (q_mean, q_std, p_mean, p_std), got {len(value)} items")
        return tuple(_checks.numpy_value(v) for v in value)
    return np.asarray(_checks.numpy_value(value))


def _prior_array(name: str, what: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "fiu":
        raise InputError(f"{name!r}: {what} must be real, got dtype {a.dtype}")
    if a.ndim == 0 or (a.size == 1 and math.prod(shape) != 1):
        return np.asarray([a.reshape(-1)[0]], dtype=np.float32)
    if a.shape != shape:
        try:
            a = np.broadcast_to(a, shape)
        except ValueError:
            raise InputError(f"{name!r}: {what} of shape {a.shape} does not match {shape}") from None
    return np.ascontiguousarray(a, dtype=np.float32).reshape(-1)


def _raw_arg(name: str, a: np.ndarray) -> tuple:
    dt = a.dtype
    if dt.name not in RAW_DTYPES:
        raise InputError(
            f"{name!r}: raw tensors of dtype {dt} cannot be stored; use one of {', '.join(RAW_DTYPES)}"
        )
    le = np.ascontiguousarray(a, dtype=dt.newbyteorder("<"))
    return (name, list(a.shape), dt.name, np.frombuffer(le.tobytes(), dtype=np.uint8))


def channel_options(method: str, bits_per_block: float, options: dict[str, Any]) -> dict[str, Any]:
    """The channel options of a file's groups: ``options`` with ``bits = ceil(bits_per_block)``
    for the methods that take it (the encoders' default)."""
    return _channel.with_default_bits(method, options, math.ceil(bits_per_block))


def encode(
    dest: PathLike | BinaryIO,
    tensors: Mapping[str, TensorValue],
    *,
    seed: int,
    method: str = "pfr",
    bits_per_block: float = 16,
    layout: str = "kl",
    block_size: int | None = None,
    max_block_size: int = 25,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    digest: str = "tensor",
    metadata: Any = None,
    threads: int | None = None,
    max_excess: float | None = None,
    **options: Any,
) -> Report:
    """Codes tensors into a file.

    ``tensors`` maps a name to ``(q_mean, q_std, p_mean, p_std)`` (the posterior and the
    prior; ``q_std`` and the prior may be scalars or arrays of the tensor's shape), or to a
    plain array, stored verbatim (raw). ``dest`` is a path (written to a temporary file and
    renamed, so a failed encode leaves nothing behind) or a binary file.

    ``layout="kl"`` packs each group's elements, in seeded-permutation order, into blocks of
    at most ``bits_per_block`` bits of KL and ``max_block_size`` elements (COMBINER);
    ``layout="fixed"`` cuts the permutation into equal blocks, ``block_size`` elements each
    (default: about ``bits_per_block`` of KL per block on average; MIRACLE). For the
    fixed-budget methods (mrc, orc, pfr) ``bits`` defaults to ``ceil(bits_per_block)``, so
    every message has that many bits; pass ``bits=None`` for exact pfr. Other keyword
    options go to the method (see :func:`relcode.channel.methods`). Groups hold at most
    ``chunk_size`` elements; ``digest="all"`` records one SHA-256 for all tensors instead of
    one per tensor (32 bytes per file instead of 32 per tensor).

    Rate control: the methods with a fixed budget (mrc, orc, pfr with ``bits``: ``bits``
    bits, 2^bits candidates; dad_star: ``depth + 1`` bits) code a block whose KL exceeds the
    budget anyway, approximately, and its sample may land many posterior stds away. The
    report's :attr:`Report.rate` counts such blocks per tensor; ``max_excess=B`` (bits;
    ``0.0``: strict) instead refuses, with an :class:`InputError` naming the tensor, the
    block, its KL and its budget, any block over budget by more than ``B`` bits, before any
    block is coded and without writing ``dest``. Exact methods have no budget and are never
    refused.
    """
    if not isinstance(tensors, Mapping):
        raise InputError("tensors must map names to (q_mean, q_std, p_mean, p_std) or arrays")
    seed = _checks.uint64(seed, "seed")
    options = channel_options(method, float(bits_per_block), options)
    coded, raw, shapes = [], [], {}
    for name in sorted(tensors, key=lambda s: str(s).encode()):
        if not isinstance(name, str) or not name:
            raise InputError("tensor names must be non-empty strings")
        v = _as_posterior(name, tensors[name])
        if isinstance(v, tuple):
            # the rule of every entry point (StreamEncoder and the command line too)
            parts = [np.asarray(x) for x in v]
            shape = parts[0].shape
            ones = [
                _checks.posterior_shape(name, what, x.dtype, x.shape, shape)
                for what, x in zip(("posterior mean", "posterior std", "prior mean", "prior std"), parts)
            ]
            parts = [x.reshape(-1)[:1] if one else x for x, one in zip(parts, ones)]
            flat = [x.reshape(-1) for x in parts]
            size = math.prod(shape)
            for a in range(0, size, 1 << 20):
                _checks.posterior_values(name, a, *(x if x.size == 1 else x[a : a + (1 << 20)] for x in flat))
            qs = flat[1] if flat[1].size == size else np.broadcast_to(flat[1], (size,))
            coded.append(
                (
                    name,
                    list(shape),
                    np.ascontiguousarray(flat[0], dtype=np.float64),
                    np.ascontiguousarray(qs, dtype=np.float64),
                    _prior_array(name, "p_mean", parts[2][0] if ones[2] else parts[2], shape),
                    _prior_array(name, "p_std", parts[3][0] if ones[3] else parts[3], shape),
                )
            )
            shapes[name] = shape
        else:
            raw.append(_raw_arg(name, v))
    nat_bytes, rep = interruptibly(  # Ctrl-C stops the native encoder at once
        _native.format_encode,
        coded,
        raw,
        seed,
        method,
        float(bits_per_block),
        layout,
        None if block_size is None else _checks.uint64(block_size, "block_size"),
        _checks.uint64(max_block_size, "max_block_size"),
        _checks.uint64(chunk_size, "chunk_size"),
        digest,
        meta=metadata,
        threads=_checks.threads(threads),
        max_excess=_checks.max_excess(max_excess),
        **options,
    )
    data = bytes(nat_bytes)
    write_output(dest, data)
    report = _report(rep["names"], shapes, rep, data, kl=rep["kl"])
    report.rate = {n: _rate_row(r) for n, r in zip(rep["names"], rep["rate"]) if r is not None}
    return report


def _report(names, shapes, rep, data, kl=None) -> Report:
    coded_vec = rep["coded"]
    decoded, off = dict(rep.get("decoded", {})), 0
    for n in names:
        if n in shapes and "decoded" not in rep:
            k = math.prod(shapes[n])
            decoded[n] = coded_vec[off : off + k].reshape(shapes[n])
            off += k
    sha = {}
    digests = rep["digests"]
    if len(digests) == len(names) and digests:
        sha = dict(zip(names, digests))
    else:
        sha = {n: hashlib.sha256(decoded[n].astype("<f4").tobytes()).hexdigest() for n in decoded}
    return Report(
        blocks=int(rep["blocks"]),
        groups=int(rep["groups"]),
        bits=int(rep["bits"]),
        bytes=len(data),
        kl={n: float(k) for n, k in zip(names, kl or []) if n in shapes},
        sha256=sha,
        file_sha256=hashlib.sha256(data).hexdigest(),
        decoded=decoded,
        steps=int(rep.get("steps", 0)),
    )


class Writer:
    """Writes a file whose blocks a caller codes itself, in any order (the progressive
    encoders of ``relcode.torch`` and ``relcode.inr``).

    Give a :class:`Layout` and, per coded tensor, a prior (:meth:`set_prior`); add raw
    tensors with :meth:`add_raw`; code blocks with :meth:`encode_block` (or add messages
    coded elsewhere with :meth:`add_block`) in any order; :meth:`close` writes the file.
    Used as a context manager, the file is written on a clean exit and nothing is written
    if the block raises.

    With ``base=`` (an opened :class:`File`, a path or bytes of a base file written by
    :func:`write_base`), the layout and the priors come from the base, and the file holds
    only its header and messages (COMBINER: one codec file, many small image files). With
    ``instances=K`` as well, the file holds K independent instances of the base's coded
    tensors (one per image patch): blocks are addressed as (b, instance), every block of
    every instance has its own stream id (:meth:`stream_id`), and the coded tensors decode
    stacked, with shape (K, ...).

    >>> import io, numpy as np, relcode
    >>> lay = relcode.format.Layout.fixed({"w": (6,)}, block_size=3, seed=0)
    >>> buf = io.BytesIO()
    >>> with relcode.format.Writer(buf, lay, seed=5, method="pfr", bits=8) as w:
    ...     w.set_prior("w", 0.0, 1.0)
    ...     for b in reversed(range(lay.num_blocks)):
    ...         x = w.encode_block(b, q_mean=np.full(3, 0.3), q_std=0.2)
    >>> out = relcode.decode(buf.getvalue())["w"]
    >>> bool((out == w.report.decoded["w"]).all())
    True
    """

    def __init__(
        self,
        dest: Any,
        layout: Layout | None = None,
        *,
        seed: int = 0,
        method: str = "pfr",
        base: Source | None = None,
        digest: str = "tensor",
        metadata: Any = None,
        instances: int | None = None,
        threads: int | None = None,
        **options: Any,
    ):
        self.dest = dest
        self.seed = _checks.uint64(seed, "seed")
        self.method = method
        self.options = dict(options)
        self.digest = digest
        self.metadata = metadata
        self.threads = _checks.threads(threads)
        self.report: Report | None = None
        self._fields = _channel.message_fields(method, **self.options)
        self.base: File | None = None
        if base is not None:
            self.base = base if isinstance(base, File) else open(base, lazy=False)
            if self.base.base_sha256 is not None or self.base.info["messages"]:
                raise InputError("a base file must hold no messages and have no base itself")
            if layout is not None:
                raise InputError("with base=, the layout comes from the base file")
            layout = self.base.layout
        if layout is None:
            raise InputError("give a layout (or base=)")
        self.layout = layout
        if instances is not None:
            instances = _checks.uint64(instances, "instances")
            if self.base is None or instances < 1:
                raise InputError("instances=K (K >= 1) needs base=")
        self.instances = instances
        self._k = instances or 1
        self._priors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._raw: dict[str, np.ndarray] = {}
        nb = layout.num_blocks * self._k
        self._index = np.zeros(nb, dtype=np.uint64)
        self._aux = np.zeros(nb, dtype=np.uint64)
        self._have = np.zeros(nb, dtype=bool)
        self._closed = False

    # -- priors and raw tensors --

    def set_prior(self, name: str, mean: ArrayLike, std: ArrayLike) -> None:
        """The prior of a coded tensor: scalars (one value for the tensor) or arrays of its
        shape, stored as exact float32 bits."""
        if self.base is not None:
            raise InputError("the priors come from the base file")
        if name not in self.layout.shapes:
            raise InputError(f"{name!r} is not a coded tensor of the layout")
        shape = self.layout.shapes[name]
        m = _prior_array(name, "mean", mean, shape)
        s = _prior_array(name, "std", std, shape)
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(s)) and np.all(s > 0)):
            raise InputError(f"{name!r}: prior means must be finite and stds positive")
        self._priors[name] = (m, s)

    def add_raw(self, name: str, array: ArrayLike) -> None:
        """A tensor stored verbatim (float32, other floats, ints or bools)."""
        if self.base is not None:
            raise InputError("a file with a base holds only messages")
        if name in self.layout.shapes:
            raise InputError(f"{name!r} is a coded tensor of the layout")
        self._raw[name] = np.asarray(array)

    def block_prior(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(p_mean, p_std) float32 of block ``b``'s members, in coding order."""
        if self.base is not None:
            e = self.layout.block_elements(b)
            lo, hi = int(e.min()), int(e.max()) + 1
            m, s = self.base._n.prior_range(lo, hi)
            return m[e - lo], s[e - lo]
        missing = [n for n in self.layout.names if n not in self._priors]
        t, i = self.layout.block_indices(b)
        m = np.empty(t.size, dtype=np.float32)
        s = np.empty(t.size, dtype=np.float32)
        for k in np.unique(t):
            name = self.layout.names[int(k)]
            if name in missing:
                raise InputError(f"set the prior of {name!r} before coding its blocks")
            pm, ps = self._priors[name]
            sel = t == k
            m[sel] = pm[0] if pm.size == 1 else pm[i[sel]]
            s[sel] = ps[0] if ps.size == 1 else ps[i[sel]]
        return m, s

    # -- blocks --

    def _slot(self, b: int, instance: int) -> int:
        b = self.layout._check_block(b)
        i = int(instance)
        if not 0 <= i < self._k:
            raise InputError(f"instance {i} is out of range (the file holds {self._k})")
        return i * self.layout.num_blocks + b

    def stream_id(self, b: int, instance: int = 0) -> int:
        """The random-stream id of block ``b`` of an instance: ``(instance * G + group) *
        2**32 + position`` with G the number of groups (instance 0: :meth:`Layout.stream_id`)."""
        self._slot(b, instance)
        return self.layout.stream_id(b, instance)

    def add_block(self, b: int, message: ArrayLike, instance: int = 0) -> None:
        """The message of block ``b`` (an int, or a tuple of the method's fields)."""
        slot = self._slot(b, instance)
        vals = np.atleast_1d(np.asarray(message)).reshape(-1)
        if vals.size != len(self._fields) or vals.dtype.kind not in "ui" or (vals.size and vals.min() < 0):
            raise InputError(
                f"{self.method} messages are {len(self._fields)} non-negative ints {self._fields}"
            )
        cols = dict(zip(self._fields, (int(v) for v in vals)))
        self._index[slot] = cols["index"]
        self._aux[slot] = cols.get("aux", 0)
        self._have[slot] = True

    def encode_block(self, b: int, q_mean: ArrayLike, q_std: ArrayLike, instance: int = 0) -> Float32Array:
        """Codes block ``b`` for the posterior of its members (arrays in coding order, or
        scalars) and adds its message; returns the coded values (float32), exactly what a
        decoder returns for those members."""
        b = self.layout._check_block(b)
        n = int(self.layout.block_sizes[b])
        pm, ps = self.block_prior(b)
        qm = np.broadcast_to(np.asarray(q_mean, dtype=np.float64), (n,)).reshape(1, n)
        qs = np.broadcast_to(np.asarray(q_std, dtype=np.float64), (n,)).reshape(1, n)
        code = _channel.encode(
            qm,
            qs,
            pm.reshape(1, n),
            ps.reshape(1, n),
            method=self.method,
            seed=self.seed,
            ids=np.array([self.stream_id(b, instance)], dtype=np.uint64),
            **self.options,
        )
        self.add_block(b, code.message[0], instance)
        return code.sample[0]

    def encode_instances(
        self, b: int, q_mean: ArrayLike, q_std: ArrayLike, instances: ArrayLike | None = None
    ) -> Float32Array:
        """Codes block ``b`` of several instances in one parallel call: ``q_mean`` and
        ``q_std`` have shape (m, block size) (or broadcast to it) for the ``m`` instances
        listed (default: all). Returns the (m, block size) coded values."""
        inst = np.arange(self._k) if instances is None else np.asarray(instances, dtype=np.int64).reshape(-1)
        for i in inst:
            self._slot(b, int(i))
        m, n = inst.size, int(self.layout.block_sizes[b])
        pm, ps = self.block_prior(b)
        qm = np.broadcast_to(np.asarray(q_mean, dtype=np.float64), (m, n))
        qs = np.broadcast_to(np.asarray(q_std, dtype=np.float64), (m, n))
        ids = np.array([self.stream_id(b, int(i)) for i in inst], dtype=np.uint64)
        code = _channel.encode(
            qm, qs, pm.reshape(1, n), ps.reshape(1, n), method=self.method, seed=self.seed, ids=ids,
            threads=self.threads, **self.options,
        )  # fmt: skip
        for r, i in enumerate(inst):
            self.add_block(b, code.message[r], int(i))
        return code.sample

    @property
    def missing_blocks(self) -> np.ndarray:
        """Blocks without a message yet."""
        return np.flatnonzero(~self._have)

    # -- writing --

    def to_bytes(self) -> bytes:
        """The file's bytes (every block must have a message)."""
        lay = self.layout
        if not self._have.all():
            raise InputError(
                f"{(~self._have).sum()} blocks have no message (first: {self.missing_blocks[0]})"
            )
        msgs = []
        nb = lay.num_blocks
        for i in range(self._k):
            for g in lay.groups:
                sel = np.flatnonzero(lay._block_group == g["id"]) + i * nb
                msgs.append(
                    (
                        i * len(lay.groups) + int(g["id"]),
                        self.method,
                        np.ascontiguousarray(self._index[sel]),
                        np.ascontiguousarray(self._aux[sel]),
                        self._opts(),
                    )
                )
        if self.base is not None:
            data, digests, coded = _native.format_assemble(
                self.seed, [], [], [], [], msgs, True, self.digest, meta=self.metadata,
                base=self.base._n, instances=self.instances, threads=self.threads,
            )  # fmt: skip
            names = [t["name"] for t in self.base.info["tensors"]]
            shapes = {n: tuple(self.base.tensors[n]["shape"]) for n in lay.names}
        else:
            missing = [n for n in lay.names if n not in self._priors]
            if missing:
                raise InputError(f"set the prior of {missing[0]!r}")
            tensors, raw, elems = self._tensor_args()
            data, digests, coded = _native.format_assemble(
                self.seed, tensors, [_group_arg(g) for g in lay.groups], raw, elems, msgs, True,
                self.digest, meta=self.metadata, threads=self.threads,
            )  # fmt: skip
            names = [t[0] for t in tensors]
            shapes = {n: lay.shapes[n] for n in lay.names}
        data = bytes(data)
        rep = {
            "digests": digests,
            "coded": coded,
            "blocks": lay.num_blocks * self._k,
            "groups": len(lay.groups),
        }
        if self.instances is not None:
            n = lay.num_elements
            stacked = coded.reshape(self._k, n)
            rep["decoded"] = {
                name: stacked[:, slice(*lay.tensor_range(name))].reshape(self._k, *lay.shapes[name])
                for name in lay.names
            }
        cols = {"index": self._index, "aux": self._aux}
        msg = self._index if self._fields == ["index"] else np.stack([cols[f] for f in self._fields], axis=1)
        rep["bits"] = int(_channel.message_bits(msg, self.method, **self._opts()).sum()) if msg.size else 0
        self.report = _report(names, shapes, rep, data)
        return data

    def _opts(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k not in ("max_steps", "backend")}

    def _tensor_args(self) -> tuple[list, list, list]:
        names = sorted(list(self.layout.names) + list(self._raw), key=lambda s: s.encode())
        if len(set(names)) != len(names):
            raise InputError("tensor names are repeated")
        tensors, raw, elems = [], [], []
        for i, n in enumerate(names):
            if n in self._raw:
                r = _raw_arg(n, self._raw[n])
                tensors.append((n, r[1], r[2], False, None, None))
                raw.append((i, r[3]))
            else:
                m, s = self._priors[n]
                pm = float(m[0]) if m.size == 1 else None
                ps = float(s[0]) if s.size == 1 else None
                tensors.append((n, list(self.layout.shapes[n]), "float32", True, pm, ps))
                if pm is None:
                    elems.append((i, 1, m))
                if ps is None:
                    elems.append((i, 2, s))
        return tensors, raw, elems

    def close(self) -> Report:
        """Writes the file (atomically for paths) and returns the :class:`Report`."""
        if self._closed:
            raise InputError("this writer is closed")
        data = self.to_bytes()
        write_output(self.dest, data)
        self._closed = True
        assert self.report is not None
        return self.report

    def abort(self) -> None:
        """Discards the writer without writing anything."""
        self._closed = True

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()


_RAW_PIECE = 1 << 20


class StreamWriter:
    """Writes a file group by group, in bounded memory (weight sets larger than memory).

    ``tensors`` maps each name to a spec: ``{"shape": ..., "dtype": "float32"}`` for a raw
    tensor, or ``{"shape": ..., "prior": (mean, std)}`` for a coded one, where a prior
    parameter is a float (one value for the tensor) or ``None`` (one value per element,
    given group by group to :meth:`encode_group`). The coded vector (coded tensors sorted by
    name, flattened) is cut into groups of ``chunk_size`` elements: :attr:`groups` lists
    their (start, count). Write raw tensors first (:meth:`write_raw`), then every group in
    order (:meth:`encode_group`, or :meth:`write_group` with the output of
    :func:`encode_group_payloads` computed elsewhere, e.g. on a Dask worker), then
    :meth:`close`. Done in that order, with the KL layout, the bytes equal those of
    :func:`encode` with the same ``chunk_size``. The file appears at ``dest`` only when
    :meth:`close` succeeds (:mod:`relcode._output`: ``dest`` may not be one of the
    ``inputs`` paths, a link, a directory or a FIFO).
    """

    def __init__(
        self,
        dest: PathLike,
        tensors: Mapping[str, Mapping[str, Any]],
        *,
        seed: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        digest: str = "tensor",
        metadata: Any = None,
        inputs: Iterable[Any] = (),
    ):
        self.dest = Path(dest)
        self.seed = _checks.uint64(seed, "seed")
        names = sorted(tensors, key=lambda n: n.encode())
        self.names = names
        self.specs: dict[str, dict[str, Any]] = {}
        args, coded_len = [], 0
        self._coded: list[tuple[str, int, int]] = []  # name, tensor index, coded start
        for i, n in enumerate(names):
            spec = dict(tensors[n])
            shape = [int(d) for d in spec["shape"]]
            size = math.prod(shape)
            if "prior" in spec:
                pm, ps = spec["prior"]
                pm = None if pm is None else float(np.float32(pm))
                ps = None if ps is None else float(np.float32(ps))
                spec["prior"] = (pm, ps)
                args.append((n, shape, "float32", True, pm, ps))
                self._coded.append((n, i, coded_len))
                coded_len += size
            else:
                args.append((n, shape, str(spec.get("dtype", "float32")), False, None, None))
            spec["shape"] = shape
            self.specs[n] = spec
        self.groups: list[tuple[int, int]] = Layout._ranges(coded_len, chunk_size) if coded_len else []
        self._out = _output.AtomicOutput(self.dest, inputs=inputs)
        try:
            self._w = _native.FormatStreamWriter(
                str(self._out.path), self.seed, args, len(self.groups), digest, metadata
            )
        except BaseException:
            self._out.discard()
            raise
        self._next_group = 0
        self.bits = 0
        self.blocks = 0

    def write_raw(self, name: str, array: ArrayLike, *, start: int | None = None) -> None:
        """A raw tensor's values (in pieces of 2**20 elements). With ``start``, ``array`` is
        a flat piece of the tensor from element ``start`` (tensors larger than memory); pieces
        that start at multiples of 2**20 and hold 2**20 elements (the last one fewer) give
        the canonical chunks, and the bytes of :func:`encode`."""
        spec = self.specs[name]
        if "prior" in spec:
            raise InputError(f"{name!r} is a coded tensor")
        a = np.asarray(array)
        size = math.prod(spec["shape"])
        dt = spec.get("dtype", "float32")
        if start is None:
            if list(a.shape) != spec["shape"] or a.dtype.name != dt:
                raise InputError(f"{name!r}: expected {dt} of shape {spec['shape']}")
            first = 0
        else:
            first = _checks.uint64(start, "start")
            if a.dtype.name != dt or first + a.size > size or (a.size == 0 and size > 0):
                raise InputError(f"{name!r}: expected a piece of {dt} within its {size} elements")
        flat = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).reshape(-1)
        t = self.names.index(name)
        for s in range(0, max(flat.size, 1), _RAW_PIECE):
            piece = flat[s : s + _RAW_PIECE]
            self._w.write_raw(t, first + s, np.frombuffer(piece.tobytes(), dtype=np.uint8))

    def _write_priors(self, g: int, p_mean: np.ndarray, p_std: np.ndarray) -> None:
        start, count = self.groups[g]
        for n, t, cs in self._coded:
            size = math.prod(self.specs[n]["shape"])
            a, b = max(cs, start), min(cs + size, start + count)
            if a >= b:
                continue
            for role, (val, arr) in enumerate(zip(self.specs[n]["prior"], (p_mean, p_std)), start=1):
                part = arr[a - start : b - start]
                if val is None:
                    self._w.write_prior(t, role, a - cs, np.ascontiguousarray(part, dtype=np.float32))
                elif not np.all(part == np.float32(val)):
                    raise InputError(f"{n!r}: the group's prior differs from the tensor's scalar prior")

    def group_prior(
        self, g: int, elements: Mapping[str, tuple[Any, Any]] | None = None
    ) -> tuple[np.ndarray, ...]:
        """(p_mean, p_std) float32 of group ``g``: scalar priors expanded, per-element ones
        taken from ``elements[name] = (mean, std)`` slices of the tensor's range in the group."""
        start, count = self.groups[g]
        pm = np.empty(count, dtype=np.float32)
        ps = np.empty(count, dtype=np.float32)
        for n, _, cs in self._coded:
            size = math.prod(self.specs[n]["shape"])
            a, b = max(cs, start), min(cs + size, start + count)
            if a >= b:
                continue
            for k, (val, out) in enumerate(zip(self.specs[n]["prior"], (pm, ps))):
                if val is None:
                    if elements is None or n not in elements:
                        raise InputError(f"{n!r}: give its per-element prior for group {g}")
                    out[a - start : b - start] = np.asarray(elements[n][k], dtype=np.float32).reshape(-1)
                else:
                    out[a - start : b - start] = val
        return pm, ps

    def encode_group(
        self,
        g: int,
        q_mean: Any,
        q_std: Any,
        p_mean: Any,
        p_std: Any,
        *,
        method: str = "pfr",
        bits_per_block: float = 16,
        layout: str = "kl",
        max_block_size: int = 25,
        block_size: int | None = None,
        threads: int | None = None,
        **options: Any,
    ) -> dict[str, int]:
        """Encodes and writes group ``g`` (arrays of the group's elements, coded-vector order)."""
        out = encode_group_payloads(
            g, self.seed, self.groups[g][0], q_mean, q_std, p_mean, p_std, method=method,
            bits_per_block=bits_per_block, layout=layout, max_block_size=max_block_size,
            block_size=block_size, threads=threads, **options,
        )  # fmt: skip
        self.write_group(g, *out[:3], p_mean=p_mean, p_std=p_std)
        return out[3]

    def write_group(
        self, g: int, layo: bytes, msgs: bytes, values: np.ndarray, *, p_mean: Any, p_std: Any
    ) -> None:
        """Writes group ``g`` from :func:`encode_group_payloads` output; groups go in order."""
        if g != self._next_group:
            raise InputError(f"write group {self._next_group} next, not {g}")
        start, count = self.groups[g]
        pm = np.ascontiguousarray(np.broadcast_to(np.asarray(p_mean, dtype=np.float32), (count,)))
        ps = np.ascontiguousarray(np.broadcast_to(np.asarray(p_std, dtype=np.float32), (count,)))
        self._write_priors(g, pm, ps)
        self._w.write_group(start, bytes(layo), bytes(msgs), np.ascontiguousarray(values, dtype=np.float32))
        self._next_group += 1

    def close(self) -> list[str]:
        """Writes the index, renames the file into place and returns the digests."""
        if self._next_group != len(self.groups):
            self.abort()
            raise InputError(f"{len(self.groups) - self._next_group} groups were not written")
        try:
            digests = self._w.finish()
            self._out.commit()
        except BaseException:
            self.abort()
            raise
        return digests

    def abort(self) -> None:
        """Discards everything written; nothing appears at the destination."""
        self._w.abort()
        self._out.discard()

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._out.done and self._next_group == len(self.groups):
            self.close()


def _group_args(
    q_mean: Any, q_std: Any, p_mean: Any, p_std: Any, method: str, bits_per_block: float, layout: str,
    max_block_size: int, block_size: int | None, options: dict[str, Any],
) -> tuple[tuple, dict[str, Any]]:  # fmt: skip
    """The native arguments of one streaming group: (q_mean, q_std, p_mean, p_std, method,
    layout, size, bits_per_block) and the method's options."""
    qm = np.ascontiguousarray(q_mean, dtype=np.float64).reshape(-1)
    n = qm.size
    arr = lambda x, dt: np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=dt), (n,)))  # noqa: E731
    if layout == "fixed":
        if block_size is None:
            raise InputError("the fixed layout needs block_size when streaming")
        size = _checks.uint64(block_size, "block_size")
    else:
        size = _checks.uint64(max_block_size, "max_block_size")
    options = channel_options(method, float(bits_per_block), options)
    args = (
        qm, arr(q_std, np.float64), arr(p_mean, np.float32), arr(p_std, np.float32), method, layout, size,
        float(bits_per_block),
    )  # fmt: skip
    return args, options


def _spans(tensors: Sequence[tuple[str, int, int]] | None) -> list[tuple[str, int, int]] | None:
    if tensors is None:
        return None
    return [(str(n), _checks.uint64(a, "first"), _checks.uint64(c, "count")) for n, a, c in tensors]


def encode_group_payloads(
    g: int,
    seed: int,
    start: int,
    q_mean: Any,
    q_std: Any,
    p_mean: Any,
    p_std: Any,
    *,
    method: str = "pfr",
    bits_per_block: float = 16,
    layout: str = "kl",
    max_block_size: int = 25,
    block_size: int | None = None,
    threads: int | None = None,
    tensors: Sequence[tuple[str, int, int]] | None = None,
    max_excess: float | None = None,
    cancel: Any = None,
    **options: Any,
) -> tuple[bytes, bytes, np.ndarray, dict[str, Any]]:
    """Encodes one group anywhere (a pure function of its arguments): returns its LAYO and
    MSGS payloads, its decoded values and a report, for :meth:`StreamWriter.write_group`.

    The report holds ``blocks``, ``bits``, ``steps``, ``count`` and ``rate``: the native
    rate accounting (the keys of :attr:`Report.rate`) as one row per tensor piece named by
    ``tensors`` (``(name, first element of the tensor, count)`` in group order, tiling the
    group; each row also carries ``name``, ``first`` and ``count``), or one row for the
    whole group (``name`` None). ``max_excess`` refuses a block over its budget by more
    than that many bits before any block is coded (see :func:`encode`). Setting ``cancel``
    (a :func:`cancel_flag`, from any thread) stops the call within one block's time with
    :class:`~relcode.errors.CancelledError`; an uncancelled call returns the same bytes."""
    args, options = _group_args(
        q_mean, q_std, p_mean, p_std, method, bits_per_block, layout, max_block_size, block_size, options
    )
    layo, msgs, vals, rep = _native.format_encode_group(
        int(g), _checks.uint64(seed, "seed"), int(start), *args, threads=_checks.threads(threads),
        tensors=_spans(tensors), max_excess=_checks.max_excess(max_excess), cancel=cancel, **options,
    )  # fmt: skip
    return bytes(layo), bytes(msgs), vals, dict(rep)


def cancel_flag() -> Any:
    """A new flag for :func:`encode_group_payloads` ``cancel``: ``.set()`` cancels every call
    given it, ``.is_set()`` tells whether it is set."""
    return _native.CancelFlag()


def interruptibly(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, cancel=flag, **kwargs)`` for a native call that takes a :func:`cancel_flag`.
    On the main thread it runs on a helper thread while the caller waits in Python, so that
    Ctrl-C (``KeyboardInterrupt``) is raised at once; the flag is then set and the native work
    ends within one block's time. Elsewhere (no Ctrl-C to deliver) it is a plain call."""
    import threading

    flag = cancel_flag()
    if threading.current_thread() is not threading.main_thread():
        return fn(*args, cancel=flag, **kwargs)
    ex = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="relcode-encode")
    try:
        return ex.submit(fn, *args, cancel=flag, **kwargs).result()
    except BaseException:
        flag.set()
        raise
    finally:
        ex.shutdown(wait=False)


def encode_group_interruptibly(*args: Any, **kwargs: Any) -> tuple[bytes, bytes, np.ndarray, dict[str, Any]]:
    """:func:`encode_group_payloads` through :func:`interruptibly` (Ctrl-C stops it at once)."""
    return interruptibly(encode_group_payloads, *args, **kwargs)


def check_group_budget(
    g: int,
    seed: int,
    start: int,
    q_mean: Any,
    q_std: Any,
    p_mean: Any,
    p_std: Any,
    *,
    max_excess: float | None,
    method: str = "pfr",
    bits_per_block: float = 16,
    layout: str = "kl",
    max_block_size: int = 25,
    block_size: int | None = None,
    threads: int | None = None,
    tensors: Sequence[tuple[str, int, int]] | None = None,
    **options: Any,
) -> int | None:
    """Checks one group against its method's budget without coding it: the arguments of
    :func:`encode_group_payloads`; raises :class:`InputError` for a block whose KL exceeds
    the budget by more than ``max_excess`` bits (nothing is checked for exact methods, or
    with ``max_excess=None``). Returns the budget in bits, None for exact methods."""
    args, options = _group_args(
        q_mean, q_std, p_mean, p_std, method, bits_per_block, layout, max_block_size, block_size, options
    )
    return _native.format_check_group(
        int(g), _checks.uint64(seed, "seed"), int(start), *args, _checks.max_excess(max_excess),
        threads=_checks.threads(threads), tensors=_spans(tensors), **options,
    )  # fmt: skip


def write_base(
    dest: Any,
    layout: Layout,
    priors: Mapping[str, tuple[Any, Any]],
    *,
    raw: Mapping[str, Any] | None = None,
    metadata: Any = None,
) -> str:
    """Writes a base file (a codec file): the layout, the priors of the coded tensors,
    optional raw tensors and metadata, and no messages. Returns its SHA-256, which the files
    that use it record. Decoders find it with ``base=`` or ``base_dirs=``."""
    w = Writer(dest, layout, seed=layout.groups[0]["seed"] if layout.groups else 0)
    for n, (m, s) in priors.items():
        w.set_prior(n, m, s)
    for n, a in (raw or {}).items():
        w.add_raw(n, a)
    missing = [n for n in layout.names if n not in w._priors]
    if missing:
        raise InputError(f"give the prior of {missing[0]!r}")
    tensors, rw, elems = w._tensor_args()
    data, _, _ = _native.format_assemble(
        0, tensors, [_group_arg(g) for g in layout.groups], rw, elems, [], False, "tensor", meta=metadata
    )
    data = bytes(data)
    write_output(dest, data)
    return hashlib.sha256(data).hexdigest()
