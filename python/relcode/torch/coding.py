"""Progressive coding: blocks are coded one round at a time, the rest fine-tuned in between.

MIRACLE's observation is that coding a block replaces its posterior by one sample, and
re-optimising the blocks not yet coded to fit that sample ("retraining the rest") is what
keeps the network accurate: the family becomes auto-regressive over blocks. Coding all blocks
at once would leave every block's sample error uncorrected.

One round codes several blocks with one batched channel call (one call per block size),
freezes them at the coded float32 samples, which are exactly what decoders reconstruct, then
runs a few fine-tuning steps on everything still uncoded. The coding distribution is frozen
before the first round. The channel's candidate search runs on a GPU when one is usable
(``channel_device="auto"``, fixed-budget methods, :mod:`relcode.gpu`) and on the CPU otherwise;
both choose the same messages, and the coded samples are always decoded from the messages on
the CPU, so they are bit-exact on every machine, whatever device trains the model.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import channel
from ..errors import InputError
from .bayesian import BayesianModel
from .training import Trainer

__all__ = ["Encoded", "code_blocks", "encode_progressive"]

#: Methods whose messages are a fixed-length index (the file size is known in advance).
FIXED_BUDGET = ("pfr", "mrc", "orc")


@dataclass
class Encoded:
    """What progressive coding produced, before it is written to a file."""

    method: str
    options: dict[str, Any]
    seed: int
    #: (n_blocks,) or (n_blocks, k) uint64 messages, in block-index order.
    messages: np.ndarray
    #: (n_blocks,) message lengths in bits.
    bits: np.ndarray
    #: (n_blocks,) KL(Q‖P) of each block, in bits, when it was coded.
    kl_bits: np.ndarray
    #: block indices in the order they were coded.
    order: list[int]
    #: fine-tuning steps run between rounds.
    steps: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_bits(self) -> int:
        return int(self.bits.sum())


def _channel_options(model: BayesianModel, method: str, options: dict[str, Any]) -> dict[str, Any]:
    opts = dict(options)
    if method in FIXED_BUDGET:
        opts.setdefault("bits", model.bits)
    return opts


@torch.no_grad()
def code_blocks(
    model: BayesianModel,
    blocks: Iterable[int],
    method: str,
    options: dict[str, Any],
    channel_device: Any = "auto",
) -> tuple[list[int], list[np.ndarray], np.ndarray, np.ndarray]:
    """Code ``blocks`` of ``model`` (prior frozen) with the channel, one call per block size,
    and freeze them at their samples. Returns (blocks, messages, bits, KL in bits).
    ``channel_device`` is where the channel searches (``"auto"``: a GPU when usable)."""
    blocks = [int(b) for b in blocks]
    if not model.prior.frozen:
        raise InputError("freeze the prior before coding (model.freeze_prior())")
    already = [b for b in blocks if bool(model.block_coded[b])]
    if already:
        raise InputError(f"blocks {already[:5]} are already coded")
    q_mean, q_std, p_mean, p_std = (t.detach().to("cpu", torch.float64).numpy() for t in model.posterior())
    ratio = q_std / p_std
    kl_var = np.log(p_std / q_std) + 0.5 * (ratio * ratio + ((q_mean - p_mean) / p_std) ** 2) - 0.5
    kl_all = np.bincount(model.blocks.block_of.cpu().numpy(), kl_var, model.n_blocks) / math.log(2.0)
    by_size: dict[int, list[int]] = {}
    for b in blocks:
        by_size.setdefault(int(model.blocks.sizes[b]), []).append(b)
    messages: dict[int, np.ndarray] = {}
    nbits: dict[int, int] = {}
    samples: dict[int, np.ndarray] = {}
    for _, group in sorted(by_size.items()):
        idx = np.stack([model.blocks.members[b] for b in group])
        ids = model.blocks.stream_ids[group]
        code = channel.encode(
            q_mean[idx],
            q_std[idx],
            p_mean[idx].astype(np.float32),
            p_std[idx].astype(np.float32),
            method=method,
            seed=model.seed,
            ids=ids,
            device=channel_device,
            **options,
        )
        for i, b in enumerate(group):
            messages[b] = code.message[i]
            nbits[b] = int(code.bits[i])
            samples[b] = code.sample[i]
    model.set_coded(blocks, [samples[b] for b in blocks])
    return (
        blocks,
        [messages[b] for b in blocks],
        np.array([nbits[b] for b in blocks], dtype=np.int64),
        kl_all[blocks],
    )


def _schedule(n_blocks: int, rounds: int) -> list[int]:
    """Blocks per round: ``rounds`` rounds as equal as possible."""
    base, extra = divmod(n_blocks, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


def encode_progressive(
    model: BayesianModel,
    data: Iterable[Any] | None = None,
    *,
    loss_fn: Callable[[Any, Any], torch.Tensor] = F.cross_entropy,
    method: str = "pfr",
    rounds: int | None = None,
    steps: int | Callable[[int], int] = 50,
    order: str = "random",
    lr: float | None = None,
    beta_step: float | None = None,
    progress: bool = True,
    callback: Callable[[int, BayesianModel], Any] | None = None,
    device: str | torch.device | None = None,
    channel_device: Any = "auto",
    **options: Any,
) -> Encoded:
    """Freeze the prior, then code every block of ``model`` in ``rounds`` rounds with
    ``steps`` fine-tuning steps on ``data`` after each round but the last.

    ``order``: ``"random"`` (seeded, MIRACLE), ``"largest_kl"`` (the uncoded blocks with the
    largest current KL first, COMBINER/RECOMBINER) or ``"index"``. ``rounds`` defaults to one
    round per block when ``data`` is given (MIRACLE's schedule), and a single round without
    data. ``steps`` may be a function of the round index. ``callback(round, model)`` runs
    after each round's fine-tuning. ``device`` moves the model first (fine-tuning runs
    there); ``channel_device`` is where the channel searches (``"auto"``: a GPU when usable,
    which gives the same messages as the CPU). Extra ``options`` go to
    :func:`relcode.channel.encode` (for fixed-budget methods ``bits`` defaults to the model's
    ``bits``).
    """
    if not isinstance(model, BayesianModel):
        raise InputError("encode_progressive needs a relcode.torch.BayesianModel")
    if order not in ("random", "largest_kl", "index"):
        raise InputError(f"order must be 'random', 'largest_kl' or 'index', got {order!r}")
    if method not in channel.methods():
        raise InputError(f"unknown method {method!r}; choose from {sorted(channel.methods())}")
    opts = _channel_options(model, method, options)
    if device is not None:
        model.to(device)
    remaining = [b for b in range(model.n_blocks) if not bool(model.block_coded[b])]
    if not remaining:
        raise InputError("every block is already coded")
    if rounds is None:
        rounds = len(remaining) if data is not None else 1
    if not isinstance(rounds, int) or rounds < 1:
        raise InputError(f"rounds must be a positive integer, got {rounds!r}")
    rounds = min(rounds, len(remaining))
    step_fn = steps if callable(steps) else (lambda _r, n=int(steps): n)

    model.freeze_prior()
    if beta_step is not None and hasattr(model.posterior_param, "beta_step"):
        model.posterior_param.beta_step = float(beta_step)
    trainer = Trainer(model, data, loss_fn=loss_fn, lr=lr) if data is not None else None
    if order == "random":
        rng = np.random.Generator(np.random.PCG64([model.seed, 0x6F72646572]))
        remaining = [remaining[i] for i in rng.permutation(len(remaining))]

    n = model.n_blocks
    messages: list[Any] = [None] * n
    bits = np.zeros(n, dtype=np.int64)
    kl_bits = np.full(n, np.nan)
    done: list[int] = []
    t_code = t_train = 0.0
    total_steps = 0
    bar = tqdm(
        total=len(remaining), desc="coding blocks", unit="block", disable=not progress, file=sys.stderr
    )
    try:
        for r, count in enumerate(_schedule(len(remaining), rounds)):
            if order == "largest_kl":
                with torch.no_grad():
                    kl = model.block_kl().detach().cpu().numpy()
                pick = sorted(remaining, key=lambda b: (-kl[b], b))[:count]
            else:
                pick = remaining[:count]
            picked = set(pick)
            remaining = [b for b in remaining if b not in picked]
            t0 = time.perf_counter()
            blocks_r, msgs, nb, klb = code_blocks(model, pick, method, opts, channel_device)
            t_code += time.perf_counter() - t0
            for b, m, k, kb in zip(blocks_r, msgs, nb, klb):
                messages[b], bits[b], kl_bits[b] = m, k, kb
            done.extend(blocks_r)
            bar.update(len(blocks_r))
            if trainer is not None and remaining:
                k_steps = int(step_fn(r))
                if k_steps > 0:
                    t0 = time.perf_counter()
                    trainer.run(k_steps, progress=False)
                    t_train += time.perf_counter() - t0
                    total_steps += k_steps
            if callback is not None:
                callback(r, model)
    finally:
        bar.close()
    return Encoded(
        method=method,
        options=opts,
        seed=model.seed,
        messages=np.asarray(messages, dtype=np.uint64),
        bits=bits,
        kl_bits=kl_bits,
        order=done,
        steps=total_steps,
        seconds={"coding": t_code, "fine_tuning": t_train},
    )
