"""Tensor files read and written piece by piece: safetensors, npz and torch state_dicts.

The usual loaders hand out whole tensors (and the safetensors library maps the whole file,
whose touched pages then count towards the process's memory). Encoding and decoding weight
sets larger than memory needs element ranges of a tensor on the way in and tensors written
a piece at a time on the way out. safetensors and ``.npy`` are simple enough (a header that
lists names, dtypes, shapes and byte ranges, then the raw bytes) that positioned reads and
sequential writes do both in memory bounded by the piece size; a torch checkpoint is a zip
of one record per tensor, written here one tensor at a time.

Every writer writes to a temporary file in the destination's directory and renames it into
place only when :meth:`close` succeeds, so an interrupted or failed write never leaves a
partial file at the destination.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._output import AtomicOutput
from .errors import InputError

__all__ = [
    "NpzWriter",
    "SafetensorsReader",
    "SafetensorsWriter",
    "TensorEntry",
    "TorchWriter",
    "open_writer",
]

#: safetensors dtype -> numpy dtype (little-endian). BF16 has no numpy dtype: it is read as
#: float32 (exactly: a bfloat16 is the top half of a float32).
ST_TO_NUMPY = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}
_ITEMSIZE = {"BF16": 2, **{k: np.dtype(v).itemsize for k, v in ST_TO_NUMPY.items()}}
NUMPY_TO_ST = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}
#: The safetensors library refuses headers larger than this.
MAX_HEADER = 100_000_000


# ---------------------------------------------------------------------------------------
# Reading safetensors lazily


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a safetensors file: where its bytes are and how to read them."""

    name: str
    dtype: str  # safetensors name: "F32", "BF16", ...
    shape: tuple[int, ...]
    begin: int  # absolute file offsets
    end: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def numpy_dtype(self) -> np.dtype:
        """The dtype :meth:`SafetensorsReader.read` returns (float32 for BF16)."""
        return np.dtype("<f4") if self.dtype == "BF16" else np.dtype(ST_TO_NUMPY[self.dtype])


class SafetensorsReader:
    """A safetensors file read by positioned reads: any element range of any tensor, from
    any thread, in memory proportional to the range.

    >>> import tempfile, os, numpy as np
    >>> from safetensors.numpy import save_file
    >>> path = os.path.join(tempfile.mkdtemp(), "t.safetensors")
    >>> save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, path)
    >>> r = SafetensorsReader(path)
    >>> r.entries["w"].shape, r.read("w", 2, 5).tolist()
    ((2, 3), [2.0, 3.0, 4.0])
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._lock = threading.Lock()  # for platforms without pread
        try:
            self._parse()
        except BaseException:
            os.close(self._fd)
            raise

    def _pread(self, n: int, offset: int) -> bytes:
        if hasattr(os, "pread"):
            chunks, got = [], 0
            while got < n:
                b = os.pread(self._fd, n - got, offset + got)
                if not b:
                    raise InputError(f"{self.path}: the file ends early (truncated?)")
                chunks.append(b)
                got += len(b)
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        with self._lock:  # pragma: no cover - platforms without pread
            os.lseek(self._fd, offset, os.SEEK_SET)
            b = os.read(self._fd, n)
            if len(b) != n:
                raise InputError(f"{self.path}: the file ends early (truncated?)")
            return b

    def _parse(self) -> None:
        size = os.fstat(self._fd).st_size
        bad = f"{self.path} is not a safetensors file"
        if size < 8:
            raise InputError(f"{bad}: {size} bytes")
        (n,) = struct.unpack("<Q", self._pread(8, 0))
        if n > min(MAX_HEADER, size - 8):
            raise InputError(f"{bad}: its header claims {n} bytes")
        try:
            header = json.loads(self._pread(n, 8))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{bad}: {e}") from None
        if not isinstance(header, dict):
            raise InputError(f"{bad}: the header is not a JSON object")
        meta = header.pop("__metadata__", None)
        self.metadata: dict[str, str] = meta if isinstance(meta, dict) else {}
        base = 8 + n
        self.entries: dict[str, TensorEntry] = {}
        for name, e in header.items():
            try:
                dtype, shape, (b, en) = e["dtype"], tuple(int(d) for d in e["shape"]), e["data_offsets"]
            except (TypeError, KeyError, ValueError):
                raise InputError(f"{bad}: tensor {name!r} has a malformed entry") from None
            if dtype not in _ITEMSIZE:
                raise InputError(f"{self.path}: tensor {name!r} has dtype {dtype}, which relcode cannot read")
            if any(d < 0 for d in shape) or not (0 <= b <= en <= size - base):
                raise InputError(f"{bad}: tensor {name!r} has a bad shape or byte range")
            if en - b != math.prod(shape) * _ITEMSIZE[dtype]:
                raise InputError(
                    f"{bad}: tensor {name!r} holds {en - b} bytes, its shape and dtype need "
                    f"{math.prod(shape) * _ITEMSIZE[dtype]}"
                )
            self.entries[name] = TensorEntry(name, dtype, shape, base + int(b), base + int(en))

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Elements ``start:stop`` of tensor ``name`` flattened row-major, as a new 1-D array
        (native byte order; BF16 as float32)."""
        e = self.entries[name]
        stop = e.size if stop is None else stop
        if not 0 <= start <= stop <= e.size:
            raise InputError(f"{name!r}: range {start}:{stop} is outside its {e.size} elements")
        item = _ITEMSIZE[e.dtype]
        raw = self._pread((stop - start) * item, e.begin + start * item)
        if e.dtype == "BF16":
            return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        return np.frombuffer(raw, dtype=ST_TO_NUMPY[e.dtype]).astype(e.numpy_dtype.newbyteorder("="))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SafetensorsReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


