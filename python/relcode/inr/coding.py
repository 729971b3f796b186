"""Progressive coding of INR weights (COMBINER section 3.6, RECOMBINER) on the shared engine
:mod:`relcode.coding`.

A block's message selects one of 2^16 candidate weight vectors drawn from the prior; the
selected sample is only approximately a sample of the posterior, and the weights coded later
can compensate for the error of the weights coded earlier. So the encoder codes in rounds of
geometrically growing size: each round codes the blocks whose current KL is largest
(RECOMBINER's order; a message is stored by block id, so the order costs nothing), fixes
their weights to the coded values, and fine-tunes the blocks still uncoded for a few steps,
with their betas still pulled towards the 16-bit budget.

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

from ..coding import Blocks, CodedBlocks, Coder, growing_rounds, progressive
from ..errors import InputError
from ..typing import Device

__all__ = ["ChannelOptions", "EncodeResult", "decode_weights", "encode_progressive"]


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

    def coder(self, *, device: Device = "cpu", threads: int | None = None) -> Coder:
        """The :class:`relcode.coding.Coder` of these options."""
        return Coder(self.method, self.options(), int(self.seed), device=device, threads=threads)


@dataclass
class EncodeResult:
    """Messages of every block (uint64, by block id), the coded weights (P, N) float32,
    and per-round statistics."""

    messages: np.ndarray
    weights: np.ndarray
    bits: int
    rounds: list[dict[str, float]] = field(default_factory=list)


class _SirenTarget:
    """A :class:`~relcode.inr.model.BayesianSiren` as the engine's target."""

    def __init__(self, model, trainer, betas, p_mean, p_std, adjust_every: int) -> None:
        import torch

        self.model, self.trainer, self.betas = model, trainer, betas
        self.p_mean, self.p_std = p_mean, p_std
        self.adjust_every = adjust_every
        self.N = model.arch.num_params
        self.weights = np.zeros(model.num_signals * self.N, dtype=np.float32)
        self.active = torch.ones(betas.num_blocks, dtype=torch.bool, device=betas.beta.device)

    def posterior(self):
        import torch

        with torch.no_grad():
            q_mean = self.model.mean.detach().reshape(-1).double().cpu().numpy()
            q_std = self.model.std().detach().reshape(-1).double().cpu().numpy()
        return q_mean, q_std, self.p_mean, self.p_std

    def block_kl(self) -> np.ndarray:
        import torch

        from .model import LN2

        with torch.no_grad():
            return self.betas.block_kl(self.model.kl().reshape(-1) / LN2).cpu().numpy()

    def fix(self, coded: CodedBlocks) -> None:
        import torch

        mem, val = coded.flat()
        self.weights[mem] = val
        self.model.fix(mem // self.N, mem % self.N, val)
        self.active[torch.as_tensor(coded.blocks, device=self.active.device)] = False

    def finetune(self, _round: int, steps: int, _remaining: np.ndarray) -> None:
        from .model import LN2

        self.trainer.reset()
        for t in range(steps):
            _, kl = self.trainer.step(self.betas.per_element(self.model.mean.shape), full=True)
            if t % self.adjust_every == 0:
                self.betas.adjust(kl / LN2, self.active)


def encode_progressive(
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
    device: Device = "auto",
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> EncodeResult:
    """Codes every block of a trained :class:`~relcode.inr.model.BayesianSiren` (P signals
    of N parameters; ``blocks`` over the flat P x N vector, ``p_mean``/``p_std`` its
    float32 prior) in ``rounds`` rounds, with ``finetune_steps`` Adam steps in all spread
    over the rounds between them (more per block early on). ``trainer`` and ``betas`` are
    the :class:`~relcode.inr.train.Trainer` and :class:`~relcode.inr.train.BlockBetas` of
    the posterior fit. ``device`` is where the channel searches ("auto": a GPU when one is
    usable; the messages are the same). Returns the messages and the coded weights."""
    S, N = model.num_signals, model.arch.num_params
    if blocks.num_elements != S * N:
        raise InputError(f"the blocks cover {blocks.num_elements} elements, the model has {S * N}")
    p_mean = np.ascontiguousarray(p_mean, dtype=np.float32).reshape(-1)
    p_std = np.ascontiguousarray(p_std, dtype=np.float32).reshape(-1)
    nb = blocks.num_blocks
    sizes = growing_rounds(nb, rounds)
    # fine-tuning steps after each round, proportional to the blocks still uncoded
    remaining = nb - np.cumsum(sizes)
    share = remaining / max(1, remaining.sum())
    ft = [math.ceil(finetune_steps * s) for s in share]
    target = _SirenTarget(model, trainer, betas, p_mean, p_std, adjust_every)
    coder = opts.coder(device=device, threads=threads)
    res = progressive(target, blocks, coder, sizes, order="largest_kl", steps=ft, on_round=progress)
    return EncodeResult(res.messages, target.weights.reshape(S, N), res.total_bits, res.rounds)


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
    return opts.coder(threads=threads).decode(np.asarray(messages, dtype=np.uint64), blocks, p_mean, p_std)
