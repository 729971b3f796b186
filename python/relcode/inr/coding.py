"""Progressive coding of INR weights: relative entropy coding block by block, with the
remaining posteriors fine-tuned in between (COMBINER section 3.6, RECOMBINER).

A block's message selects one of 2^16 candidate weight vectors drawn from the prior (the
shared randomness of :mod:`relcode.channel`); the selected sample is only approximately a
sample of the posterior, and the weights coded later can compensate for the error of the
weights coded earlier. So the encoder codes in *rounds*: each round codes the blocks whose
current KL is largest (RECOMBINER's order; a message is stored by block id, so the order
costs nothing), fixes their weights to the coded values, and fine-tunes the blocks still
uncoded for a few steps, with their betas still pulled towards the 16-bit budget. Blocks of
one round are coded in parallel: one channel call per block size, every block with its own
stream id, so the messages do not depend on how blocks were batched.

Decoding needs no training and no torch: every block's message, prior and stream id give its
weights (:func:`decode_weights`); the networks are then evaluated by
:meth:`~relcode.inr.siren.Architecture.forward`. The encoder's reconstruction is computed the
same way from the same coded weights, which is what makes decompression exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import channel
from ..errors import InputError
from .grouping import Blocks

__all__ = ["ChannelOptions", "EncodeResult", "decode_weights", "progressive_encode", "round_sizes"]


@dataclass(frozen=True)
class ChannelOptions:
    """How every block is coded: truncated ``pfr`` over 2^16 candidates by default (one
    16-bit index per block), optionally from a shared candidate pool (faster encoding, same
    distribution per block)."""

    method: str = "pfr"
    bits: int = 16
    pool: bool = False
    seed: int = 0

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"bits": int(self.bits)}
        if self.pool:
            opts["pool"] = True
        return opts


@dataclass
class EncodeResult:
    """Messages of every block (uint64, by block id), the coded weights (P, N) float32,
    and per-round statistics."""

    messages: np.ndarray
    weights: np.ndarray
    bits: int
    rounds: list[dict[str, float]] = field(default_factory=list)


def round_sizes(num_blocks: int, rounds: int) -> list[int]:
    """Blocks coded in each of ``rounds`` rounds: geometric growth, so the first rounds
    (when fine-tuning helps most) code few blocks and later rounds many."""
    if num_blocks == 0:
        return []
    rounds = max(1, min(int(rounds), num_blocks))
    w = np.geomspace(1.0, 4.0, rounds)
    raw = w / w.sum() * num_blocks
    sizes = np.maximum(1, np.floor(raw)).astype(int)
    i = 0
    while sizes.sum() < num_blocks:
        sizes[-1 - (i % rounds)] += 1
        i += 1
    while sizes.sum() > num_blocks:
        j = int(np.argmax(sizes))
        sizes[j] -= 1
    return [int(s) for s in sizes if s > 0]


def _code_blocks(
    blocks: Blocks,
    chosen: np.ndarray,
    q_mean: np.ndarray,
    q_std: np.ndarray,
    p_mean: np.ndarray,
    p_std: np.ndarray,
    opts: ChannelOptions,
    threads: int | None,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Codes the chosen blocks; returns their messages and (members, values) per size."""
    msgs = np.zeros(chosen.size, dtype=np.uint64)
    pos = {int(b): k for k, b in enumerate(chosen)}
    placed = []
    for _, bs in blocks.by_size(chosen).items():
        mem = blocks.member_matrix(bs)
        code = channel.encode(
            q_mean[mem],
            q_std[mem],
            p_mean[mem],
            p_std[mem],
            method=opts.method,
            seed=opts.seed,
            ids=blocks.ids[bs],
            threads=threads,
            **opts.options(),
        )
        for k, b in enumerate(bs):
            msgs[pos[int(b)]] = code.message[k]
        placed.append((mem.reshape(-1), code.sample.reshape(-1)))
    return msgs, placed


