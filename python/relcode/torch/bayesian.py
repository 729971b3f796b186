"""A Bayesian view of any ``nn.Module``: chosen parameters become Gaussian posteriors.

:class:`BayesianModel` wraps a model without rewriting it. Parameters chosen by name patterns
become *coded tensors*, each driven by coded variables (one per weight, or one per group of
weights with the hashing trick, :mod:`relcode.torch.hashing`) with a factorised Gaussian
posterior Q (:mod:`relcode.torch.parameterisation`) and a coding distribution P
(:mod:`relcode.torch.prior`). The forward pass runs the original module through
``torch.func.functional_call`` with weights substituted:

* training mode: for ``nn.Linear`` and ``nn.Conv1d/2d/3d`` whose coded weights are not shared,
  the local reparameterisation trick (the module runs with the posterior means, and a forward
  hook adds √(x² ∗ σ²)·ε to its output: one independent sample per example and output unit,
  much lower gradient variance); every other coded tensor (shared weights, LayerNorm scales,
  embeddings, …) gets one weight sample per forward pass;
* evaluation mode: the posterior means (coded variables at their coded values).

The variables are assigned to blocks (:mod:`relcode.torch.blocks`) when the view is built,
because both parameterisations train per block. Coded blocks are frozen at their coded values
(exactly the float32 sample a decoder reconstructs) and leave the KL.

>>> import torch
>>> from torch import nn
>>> from relcode.torch import BayesianModel
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> bm = BayesianModel(net, bits=8, n_blocks=6)
>>> bm(torch.zeros(2, 4)).shape, bm.n_vars, round(bm.kl().item() / 6, 3)  # KL per block (nats)
(torch.Size([2, 3]), 67, 5.545)
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from .. import sharing as _hashing
from ..errors import InputError
from ..format import Layout
from .blocks import BlockTensors
from .parameterisation import MeanKL, MeanVar, Parameterisation
from .prior import PerLayerPrior, PerParameterPrior, Prior

__all__ = ["BayesianModel", "CodedTensor", "model_fingerprint"]

_LRT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class CodedTensor:
    """One coded parameter: its name, shape and dtype, group size, and its variables
    ``offset … offset + n_vars − 1`` in the model's variable vector."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    group: int
    offset: int
    n_vars: int
    index: int  # position among the coded tensors (name order): its sign pattern's stream id

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.n_vars)

    @property
    def file_shape(self) -> tuple[int, ...]:
        """The shape of its variables in a file: the parameter's shape, or (n_vars,) when
        weights are shared."""
        return self.shape if self.group == 1 else (self.n_vars,)


