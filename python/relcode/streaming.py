"""Weight sets larger than memory: a streaming encoder and a lazy decoder.

Why this is possible: a file's coded vector is cut into *groups* (chunks of at most
``chunk_size`` elements, spec/format.md section 6) whose layout and random streams depend
only on the group's own elements and position. A group is therefore encoded from its own
slice of the posterior, anywhere and in any order, and its chunks can be written as soon as
every group before it is written. :class:`StreamEncoder` reads each group's slice from the
sources (safetensors files, memory-mapped or in-memory arrays), encodes a few groups at once
on a thread pool (or on a Dask cluster, :mod:`relcode.distributed`) and writes them in group
order, so its memory is a few groups plus a constant and its bytes never depend on timing:
they equal those of :func:`relcode.encode` with the same arguments.

:func:`open_decoder` does the reverse: it decodes a few groups at a time, hands out tensors
(or pieces of them) in file order, checks every SHA-256 as it goes, and writes safetensors,
``.npz`` or torch files tensor by tensor.

Posterior files
---------------
A *posterior file* is a safetensors file in which a coded tensor ``NAME`` is given by

- ``NAME.mean`` and ``NAME.std``: the posterior mean and standard deviation (any float
  dtype; the std may also be a single value for the whole tensor);
- ``NAME.prior_std`` and, optionally, ``NAME.prior_mean``: the prior, either per element
  (the shape of ``NAME.mean``) or per layer (one value: shape ``()`` or ``(1,)``, stored in
  the header as one exact float32). Without them the encoder's ``prior_std`` /
  ``prior_mean`` arguments (default mean 0) give a per-layer prior.

Every other tensor is stored verbatim (raw), for example batch-norm statistics. A
``.std``, ``.prior_std`` or ``.prior_mean`` without its ``.mean``, a ``.mean`` without its
``.std``, mismatched shapes, NaN or infinite means and non-positive stds are refused with an
:class:`~relcode.errors.InputError` naming the tensor, before any output is written.

>>> import os, tempfile, numpy as np, relcode
>>> d = tempfile.mkdtemp()
>>> rng = np.random.default_rng(0)
>>> with relcode.StreamEncoder(os.path.join(d, "m.relc"), seed=1, bits_per_block=8,
...                            progress=False) as enc:
...     enc.add("w", rng.normal(0, 0.1, (64, 32)), 0.05, prior_std=0.1)
...     enc.add_raw("step", np.array(7))
>>> dec = relcode.open_decoder(os.path.join(d, "m.relc"))
>>> dec.names, dec.tensor("w").shape
(['step', 'w'], (64, 32))
>>> w = relcode.decode(os.path.join(d, "m.relc"))["w"]
>>> bool((dec.tensor("w") == w).all())
True
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import hashlib
import math
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _checks, _output, _tensorfiles
from . import format as fmt
from .errors import ChecksumError, FormatError, InputError, LimitError
from .typing import ArrayLike

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "StreamDecoder",
    "StreamEncoder",
    "open_decoder",
    "read_posterior",
    "run_dask",
]

DEFAULT_CHUNK_SIZE = fmt.DEFAULT_CHUNK_SIZE
_RAW_PIECE = 1 << 20  # raw tensors are written in DATA chunks of this many elements
_CHECK_PIECE = 1 << 20  # elements read at a time by the input checks
_FLOAT_ST = ("F16", "BF16", "F32", "F64")
_SUFFIXES = (".mean", ".std", ".prior_mean", ".prior_std")


# ---------------------------------------------------------------------------------------
# Sources: element ranges of a tensor, read where the work runs


_READERS: collections.OrderedDict[tuple, _tensorfiles.SafetensorsReader] = collections.OrderedDict()
_READERS_LOCK = threading.Lock()


def _reader(path: str) -> _tensorfiles.SafetensorsReader:
    """The reader of a safetensors file: one per file and process, shared by threads (a few
    are kept open, so a worker that encodes many groups parses each header once)."""
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns, st.st_ino)
    with _READERS_LOCK:
        r = _READERS.get(key)
        if r is None:
            r = _tensorfiles.SafetensorsReader(path)
            _READERS[key] = r
            while len(_READERS) > 16:
                _READERS.popitem(last=False)[1].close()
        _READERS.move_to_end(key)
        return r


@dataclass(frozen=True)
class FileRef:
    """A tensor of a safetensors file, read by positioned reads where it is needed (a worker
    thread, or a Dask worker that sees the same path)."""

    path: str
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name of what read() returns

    def read(self, a: int, b: int) -> np.ndarray:
        return _reader(self.path).read(self.name, a, b)

    def sliced(self, a: int, b: int) -> ArrayRef:
        """Elements a:b read now (what is shipped to a process that cannot see the file)."""
        return ArrayRef(self.read(a, b), self.describe(), offset=a)

    def describe(self) -> str:
        return repr(self.name)


class ArrayRef:
    """An array (in memory or memory-mapped), read by flat slices; ``offset`` is the flat
    index of its first element in the tensor (for slices shipped to another process)."""

    def __init__(self, array: np.ndarray, label: str, offset: int = 0):
        self.array = array
        self.shape = tuple(array.shape)
        self.dtype = array.dtype.name
        self.label = label
        self.offset = offset

    def read(self, a: int, b: int) -> np.ndarray:
        flat = self.array.reshape(-1)  # a view for contiguous (and memory-mapped) arrays
        return flat[a - self.offset : b - self.offset]

    def sliced(self, a: int, b: int) -> ArrayRef:
        """A copy of elements a:b (what is shipped to another process)."""
        return ArrayRef(np.array(self.read(a, b)), self.label, offset=a)

    def describe(self) -> str:
        return self.label


Ref = FileRef | ArrayRef | float


def _read(ref: Ref, a: int, b: int) -> np.ndarray | float:
    return ref if isinstance(ref, float) else ref.read(a, b)


@dataclass
class _Coded:
    name: str
    shape: tuple[int, ...]
    q_mean: FileRef | ArrayRef
    q_std: Ref
    p_mean: Ref
    p_std: Ref

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class _Raw:
    name: str
    shape: tuple[int, ...]
    dtype: str
    src: FileRef | ArrayRef

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _as_ref(value: Any, what: str) -> FileRef | ArrayRef:
    if isinstance(value, (FileRef, ArrayRef)):
        return value
    a = np.asarray(_checks.numpy_value(value))
    if a.dtype.kind not in "fiub":
        raise InputError(f"{what} must be numbers, got dtype {a.dtype}")
    return ArrayRef(a, what)


def _param(value: Any, shape: tuple[int, ...], name: str, part: str) -> Ref:
    """A posterior std or a prior parameter: one value for the tensor (a scalar or any
    one-element array: a per-layer prior goes into the header as one float32) or an array
    (or file tensor) of the tensor's shape (:func:`relcode._checks.posterior_shape`, the
    rule of every entry point)."""
    ref = _as_ref(value, f"the {part} of {name!r}")
    label = ref.describe() if isinstance(ref, FileRef) else None
    if _checks.posterior_shape(name, part, ref.dtype, ref.shape, shape, label):
        return float(np.asarray(ref.read(0, 1), dtype=np.float64)[0])
    return ref


# ---------------------------------------------------------------------------------------
# Posterior files


@dataclass
class Posterior:
    """The tensors of a posterior file, as the encoder will read them."""

    coded: list[_Coded] = field(default_factory=list)
    raw: list[_Raw] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


def read_posterior(
    path: str | os.PathLike, *, prior_mean: float = 0.0, prior_std: float | None = None
) -> Posterior:
    """Reads the tensor table of a posterior file (see the module docs for the names) and
    checks its structure; values are read later, a chunk at a time. ``prior_std`` and
    ``prior_mean`` are the per-layer prior of tensors that have no ``.prior_std`` /
    ``.prior_mean`` of their own."""
    path = str(Path(path).resolve())
    r = _reader(path)
    ents = r.entries
    coded_names = sorted(n[: -len(".mean")] for n in ents if n.endswith(".mean"))
    coded_set = set(coded_names)
    for n in ents:
        for suf in (".std", ".prior_std", ".prior_mean"):
            if n.endswith(suf) and n[: -len(suf)] not in coded_set:
                raise InputError(f"{path}: tensor {n!r} has no {n[: -len(suf)] + '.mean'!r}")
    post = Posterior(metadata=dict(r.metadata))

    def ref(name: str) -> FileRef:
        e = ents[name]
        if e.dtype not in _FLOAT_ST:
            raise InputError(f"{path}: tensor {name!r} has dtype {e.dtype}; posteriors must be floats")
        return FileRef(path, name, e.shape, e.numpy_dtype.name)

    for base in coded_names:
        mean = ref(base + ".mean")
        if base + ".std" not in ents:
            raise InputError(f"{path}: tensor {base + '.mean'!r} has no {base + '.std'!r}")
        if base in ents:
            raise InputError(f"{path}: {base!r} is both a raw tensor and the name of {base + '.mean'!r}")
        shape = mean.shape
        try:
            q_std = _param(ref(base + ".std"), shape, base, "posterior std")
            pri: list[Ref] = []
            for suf, default in ((".prior_mean", prior_mean), (".prior_std", prior_std)):
                if base + suf in ents:
                    pri.append(_param(ref(base + suf), shape, base, suf[1:].replace("_", " ")))
                elif default is None:
                    raise InputError(
                        f"{base!r} has no {base + '.prior_std'!r}; give a per-layer prior_std "
                        "(--prior-std on the command line)"
                    )
                else:
                    pri.append(float(default))
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        post.coded.append(_Coded(base, shape, mean, q_std, pri[0], pri[1]))
    for n, e in ents.items():
        if n.endswith(_SUFFIXES) and any(n.endswith(s) and n[: -len(s)] in coded_set for s in _SUFFIXES):
            continue
        dt = "bfloat16" if e.dtype == "BF16" else e.numpy_dtype.name
        if dt not in fmt.RAW_DTYPES:
            raise InputError(f"{path}: raw tensor {n!r} has dtype {dt}, which relcode files cannot store")
        post.raw.append(_Raw(n, e.shape, dt, FileRef(path, n, e.shape, dt)))
    return post


# ---------------------------------------------------------------------------------------
# Checks


def _check_coded(t: _Coded) -> None:
    """Every value of a coded tensor, a piece at a time (:func:`relcode._checks.posterior_values`,
    the rule of every entry point)."""
    parts = (t.q_mean, t.q_std, t.p_mean, t.p_std)
    labels = [r.describe() if isinstance(r, FileRef) else None for r in parts]
    for a in range(0, t.size, _CHECK_PIECE):
        b = min(a + _CHECK_PIECE, t.size)
        _checks.posterior_values(t.name, a, *(_read(r, a, b) for r in parts), labels)


# ---------------------------------------------------------------------------------------
# One chunk of work


@dataclass
class ChunkSpec:
    """Everything needed to encode group ``g``: a pure function of this (picklable) spec."""

    g: int
    seed: int
    start: int
    count: int
    # (tensor position in the coded list, first element in the tensor, elements, refs)
    pieces: list[tuple[int, int, int, tuple[Ref, Ref, Ref, Ref]]]
    method: str
    bits_per_block: float
    layout: str
    block_size: int | None
    max_block_size: int
    options: dict[str, Any]
    threads: int | None = None
    labels: list[str] = field(default_factory=list)  # coded tensor names, for messages
    max_excess: float | None = None  # refuse blocks this far over a fixed budget (bits)
    # a cancel flag (relcode.format.cancel_flag) on local threads; None when shipped elsewhere
    cancel: Any = field(default=None, compare=False, repr=False)


@dataclass
class ChunkResult:
    g: int
    layo: bytes
    msgs: bytes
    values: np.ndarray
    p_mean: np.ndarray | float
    p_std: np.ndarray | float
    report: dict[str, Any]  # encode_group_payloads' report: blocks, bits, steps, count, rate
    kl: list[tuple[int, float]]  # (tensor position, KL bits of its elements in the group)


def _label(spec: ChunkSpec, k: int) -> str:
    return spec.labels[k] if k < len(spec.labels) else f"coded tensor {k}"


def _read_chunk(spec: ChunkSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Reads and checks group ``spec.g``: (q_mean, q_std, p_mean, p_std, whether the prior
    is one scalar pair for the whole group)."""
    n = spec.count
    qm = np.empty(n, dtype=np.float64)
    qs = np.empty(n, dtype=np.float64)
    pm = np.empty(n, dtype=np.float32)
    ps = np.empty(n, dtype=np.float32)
    uniform = True
    first: tuple[Any, Any] | None = None
    off = 0
    for k, a, c, (r_qm, r_qs, r_pm, r_ps) in spec.pieces:
        s = slice(off, off + c)
        qm[s] = _read(r_qm, a, a + c)
        qs[s] = _read(r_qs, a, a + c)
        pm[s] = _read(r_pm, a, a + c)
        ps[s] = _read(r_ps, a, a + c)
        sc = (r_pm, r_ps) if isinstance(r_pm, float) and isinstance(r_ps, float) else None
        if sc is None or (first is not None and sc != first):
            uniform = False
        first = first or sc
        ok = np.isfinite(qm[s]) & np.isfinite(qs[s]) & (qs[s] > 0) & np.isfinite(pm[s]) & np.isfinite(ps[s])
        ok &= ps[s] > 0
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise InputError(
                f"{_label(spec, k)!r} element {a + i}: means must be finite and stds positive and finite "
                f"(posterior {qm[off + i]} ± {qs[off + i]}, prior {pm[off + i]} ± {ps[off + i]})"
            )
        off += c
    return qm, qs, pm, ps, uniform and first is not None


