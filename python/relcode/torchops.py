"""Differentiable Gaussian helpers that the torch front ends share (:mod:`relcode.torch` for
any model, :mod:`relcode.inr` for images and audio). Training-side only: what a file holds
is decided by the core (:func:`relcode.channel.kl_bits` is the KL the samplers see)."""

from __future__ import annotations

import torch

__all__ = ["gaussian_kl", "inverse_softplus"]


def gaussian_kl(
    mean: torch.Tensor, std: torch.Tensor, p_mean: torch.Tensor, p_std: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean, std²) ‖ N(p_mean, p_std²)) in nats, elementwise (differentiable)."""
    ratio = std / p_std
    return torch.log(p_std / std) + 0.5 * (ratio * ratio + ((mean - p_mean) / p_std) ** 2) - 0.5


def inverse_softplus(y: torch.Tensor | float) -> torch.Tensor:
    """x with softplus(x) = y (y > 0): the raw parameter of a standard deviation y."""
    y = torch.as_tensor(y)
    return y + torch.log(-torch.expm1(-y))