# ---------------------------------------------------------------------------------------
# Writing piece by piece

Table = Sequence[tuple[str, str, tuple[int, ...]]]  # (name, numpy dtype name, shape), in order


class _PieceWriter:
    """Shared bookkeeping: tensors written in table order, each as consecutive pieces."""

    def __init__(self, dest: str | os.PathLike, table: Table):
        self.table = [(n, np.dtype(d).name, tuple(int(x) for x in s)) for n, d, s in table]
        if len({n for n, _, _ in self.table}) != len(self.table):
            raise InputError("tensor names are repeated")
        self._k = 0  # tensor being written
        self._at = 0  # elements of it written
        self.out = AtomicOutput(dest)

    def _check(self, name: str, piece: np.ndarray) -> np.ndarray:
        self._finish_done(until=name)
        if self._k >= len(self.table) or self.table[self._k][0] != name:
            want = self.table[self._k][0] if self._k < len(self.table) else "nothing"
            raise InputError(f"write {want!r} next, not {name!r}")
        _, dt, shape = self.table[self._k]
        flat = np.asarray(piece).reshape(-1)
        if flat.dtype.name != dt:
            raise InputError(f"{name!r}: expected {dt} values, got {flat.dtype}")
        if self._at + flat.size > math.prod(shape):
            raise InputError(f"{name!r}: more values than its shape {shape} holds")
        return np.ascontiguousarray(flat, dtype=flat.dtype.newbyteorder("<"))

    def _finish_done(self, until: str | None = None) -> None:
        """Moves past complete tensors (stopping at ``until``, which may take empty pieces)."""
        while (
            self._k < len(self.table)
            and self.table[self._k][0] != until
            and self._at == math.prod(self.table[self._k][2])
        ):
            self._end_tensor(self._k)
            self._k += 1
            self._at = 0
            if self._k < len(self.table):
                self._begin_tensor(self._k)

    def _begin_tensor(self, k: int) -> None:
        pass

    def _end_tensor(self, k: int) -> None:
        pass

    def _start(self) -> None:
        if self.table:
            self._begin_tensor(0)

    def write(self, name: str, piece: Any) -> None:
        """The next values of tensor ``name`` (flattened row-major; any shape)."""
        flat = self._check(name, piece)
        self._put(flat)
        self._at += flat.size

    def _put(self, flat: np.ndarray) -> None:
        raise NotImplementedError

    def _complete(self) -> None:
        self._finish_done()
        if self._k != len(self.table):
            n, _, s = self.table[self._k]
            raise InputError(f"{n!r}: {self._at} of {math.prod(s)} values were written")

    def close(self) -> None:
        """Finishes the file and renames it into place."""
        try:
            self._complete()
            self._close_file()
            self.out.commit()
        except BaseException:
            self.abort()
            raise

    def _close_file(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Discards everything written; nothing appears at the destination."""
        with contextlib.suppress(Exception):
            self._close_file()
        self.out.discard()

    def __enter__(self) -> _PieceWriter:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class SafetensorsWriter(_PieceWriter):
    """Writes a safetensors file tensor by tensor, piece by piece: the header (names, dtypes,
    shapes and byte ranges) is computed from the table first, then values follow in order.
    Loadable by ``safetensors.numpy.load_file`` / ``safetensors.torch.load_file``."""

    def __init__(self, dest: str | os.PathLike, table: Table, metadata: dict[str, str] | None = None):
        super().__init__(dest, table)
        header: dict[str, Any] = {}
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        off = 0
        for name, dt, shape in self.table:
            if dt not in NUMPY_TO_ST:
                raise InputError(f"{name!r}: safetensors cannot hold dtype {dt}")
            n = math.prod(shape) * np.dtype(dt).itemsize
            header[name] = {"dtype": NUMPY_TO_ST[dt], "shape": list(shape), "data_offsets": [off, off + n]}
            off += n
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned, as the library writes it
        try:
            self._f = open(self.out.path, "wb")  # closed by close() or abort()
            self._f.write(struct.pack("<Q", len(blob)) + blob)
        except BaseException:
            self.out.discard()
            raise

    def _put(self, flat: np.ndarray) -> None:
        self._f.write(memoryview(flat).cast("B"))

    def _close_file(self) -> None:
        if not self._f.closed:
            self._f.close()


class NpzWriter(_PieceWriter):
    """Writes an ``.npz`` archive (what ``numpy.savez`` writes: one uncompressed ``.npy``
    member per tensor) tensor by tensor, piece by piece."""

    def __init__(self, dest: str | os.PathLike, table: Table):
        import zipfile

        super().__init__(dest, table)
        try:
            self._zip = zipfile.ZipFile(self.out.path, "w", allowZip64=True)
        except BaseException:
            self.out.discard()
            raise
        self._member: Any = None
        self._start()

    def _begin_tensor(self, k: int) -> None:
        name, dt, shape = self.table[k]
        self._member = self._zip.open(f"{name}.npy", "w", force_zip64=True)
        d = {"descr": np.lib.format.dtype_to_descr(np.dtype(dt)), "fortran_order": False, "shape": shape}
        try:
            np.lib.format.write_array_header_1_0(self._member, d)
        except ValueError:  # a header longer than 1.0 allows
            np.lib.format.write_array_header_2_0(self._member, d)

    def _end_tensor(self, k: int) -> None:
        self._member.close()
        self._member = None

    def _put(self, flat: np.ndarray) -> None:
        self._member.write(memoryview(flat).cast("B"))

    def _close_file(self) -> None:
        if self._member is not None:
            with contextlib.suppress(Exception):
                self._member.close()
            self._member = None
        if self._zip.fp is not None:
            self._zip.close()


class TorchWriter(_PieceWriter):
    """Writes a torch checkpoint of a state_dict (``torch.load(path, weights_only=True)``
    returns a dict of tensors) one tensor at a time.

    A checkpoint is a zip of a pickle (``data.pkl``) that refers to one storage record per
    tensor. The pickle depends only on the names, dtypes and shapes, so it is written first;
    each tensor's record is written when its last piece arrives, so memory holds one tensor,
    not the whole model (the records cannot be written in pieces). Records are aligned as
    ``torch.save`` aligns them, so ``torch.load(..., mmap=True)`` works too.
    """

    def __init__(self, dest: str | os.PathLike, table: Table):
        import collections
        import io
        import pickle

        from .deps import require

        require("torch", "writing .pt files")
        import torch

        super().__init__(dest, table)
        self._torch = torch
        storage_types = {
            "float64": torch.DoubleStorage,
            "float32": torch.FloatStorage,
            "float16": torch.HalfStorage,
            "int64": torch.LongStorage,
            "int32": torch.IntStorage,
            "int16": torch.ShortStorage,
            "int8": torch.CharStorage,
            "uint8": torch.ByteStorage,
            "bool": torch.BoolStorage,
        }

        class _Storage:
            def __init__(self, key: str, kind: Any, numel: int):
                self.key, self.kind, self.numel = key, kind, numel

        class _Tensor:
            def __init__(self, storage: _Storage, shape: tuple[int, ...]):
                self.storage, self.shape = storage, shape

            def __reduce_ex__(self, protocol: Any) -> Any:
                stride = tuple(int(s) for s in np.cumprod((1, *self.shape[::-1]))[:-1][::-1])
                args = (self.storage, 0, self.shape, stride, False, collections.OrderedDict())
                return (torch._utils._rebuild_tensor_v2, args)

        class _Pickler(pickle.Pickler):
            def persistent_id(self, obj: Any) -> Any:
                if isinstance(obj, _Storage):
                    return ("storage", obj.kind, obj.key, "cpu", obj.numel)
                return None

        state = collections.OrderedDict()
        for k, (name, dt, shape) in enumerate(self.table):
            if dt not in storage_types:
                raise InputError(f"{name!r}: torch checkpoints cannot hold dtype {dt} here")
            state[name] = _Tensor(_Storage(str(k), storage_types[dt], math.prod(shape)), shape)
        buf = io.BytesIO()
        _Pickler(buf, protocol=2).dump(state)
        try:
            self._zip = torch._C.PyTorchFileWriter(str(self.out.path))
            data = buf.getvalue()
            self._zip.write_record("data.pkl", data, len(data))
            self._zip.write_record(".format_version", "1", 1)
            self._zip.write_record("byteorder", "little", len("little"))
        except BaseException:
            self.out.discard()
            raise
        self._buf: np.ndarray | None = None
        self._start()

    def _begin_tensor(self, k: int) -> None:
        _, dt, shape = self.table[k]
        self._buf = np.empty(math.prod(shape), dtype=dt)

    def _end_tensor(self, k: int) -> None:
        assert self._buf is not None
        t = self._torch.from_numpy(self._buf)
        self._zip.write_record(f"data/{k}", t.untyped_storage(), self._buf.nbytes)
        self._buf = None

    def _put(self, flat: np.ndarray) -> None:
        assert self._buf is not None
        self._buf[self._at : self._at + flat.size] = flat

    def _close_file(self) -> None:
        if self._zip is not None:
            z, self._zip = self._zip, None
            if self._k == len(self.table):
                z.write_end_of_file()
            del z


def open_writer(
    dest: str | os.PathLike, table: Table, metadata: dict[str, str] | None = None
) -> _PieceWriter:
    """A piece writer chosen by the suffix of ``dest``: ``.safetensors``, ``.npz``, ``.pt``
    or ``.pth``."""
    suffix = Path(dest).suffix
    if suffix == ".safetensors":
        return SafetensorsWriter(dest, table, metadata)
    if suffix == ".npz":
        return NpzWriter(dest, table)
    if suffix in (".pt", ".pth"):
        return TorchWriter(dest, table)
    raise InputError(f"{dest}: the output must end in .safetensors, .npz, .pt or .pth")


def iter_pieces(n: int, piece: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive pieces of at most ``piece`` elements covering ``n``."""
    for s in range(0, n, piece):
        yield s, min(s + piece, n)
