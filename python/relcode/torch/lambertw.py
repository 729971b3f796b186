"""Lambert W₀ and the Mean-KL variance map, with derivatives that stay finite at the branch point.

For one weight with posterior Q = N(μ, σ²), coding distribution P = N(ν, ρ²) and a target
KL κ (nats), write s = σ²/ρ² and d = (μ − ν)²/ρ². The KL

    KL = ½ (s + d − 1 − ln s)

equals κ exactly when s − ln s = 1 + δ with δ = 2κ − d ≥ 0, whose solution on the principal
branch (σ ≤ ρ) is s = −W₀(−exp(−1 − δ)). Forming x = −exp(−1 − δ) and evaluating W₀ near
x = −1/e (the branch point, δ → 0) loses half the digits to cancellation, so
:func:`variance_ratio` solves for s from δ directly:

* δ ≤ 0.2 (s ≥ ½): t = 1 − s from the branch-point series of W₀ in p = √(−2 expm1(−δ)),
  refined by Newton on −t − log1p(−t) = δ, so s = 1 − t keeps full precision as δ → 0;
* δ > 0.2: u = ln s from the asymptotic series of W₀ at 0, refined by Newton on
  eᵘ − u = 1 + δ (convex, so Newton from below converges monotonically).

The derivative follows from the implicit equation, ds/dδ = s/(s − 1) = −s/t, without
differentiating W₀. It diverges like −1/√(2δ) at the branch point; the Mean-KL mean map
supplies δ = 2κ·sech²(m), whose derivative vanishes like √δ there, so products stay finite,
and at δ = 0 exactly the gradient is taken as the one-sided limit (clamped, never NaN).

>>> import torch
>>> from relcode.torch.lambertw import lambertw0, variance_ratio
>>> float(lambertw0(torch.tensor([1.0], dtype=torch.float64))[0])  # the omega constant
0.5671432904097838
>>> s = variance_ratio(torch.tensor([0.0, 1.0], dtype=torch.float64))
>>> [round(float(v), 12) for v in s]
[1.0, 0.158594339563]
"""

from __future__ import annotations

import math

import torch

__all__ = ["lambertw0", "variance_ratio"]

_E = math.e
_SPLIT = 0.2  # δ where the two solvers meet: s ≈ 0.5
_NEWTON = 4  # iterations; both starts are within 3e-2, so 4 steps reach float64 precision


def lambertw0(x: torch.Tensor) -> torch.Tensor:
    """The principal branch W₀(x) for x ≥ −1/e, elementwise, computed in float64 and returned
    in ``x``'s floating dtype (no autograd). Values below −1/e give NaN."""
    if not torch.is_floating_point(x):
        x = x.to(torch.get_default_dtype())
    xd = x.detach().to(torch.float64)
    # Starting points: branch-point series near −1/e, log-based guess for large x, x itself near 0.
    p = torch.sqrt((2.0 * (1.0 + _E * xd)).clamp_min(0.0))
    near = -1.0 + p - p * p / 3.0 + 11.0 / 72.0 * p**3
    lx = torch.log(xd.clamp_min(1.0))
    big = lx - torch.log(lx.clamp_min(1.0))
    w = torch.where(xd < -0.25, near, torch.where(xd > 3.0, big, torch.log1p(xd.clamp_min(-0.25))))
    for _ in range(12):  # Halley
        ew = torch.exp(w)
        f = w * ew - xd
        wp1 = w + 1.0
        denom = ew * wp1 - (w + 2.0) * f / (2.0 * wp1)
        step = torch.where((denom != 0) & (wp1.abs() > 1e-12), f / denom, torch.zeros_like(f))
        w = w - step
    w = torch.where(xd == -1.0 / _E, torch.full_like(w, -1.0), w)
    w = torch.where(xd < -1.0 / _E - 1e-15, torch.full_like(w, math.nan), w)
    return w.to(x.dtype)


def _solve_near(d: torch.Tensor) -> torch.Tensor:
    """t = 1 − s for 0 ≤ δ ≤ 0.2: t = p − p²/3 + 11p³/72 − 43p⁴/540 + 769p⁵/17280 (the series
    of 1 + W₀ at the branch point, p = √(−2 expm1(−δ))), then Newton on −t − log1p(−t) = δ."""
    p = torch.sqrt(-2.0 * torch.expm1(-d))
    t = p * (1.0 + p * (-1.0 / 3.0 + p * (11.0 / 72.0 + p * (-43.0 / 540.0 + p * (769.0 / 17280.0)))))
    for _ in range(_NEWTON):
        pos = t > 0
        ts = torch.where(pos, t, torch.ones_like(t))
        g = -ts - torch.log1p(-ts) - d
        t = torch.where(pos, (ts - g * (1.0 - ts) / ts).clamp(0.0, 1.0 - 1e-16), t)
    return t


def _solve_far(d: torch.Tensor) -> torch.Tensor:
    """s for δ > 0.2: s = a + a² + 3a³/2 + 8a⁴/3 with a = e^{−c} (the series of −W₀(−a), below
    the root), then Newton on eᵘ − u = c in u = ln s, which converges monotonically."""
    c = 1.0 + d
    a = torch.exp(-c)
    u = torch.log(a * (1.0 + a * (1.0 + a * (1.5 + a * (8.0 / 3.0)))))
    for _ in range(_NEWTON):
        eu = torch.exp(u)
        u = u - (eu - u - c) / (eu - 1.0)
    return torch.exp(u)


def _solve(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, t = 1 − s) in float64 with s − ln s = 1 + δ, s ∈ (0, 1]; δ ≥ 0 (negative δ is
    treated as 0, the branch point). Each element runs only the solver of its side."""
    d = delta.clamp_min(0.0)
    near = d <= _SPLIT
    s = torch.empty_like(d)
    t = torch.empty_like(d)
    if bool(near.all()):
        t = _solve_near(d)
        return 1.0 - t, t
    if not bool(near.any()):
        s = _solve_far(d)
        return s, 1.0 - s
    i_near = near.nonzero().squeeze(1)
    i_far = (~near).nonzero().squeeze(1)
    t_near = _solve_near(d[i_near])
    s_far = _solve_far(d[i_far])
    s[i_near] = 1.0 - t_near
    t[i_near] = t_near
    s[i_far] = s_far
    t[i_far] = 1.0 - s_far
    return s, t


class _VarianceRatio(torch.autograd.Function):
    @staticmethod
    def forward(ctx, delta: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        s, t = _solve(delta.detach().to(torch.float64))
        ctx.save_for_backward(s, t)
        ctx.in_dtype = delta.dtype
        return s.to(delta.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        s, t = ctx.saved_tensors
        # ds/dδ = −s/t; at δ = 0 (t = 0) clamp to a large finite slope: its partner factor
        # dδ/d(parameters) is 0 there, and a finite slope keeps the product 0 instead of NaN.
        tiny = torch.finfo(ctx.in_dtype).tiny
        slope = -s / t.clamp_min(math.sqrt(tiny))
        return (grad.to(torch.float64) * slope).to(ctx.in_dtype)


def variance_ratio(delta: torch.Tensor) -> torch.Tensor:
    """s = σ²/ρ² = −W₀(−exp(−1 − δ)) for δ = 2κ − (μ − ν)²/ρ² ≥ 0, differentiable.

    Computed in float64 whatever ``delta``'s dtype, returned in that dtype; δ < 0 (a mean
    outside the reachable range) is treated as the branch point δ = 0, s = 1.
    """
    if not torch.is_floating_point(delta):
        raise TypeError("delta must be a floating-point tensor")
    return _VarianceRatio.apply(delta)
