"""Progressive coding of a :class:`BayesianModel` on the shared engine :mod:`relcode.coding`.

MIRACLE's observation is that coding a block replaces its posterior by one sample, and
re-optimising the blocks not yet coded to fit that sample ("retraining the rest") is what
keeps the network accurate: the family becomes auto-regressive over blocks. Coding all blocks
at once would leave every block's sample error uncorrected.

One round codes several blocks with one batched channel call per block size, freezes them at
the coded float32 samples, which are exactly what decoders reconstruct, then runs a few
fine-tuning steps on everything still uncoded. The coding distribution is frozen before the
first round. The channel's candidate search runs on a GPU when one is usable
(``channel_device="auto"``, fixed-budget methods, :mod:`relcode.gpu`) and on the CPU
otherwise; both choose the same messages, and the coded samples are always decoded from the
messages on the CPU, so they are bit-exact on every machine, whatever device trains the model.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import channel
from ..coding import CodedBlocks, Coder, equal_rounds, progressive
from ..errors import InputError
from ..typing import Device
from .bayesian import BayesianModel
from .training import Trainer

__all__ = ["Encoded", "channel_options", "code_blocks", "encode_progressive"]


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


def channel_options(model: BayesianModel, method: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``bits`` defaulting to the model's for the methods it makes fixed-budget."""
    return channel.with_default_bits(method, options, model.bits)


class _ModelTarget:
    """A :class:`BayesianModel` as the engine's target."""

    def __init__(self, model: BayesianModel, trainer: Trainer | None) -> None:
        self.model, self.trainer = model, trainer
        self.steps = 0

    @torch.no_grad()
    def posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        q_mean, q_std, p_mean, p_std = (
            t.detach().to("cpu", torch.float64).numpy() for t in self.model.posterior()
        )
        return q_mean, q_std, p_mean.astype(np.float32), p_std.astype(np.float32)

    @torch.no_grad()
    def block_kl(self) -> np.ndarray:
        return self.model.block_kl().detach().cpu().numpy()

    def fix(self, coded: CodedBlocks) -> None:
        self.model.set_coded([int(b) for b in coded.blocks], coded.samples)

    def finetune(self, _round: int, steps: int, _remaining: np.ndarray) -> None:
        if self.trainer is not None:
            self.trainer.run(steps, progress=False)
            self.steps += steps


def _coder(model: BayesianModel, method: str, options: dict[str, Any], channel_device: Device) -> Coder:
    return Coder(method, options, int(model.seed), device=channel_device)


@torch.no_grad()
def code_blocks(
    model: BayesianModel,
    blocks: Iterable[int],
    method: str,
    options: dict[str, Any],
    channel_device: Device = "auto",
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
    target = _ModelTarget(model, None)
    coded = _coder(model, method, options, channel_device).encode(
        model.blocks.coding_blocks, blocks, *target.posterior()
    )
    target.fix(coded)
    return blocks, list(coded.messages), coded.bits, coded.kl_bits


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
    channel_device: Device = "auto",
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
    opts = channel_options(model, method, options)
    if device is not None:
        model.to(device)
    remaining = [b for b in range(model.n_blocks) if not bool(model.block_coded[b])]
    if not remaining:
        raise InputError("every block is already coded")
    if rounds is None:
        rounds = len(remaining) if data is not None else 1
    if not isinstance(rounds, int) or rounds < 1:
        raise InputError(f"rounds must be a positive integer, got {rounds!r}")
    step_fn = steps if callable(steps) else (lambda _r, n=int(steps): n)

    model.freeze_prior()
    if beta_step is not None and hasattr(model.posterior_param, "beta_step"):
        model.posterior_param.beta_step = float(beta_step)
    trainer = Trainer(model, data, loss_fn=loss_fn, lr=lr) if data is not None else None
    seq: str | list[int] = order
    if order == "random":
        rng = np.random.Generator(np.random.PCG64([model.seed, 0x6F72646572]))
        seq = [remaining[i] for i in rng.permutation(len(remaining))]
    target = _ModelTarget(model, trainer)
    schedule = equal_rounds(len(remaining), rounds)
    bar = tqdm(
        total=len(remaining), desc="coding blocks", unit="block", disable=not progress, file=sys.stderr
    )

    def on_round(r: int, rec: dict[str, float]) -> None:
        bar.update(schedule[r])
        if callback is not None:
            callback(r, model)

    try:
        res = progressive(
            target, model.blocks.coding_blocks, _coder(model, method, opts, channel_device), schedule,
            order=seq, steps=step_fn if trainer is not None else 0, remaining=remaining, on_round=on_round,
        )  # fmt: skip
    finally:
        bar.close()
    return Encoded(
        method=method,
        options=opts,
        seed=model.seed,
        messages=res.messages,
        bits=res.bits,
        kl_bits=res.kl_bits,
        order=res.order,
        steps=target.steps,
        seconds=res.seconds,
    )
