"""Training: the beta-ELBO for a batch of signals, per-block beta control, and learning the
prior by expectation-maximisation over a training set (COMBINER, RECOMBINER).

For one signal with posterior q the loss is ``D(q) + beta * KL(q || p)``: D is the expected
mean squared error over samples and channels (one Monte Carlo sample with the local
reparameterisation trick), the KL is in nats. A batch of S signals minimises the sum of
their losses; every signal's parameters get gradients from its own terms only, so the batch
is S independent problems solved at once.

Rate is controlled two ways:

- **per block** (:class:`BlockBetas`), when a block layout is known: each block's KL should
  sit just under its budget (16 bits for 2^16 candidates), so each block has its own beta,
  multiplied by 1.1 when the block's KL is above the budget and divided by 1.1 when it is
  more than ``band`` bits below (COMBINER's ``adjust_beta_with_mask``; RECOMBINER's band
  [16 - 0.4, 16]);
- **globally** during prior learning: after every EM iteration the average training KL is
  compared with the target bits per signal and beta is multiplied or divided by ``1 + tau``
  (RECOMBINER's explicit rate control, tau = 0.5).

**Prior learning** (:func:`learn_prior`) alternates an E-step, a few hundred Adam steps on
every training signal's posterior (warm-started from the previous iteration), with the
closed-form M-step of a per-parameter Gaussian prior::

    prior_mean = mean_s mean_s
    prior_std  = sqrt(mean_s [std_s^2 + (mean_s - prior_mean)^2])

which maximises the ELBO of the whole training set over the prior (empirical Bayes). All
training posteriors start at the same seeded SIREN initialisation (the initial prior mean),
so their hidden units stay aligned and the learned prior mean is a useful initialisation for
new signals as well as a coding distribution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import InputError, RelcodeError
from .model import LN2, BayesianSiren, default_device
from .siren import Architecture

__all__ = [
    "Batch",
    "BlockBetas",
    "PriorResult",
    "Trainer",
    "fit",
    "learn_prior",
    "train_codec",
]


class Batch:
    """The targets of ``S`` signals on the architecture's shared patch grid, on a device:
    values (S, n, C) and weights (S, n) (0 for padding)."""

    def __init__(self, arch: Architecture, values: Any, weights: Any = None, device: Any = None):
        dev = default_device(device)
        v = torch.as_tensor(np.asarray(values, dtype=np.float32), device=dev)
        if v.dim() != 3 or v.shape[1] != arch.patch_size or v.shape[2] != arch.dim_out:
            raise InputError(
                f"values must have shape (signals, {arch.patch_size}, {arch.dim_out}), got {tuple(v.shape)}"
            )
        if weights is None:
            w = torch.ones(v.shape[:2], device=dev)
        else:
            w = torch.as_tensor(np.asarray(weights, dtype=np.float32), device=dev)
            if w.shape != v.shape[:2]:
                raise InputError(f"weights must have shape {tuple(v.shape[:2])}, got {tuple(w.shape)}")
        if not torch.isfinite(v).all():
            raise InputError("signal values must be finite")
        self.arch = arch
        self.values = v
        self.weights = w
        self.features = torch.as_tensor(arch.features(), device=dev)
        self.device = dev

    @property
    def num_signals(self) -> int:
        return int(self.values.shape[0])

    def subsample(self, count: int | None, generator: torch.Generator):
        """(features (S, B, E) or shared (n, E), values, weights) of a random pixel subset
        per signal (``count`` samples with replacement), or of every pixel."""
        n = self.values.shape[1]
        if count is None or count >= n:
            return self.features, self.values, self.weights
        S = self.num_signals
        idx = torch.randint(0, n, (S, count), generator=generator, device=self.device)
        feats = self.features[idx]
        vals = torch.gather(self.values, 1, idx.unsqueeze(-1).expand(-1, -1, self.values.shape[2]))
        wts = torch.gather(self.weights, 1, idx)
        return feats, vals, wts


def weighted_mse(pred: torch.Tensor, values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(S,) mean squared error per signal over weighted samples and channels."""
    err = ((pred - values) ** 2).sum(-1) * weights
    return err.sum(1) / (weights.sum(1).clamp_min(1.0) * values.shape[2])


