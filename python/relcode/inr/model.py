"""Variational SIRENs for many signals at once (torch): COMBINER's posterior model.

Every signal ``s`` has a factorised Gaussian posterior ``q_s(w) = N(mean_s, std_s^2)`` over
the flat parameter vector of :class:`~relcode.inr.siren.Architecture`; the prior ``p(w) =
N(prior_mean, prior_std^2)`` is per parameter and shared by all signals. The ``S`` networks
are one batch: parameters are ``(S, N)`` tensors and every layer is one batched matmul
(``torch.bmm``), so dozens of 64x64 patches train together on one CPU core, and hundreds on
a GPU, with the same code (``device=``).

The forward pass uses the *local reparameterisation trick* (Kingma et al. 2015): instead of
sampling weights, it samples each pre-activation from its exact Gaussian,
``N(h @ W_mean + b_mean, h^2 @ W_std^2 + b_std^2)``, which has far lower gradient variance.

Progressive coding fixes parameters one block at a time: :meth:`BayesianSiren.fix` replaces
their posterior by the coded value (standard deviation 0), removes them from the KL and from
the gradient, and the remaining parameters keep training around them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..torchops import gaussian_kl, inverse_softplus
from .siren import Architecture

__all__ = ["BayesianSiren", "default_device"]

LN2 = math.log(2.0)


def default_device(device: Any = None) -> torch.device:
    """``device`` if given, else CUDA when it is available, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class BayesianSiren(torch.nn.Module):
    """``num_signals`` variational SIRENs sharing one per-parameter prior.

    ``prior_mean``/``prior_std`` are flat (N,) arrays; the posterior means start at
    ``init_mean`` (default: the prior mean, as RECOMBINER does, so that a learned prior mean
    is also a learned initialisation) and the standard deviations at ``init_std`` (at most
    the prior's).
    """

    def __init__(
        self,
        arch: Architecture,
        num_signals: int,
        prior_mean: Any,
        prior_std: Any,
        *,
        init_mean: Any = None,
        init_std: float = 3e-3,
        device: Any = None,
    ):
        super().__init__()
        self.arch = arch
        self.num_signals = int(num_signals)
        if self.num_signals < 1:
            raise InputError("num_signals must be positive")
        dev = default_device(device)
        N = arch.num_params
        pm = torch.as_tensor(np.asarray(prior_mean, dtype=np.float32), device=dev).reshape(-1)
        ps = torch.as_tensor(np.asarray(prior_std, dtype=np.float32), device=dev).reshape(-1)
        if pm.numel() != N or ps.numel() != N:
            raise InputError(f"the prior must have {N} means and standard deviations")
        if not (torch.isfinite(pm).all() and torch.isfinite(ps).all() and (ps > 0).all()):
            raise InputError("prior means must be finite and standard deviations positive")
        self.register_buffer("prior_mean", pm.clone())
        self.register_buffer("prior_std", ps.clone())
        if init_mean is None:
            mean = pm.expand(self.num_signals, N).clone()
        else:
            mean = torch.as_tensor(np.asarray(init_mean, dtype=np.float32), device=dev)
            mean = mean.reshape(-1, N).expand(self.num_signals, N).clone()
        std = torch.minimum(torch.full_like(ps, float(init_std)), ps)
        self.mean = torch.nn.Parameter(mean)
        raw = inverse_softplus(torch.as_tensor(std, dtype=torch.float32))
        self.rho = torch.nn.Parameter(raw.to(dev).expand(self.num_signals, N).clone())
        self.register_buffer("coded", torch.zeros(self.num_signals, N, dtype=torch.bool, device=dev))
        self.register_buffer("coded_value", torch.zeros(self.num_signals, N, device=dev))

    @property
    def device(self) -> torch.device:
        return self.mean.device

    # -- posterior --------------------------------------------------------------------

    def std(self) -> torch.Tensor:
        return F.softplus(self.rho)

    def effective(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of every parameter, with coded parameters at their value and std 0."""
        mean = torch.where(self.coded, self.coded_value, self.mean)
        std = torch.where(self.coded, torch.zeros_like(self.rho), self.std())
        return mean, std

    def kl(self) -> torch.Tensor:
        """(S, N) KL(q || p) per parameter in nats; 0 for coded parameters."""
        kl = torch.clamp(gaussian_kl(self.mean, self.std(), self.prior_mean, self.prior_std), min=0.0)
        return torch.where(self.coded, torch.zeros_like(kl), kl)

    def kl_bits(self) -> torch.Tensor:
        return self.kl() / LN2

    def set_prior(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.prior_mean.copy_(mean.reshape(-1))
        self.prior_std.copy_(std.reshape(-1))

    @torch.no_grad()
    def fix(self, signal: Any, index: Any, value: Any) -> None:
        """Marks parameters ``(signal[i], index[i])`` as coded with ``value[i]``."""
        s = torch.as_tensor(np.asarray(signal), dtype=torch.long, device=self.device)
        i = torch.as_tensor(np.asarray(index), dtype=torch.long, device=self.device)
        v = torch.as_tensor(np.asarray(value, dtype=np.float32), device=self.device)
        self.coded[s, i] = True
        self.coded_value[s, i] = v
        self.mean.data[s, i] = v

    # -- forward ----------------------------------------------------------------------

    def forward(
        self, features: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Outputs (S, B, dim_out) for features (S, B, dim_emb) or shared (B, dim_emb).

        ``sample=True`` draws pre-activations with the local reparameterisation trick;
        ``sample=False`` evaluates the posterior means (with coded values in place).
        """
        mean, std = self.effective()
        S = self.num_signals
        h = features if features.dim() == 3 else features.unsqueeze(0).expand(S, -1, -1)
        off = self.arch.layer_offsets
        dims = self.arch.layer_dims
        last = len(dims) - 1
        for k, (din, dout) in enumerate(dims):
            m = mean[:, off[k] : off[k + 1]].reshape(S, din + 1, dout)
            a = torch.baddbmm(m[:, din : din + 1, :], h, m[:, :din, :])
            if sample:
                v = (std[:, off[k] : off[k + 1]].reshape(S, din + 1, dout)) ** 2
                var = torch.baddbmm(v[:, din : din + 1, :], h * h, v[:, :din, :])
                eps = torch.randn(a.shape, generator=generator, device=a.device, dtype=a.dtype)
                a = a + torch.sqrt(var + 1e-14) * eps
            h = torch.sin(self.arch.w0 * a) if k != last else a
        return h