def progressive_encode(
    model,
    trainer,
    betas,
    blocks: Blocks,
    p_mean: np.ndarray,
    p_std: np.ndarray,
    opts: ChannelOptions = ChannelOptions(),
    *,
    rounds: int = 20,
    finetune_steps: int = 300,
    adjust_every: int = 5,
    threads: int | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> EncodeResult:
    """Codes every block of a trained :class:`~relcode.inr.model.BayesianSiren` (P signals
    of N parameters; ``blocks`` over the flat P x N vector, ``p_mean``/``p_std`` its
    float32 prior) in ``rounds`` rounds, with ``finetune_steps`` Adam steps in all spread
    over the rounds between them (more per block early on). ``trainer`` and ``betas`` are
    the :class:`~relcode.inr.train.Trainer` and :class:`~relcode.inr.train.BlockBetas` of
    the posterior fit. Returns the messages and the coded weights."""
    import torch

    from .model import LN2

    S, N = model.num_signals, model.arch.num_params
    if blocks.num_elements != S * N:
        raise InputError(f"the blocks cover {blocks.num_elements} elements, the model has {S * N}")
    p_mean = np.ascontiguousarray(p_mean, dtype=np.float32).reshape(-1)
    p_std = np.ascontiguousarray(p_std, dtype=np.float32).reshape(-1)
    nb = blocks.num_blocks
    messages = np.zeros(nb, dtype=np.uint64)
    coded = np.zeros(nb, dtype=bool)
    weights = np.zeros(S * N, dtype=np.float32)
    sizes = round_sizes(nb, rounds)
    # fine-tuning steps after each round, proportional to the blocks still uncoded
    remaining = nb - np.cumsum(sizes)
    share = remaining / max(1, remaining.sum())
    ft = [math.ceil(finetune_steps * s) for s in share]
    history: list[dict[str, float]] = []
    active = torch.ones(nb, dtype=torch.bool, device=betas.beta.device)
    for r, k in enumerate(sizes):
        with torch.no_grad():
            kl_bits = model.kl().reshape(-1) / LN2
            bk = betas.block_kl(kl_bits).cpu().numpy()
            q_mean = model.mean.detach().reshape(-1).double().cpu().numpy()
            q_std = model.std().detach().reshape(-1).double().cpu().numpy()
        cand = np.flatnonzero(~coded)
        chosen = cand[np.argsort(-bk[cand], kind="stable")[:k]]
        msgs, placed = _code_blocks(blocks, chosen, q_mean, q_std, p_mean, p_std, opts, threads)
        messages[chosen] = msgs
        coded[chosen] = True
        active[torch.as_tensor(chosen, device=active.device)] = False
        for mem, val in placed:
            weights[mem] = val
            model.fix(mem // N, mem % N, val)
        trainer.reset()
        for t in range(ft[r]):
            _, kl = trainer.step(betas.per_element(model.mean.shape), full=True)
            if t % adjust_every == 0:
                betas.adjust(kl / LN2, active)
        rec = {
            "round": r,
            "coded_blocks": int(coded.sum()),
            "kl_coded_bits": float(bk[chosen].sum()),
            "kl_max_bits": float(bk[chosen].max()),
            "finetune_steps": ft[r],
        }
        history.append(rec)
        if progress is not None:
            progress(r, rec)
    bits = int(channel.message_bits(messages, opts.method, **opts.options()).sum()) if nb else 0
    return EncodeResult(messages, weights.reshape(S, N), bits, history)


def decode_weights(
    messages: np.ndarray,
    blocks: Blocks,
    p_mean: np.ndarray,
    p_std: np.ndarray,
    opts: ChannelOptions = ChannelOptions(),
    *,
    threads: int | None = None,
) -> np.ndarray:
    """The flat coded weights (float32) from every block's message."""
    msgs = np.asarray(messages, dtype=np.uint64).reshape(-1)
    if msgs.size != blocks.num_blocks:
        raise InputError(f"expected {blocks.num_blocks} messages, got {msgs.size}")
    p_mean = np.ascontiguousarray(p_mean, dtype=np.float32).reshape(-1)
    p_std = np.ascontiguousarray(p_std, dtype=np.float32).reshape(-1)
    out = np.zeros(blocks.num_elements, dtype=np.float32)
    for d, bs in blocks.by_size().items():
        mem = blocks.member_matrix(bs)
        x = channel.decode(
            msgs[bs],
            p_mean[mem],
            p_std[mem],
            method=opts.method,
            seed=opts.seed,
            ids=blocks.ids[bs],
            dim=d,
            threads=threads,
            **opts.options(),
        )
        out[mem.reshape(-1)] = x.reshape(-1)
    return out
