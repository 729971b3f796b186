"""``compress`` a Bayesian view into a relcode file; ``decompress`` it into an ordinary model.

The file (:mod:`relcode.format`) holds what a decoder needs and nothing the encoder alone
needs: the root seed; one coded float32 tensor per coded parameter (its variables: the
weights themselves, or one value per shared group) with its prior as exact float32 bits; the
fixed block layout (a seeded permutation and a block size); one message per block; the
uncoded state_dict entries verbatim; and, in the metadata, what turns variables back into
weights (original shape, group size and dtype of shared or non-float32 parameters; signs are
regenerated from the seed) plus a short fingerprint of the model's structure. Everything else
(posteriors, β, optimiser state) stays with the encoder.

``relcode.decode`` turns the file into those float32 tensors without torch, and
``relcode.weights.state_dict`` into the plain weights, also without torch; :func:`decompress`
expands them into a plain ``state_dict`` and loads it like ``load_state_dict``, returning
missing and unexpected keys and honouring ``strict``.

Bit-exactness: the encoder freezes every block at the float32 sample the channel returns,
decoders regenerate exactly that sample, and expansion only multiplies by ±1. So the
decompressed model's weights, and hence its predictions on the same device, equal those of
the encoder's final coded model (``CompressionReport.model``); the writer checks the decoded
values against the frozen ones before it returns.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import channel, weights
from ..errors import InputError
from ..format import Writer
from .bayesian import BayesianModel, model_fingerprint
from .coding import Encoded, channel_options, encode_progressive

__all__ = [
    "CompressionReport",
    "IncompatibleKeys",
    "compress",
    "decompress",
    "file_size",
    "state_dict_from_decoded",
]

META_KEY = weights.META_KEY
META_VERSION = weights.META_VERSION

Source = str | os.PathLike | bytes | IO[bytes]


class IncompatibleKeys(NamedTuple):
    """What :func:`decompress` could not match, as ``load_state_dict`` reports it."""

    missing_keys: list[str]
    unexpected_keys: list[str]


@dataclass
class CompressionReport:
    """The outcome of :func:`compress`."""

    #: bytes of the file written.
    bytes: int
    #: bits of the block messages (the rest of the file is header, priors and raw tensors).
    message_bits: int
    n_blocks: int
    n_variables: int
    #: the encoder's final coded model: an ordinary module carrying exactly the weights
    #: :func:`decompress` loads.
    model: nn.Module
    encoded: Encoded
    seconds: dict[str, float] = field(default_factory=dict)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _metadata(model: BayesianModel, raw: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """What decompress needs beyond the file's tensors, kept small (files are ~2 kB): the
    model's structure fingerprint, and per coded tensor whose variables are not its weights
    one to one (shared groups, dtype other than float32) its shape, group and dtype."""
    coded = {}
    for t in model.tensors:
        entry: dict[str, Any] = {}
        if t.group > 1:
            entry.update(shape=list(t.shape), group=t.group)
        if t.dtype != torch.float32:
            entry["dtype"] = _dtype_name(t.dtype)
        if entry:
            coded[t.name] = entry
    out: dict[str, Any] = {"version": META_VERSION, "fingerprint": model.fingerprint[:16]}
    if coded:
        out["coded"] = coded
    cast = {k: _dtype_name(v.dtype) for k, v in raw.items() if v.dtype not in _FILE_DTYPES}
    if cast:
        out["raw_dtype"] = cast
    return {META_KEY: out}


#: torch dtypes a file stores raw as they are (others, like bfloat16, go as float32).
_FILE_DTYPES = (
    torch.float16,
    torch.float32,
    torch.float64,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.bool,
)


def _raw_entries(model: BayesianModel, store_uncoded: bool) -> dict[str, torch.Tensor]:
    """The wrapped model's state_dict entries that are not coded (uncoded parameters and
    buffers), stored verbatim."""
    if not store_uncoded:
        return {}
    coded = {t.name for t in model.tensors}
    out = {}
    for k, v in model.module.state_dict().items():
        if k in coded:
            continue
        if v.dtype not in _FILE_DTYPES and not torch.is_floating_point(v):
            raise InputError(f"state_dict entry {k!r} has dtype {v.dtype}, which a file cannot store")
        out[k] = v.detach()
    return out


def compress(
    model: BayesianModel,
    dest: str | os.PathLike | IO[bytes],
    data: Iterable[Any] | None = None,
    *,
    loss_fn: Callable[[Any, Any], torch.Tensor] = F.cross_entropy,
    method: str = "pfr",
    rounds: int | None = None,
    steps: int | Callable[[int], int] = 50,
    order: str = "random",
    lr: float | None = None,
    beta_step: float | None = None,
    store_uncoded: bool = True,
    progress: bool = True,
    device: str | torch.device | None = None,
    channel_device: Any = "auto",
    **options: Any,
) -> CompressionReport:
    """Code every block of ``model`` progressively and write the file to ``dest``.

    ``data``, ``loss_fn``, ``rounds``, ``steps``, ``order``, ``lr`` and ``beta_step`` control
    the fine-tuning between rounds (:func:`relcode.torch.coding.encode_progressive`); without
    ``data`` all blocks are coded in one round. ``method`` and ``options`` go to the channel
    (default: truncated ``pfr`` over 2^bits candidates). Parameters the view does not code,
    and buffers, are stored verbatim (bfloat16 as float32) unless ``store_uncoded=False``.
    ``device`` moves the model before fine-tuning (CUDA when available, or the CPU);
    ``channel_device`` is where the channel searches (``"auto"``: a GPU when usable; the file
    is the same either way).
    """
    if not isinstance(model, BayesianModel):
        raise InputError("compress needs a relcode.torch.BayesianModel")
    t0 = time.perf_counter()
    encoded = encode_progressive(
        model,
        data,
        loss_fn=loss_fn,
        method=method,
        rounds=rounds,
        steps=steps,
        order=order,
        lr=lr,
        beta_step=beta_step,
        progress=progress,
        device=device,
        channel_device=channel_device,
        **options,
    )
    t1 = time.perf_counter()
    raw = _raw_entries(model, store_uncoded)
    size = _write_file(dest, model, encoded, raw, _metadata(model, raw))
    t2 = time.perf_counter()
    return CompressionReport(
        bytes=size,
        message_bits=encoded.total_bits,
        n_blocks=model.n_blocks,
        n_variables=model.n_vars,
        model=model.plain_model(),
        encoded=encoded,
        seconds={**encoded.seconds, "total_coding": t1 - t0, "writing": t2 - t1},
    )


def _writer(
    dest: Any,
    model: BayesianModel,
    method: str,
    options: Mapping[str, Any],
    messages: np.ndarray,
    raw: Mapping[str, torch.Tensor],
    metadata: dict[str, Any],
    require_frozen: bool = True,
) -> Writer:
    """A :class:`relcode.format.Writer` holding everything of the file but the closing."""
    writer = Writer(
        dest, model.layout, seed=model.seed, method=method, digest="all", metadata=metadata, **options
    )
    try:
        shapes = {t.name: t.file_shape for t in model.tensors}
        for name, (mean, std) in model.prior.tensors(require_frozen).items():
            writer.set_prior(name, mean.reshape(() if mean.ndim == 0 else shapes[name]),
                             std.reshape(() if std.ndim == 0 else shapes[name]))  # fmt: skip
        for name, value in raw.items():
            v = value.detach().cpu()
            if v.dtype not in _FILE_DTYPES:
                v = v.to(torch.float32)
            writer.add_raw(name, v.numpy())
        for b in range(model.n_blocks):
            writer.add_block(b, messages[b])
    except BaseException:
        writer.abort()
        raise
    return writer


def _write_file(
    dest: Any,
    model: BayesianModel,
    encoded: Encoded,
    raw: Mapping[str, torch.Tensor],
    metadata: dict[str, Any],
) -> int:
    """Write the file; returns its size in bytes. Checks that the writer's decoded values are
    the encoder's frozen ones, bit for bit."""
    writer = _writer(dest, model, encoded.method, encoded.options, encoded.messages, raw, metadata)
    report = writer.close()
    coded = model.coded_value.detach().cpu().numpy()
    for t in model.tensors:
        got = report.decoded[t.name].reshape(-1).view(np.uint32)
        if not np.array_equal(got, coded[t.slice].view(np.uint32)):
            raise RuntimeError(f"internal error: the file does not reproduce the coded values of {t.name!r}")
    return report.bytes


