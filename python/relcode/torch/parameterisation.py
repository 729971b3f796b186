"""Posterior parameterisations: how a factorised Gaussian Q is spelled in trainable numbers.

Each coded block must end with a KL(Q‖P) close to its budget (the message has ``bits`` bits:
2^bits candidates are enough only when the KL is at most about that).

* :class:`MeanVar` (MIRACLE): a mean and a softplus standard deviation per variable; the budget
  is enforced by a penalty Σ_b β_b KL_b whose per-block weights β_b are annealed after every
  step, multiplied by (1 + ε) while the block is over budget and divided by it while under.
  β starts tiny, so reaching the budget takes many steps.
* :class:`MeanKL` (Lin, Flamich and Hernández-Lobato): each variable gets a share κ_i of its
  block's budget (a softmax of free logits within the block, so Σ κ_i is the budget exactly),
  a mean confined to |μ − ν| ≤ ρ√(2κ_i) by μ = ν + ρ√(2κ_i)·tanh(m), and the standard deviation
  that makes KL_i = κ_i, in closed form through Lambert W₀ (:mod:`relcode.torch.lambertw`).
  Every block meets its budget from step 0, no penalty, no annealing.

Both map (prior mean ν, prior std ρ) per variable to (posterior mean, posterior std) per
variable; the Bayesian view (:mod:`relcode.torch.bayesian`) expands variables into weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..torchops import gaussian_kl, inverse_softplus
from .blocks import BlockTensors
from .lambertw import variance_ratio

__all__ = ["MeanKL", "MeanVar", "Parameterisation", "mean_kl_posterior"]


def mean_kl_posterior(
    log_share: torch.Tensor, loc: torch.Tensor, p_mean: torch.Tensor, p_std: torch.Tensor, kl_nats: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean-KL's (mean, std) per variable from log(κ_i/budget), m_i and the prior: μ = ν +
    ρ√(2κ)·tanh(m) and σ = ρ√s with s = −W₀(−exp(d − 2κ − 1)), so KL_i = κ_i exactly."""
    # √(2κ) from the log-share (no square root of a possibly underflowing κ), and
    # sech(m) = 2e^{-|m|}/(1 + e^{-2|m|}) (no overflowing cosh): both finite for any input.
    radius = math.sqrt(2.0 * kl_nats) * torch.exp(0.5 * log_share)
    e = torch.exp(-loc.abs())
    sech = 2.0 * e / (1.0 + e * e)
    mean = p_mean + p_std * radius * torch.tanh(loc)
    delta = (radius * sech) ** 2  # 2κ − (μ − ν)²/ρ² ≥ 0, computed without cancellation
    std = p_std * torch.sqrt(variance_ratio(delta).clamp_min(torch.finfo(delta.dtype).tiny))
    return mean, std