def _group_kwargs(spec: ChunkSpec) -> dict[str, Any]:
    """The keywords of :func:`relcode.format.encode_group_payloads` for the group."""
    return dict(
        method=spec.method, bits_per_block=spec.bits_per_block, layout=spec.layout,
        max_block_size=spec.max_block_size, block_size=spec.block_size, threads=spec.threads,
        tensors=[(_label(spec, k), a, c) for k, a, c, _ in spec.pieces], max_excess=spec.max_excess,
        **spec.options,
    )  # fmt: skip


def encode_chunk(spec: ChunkSpec) -> ChunkResult:
    """Reads and encodes one group (what a worker thread or a Dask task runs); setting
    ``spec.cancel`` (a :func:`relcode.format.cancel_flag`) stops it within one block."""
    qm, qs, pm, ps, uniform = _read_chunk(spec)
    layo, msgs, vals, rep = fmt.encode_group_payloads(
        spec.g, spec.seed, spec.start, qm, qs, pm, ps, cancel=spec.cancel, **_group_kwargs(spec)
    )
    # the group's KL per tensor, from the native rate accounting (one row per piece)
    kl = [(k, float(row["kl_bits"])) for (k, *_), row in zip(spec.pieces, rep["rate"])]
    if uniform:
        pm_out, ps_out = float(pm[0]), float(ps[0])
    else:
        pm_out, ps_out = pm, ps
    return ChunkResult(spec.g, layo, msgs, vals, pm_out, ps_out, rep, kl)