def file_size(
    model: BayesianModel, *, method: str = "pfr", store_uncoded: bool = True, **options: Any
) -> int:
    """The size in bytes of the file :func:`compress` will write for ``model`` with a
    fixed-budget method (every message has ``bits`` bits, so the size is known before any
    block is coded): for choosing the number of blocks that fits a byte budget."""
    opts = channel_options(model, method, options)
    if channel.budget_bits(method, **opts) is None:
        raise InputError(
            f"file sizes are known in advance only for fixed-budget methods (mrc, orc, pfr with bits, "
            f"dad_star), not {method} with {opts}"
        )
    fields = len(channel.message_fields(method, **opts))
    messages = np.zeros((model.n_blocks, fields) if fields > 1 else model.n_blocks, dtype=np.uint64)
    raw = _raw_entries(model, store_uncoded)
    buf = io.BytesIO()
    _writer(buf, model, method, opts, messages, raw, _metadata(model, raw), require_frozen=False).close()
    return len(buf.getvalue())


def _read_file(source: Source) -> tuple[dict[str, np.ndarray], dict[str, Any], int, list[str]]:
    """The decoded arrays, the relcode.torch metadata, the root seed and the coded tensors'
    names (in file order) of a file."""
    return weights.read(source)


_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


def state_dict_from_decoded(
    arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any], seed: int, coded_names: list[str]
) -> dict[str, torch.Tensor]:
    """Expand decoded arrays (``relcode.decode``'s output) into a plain state_dict using a
    relcode.torch file's metadata, root seed and coded tensor names (see
    :func:`relcode.weights.expand_arrays`, the torch-free version)."""
    out: dict[str, torch.Tensor] = {}
    for name, (a, dtype) in weights.expand_arrays(arrays, metadata, seed, coded_names).items():
        t = torch.from_numpy(np.array(a, dtype=a.dtype.newbyteorder("="), order="C", copy=True))
        if dtype is not None:
            t = t.to(_DTYPES[dtype])
        out[name] = t
    return out