class Parameterisation(nn.Module):
    """Base class. ``kl_nats`` is each block's KL budget in nats."""

    name: str = ""
    #: Adam learning rate that suits the parameterisation's units.
    default_lr: float = 1e-3
    #: Whether training needs the block KLs at every step (penalty and annealing).
    trains_on_kl: bool = True

    def __init__(self, blocks: BlockTensors, kl_nats: float) -> None:
        super().__init__()
        if not math.isfinite(kl_nats) or kl_nats <= 0:
            raise InputError(f"the KL budget per block must be positive, got {kl_nats} nats")
        self.blocks = blocks
        self.kl_nats = float(kl_nats)

    def posterior(self, p_mean: torch.Tensor, p_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-variable (mean, std) of Q."""
        raise NotImplementedError

    def block_kl(self, mean, std, p_mean, p_std) -> torch.Tensor:
        """Per-block KL(Q‖P) in nats."""
        return self.blocks.sum(gaussian_kl(mean, std, p_mean, p_std))

    def penalty(self, block_kl: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """The KL term of the training loss over the ``active`` (not yet coded) blocks."""
        return block_kl.new_zeros(())

    def after_step(self, block_kl: torch.Tensor, active: torch.Tensor) -> None:
        """Called after every optimiser step (β annealing)."""

    def initialise(self, values: torch.Tensor, p_mean: torch.Tensor, p_std: torch.Tensor) -> None:
        """Start the posterior at means ``values`` (clipped where the parameterisation must)."""
        raise NotImplementedError


class MeanVar(Parameterisation):
    """Mean and softplus standard deviation, with MIRACLE's per-block β annealing.

    ``init_std`` is the starting std relative to the prior std (MIRACLE starts nearly
    deterministic); ``beta_init`` and ``beta_step`` (ε) set the annealing."""

    name = "mean_var"

    def __init__(
        self,
        blocks: BlockTensors,
        kl_nats: float,
        *,
        init_std: float = 1e-2,
        beta_init: float = 1e-8,
        beta_step: float = 5e-5,
    ) -> None:
        super().__init__(blocks, kl_nats)
        if not (init_std > 0 and beta_init > 0 and beta_step >= 0):
            raise InputError("init_std and beta_init must be positive, beta_step non-negative")
        n = blocks.n_vars
        self.init_std = float(init_std)
        self.beta_step = float(beta_step)
        self.mean = nn.Parameter(torch.zeros(n))
        self.raw_std = nn.Parameter(torch.zeros(n))
        self.register_buffer("beta", torch.full((blocks.n_blocks,), float(beta_init)))

    def posterior(self, p_mean, p_std):
        return self.mean, F.softplus(self.raw_std)

    def penalty(self, block_kl, active):
        return (self.beta.to(block_kl.dtype) * block_kl * active).sum()

    @torch.no_grad()
    def after_step(self, block_kl, active):
        over = block_kl.detach() > self.kl_nats
        factor = torch.where(over, 1.0 + self.beta_step, 1.0 / (1.0 + self.beta_step)).to(self.beta.dtype)
        self.beta.mul_(torch.where(active, factor, torch.ones_like(factor)))

    @torch.no_grad()
    def initialise(self, values, p_mean, p_std):
        self.mean.copy_(values)
        std = (self.init_std * p_std).to(self.raw_std.dtype)
        self.raw_std.copy_(inverse_softplus(std.clamp_min(1e-30)))


class MeanKL(Parameterisation):
    """Mean and per-variable KL share; σ in closed form (Lambert W₀).

    Free parameters per variable: ``logits`` (the block's budget is split by their softmax) and
    ``loc`` (m: the mean is ν + ρ√(2κ)·tanh(m)). ``clip`` bounds |tanh(m)| at initialisation,
    keeping means strictly inside the reachable interval."""

    name = "mean_kl"
    default_lr = 3e-2
    trains_on_kl = False  # every block is at its budget: no penalty, nothing to anneal

    def __init__(
        self, blocks: BlockTensors, kl_nats: float, *, clip: float = 0.95, smoothing: float = 1.0
    ) -> None:
        super().__init__(blocks, kl_nats)
        if not 0 < clip < 1:
            raise InputError("clip must be in (0, 1)")
        if not smoothing >= 0:
            raise InputError("smoothing must be non-negative")
        n = blocks.n_vars
        self.clip = float(clip)
        self.smoothing = float(smoothing)
        self.logits = nn.Parameter(torch.zeros(n))
        self.loc = nn.Parameter(torch.zeros(n))

    def log_share(self) -> torch.Tensor:
        """log(κ_i / budget): the log-softmax of the logits within each block."""
        return self.blocks.log_softmax(self.logits)

    def allocation(self) -> torch.Tensor:
        """κ_i in nats; sums to the budget over each block."""
        return self.kl_nats * torch.exp(self.log_share())

    def posterior(self, p_mean, p_std):
        return mean_kl_posterior(self.log_share(), self.loc, p_mean, p_std, self.kl_nats)

    @torch.no_grad()
    def initialise(self, values, p_mean, p_std):
        """Shares proportional to each mean's squared distance from the prior mean (plus the
        block average, so no variable starts switched off), then the closest reachable mean."""
        d = ((values - p_mean) / p_std) ** 2
        avg = self.blocks.sum(d) / self.blocks.sizes_tensor(d)
        self.logits.copy_(
            torch.log(d + self.smoothing * avg[self.blocks.block_of] + 1e-12).to(self.logits.dtype)
        )
        radius = math.sqrt(2.0 * self.kl_nats) * torch.exp(0.5 * self.log_share())
        frac = ((values - p_mean) / (p_std * radius)).clamp(-self.clip, self.clip)
        self.loc.copy_(torch.atanh(frac).to(self.loc.dtype))
