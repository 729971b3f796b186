"""Encoding on a Dask cluster: one task per group, results written in group order.

Why the bytes equal the single-machine encoder's: a group's chunks are a pure function of
its slice of the posterior, the seed and the options (spec/format.md, section 6.3), and the
task is the very function the threads of :class:`relcode.StreamEncoder` run
(:func:`relcode.streaming.encode_chunk`). Dask decides where and when each task runs; the
client writes the results strictly in group order. Placement, timing and re-execution
therefore never change a byte: when a worker dies, the scheduler runs its tasks again
elsewhere (up to ``distributed.scheduler.allowed-failures`` times), and a task that raises
is run again ``retries`` times; either way the rerun computes the same result from the same
spec. The client keeps at most ``window`` groups submitted but not yet written, so its
memory is bounded too; the file appears at ``dest`` only when every group was written, and
an error, a lost cluster or Ctrl-C leaves nothing there.

Point it at a real cluster by connecting a client to its scheduler; the workers need relcode
installed and, by default, the posterior file at the same path (a shared file system)::

    from dask.distributed import Client
    import relcode.distributed

    client = Client("tcp://scheduler:8786")
    report = relcode.distributed.encode(
        "model.relc", "/shared/posterior.safetensors", client=client, seed=0, bits_per_block=16
    )

With ``read_on_workers=False`` the client reads each group's slice and ships it with the
task instead. The command line does the same with
``relcode encode POSTERIOR -o MODEL.relc --scheduler tcp://scheduler:8786``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from . import streaming
from .errors import InputError
from .format import Report

__all__ = ["encode"]


def encode(
    dest: str | os.PathLike,
    posterior: str | os.PathLike | Mapping[str, Any],
    *,
    client: Any,
    seed: int,
    prior_mean: float = 0.0,
    prior_std: float | None = None,
    read_on_workers: bool = True,
    retries: int = 2,
    window: int | None = None,
    _task: Callable[[streaming.ChunkSpec], streaming.ChunkResult] | None = None,
    **options: Any,
) -> Report:
    """Encodes a posterior into ``dest`` with the groups as tasks on ``client``'s cluster
    (a ``dask.distributed.Client``); the file is byte-identical to that of
    :class:`relcode.StreamEncoder` (and :func:`relcode.encode`) with the same arguments.

    ``posterior`` is a posterior safetensors file (see :mod:`relcode.streaming`; its
    per-layer default prior is ``prior_mean``/``prior_std``) or a mapping like that of
    :func:`relcode.encode`: name -> ``(q_mean, q_std, p_mean, p_std)`` or a raw array.
    ``retries`` re-runs a task that raised; ``window`` bounds the groups in flight (default:
    twice the cluster's worker threads). Other keywords are those of
    :class:`relcode.StreamEncoder` (``method``, ``bits_per_block``, ``chunk_size``...);
    a task's blocks run on its worker process's shared native thread pool (all its cores).
    """
    if client is None:
        raise InputError("give a dask.distributed Client (client=...)")
    dask_options = {
        "retries": int(retries),
        "window": window,
        "read_on_workers": read_on_workers,
        "task": _task,
    }
    enc = streaming.StreamEncoder(dest, seed=seed, client=client, dask_options=dask_options, **options)
    if isinstance(posterior, (str, os.PathLike)):
        enc.add_safetensors(posterior, prior_mean=prior_mean, prior_std=prior_std)
    elif isinstance(posterior, Mapping):
        for name, v in posterior.items():
            if isinstance(v, tuple):
                if len(v) != 4:
                    raise InputError(f"{name!r}: expected (q_mean, q_std, p_mean, p_std), got {len(v)} items")
                enc.add(name, v[0], v[1], prior_mean=v[2], prior_std=v[3])
            else:
                enc.add_raw(name, v)
    else:
        raise InputError("posterior must be a safetensors path or a mapping of tensors")
    return enc.close()