def check_chunk(spec: ChunkSpec) -> int:
    """Reads group ``spec.g`` and checks its blocks against the method's budget without
    coding them (the strict pass of ``max_excess``); returns the group."""
    qm, qs, pm, ps, _ = _read_chunk(spec)
    fmt.check_group_budget(spec.g, spec.seed, spec.start, qm, qs, pm, ps, **_group_kwargs(spec))
    return spec.g


def _run_threads(specs: Iterator[ChunkSpec], workers: int, fn: Any = None) -> Iterator[Any]:
    """``fn`` (default :func:`encode_chunk`) of every spec, in group order; at most
    ``workers + 1`` groups in flight, so memory is bounded whatever the number of groups.
    On an error or an interrupt the groups still being encoded are cancelled (the native
    encoder stops within one block), so the worker threads end at once."""
    fn = fn or encode_chunk
    cancel = fmt.cancel_flag()
    ex = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relcode-encode")
    queue: collections.deque[cf.Future] = collections.deque()
    clean = False
    try:
        for spec in specs:
            spec.cancel = cancel
            queue.append(ex.submit(fn, spec))
            if len(queue) > workers:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
        clean = True
    finally:
        if not clean:
            cancel.set()
        for f in queue:
            f.cancel()
        # On an error or an interrupt, do not wait for the chunks still being encoded.
        ex.shutdown(wait=clean, cancel_futures=True)


# ---------------------------------------------------------------------------------------
# The encoder


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


def _progress(total: int, desc: str, enabled: bool | None, unit: str = "weight") -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, disable=_disabled(enabled),
        dynamic_ncols=True, leave=False,
    )  # fmt: skip


def _disabled(enabled: bool | None) -> bool | None:
    # tqdm's disable=None hides the bar when stderr is not a terminal.
    return None if enabled is None else not enabled


