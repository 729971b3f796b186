"""Coding distributions P over the coded variables: learned per layer, or given per parameter.

MIRACLE learns one zero-mean Gaussian per layer, N(0, σ_l²), jointly with the posterior: the
coding distribution adapts to the data, and sending it costs a handful of floats. COMBINER
learns a Gaussian per parameter over a training set of signals and shares it across many
files. Both are *coding* distributions: the decoder regenerates candidates from them, so they
must be fixed before the first block is coded and stored exactly. :meth:`Prior.freeze` rounds
them to float32 (the precision the channel uses for P and files store) and stops learning;
every later computation, training included, uses exactly those float32 values.

A prior returns per-variable ``(mean, std)`` vectors over the model's coded variables, and
per tensor the float32 arrays a file stores (:meth:`Prior.tensors`): a scalar pair per tensor
for :class:`PerLayerPrior`, one value per coded variable for :class:`PerParameterPrior`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InputError

__all__ = ["PerLayerPrior", "PerParameterPrior", "Prior"]


class Prior(nn.Module):
    """Base class: a Gaussian coding distribution over ``n`` variables split into tensors
    (``sizes[i]`` variables for tensor ``names[i]``, in that order)."""

    def __init__(self, names: Sequence[str], sizes: Sequence[int]) -> None:
        super().__init__()
        self.names = list(names)
        self.sizes = [int(s) for s in sizes]
        self.register_buffer("_frozen", torch.zeros((), dtype=torch.bool))
        index = np.repeat(np.arange(len(self.sizes)), self.sizes)
        self.register_buffer("tensor_of", torch.as_tensor(index, dtype=torch.long), persistent=False)

    @property
    def frozen(self) -> bool:
        return bool(self._frozen)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-variable (mean, std) vectors."""
        raise NotImplementedError

    def freeze(self) -> None:
        """Fix the prior at its float32 values; from now on it is constant."""
        raise NotImplementedError

    def tensors(self, require_frozen: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per tensor the float32 (mean, std) a file stores: 0-d arrays, or one value per
        coded variable. Only valid once frozen (unless ``require_frozen=False``: the current
        values, for sizing a file)."""
        raise NotImplementedError

    def _check_frozen(self) -> None:
        if not self.frozen:
            raise InputError("freeze the prior before coding: call prior.freeze()")


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32)


class PerLayerPrior(Prior):
    """N(0, σ_l²) with one learned σ_l per coded tensor (MIRACLE), parameterised as log σ_l.

    ``init_std`` gives the starting σ_l per tensor (a sequence in tensor order)."""

    def __init__(
        self, names: Sequence[str], sizes: Sequence[int], init_std: Sequence[float], learn: bool = True
    ) -> None:
        super().__init__(names, sizes)
        std = torch.as_tensor(np.asarray(init_std, dtype=np.float64), dtype=torch.float32)
        if (
            std.shape != (len(self.names),)
            or not bool(torch.all(std > 0))
            or not bool(torch.isfinite(std).all())
        ):
            raise InputError("init_std must hold one positive finite value per coded tensor")
        self.log_std = nn.Parameter(torch.log(std), requires_grad=learn)
        self.register_buffer("std_f32", std.clone())

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        layer_std = self.std_f32.to(self.log_std.dtype) if self.frozen else torch.exp(self.log_std)
        std = layer_std[self.tensor_of]
        return torch.zeros_like(std), std

    def freeze(self) -> None:
        with torch.no_grad():
            self.std_f32.copy_(_f32(torch.exp(self.log_std)))
            self.log_std.requires_grad_(False)
            self._frozen.fill_(True)

    def tensors(self, require_frozen: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if require_frozen:
            self._check_frozen()
        std_t = self.std_f32 if self.frozen else torch.exp(self.log_std)
        std = std_t.detach().cpu().to(torch.float32).numpy()
        return {n: (np.zeros((), np.float32), std[i].reshape(())) for i, n in enumerate(self.names)}


class PerParameterPrior(Prior):
    """N(ν_i, ρ_i²) per coded variable (COMBINER): given per tensor as arrays with one value per
    coded variable (or scalars), optionally learned (mean and log std)."""

    def __init__(
        self,
        names: Sequence[str],
        sizes: Sequence[int],
        mean: Mapping[str, object] | None,
        std: Mapping[str, object],
        learn: bool = False,
    ) -> None:
        super().__init__(names, sizes)
        means, stds = [], []
        for name, size in zip(self.names, self.sizes):
            if name not in std:
                raise InputError(f"per-parameter prior: no std given for {name!r}")
            for kind, src, out in (("mean", mean or {}, means), ("std", std, stds)):
                a = np.asarray(src.get(name, 0.0), dtype=np.float64)
                if a.size not in (1, size):
                    raise InputError(
                        f"per-parameter prior {kind} for {name!r} has {a.size} values; expected 1 or {size}"
                    )
                out.append(np.broadcast_to(a.reshape(-1), (size,)))
        mean_v = torch.as_tensor(np.concatenate(means) if means else np.zeros(0), dtype=torch.float32)
        std_v = torch.as_tensor(np.concatenate(stds) if stds else np.zeros(0), dtype=torch.float32)
        if (
            not bool(torch.isfinite(mean_v).all())
            or not bool((std_v > 0).all())
            or not bool(torch.isfinite(std_v).all())
        ):
            raise InputError("per-parameter prior: means must be finite and stds positive and finite")
        self.mean = nn.Parameter(mean_v, requires_grad=learn)
        self.log_std = nn.Parameter(torch.log(std_v), requires_grad=learn)
        self.register_buffer("mean_f32", mean_v.clone())
        self.register_buffer("std_f32", std_v.clone())

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.frozen:
            return self.mean_f32.to(self.mean.dtype), self.std_f32.to(self.mean.dtype)
        return self.mean, torch.exp(self.log_std)

    def freeze(self) -> None:
        with torch.no_grad():
            self.mean_f32.copy_(_f32(self.mean))
            self.std_f32.copy_(_f32(torch.exp(self.log_std)))
            self.mean.requires_grad_(False)
            self.log_std.requires_grad_(False)
            self._frozen.fill_(True)

    def tensors(self, require_frozen: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if require_frozen:
            self._check_frozen()
        mean_t, std_t = self()
        mean = mean_t.detach().cpu().to(torch.float32).numpy()
        std = std_t.detach().cpu().to(torch.float32).numpy()
        out, start = {}, 0
        for name, size in zip(self.names, self.sizes):
            out[name] = (mean[start : start + size].copy(), std[start : start + size].copy())
            start += size
        return out