def load_plain(
    model: nn.Module, state: Mapping[str, torch.Tensor], fingerprint: str | None, strict: bool = True
) -> IncompatibleKeys:
    """Load a decoded state_dict into ``model`` like ``load_state_dict``, with clear errors."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
        for k in state
        if k in own and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if mismatched:
        raise InputError("the model's structure does not match the file: " + "; ".join(mismatched[:10]))
    if strict:
        if missing or unexpected:
            raise InputError(
                "the model does not match the file (a file for another model?): "
                f"missing keys {missing[:10]}, unexpected keys {unexpected[:10]}; "
                "pass strict=False to load the matching entries"
            )
        if fingerprint is not None and not model_fingerprint(model).startswith(str(fingerprint)):
            raise InputError(
                "the file was written for a model with a different structure (module types differ); "
                "pass strict=False to load the matching entries anyway"
            )
    if len(missing) == len(own) and own:
        raise InputError("no entry of the file matches the model: it was written for another model")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return IncompatibleKeys(missing, unexpected)


def decompress(source: Source, model: nn.Module, strict: bool = True) -> IncompatibleKeys:
    """Decode a relcode.torch file into ``model`` (an ordinary module of the encoded
    architecture, on any device). Returns the missing and unexpected keys; with ``strict``
    (default) any of them, or a different model structure, raises
    :class:`~relcode.errors.InputError`. Shapes must always match."""
    arrays, metadata, seed, coded = _read_file(source)
    state = state_dict_from_decoded(arrays, metadata, seed, coded)
    return load_plain(model, state, metadata.get("fingerprint"), strict=strict)