class _Stats:
    """What the encoder reports: message bits, blocks, steps, KL and rate accounting per
    coded tensor (the groups' native rows, added up) and, for files with one digest for
    everything, each tensor's SHA-256 (hashed as it is written)."""

    def __init__(self, coded_names: list[str], hash_names: list[str]):
        self.bits = self.blocks = self.steps = 0
        self.kl = [0.0] * len(coded_names)
        self.rate: dict[str, dict[str, Any]] = {}
        for n in coded_names:  # tensors without elements have no blocks
            fmt.merge_rate(self.rate, n, _NO_BLOCKS)
        self._hashes = {n: hashlib.sha256() for n in hash_names}

    def add(self, res: ChunkResult) -> None:
        self.bits += int(res.report["bits"])
        self.blocks += int(res.report["blocks"])
        self.steps += int(res.report["steps"])
        for k, v in res.kl:
            self.kl[k] += v
        for row in res.report.get("rate", ()):
            if row.get("name") is not None:
                fmt.merge_rate(self.rate, row["name"], row)

    def hash(self, name: str, data: np.ndarray) -> None:
        if name in self._hashes:
            self._hashes[name].update(data)

    def hexdigests(self) -> dict[str, str]:
        return {n: h.hexdigest() for n, h in self._hashes.items()}


_NO_BLOCKS = {
    "kl_bits": 0.0, "message_bits": 0.0, "blocks": 0, "over_budget_blocks": 0, "worst_excess_bits": None,
}  # fmt: skip