def model_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's structure: every submodule's name and class, and every state_dict
    entry's name, shape and dtype. Two models share it when one's weights fit the other."""
    parts = [[name, type(m).__name__] for name, m in module.named_modules()]
    parts += [[k, list(v.shape), str(v.dtype)] for k, v in module.state_dict().items()]
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _as_patterns(value: str | Iterable[str] | None, default: Sequence[str]) -> list[str]:
    if value is None:
        return list(default)
    if isinstance(value, str):
        return [value]
    return list(value)


class BayesianModel(nn.Module):
    """A Bayesian view of ``model`` (a copy of it unless ``copy_model=False``).

    Args:
        model: any ``nn.Module``; its current parameter values become the posterior means
            (a pretrained model, or a freshly initialised one; shared groups start at the
            least-squares fit of their weights).
        include, exclude: ``fnmatch`` patterns over parameter names (``"*"``, ``"fc*.weight"``)
            choosing the coded parameters; the rest stay ordinary (deterministic) parameters
            that train alongside and are stored verbatim.
        bits: message length per block; the coder draws 2^bits candidates.
        block_size, n_blocks: variables per block (default 30, MIRACLE's), or roughly how
            many blocks: then ``block_size = ceil(n_vars / n_blocks)``. There are
            ``ceil(n_vars / block_size)`` blocks, the last one possibly shorter.
        kl_bits: KL budget per block in bits (default ``bits``).
        parameterisation: ``"mean_kl"`` or ``"mean_var"``; ``parameterisation_options`` go to
            :class:`~relcode.torch.parameterisation.MeanKL` (``clip``, ``smoothing``) or
            :class:`~relcode.torch.parameterisation.MeanVar` (``init_std``, ``beta_init``,
            ``beta_step``).
        prior: ``"layer"`` (learned N(0, σ_l²) per coded tensor, MIRACLE) or a mapping from
            tensor name to ``(mean, std)`` (scalars or one value per coded variable: a
            per-parameter prior). ``learn_prior`` says whether it trains until frozen.
        hashing: ``{name or pattern: group}`` to share weights in groups with random signs.
        lrt: use the local reparameterisation trick where it applies.
        seed: the root seed of the block layout, sign patterns and coding.
        device: where to put the view (``None``: the model's device).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        bits: int = 16,
        n_blocks: int | None = None,
        block_size: int | None = None,
        kl_bits: float | None = None,
        parameterisation: str = "mean_kl",
        parameterisation_options: Mapping[str, Any] | None = None,
        prior: str | Mapping[str, tuple[Any, Any]] = "layer",
        learn_prior: bool = True,
        hashing: Mapping[str, int] | None = None,
        lrt: bool = True,
        seed: int = 0,
        copy_model: bool = True,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(bits, int) or not 1 <= bits <= 32:
            raise InputError(f"bits must be an integer in 1..32, got {bits!r}")
        self.module = copy.deepcopy(model) if copy_model else model
        self.fingerprint = model_fingerprint(self.module)
        self.bits = bits
        self.kl_bits = float(bits if kl_bits is None else kl_bits)
        if not self.kl_bits > 0:
            raise InputError("kl_bits must be positive")
        self.seed = int(seed)
        self.lrt = bool(lrt)
        self._lrt_cache: dict[str, nn.Module] | None = None
        include_p = _as_patterns(include, ["*"])
        exclude_p = _as_patterns(exclude, [])
        groups = dict(hashing or {})

        # Choose the coded tensors; their variables are concatenated in name order (the
        # order of the file's coded vector).
        chosen: list[tuple[str, nn.Parameter, int]] = []
        for name, p in self.module.named_parameters():
            if not _matches(name, include_p) or _matches(name, exclude_p) or p.numel() == 0:
                continue
            if not torch.is_floating_point(p):
                raise InputError(
                    f"parameter {name!r} has dtype {p.dtype}; only floating-point parameters can be coded"
                )
            group = 1
            for pattern, g in groups.items():
                if name == pattern or fnmatch.fnmatchcase(name, pattern):
                    group = g
            if not isinstance(group, int) or group < 1:
                raise InputError(f"hashing group for {name!r} must be a positive integer, got {group!r}")
            chosen.append((name, p, group))
        if not chosen:
            raise InputError(f"no floating-point parameter matches include={include_p} exclude={exclude_p}")
        unknown = [k for k in groups if not any(k == n or fnmatch.fnmatchcase(n, k) for n, _, _ in chosen)]
        if unknown:
            raise InputError(f"hashing names {unknown} match no coded parameter")
        chosen.sort(key=lambda c: c[0].encode())
        tensors: list[CodedTensor] = []
        values: list[torch.Tensor] = []
        offset = 0
        for index, (name, p, group) in enumerate(chosen):
            n = _hashing.n_variables(p.numel(), group)
            ct = CodedTensor(name, tuple(p.shape), p.dtype, group, offset, n, index)
            tensors.append(ct)
            values.append(self._project(p.detach(), ct))
            offset += n
            p.requires_grad_(False)
        self.tensors = tensors
        self.n_vars = offset

        # Sign patterns of shared tensors (buffers, regenerated by decoders from the seed).
        self._signs: dict[str, str] = {}
        for t in tensors:
            if t.group > 1:
                key = f"sign{t.index}"
                s = torch.as_tensor(_hashing.signs(self.seed, t.index, t.numel))
                self.register_buffer(key, s, persistent=False)
                self._signs[t.name] = key

        # Blocks: MIRACLE's fixed layout, a seeded permutation cut into equal blocks.
        if n_blocks is not None and block_size is not None:
            raise InputError("give n_blocks or block_size, not both")
        if n_blocks is not None:
            if not isinstance(n_blocks, int) or not 1 <= n_blocks <= self.n_vars:
                raise InputError(f"n_blocks must be an integer in 1..{self.n_vars}, got {n_blocks!r}")
            block_size = -(-self.n_vars // n_blocks)
        size = 30 if block_size is None else block_size
        if not isinstance(size, int) or not 1 <= size <= 65535:
            raise InputError(f"block_size must be an integer in 1..65535, got {size!r}")
        self.layout = Layout.fixed({t.name: t.file_shape for t in tensors}, block_size=size, seed=self.seed)
        self.blocks = BlockTensors.from_layout(self.layout)

        # Prior.
        init = torch.cat(values).to(torch.float32)
        names = [t.name for t in tensors]
        sizes = [t.n_vars for t in tensors]
        if isinstance(prior, str):
            if prior != "layer":
                raise InputError(f"prior must be 'layer' or a mapping name -> (mean, std), got {prior!r}")
            stds = []
            for v in values:
                rms = float(torch.sqrt(torch.mean(v.double() ** 2))) if v.numel() else 0.0
                stds.append(rms if rms > 0 and math.isfinite(rms) else 0.1)
            self.prior: Prior = PerLayerPrior(names, sizes, stds, learn=learn_prior)
        elif isinstance(prior, Mapping):
            unknown = set(prior) - set(names)
            if unknown:
                raise InputError(f"prior given for {sorted(unknown)}, which are not coded tensors")
            means = {k: np.asarray(v[0], dtype=np.float64) for k, v in prior.items()}
            stds_m = {k: np.asarray(v[1], dtype=np.float64) for k, v in prior.items()}
            self.prior = PerParameterPrior(names, sizes, means, stds_m, learn=learn_prior)
        else:
            raise InputError(
                f"prior must be 'layer' or a mapping name -> (mean, std), got {type(prior).__name__}"
            )

        # Posterior.
        kl_nats = self.kl_bits * math.log(2.0)
        opts = dict(parameterisation_options or {})
        if parameterisation == "mean_kl":
            self.posterior_param: Parameterisation = MeanKL(self.blocks, kl_nats, **opts)
        elif parameterisation == "mean_var":
            self.posterior_param = MeanVar(self.blocks, kl_nats, **opts)
        else:
            raise InputError(f"parameterisation must be 'mean_kl' or 'mean_var', got {parameterisation!r}")
        # Variables in float64 when a coded parameter is float64, float32 otherwise.
        dtype = torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32
        self.posterior_param.to(dtype)
        self.prior.to(dtype)
        p_mean, p_std = self.prior()
        self.posterior_param.initialise(init.to(dtype), p_mean.detach().to(dtype), p_std.detach().to(dtype))

        self.register_buffer("coded", torch.zeros(self.n_vars, dtype=torch.bool))
        self.register_buffer("coded_value", torch.zeros(self.n_vars, dtype=torch.float32))
        self.register_buffer("block_coded", torch.zeros(self.blocks.n_blocks, dtype=torch.bool))
        if device is not None:
            self.to(device)
        else:
            first = next(iter(self.module.parameters()), None)
            if first is not None:
                self.to(first.device)

    # ----------------------------------------------------------------- variables and weights
    def _project(self, p: torch.Tensor, t: CodedTensor) -> torch.Tensor:
        """Initial variable values from weights: for shared groups, the least-squares fit
        (mean of sign × weight over the group)."""
        flat = p.reshape(-1).to(torch.float64)
        if t.group == 1:
            return flat
        s = torch.as_tensor(_hashing.signs(self.seed, t.index, t.numel), dtype=torch.float64)
        pad = t.n_vars * t.group - t.numel
        w = torch.cat([flat * s, flat.new_zeros(pad)]).view(t.n_vars, t.group)
        count = torch.full((t.n_vars,), float(t.group), dtype=torch.float64)
        count[-1] -= pad
        return w.sum(1) / count

    def _expand(self, v: torch.Tensor, t: CodedTensor) -> torch.Tensor:
        if t.group == 1:
            return v.reshape(t.shape).to(t.dtype)
        w = v.repeat_interleave(t.group)[: t.numel] * getattr(self, self._signs[t.name]).to(v.dtype)
        return w.reshape(t.shape).to(t.dtype)

    @property
    def n_blocks(self) -> int:
        return self.blocks.n_blocks

    @property
    def parameterisation(self) -> str:
        return self.posterior_param.name

    def posterior(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-variable (q_mean, q_std, p_mean, p_std) of the trainable posterior (coded
        variables included, as if uncoded)."""
        p_mean, p_std = self.prior()
        dtype = self.posterior_param_dtype()
        p_mean, p_std = p_mean.to(dtype), p_std.to(dtype)
        q_mean, q_std = self.posterior_param.posterior(p_mean, p_std)
        return q_mean, q_std, p_mean, p_std

    def posterior_param_dtype(self) -> torch.dtype:
        return next(self.posterior_param.parameters()).dtype

    def effective(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-variable (mean, std) the forward pass uses: coded variables at their coded
        values with std 0."""
        q_mean, q_std, _, _ = self.posterior()
        if not bool(self.coded.any()):
            return q_mean, q_std
        value = self.coded_value.to(q_mean.dtype)
        return torch.where(self.coded, value, q_mean), torch.where(self.coded, torch.zeros_like(q_std), q_std)

    def block_kl(self) -> torch.Tensor:
        """KL(Q‖P) of every block in nats (coded blocks included, at their posterior)."""
        q_mean, q_std, p_mean, p_std = self.posterior()
        return self.posterior_param.block_kl(q_mean, q_std, p_mean, p_std)

    def kl(self) -> torch.Tensor:
        """KL(Q‖P) in nats summed over the blocks not yet coded: what coding them costs."""
        return (self.block_kl() * ~self.block_coded).sum()

    def kl_penalty(self, block_kl: torch.Tensor | None = None) -> torch.Tensor:
        """The KL term of the training loss (Mean-Var: Σ β_b KL_b over uncoded blocks; Mean-KL: 0)."""
        if block_kl is None:
            block_kl = self.block_kl()
        return self.posterior_param.penalty(block_kl, ~self.block_coded)

    # ----------------------------------------------------------------- forward
    def lrt_modules(self) -> dict[str, nn.Module]:
        """Linear and Conv modules whose coded weight (and bias, if coded) are unshared: the
        local reparameterisation trick applies to them."""
        if self._lrt_cache is not None:
            return self._lrt_cache
        out: dict[str, nn.Module] = {}
        by_name = {t.name: t for t in self.tensors}
        for mname, m in self.module.named_modules():
            if not isinstance(m, _LRT_TYPES):
                continue
            prefix = f"{mname}." if mname else ""
            w = by_name.get(prefix + "weight")
            b = by_name.get(prefix + "bias")
            if w is None or w.group != 1 or (b is not None and b.group != 1):
                continue
            out[mname] = m
        self._lrt_cache = out
        return out

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        mean, std = self.effective()
        sample = self.training
        weights: dict[str, torch.Tensor] = {}
        lrt_var: dict[str, dict[str, torch.Tensor]] = {}
        lrt_modules = self.lrt_modules() if (sample and self.lrt) else {}
        lrt_params = {}
        for mname in lrt_modules:
            prefix = f"{mname}." if mname else ""
            lrt_params[prefix + "weight"] = (mname, "weight")
            lrt_params[prefix + "bias"] = (mname, "bias")
        for t in self.tensors:
            m, s = mean[t.slice], std[t.slice]
            if sample and t.name in lrt_params:
                mname, kind = lrt_params[t.name]
                weights[t.name] = self._expand(m, t)
                lrt_var.setdefault(mname, {})[kind] = self._expand(s * s, t)
            elif sample:
                weights[t.name] = self._expand(m + s * torch.randn_like(s), t)
            else:
                weights[t.name] = self._expand(m, t)
        handles = []
        try:
            for mname, var in lrt_var.items():
                handles.append(lrt_modules[mname].register_forward_hook(_lrt_hook(var)))
            return functional_call(self.module, weights, args, kwargs)
        finally:
            for h in handles:
                h.remove()

    # ----------------------------------------------------------------- coding state
    @torch.no_grad()
    def set_coded(self, blocks: Sequence[int], values: Sequence[np.ndarray]) -> None:
        """Freeze ``blocks`` at their coded ``values`` (float32, in each block's member order)."""
        for b, v in zip(blocks, values):
            idx = torch.as_tensor(self.blocks.members[b], device=self.coded.device)
            val = torch.as_tensor(np.asarray(v, dtype=np.float32).reshape(-1), device=self.coded.device)
            if val.numel() != idx.numel():
                raise InputError(f"block {b} has {idx.numel()} variables, got {val.numel()} values")
            self.coded_value[idx] = val
            self.coded[idx] = True
            self.block_coded[b] = True

    def freeze_prior(self) -> None:
        """Fix the coding distribution at its float32 values (done before coding)."""
        self.prior.freeze()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What an optimiser should update: posterior parameters, the prior until frozen, and
        the wrapped model's uncoded parameters."""
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def variables(self) -> dict[str, torch.Tensor]:
        """Per coded tensor its variables as the forward pass uses them in evaluation mode:
        coded values where coded, posterior means elsewhere."""
        mean, _ = self.effective()
        return {t.name: mean[t.slice].detach().to(torch.float32) for t in self.tensors}

    @torch.no_grad()
    def plain_state_dict(self) -> dict[str, torch.Tensor]:
        """The wrapped model's state_dict with coded tensors replaced by their (coded or mean)
        weights: what ``decompress`` loads once every block is coded."""
        sd = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        mean, _ = self.effective()
        for t in self.tensors:
            v = mean[t.slice].detach().to(torch.float32)
            sd[t.name] = self._expand(v, t).to(t.dtype)
        return sd

    def plain_model(self) -> nn.Module:
        """A copy of the wrapped model carrying :meth:`plain_state_dict` (an ordinary module)."""
        model = copy.deepcopy(self.module)
        for p in model.parameters():
            p.requires_grad_(True)
        model.load_state_dict(self.plain_state_dict())
        return model


def _lrt_hook(var: dict[str, torch.Tensor]):
    """Forward hook adding the local-reparameterisation noise of a Linear/Conv module."""

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        x = inputs[0]
        w_var = var.get("weight")
        b_var = var.get("bias")
        if w_var is None:
            w_var = torch.zeros_like(module.weight)
        x2 = x * x
        if isinstance(module, nn.Linear):
            out_var = torch.nn.functional.linear(x2, w_var, b_var)
        else:
            out_var = module._conv_forward(x2, w_var, b_var)  # type: ignore[operator]
        noise = torch.randn_like(output)
        return output + torch.sqrt(out_var.clamp_min(1e-30)) * noise

    return hook