class BlockBetas:
    """Per-block KL weights: ``block_of`` maps every (signal, parameter) element, flattened
    signal-major, to its block; each block's beta moves towards a KL just under ``budget``
    bits."""

    def __init__(
        self,
        block_of: Any,
        num_blocks: int,
        init: float,
        *,
        budget: float = 16.0,
        band: float = 0.4,
        factor: float = 1.1,
        device: Any = None,
    ):
        dev = default_device(device)
        self.block_of = torch.as_tensor(np.asarray(block_of, dtype=np.int64), device=dev)
        self.num_blocks = int(num_blocks)
        self.beta = torch.full((self.num_blocks,), float(init), device=dev)
        self.budget, self.band, self.factor = float(budget), float(band), float(factor)

    def per_element(self, shape: torch.Size) -> torch.Tensor:
        return self.beta[self.block_of].reshape(shape)

    @torch.no_grad()
    def block_kl(self, kl_bits: torch.Tensor) -> torch.Tensor:
        """(num_blocks,) KL in bits of every block."""
        out = torch.zeros(self.num_blocks, device=kl_bits.device, dtype=kl_bits.dtype)
        return out.index_add_(0, self.block_of, kl_bits.detach().reshape(-1))

    @torch.no_grad()
    def adjust(self, kl_bits: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """One adjustment step; returns the block KLs it used."""
        bk = self.block_kl(kl_bits)
        up = bk > self.budget
        down = bk < self.budget - self.band
        if active is not None:
            up &= active
            down &= active
        self.beta[up] *= self.factor
        self.beta[down] /= self.factor
        return bk


class Trainer:
    """Adam on the posteriors of a :class:`BayesianSiren` for a :class:`Batch`.

    ``pixels`` is the number of samples per signal in a step (None: every sample);
    ``lr_std`` the learning rate of the standard deviations' parameters (default ``lr``).
    """

    def __init__(
        self,
        model: BayesianSiren,
        batch: Batch,
        *,
        lr: float = 1e-3,
        lr_std: float | None = None,
        pixels: int | None = None,
        clip: float | None = None,
        seed: int = 0,
    ):
        if batch.num_signals != model.num_signals:
            raise InputError(f"the model has {model.num_signals} signals, the batch {batch.num_signals}")
        self.model, self.batch = model, batch
        self.pixels = pixels
        self.clip = clip
        self.opt = torch.optim.Adam(
            [
                {"params": [model.mean], "lr": lr},
                {"params": [model.rho], "lr": lr if lr_std is None else lr_std},
            ]
        )
        self.generator = torch.Generator(device=batch.device)
        self.generator.manual_seed(int(seed))
        self.base_lrs = [g["lr"] for g in self.opt.param_groups]

    def set_lr_scale(self, scale: float) -> None:
        for g, base in zip(self.opt.param_groups, self.base_lrs):
            g["lr"] = base * scale

    def reset(self) -> None:
        """Forgets Adam's moment estimates (after the prior or the coded set changed)."""
        self.opt.state.clear()

    def step(self, beta: torch.Tensor | float, *, full: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """One Adam step on ``sum_s MSE_s + sum beta * KL``; ``beta`` is a scalar or a
        per-element (S, N) tensor. Returns (MSE per signal, KL in nats per element), both
        detached, measured before the step."""
        feats, vals, wts = self.batch.subsample(None if full else self.pixels, self.generator)
        model = self.model
        pred = model(feats, sample=True, generator=self.generator)
        mse = weighted_mse(pred, vals, wts)
        kl = model.kl()
        loss = mse.sum() + (kl * beta).sum()
        if not torch.isfinite(loss):
            raise RelcodeError("training diverged: the loss is not finite (try a lower learning rate)")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip is not None:
            torch.nn.utils.clip_grad_value_([model.mean, model.rho], self.clip)
        self.opt.step()
        return mse.detach(), kl.detach()


@torch.no_grad()
def evaluate_mse(model: BayesianSiren, batch: Batch) -> torch.Tensor:
    """(S,) MSE of the posterior means (coded values in place) on every sample."""
    pred = model(batch.features, sample=False)
    return weighted_mse(pred, batch.values, batch.weights)


def fit(
    trainer: Trainer,
    steps: int,
    beta: BlockBetas | float,
    *,
    adjust_every: int = 10,
    adjust_after: float = 0.1,
    full_after: float = 0.95,
    lr_drop_at: float = 0.8,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Posterior inference for new signals (COMBINER's test-time training): ``steps`` Adam
    steps on pixel subsets, on every pixel for the last ``1 - full_after``, the learning
    rate halved at ``lr_drop_at``; with :class:`BlockBetas`, the block betas adjusted every
    ``adjust_every`` steps after the first ``adjust_after`` of the run."""
    model = trainer.model
    last: dict[str, float] = {}
    for t in range(steps):
        trainer.set_lr_scale(0.5 if t >= lr_drop_at * steps else 1.0)
        b = beta.per_element(model.mean.shape) if isinstance(beta, BlockBetas) else beta
        mse, kl = trainer.step(b, full=t >= full_after * steps)
        if isinstance(beta, BlockBetas) and t >= adjust_after * steps and t % adjust_every == 0:
            beta.adjust(kl / LN2)
        if progress is not None and (t % 50 == 0 or t == steps - 1):
            last = {"mse": float(mse.mean()), "kl_bits": float(kl.sum() / LN2 / model.num_signals)}
            progress(t, last)
    return last


@dataclass
class PriorResult:
    """What :func:`learn_prior` learns: the prior (float32, flat), the final global beta,
    every parameter's KL in bits averaged over the training posteriors (what the KL-greedy
    grouping uses), and per-iteration history (beta, KL bits per signal, PSNR of the means)."""

    mean: np.ndarray
    std: np.ndarray
    beta: float
    kl_bits: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)
    #: the training posteriors' means and standard deviations (S, N), float32
    post_mean: np.ndarray | None = None
    post_std: np.ndarray | None = None


def _rate_step(beta: float, kl: float, target: float, tau: float, band: float) -> float:
    """RECOMBINER's rate control, damped: beta is multiplied by (KL / target)^1.5, at most by
    ``1 + tau`` either way, when the KL is above the target or more than ``band`` (a
    fraction) below it."""
    if target * (1 - band) <= kl <= target:
        return beta
    step = 1.5 * math.log(max(kl, 1e-9) / target)
    lim = math.log1p(tau)
    return beta * math.exp(min(max(step, -lim), lim))


def learn_prior(
    arch: Architecture,
    values: Any,
    weights: Any = None,
    *,
    bits_per_signal: float | None = None,
    beta: float = 1e-6,
    iterations: int = 30,
    steps: int = 100,
    first_steps: int | None = None,
    lr: float = 1e-3,
    lr_std: float | None = None,
    pixels: int | None = None,
    init_std: float = 3e-3,
    prior_std_scale: float = 0.5,
    update_prior: bool = True,
    tau: float = 0.5,
    rate_band: float = 0.05,
    seed: int = 0,
    device: Any = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> PriorResult:
    """Learns a per-parameter Gaussian prior over training signals (values (S, n, C)) by EM.

    With ``bits_per_signal``, beta is adapted after every iteration so that the average KL
    per training signal approaches that many bits from below (band ``rate_band`` as a
    fraction of the target, see :func:`_rate_step`); otherwise beta stays fixed.
    ``update_prior=False`` keeps the initial prior (the fixed-prior ablation) and only
    trains the posteriors and beta.
    """
    if iterations < 1 or steps < 1:
        raise InputError("iterations and steps must be positive")
    if bits_per_signal is not None and not bits_per_signal > 0:
        raise InputError("bits_per_signal must be positive")
    dev = default_device(device)
    batch = Batch(arch, values, weights, device=dev)
    prior_mean = arch.init_weights(seed)
    prior_std = (arch.init_std() * prior_std_scale).astype(np.float32)
    model = BayesianSiren(arch, batch.num_signals, prior_mean, prior_std, init_std=init_std, device=dev)
    trainer = Trainer(model, batch, lr=lr, lr_std=lr_std, pixels=pixels, seed=seed)
    history: list[dict[str, float]] = []
    beta = float(beta)
    for it in range(iterations):
        n = first_steps if (it == 0 and first_steps) else steps
        for _ in range(n):
            trainer.step(beta)
        with torch.no_grad():
            if update_prior:
                mean = model.mean.mean(0)
                var = (model.std() ** 2 + (model.mean - mean) ** 2).mean(0)
                model.set_prior(mean, torch.sqrt(var).clamp_min(1e-8))
            kl_bits = float(model.kl().sum() / LN2 / batch.num_signals)
            mse = float(evaluate_mse(model, batch).mean())
        rec = {"iteration": it, "beta": beta, "kl_bits": kl_bits, "psnr": -10 * math.log10(max(mse, 1e-12))}
        history.append(rec)
        if progress is not None:
            progress(it, rec)
        if bits_per_signal is not None and it < iterations - 1:
            beta = _rate_step(beta, kl_bits, bits_per_signal, tau, rate_band)
    with torch.no_grad():
        kl_avg = (model.kl() / LN2).mean(0).cpu().numpy().astype(np.float64)
        return PriorResult(
            mean=model.prior_mean.cpu().numpy().astype(np.float32),
            std=model.prior_std.cpu().numpy().astype(np.float32),
            beta=beta,
            kl_bits=kl_avg,
            history=history,
            post_mean=model.mean.detach().cpu().numpy(),
            post_std=model.std().detach().cpu().numpy(),
        )


def train_codec(
    arch: Architecture,
    values: Any,
    *,
    bits_per_sample: float,
    iterations: int = 15,
    steps: int = 60,
    first_steps: int | None = None,
    lr: float = 2e-3,
    pixels: int | None = 1024,
    beta: float | None = None,
    update_prior: bool = True,
    max_block_size: int = 25,
    block_bits: float = 16.0,
    seed: int = 0,
    device: Any = None,
    info: dict[str, Any] | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
):
    """Learns a codec from training patches (values (M, n, C)): the prior by EM with the
    average training KL driven to ``bits_per_sample`` message bits per sample, then the
    per-parameter training KL that the block layout is derived from. Returns an unsaved
    :class:`~relcode.inr.codec.Codec`."""
    from .codec import Codec

    if not (bits_per_sample > 0 and math.isfinite(bits_per_sample)):
        raise InputError("bits_per_sample must be positive")
    target = float(bits_per_sample) * arch.patch_size
    res = learn_prior(
        arch,
        values,
        bits_per_signal=target,
        beta=beta if beta is not None else 1e-6 * min(100.0, max(0.01, 1200.0 / target)),
        iterations=iterations,
        steps=steps,
        first_steps=first_steps,
        lr=lr,
        pixels=pixels,
        update_prior=update_prior,
        seed=seed,
        device=device,
        progress=progress,
    )
    last = res.history[-1]
    meta = {
        "training_patches": int(np.shape(values)[0]),
        "iterations": int(iterations),
        "steps": int(steps),
        "lr": float(lr),
        "pixels": None if pixels is None else int(pixels),
        "seed": int(seed),
        "learned_prior": bool(update_prior),
        "final_kl_bits": float(last["kl_bits"]),
        "final_psnr": float(last["psnr"]),
    }
    meta.update(info or {})
    return Codec(
        arch=arch,
        prior_mean=res.mean,
        prior_std=res.std,
        kl_bits=res.kl_bits,
        beta=res.beta,
        bits_per_patch=target,
        block_bits=block_bits,
        max_block_size=max_block_size,
        info=meta,
    )