class StreamEncoder:
    """Encodes tensors into a relcode file in bounded memory; a context manager.

    Add tensors with :meth:`add` (posterior mean and std, prior), :meth:`add_raw` (stored
    verbatim) or :meth:`add_safetensors` (a posterior file, read lazily); nothing is read
    until :meth:`close` (called when the ``with`` block ends without an exception), which
    checks every input, then encodes the coded vector group by group (``chunk_size``
    elements each; ``workers`` groups at once on a thread pool) and writes the groups in
    order. Arrays may be memory-mapped (``numpy.load(..., mmap_mode="r")``); they are read
    a group at a time. Peak memory is about ``(workers + 1)`` groups (roughly 40 bytes per
    element of a group) plus a constant, whatever the total size.

    ``workers`` groups are read and encoded at once (default: the number of cores); their
    blocks run on the process's shared native thread pool, or on ``threads`` threads.
    The arguments are those of :func:`relcode.encode`, and so are the bytes (the same
    tensors, seed and options give the same file). ``layout="fixed"`` needs ``block_size``
    (the in-memory encoder's default depends on the total KL, which a stream does not know
    in advance). ``progress`` shows a tqdm bar on stderr (``None``: only on a terminal);
    ``client`` runs the groups as tasks on a Dask cluster (:mod:`relcode.distributed`;
    ``dask_options``: ``retries``, ``window``, ``read_on_workers``).
    The file appears at ``dest`` only when everything succeeded; an error or an interrupt
    (Ctrl-C) leaves nothing there.

    The report's :attr:`~relcode.format.Report.rate` counts, per tensor, the blocks whose
    KL exceeds a fixed budget (mrc, orc, pfr with ``bits``, dad_star), which are coded
    approximately. ``max_excess=B`` (bits; ``0.0``: strict) refuses them instead, as
    :func:`relcode.encode` does: a first pass reads every group and checks its blocks
    against the budget before any group is coded (it raises :class:`InputError` naming the
    tensor, the block, its KL and its budget, and nothing is written).
    """

    def __init__(
        self,
        dest: str | os.PathLike,
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
        workers: int | None = None,
        threads: int | None = None,
        progress: bool | None = None,
        check: bool = True,
        client: Any = None,
        dask_options: Mapping[str, Any] | None = None,
        max_excess: float | None = None,
        **options: Any,
    ):
        if not isinstance(dest, (str, os.PathLike)):
            raise InputError("dest must be a path (the file is written to a temporary file, then renamed)")
        self.dest = Path(dest)
        self.seed = _checks.uint64(seed, "seed")
        self.method = method
        self.bits_per_block = float(bits_per_block)
        if not (self.bits_per_block > 0 and math.isfinite(self.bits_per_block)):
            raise InputError("bits_per_block must be positive")
        if layout not in ("kl", "fixed"):
            raise InputError(f"layout must be 'kl' or 'fixed', got {layout!r}")
        if layout == "fixed" and block_size is None:
            raise InputError("layout='fixed' needs block_size when streaming")
        self.layout = layout
        self.block_size = None if block_size is None else _checks.uint64(block_size, "block_size")
        self.max_block_size = _checks.uint64(max_block_size, "max_block_size")
        self.chunk_size = _checks.uint64(chunk_size, "chunk_size")
        fmt.Layout._ranges(0, self.chunk_size)  # checks the range
        if digest not in ("tensor", "all"):
            raise InputError(f"digest must be 'tensor' or 'all', got {digest!r}")
        self.digest = digest
        self.metadata = metadata
        self.workers = _checks.threads(workers) or _cpu_count()
        self.threads = _checks.threads(threads)
        self.progress = progress
        self.check = check
        self.client = client
        self.max_excess = _checks.max_excess(max_excess)
        self.dask_options: dict[str, Any] = dict(dask_options or {})  # see relcode.distributed.encode
        self.options = fmt.channel_options(method, self.bits_per_block, options)
        self._coded: dict[str, _Coded] = {}
        self._raw: dict[str, _Raw] = {}
        self._closed = False
        self.report: fmt.Report | None = None

    # -- adding tensors --

    def _new_name(self, name: Any) -> str:
        if self._closed:
            raise InputError("this encoder is closed")
        if not isinstance(name, str) or not name:
            raise InputError("tensor names must be non-empty strings")
        if name in self._coded or name in self._raw:
            raise InputError(f"tensor {name!r} was added twice")
        return name

    def add(
        self,
        name: str,
        q_mean: ArrayLike,
        q_std: ArrayLike,
        *,
        prior_mean: ArrayLike = 0.0,
        prior_std: ArrayLike,
    ) -> None:
        """A coded tensor: posterior mean (an array, possibly memory-mapped), posterior std
        and prior (each a scalar or an array of the same shape; a one-value prior is stored
        in the header, per layer)."""
        name = self._new_name(name)
        qm = _as_ref(q_mean, f"the posterior mean of {name!r}")
        shape = qm.shape
        _checks.posterior_shape(name, "posterior mean", qm.dtype, shape, shape, None)
        t = _Coded(
            name,
            shape,
            qm,
            _param(q_std, shape, name, "posterior std"),
            _param(prior_mean, shape, name, "prior mean"),
            _param(prior_std, shape, name, "prior std"),
        )
        self._coded[name] = t

    def add_raw(self, name: str, array: ArrayLike) -> None:
        """A tensor stored verbatim (float16/32/64, int8/16/32/64, uint8 or bool)."""
        name = self._new_name(name)
        ref = _as_ref(array, repr(name))
        if ref.dtype not in fmt.RAW_DTYPES:
            raise InputError(f"{name!r}: raw tensors of dtype {ref.dtype} cannot be stored")
        self._raw[name] = _Raw(name, ref.shape, ref.dtype, ref)

    def add_safetensors(
        self, path: str | os.PathLike, *, prior_mean: float = 0.0, prior_std: float | None = None
    ) -> list[str]:
        """Every tensor of a posterior file (see the module docs), read lazily. Returns the
        names added (coded tensors, then raw ones)."""
        post = read_posterior(path, prior_mean=prior_mean, prior_std=prior_std)
        for t in post.coded:
            self._new_name(t.name)
        for r in post.raw:
            self._new_name(r.name)
        names = []
        for t in post.coded:
            self._coded[t.name] = t
            names.append(t.name)
        for r in post.raw:
            self._raw[r.name] = r
            names.append(r.name)
        return names

    # -- encoding --

    @property
    def input_paths(self) -> list[str]:
        """The files the added tensors are read from (never overwritten by the output)."""
        refs = [r for t in self._coded.values() for r in (t.q_mean, t.q_std, t.p_mean, t.p_std)]
        refs += [r.src for r in self._raw.values()]
        return sorted({r.path for r in refs if isinstance(r, FileRef)})

    @property
    def names(self) -> list[str]:
        """Every tensor added, in file order (sorted by the bytes of the name)."""
        return sorted([*self._coded, *self._raw], key=lambda s: s.encode())

    def _table(self) -> tuple[list[_Coded], list[_Raw], dict[str, dict[str, Any]]]:
        coded = sorted(self._coded.values(), key=lambda t: t.name.encode())
        raw = sorted(self._raw.values(), key=lambda t: t.name.encode())
        specs: dict[str, dict[str, Any]] = {}
        for t in coded:
            with np.errstate(over="ignore"):  # out-of-range values are refused by the checks
                pm = float(np.float32(t.p_mean)) if isinstance(t.p_mean, float) else None
                ps = float(np.float32(t.p_std)) if isinstance(t.p_std, float) else None
            specs[t.name] = {"shape": t.shape, "prior": (pm, ps)}
        for r in raw:
            specs[r.name] = {"shape": r.shape, "dtype": r.dtype}
        return coded, raw, specs

    def _specs(
        self, coded: list[_Coded], groups: list[tuple[int, int]], ship: bool | None
    ) -> Iterator[ChunkSpec]:
        """The groups' specs, lazily. ``ship`` is None for this process's threads; for other
        processes True ships array slices and lets them read files, False ships file data too."""
        starts = np.cumsum([0] + [t.size for t in coded]).tolist()
        labels = [t.name for t in coded]
        # Native threads per group: by default the process's shared rayon pool, which the
        # groups in flight share (a pool of n threads per call would serialize them).
        nthreads = self.threads
        k = 0
        for g, (start, count) in enumerate(groups):
            pieces = []
            end = start + count
            while k < len(coded) and starts[k + 1] <= start:
                k += 1
            j = k
            while j < len(coded) and starts[j] < end:
                a, b = max(start, starts[j]), min(end, starts[j + 1])
                if b > a:
                    t = coded[j]
                    la, lb = a - starts[j], b - starts[j]
                    refs = (t.q_mean, t.q_std, t.p_mean, t.p_std)
                    if ship is not None:  # for another process: slices of arrays, files if it sees them
                        refs = tuple(
                            r.sliced(la, lb)
                            if isinstance(r, ArrayRef) or (isinstance(r, FileRef) and not ship)
                            else r
                            for r in refs
                        )
                    pieces.append((j, la, lb - la, refs))
                j += 1
            yield ChunkSpec(
                g, self.seed, start, count, pieces, self.method, self.bits_per_block, self.layout,
                self.block_size, self.max_block_size, self.options, nthreads, labels, self.max_excess,
            )  # fmt: skip

    def _preflight(self) -> int | None:
        """Checks the method and options on a one-element group before any output; returns
        the method's budget in bits (None: an exact method)."""
        kw = dict(
            method=self.method, bits_per_block=self.bits_per_block, layout=self.layout,
            max_block_size=self.max_block_size, block_size=self.block_size, threads=1, **self.options,
        )  # fmt: skip
        one = (0, self.seed, 0, np.zeros(1), np.full(1, 0.5), 0.0, 1.0)
        fmt.encode_group_payloads(*one, **kw)
        return fmt.check_group_budget(*one, max_excess=None, **kw)

    def _check_budget(self, coded: list[_Coded], total: int) -> None:
        """The strict pass of ``max_excess``: every group's blocks against the budget, before
        any group is coded (on local threads; it reads the inputs once more)."""
        groups = fmt.Layout._ranges(total, self.chunk_size)
        with _progress(total, "checking budget", self.progress) as bar:
            results = _run_threads(self._specs(coded, groups, ship=None), self.workers, check_chunk)
            with contextlib.closing(results):
                for g in results:
                    bar.update(groups[g][1])

    def close(self) -> fmt.Report:
        """Checks the inputs, encodes, writes the file (atomically) and returns the report
        (:class:`relcode.format.Report` without ``decoded`` values)."""
        if self._closed:
            raise InputError("this encoder is closed")
        self._closed = True
        coded, raw, specs = self._table()
        inputs = self.input_paths
        _output.check_destination(self.dest, inputs)  # before any work
        total_coded = sum(t.size for t in coded)
        if self.check:  # every error that bad input can cause, before any output
            with _progress(total_coded, "checking", self.progress) as bar:
                for t in coded:
                    _check_coded(t)
                    bar.update(t.size)
        if total_coded:
            budget = self._preflight()
            if self.max_excess is not None and budget is not None:
                self._check_budget(coded, total_coded)
        sw = fmt.StreamWriter(
            self.dest, specs, seed=self.seed, chunk_size=self.chunk_size, digest=self.digest,
            metadata=self.metadata, inputs=inputs,
        )  # fmt: skip
        stats = _Stats([t.name for t in coded], sw.names if self.digest == "all" else [])
        try:
            with _progress(total_coded + sum(r.size for r in raw), "encoding", self.progress) as bar:
                for r in raw:
                    self._write_raw(sw, r, stats, bar)
                self._write_groups(sw, coded, stats, bar)
            digests = sw.close()
        except BaseException:
            sw.abort()
            raise
        h = hashlib.sha256()
        with open(self.dest, "rb") as f:
            for blk in iter(lambda: f.read(1 << 20), b""):
                h.update(blk)
        sha = dict(zip(sw.names, digests)) if self.digest == "tensor" else stats.hexdigests()
        self.report = fmt.Report(
            blocks=stats.blocks,
            groups=len(sw.groups),
            bits=stats.bits,
            bytes=self.dest.stat().st_size,
            kl={t.name: stats.kl[k] for k, t in enumerate(coded)},
            sha256=sha,
            file_sha256=h.hexdigest(),
            steps=stats.steps,
            rate=stats.rate,
        )
        return self.report

    def _write_raw(self, sw: fmt.StreamWriter, r: _Raw, stats: _Stats, bar: Any) -> None:
        """A raw tensor in the canonical DATA pieces (one empty piece for an empty tensor)."""
        for a, b in _tensorfiles.iter_pieces(r.size, _RAW_PIECE) if r.size else [(0, 0)]:
            piece = np.asarray(r.src.read(a, b))
            sw.write_raw(r.name, piece, start=a)
            stats.hash(r.name, np.ascontiguousarray(piece, piece.dtype.newbyteorder("<")))
            bar.update(b - a)

    def _write_groups(self, sw: fmt.StreamWriter, coded: list[_Coded], stats: _Stats, bar: Any) -> None:
        """Encodes the groups (threads or Dask) and writes them in order as they come."""
        groups = sw.groups
        if self.client is not None:
            opts = dict(self.dask_options)
            ship = bool(opts.pop("read_on_workers", True))
            results = run_dask(self.client, self._specs(coded, groups, ship=ship), **opts)
        else:
            results = _run_threads(self._specs(coded, groups, ship=None), self.workers)
        starts = np.cumsum([0] + [t.size for t in coded]).tolist()
        with contextlib.closing(results):  # on an error, stop the work still in flight at once
            for res in results:
                sw.write_group(res.g, res.layo, res.msgs, res.values, p_mean=res.p_mean, p_std=res.p_std)
                stats.add(res)
                s0, c0 = groups[res.g]
                for k, t in enumerate(coded):
                    a, b = max(s0, starts[k]), min(s0 + c0, starts[k + 1])
                    if b > a:
                        stats.hash(t.name, res.values[a - s0 : b - s0].astype("<f4"))
                bar.set_postfix_str(f"chunks {res.g + 1}/{len(groups)}", refresh=False)
                bar.update(c0)

    def abort(self) -> None:
        """Discards the encoder; nothing is written."""
        self._closed = True

    def __enter__(self) -> StreamEncoder:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()


# ---------------------------------------------------------------------------------------
# The decoder


class StreamDecoder:
    """A relcode file decoded lazily, in bounded memory: use :func:`open_decoder`.

    The coded vector is decoded a *batch* of groups at a time (at most ``piece`` elements,
    or one group if it is larger), each batch in parallel on ``threads`` threads (default:
    all cores), and the last batch is kept, so tensors that share a group cost one decode.
    Memory is a batch and its decoding state (about 40 bytes per element) plus the layout. Pieces come
    out in file order; per-tensor SHA-256 digests are checked as each tensor ends (and a
    file-wide ``digest="all"`` one when a pass over every tensor ends), so a consumer that
    writes pieces as they come must discard its output on a
    :class:`~relcode.errors.ChecksumError`, as :meth:`write` does.
    """

    def __init__(self, file: fmt.File, *, threads: int | None = None, piece: int = 1 << 21):
        self.file = file
        self.threads = _checks.threads(threads)
        self.names: list[str] = file.names  # raises when a referenced base file is missing
        info = file.info
        self._info = {t["name"]: t for t in info["tensors"]}
        self._messages = bool(info["messages"])
        self._digest = info["digest"]
        digests = list(info["digests"])
        self._tensor_digest = dict(zip(self.names, digests)) if self._digest == "tensor" else {}
        self._all_digest = digests[0] if self._digest == "all" and digests else None
        # A file with K instances of its base's coded tensors has K coded vectors end to end
        # (instance i's element e at i N + e) and decodes its coded tensors stacked (K, ...).
        k = int(info.get("instances") or 1)
        stacked = info.get("instances") is not None
        per = k if stacked else 1
        one = {t["name"]: math.prod(t["shape"]) // per for t in info["tensors"] if t["coded"]}
        n_one = sum(one.values())
        self._ranges: dict[str, list[tuple[int, int]]] = {}
        at = 0
        for t in info["tensors"]:
            if t["coded"]:
                n = one[t["name"]]
                self._ranges[t["name"]] = [(i * n_one + at, i * n_one + at + n) for i in range(k)]
                at += n
        # Batches of whole groups, [start, stop) of the coded vector: at most `piece` elements
        # (or one group), decoded by one native call, in parallel over the groups and blocks.
        self._batches: list[tuple[int, int]] = []
        cur: list[tuple[int, int]] = []
        groups = [(i * n_one + int(g["start"]), int(g["count"])) for i in range(k) for g in info["groups"]]
        for s, c in groups:
            if cur and s + c - cur[0][0] > piece:
                self._batches.append((cur[0][0], cur[-1][0] + cur[-1][1]))
                cur = []
            cur.append((s, c))
        if cur:
            self._batches.append((cur[0][0], cur[-1][0] + cur[-1][1]))
        self._batch_starts = [b[0] for b in self._batches]
        self._cache: tuple[int, np.ndarray] | None = None

    # -- what the file holds --

    @property
    def tensors(self) -> dict[str, dict[str, Any]]:
        """Name -> {shape, dtype, coded} of every tensor the file decodes to, in file order."""
        info = self._info
        return {
            n: {"shape": tuple(info[n]["shape"]), "dtype": info[n]["dtype"], "coded": info[n]["coded"]}
            for n in self.names
        }

    @property
    def metadata(self) -> Any:
        """The file's metadata (its base's when it has none of its own)."""
        meta = self.file.metadata
        return self.file.base_metadata if meta is None else meta

    @property
    def num_elements(self) -> int:
        return sum(math.prod(self._info[n]["shape"]) for n in self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._info and name in self.names

    def __getitem__(self, name: str) -> np.ndarray:
        return self.tensor(name)

    # -- decoding --

    def _batch(self, b: int) -> np.ndarray:
        if self._cache is None or self._cache[0] != b:
            self._cache = None  # free the previous batch first
            s, e = self._batches[b]
            self._cache = (b, self.file.decode_range(s, e, threads=self.threads))
        return self._cache[1]

    def _coded_pieces(self, a: int, b: int) -> Iterator[np.ndarray]:
        import bisect

        while a < b:
            k = bisect.bisect_right(self._batch_starts, a) - 1
            s, e = self._batches[k]
            if not s <= a < e:  # the batches tile the coded vector; anything else is a bug
                raise FormatError(f"coded element {a} is outside the file's groups")
            vals = self._batch(k)
            stop = min(b, e)
            yield vals[a - s : stop - s]
            a = stop

    def _check(self, name: str, h: Any) -> None:
        want = self._tensor_digest.get(name)
        if want is not None and h.hexdigest() != want:
            raise ChecksumError(f"tensor {name!r} does not decode to the SHA-256 the file records")

    def pieces(self, names: Iterable[str] | None = None) -> Iterator[tuple[str, int, np.ndarray]]:
        """``(name, start, values)``: consecutive flat pieces of each tensor (all of them by
        default, always in file order), ``values`` holding elements ``start:start + len``.
        Coded tensors come as float32 pieces of at most a batch (one empty piece when they
        have no elements); raw tensors whole."""
        wanted = None if names is None else set(names)
        if wanted is not None:
            missing = wanted - set(self.names)
            if missing:
                raise KeyError(sorted(missing)[0])
        whole = self._all_digest is not None and wanted is None
        h_all = hashlib.sha256() if whole else None
        for name in self.names:
            if wanted is not None and name not in wanted:
                continue
            t = self._info[name]
            if t["coded"]:
                if not self._messages:
                    raise InputError(f"{name!r} has no messages: this is a base file")
                h = hashlib.sha256() if name in self._tensor_digest else None
                at = 0
                for a, b in self._ranges[name]:
                    for v in self._coded_pieces(a, b) if b > a else [np.zeros(0, dtype=np.float32)]:
                        if h is not None:
                            h.update(v.astype("<f4", copy=False))
                        if h_all is not None:
                            h_all.update(v.astype("<f4", copy=False))
                        yield name, at, v
                        at += v.size
                if h is not None:
                    self._check(name, h)
            else:
                arr = self.file.tensor(name, threads=self.threads).reshape(-1)  # digest checked there
                if h_all is not None:
                    h_all.update(np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")))
                yield name, 0, arr
        if h_all is not None and h_all.hexdigest() != self._all_digest:
            raise ChecksumError("the file's tensors do not decode to the SHA-256 the file records")

    def tensor(self, name: str) -> np.ndarray:
        """One tensor, decoded (float32 for coded tensors; raw ones keep their dtype). Its
        SHA-256 is checked when the file records one per tensor (the default); a file with
        one digest for everything (``digest="all"``) is checked by :meth:`items`,
        :meth:`verify` and :meth:`write`, which go through every tensor."""
        if name not in self.names:
            raise KeyError(name)
        t = self._info[name]
        shape = tuple(t["shape"])
        if not t["coded"]:
            return self.file.tensor(name, threads=self.threads)
        out = _buffer(name, math.prod(shape), np.float32)
        for _, s, v in self.pieces([name]):
            out[s : s + v.size] = v
        return out.reshape(shape)

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, array)`` for every tensor in file order, one tensor in memory at a time."""
        cur: str | None = None
        buf = np.empty(0)
        for name, s, v in self.pieces():
            if name != cur:
                if cur is not None:
                    yield cur, buf.reshape(tuple(self._info[cur]["shape"]))
                cur = name
                t = self._info[name]
                buf = _buffer(name, math.prod(t["shape"]), np.float32 if t["coded"] else v.dtype)
            buf[s : s + v.size] = v
        if cur is not None:
            yield cur, buf.reshape(tuple(self._info[cur]["shape"]))

    def verify(self, *, progress: bool | None = False) -> dict[str, Any]:
        """Checks every chunk's CRC32C, decodes everything a batch at a time and checks every
        SHA-256; raises a :class:`~relcode.errors.FormatError` (or subclass) unless intact."""
        self.file.check_chunks()
        with _progress(self.num_elements, "verifying", progress) as bar:
            for _, _, v in self.pieces():
                bar.update(v.size)
        info = self.file.info
        return {"tensors": len(self.names), "digests": info["digests"], "bytes": info["bytes"]}

    def write(
        self,
        dest: str | os.PathLike,
        *,
        metadata: Mapping[str, str] | None = None,
        progress: bool | None = False,
    ) -> None:
        """Writes every tensor to ``dest`` (``.safetensors``, ``.npz``, ``.pt``/``.pth``: a
        torch state_dict) tensor by tensor, piece by piece, without holding the model (a
        ``.pt`` holds one tensor at a time). The output appears only when complete and every
        digest matched. For safetensors, ``metadata`` (default: the file's metadata when it
        is a map of strings) becomes the ``__metadata__``."""
        if metadata is None and isinstance(self.metadata, dict):
            if all(isinstance(k, str) and isinstance(v, str) for k, v in self.metadata.items()):
                metadata = self.metadata
        table = []
        for n in self.names:
            t = self._info[n]
            table.append((n, "float32" if t["coded"] else t["dtype"], tuple(t["shape"])))
        _output.check_destination(dest, self.file.paths)  # never over the file being read
        with (
            _tensorfiles.open_writer(dest, table, dict(metadata or {})) as w,
            _progress(self.num_elements, "decoding", progress) as bar,
        ):
            for name, _, v in self.pieces():
                w.write(name, v)
                bar.update(v.size)

    def write_safetensors(self, dest: str | os.PathLike, **kw: Any) -> None:
        """:meth:`write` to a ``.safetensors`` path."""
        if Path(dest).suffix != ".safetensors":
            raise InputError(f"{dest}: expected a .safetensors path")
        self.write(dest, **kw)

    def write_torch(self, dest: str | os.PathLike, **kw: Any) -> None:
        """:meth:`write` a torch state_dict to a ``.pt`` or ``.pth`` path."""
        if Path(dest).suffix not in (".pt", ".pth"):
            raise InputError(f"{dest}: expected a .pt or .pth path")
        self.write(dest, **kw)

    def close(self) -> None:
        self._cache = None
        self.file.close()

    def __enter__(self) -> StreamDecoder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<relcode.StreamDecoder {len(self.names)} tensors, {self.num_elements} elements>"


def _buffer(name: str, n: int, dtype: Any) -> np.ndarray:
    """An uninitialised array for a decoded tensor; memory the machine cannot provide for a
    size the file claims is a :class:`~relcode.errors.LimitError`, like the native reader's."""
    try:
        return np.empty(n, dtype=dtype)
    except MemoryError:
        raise LimitError(f"cannot allocate {n} elements for tensor {name!r}: not enough memory") from None


def open_decoder(
    source: fmt.Source,
    *,
    base: fmt.Source | None = None,
    base_dirs: Iterable[str | os.PathLike] = (),
    threads: int | None = None,
    max_elements: int | None = None,
) -> StreamDecoder:
    """Opens a file for lazy, bounded-memory decoding (a path is read on demand; bytes and
    file objects are read whole). ``base``/``base_dirs`` find a referenced base file as in
    :func:`relcode.format.open`; ``max_elements`` sets the reader's element limit (see
    :func:`relcode.format.open` for the default)."""
    f = fmt.open(source, base=base, base_dirs=base_dirs, max_elements=max_elements, lazy=True)
    return StreamDecoder(f, threads=threads)


def run_dask(
    client: Any,
    specs: Iterator[ChunkSpec],
    *,
    retries: int = 2,
    window: int | None = None,
    task: Callable[[ChunkSpec], ChunkResult] | None = None,
) -> Iterator[ChunkResult]:
    """Runs the groups of ``specs`` as tasks on a Dask ``client``, at most ``window`` unwritten
    at a time, and yields their results in group order (Dask's futures and ``as_completed``;
    no scheduling of our own); :mod:`relcode.distributed` is the front end."""
    from distributed import as_completed

    if window is None:
        window = 2 * max(1, sum(client.nthreads().values()))
    window = max(1, int(window))
    fn = task or encode_chunk
    token = uuid.uuid4().hex
    pending: dict[int, Any] = {}
    done: dict[int, ChunkResult] = {}
    ac = as_completed()
    it = iter(specs)

    def submit() -> None:
        spec = next(it, None)
        if spec is not None:
            fut = client.submit(fn, spec, key=f"relcode-encode-{token}-{spec.g}", pure=False, retries=retries)
            pending[spec.g] = fut
            ac.add(fut)

    nxt = 0
    try:
        for _ in range(window):
            submit()
        for fut in ac:
            res = fut.result()  # the task's exception, once Dask has given up on it
            pending.pop(res.g, None)
            done[res.g] = res
            del fut
            while nxt in done:
                yield done.pop(nxt)
                nxt += 1
                submit()
    finally:
        if pending:
            client.cancel(list(pending.values()))
