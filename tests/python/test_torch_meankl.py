"""relcode.torch Mean-KL: Lambert W₀, the closed-form σ, its gradients and the branch point."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mpmath  # noqa: E402
from scipy.special import lambertw  # noqa: E402

from relcode.torch.blocks import BlockTensors  # noqa: E402
from relcode.torch.lambertw import lambertw0, variance_ratio  # noqa: E402
from relcode.torch.parameterisation import MeanKL, mean_kl_posterior  # noqa: E402
from relcode.torchops import gaussian_kl  # noqa: E402

f64 = torch.float64


def test_lambertw0_matches_scipy_and_mpmath() -> None:
    x = np.concatenate([np.linspace(-0.36, 0, 50), np.logspace(-8, 8, 50)])
    got = lambertw0(torch.tensor(x, dtype=f64)).numpy()
    np.testing.assert_allclose(got, lambertw(x).real, rtol=1e-13, atol=1e-15)
    # Next to the branch point W₀ is ill-conditioned (dW/dx ~ 1/√(1 + ex)); compare with
    # 40-digit values of the same float64 inputs.
    near = -1 / math.e + np.array([1e-15, 1e-12, 1e-9, 1e-6])
    want = np.array([float(mpmath.lambertw(mpmath.mpf(v))) for v in near])
    np.testing.assert_allclose(lambertw0(torch.tensor(near, dtype=f64)).numpy(), want, rtol=0, atol=2e-8)
    np.testing.assert_allclose(
        lambertw0(torch.tensor(near[2:], dtype=f64)).numpy(), want[2:], rtol=0, atol=2e-12
    )
    assert lambertw0(torch.tensor([-1 / math.e], dtype=f64))[0].item() == -1.0


def test_variance_ratio_solves_the_kl_equation() -> None:
    # s = −W₀(−exp(−1 − δ)) against 40-digit values, from the branch point to tiny s.
    delta = np.concatenate([[0.0, 1e-300, 1e-20], np.logspace(-12, 2.8, 200)])
    mpmath.mp.dps = 40
    want = np.array([float(-mpmath.lambertw(-mpmath.exp(-1 - mpmath.mpf(d)))) for d in delta])
    s = variance_ratio(torch.tensor(delta, dtype=f64)).numpy()
    assert ((s > 0) & (s <= 1)).all()
    np.testing.assert_allclose(s, want, rtol=5e-15, atol=0)


def test_branch_point_is_finite() -> None:
    delta = torch.tensor([0.0, 1e-30, 1e-12], dtype=f64, requires_grad=True)
    s = variance_ratio(delta)
    assert s[0].item() == 1.0
    s.sum().backward()
    assert bool(torch.isfinite(delta.grad).all())
    # The slope diverges like −1/√(2δ) and is the implicit derivative s/(s − 1).
    d = torch.tensor([1e-8], dtype=f64, requires_grad=True)
    sd = variance_ratio(d)
    sd.backward()
    sd = sd.detach()
    assert d.grad[0].item() == pytest.approx((sd / (sd - 1)).item(), rel=1e-9)
    assert d.grad[0].item() == pytest.approx(-1 / math.sqrt(2e-8), rel=1e-3)
    # float32 input: float32 output, still finite at δ = 0.
    z = torch.zeros(3, requires_grad=True)
    variance_ratio(z).sum().backward()
    assert z.grad is not None and bool(torch.isfinite(z.grad).all())


def test_gradcheck_variance_ratio() -> None:
    delta = torch.tensor([1e-4, 1e-2, 0.15, 0.2, 0.25, 1.0, 7.0, 30.0], dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(variance_ratio, (delta,), eps=1e-7, atol=1e-6, rtol=1e-5)


def _meankl(n: int = 40, n_blocks: int = 5, bits: float = 6.0, seed: int = 0) -> MeanKL:
    p = MeanKL(BlockTensors.fixed(n, -(-n // n_blocks), seed), bits * math.log(2)).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        p.logits.copy_(torch.randn(n, generator=g, dtype=f64) * 2)
        p.loc.copy_(torch.randn(n, generator=g, dtype=f64) * 3)
    return p


def test_every_variable_meets_its_share_and_blocks_their_budget() -> None:
    p = _meankl()
    g = torch.Generator().manual_seed(1)
    nu = torch.randn(40, generator=g, dtype=f64)
    rho = torch.rand(40, generator=g, dtype=f64) + 0.05
    mean, std = p.posterior(nu, rho)
    kl = gaussian_kl(mean, std, nu, rho)
    np.testing.assert_allclose(kl.detach().numpy(), p.allocation().detach().numpy(), rtol=0, atol=1e-9)
    block = p.block_kl(mean, std, nu, rho).detach().numpy()
    np.testing.assert_allclose(block, 6.0 * math.log(2), rtol=0, atol=1e-6)
    # |μ − ν| ≤ ρ√(2κ) and σ ≤ ρ.
    assert bool(((mean - nu).abs() <= rho * torch.sqrt(2 * p.allocation()) * (1 + 1e-12)).all())
    assert bool((std <= rho).all())


def test_extreme_parameters_stay_finite_and_on_budget() -> None:
    p = _meankl()
    with torch.no_grad():
        p.loc[:10] = 1e4  # mean pinned to the boundary: δ = 0, σ = ρ·1
        p.loc[10:20] = -40.0
        p.logits[20:30] = -800.0  # shares that underflow
    nu = torch.zeros(40, dtype=f64)
    rho = torch.full((40,), 0.3, dtype=f64)
    mean, std = p.posterior(nu, rho)
    assert bool(torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all())
    block = p.block_kl(mean, std, nu, rho)
    np.testing.assert_allclose(block.detach().numpy(), 6.0 * math.log(2), atol=1e-6)
    (mean.sum() + std.sum() + block.sum()).backward()
    for par in (p.logits, p.loc):
        assert bool(torch.isfinite(par.grad).all())


def test_gradcheck_mean_kl_map() -> None:
    p = _meankl(n=12, n_blocks=3)
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(12, generator=g, dtype=f64).requires_grad_()
    loc = (torch.randn(12, generator=g, dtype=f64) * 2).requires_grad_()
    nu = torch.randn(12, generator=g, dtype=f64).requires_grad_()
    rho = (torch.rand(12, generator=g, dtype=f64) + 0.2).requires_grad_()

    def fn(logits, loc, nu, rho):
        return mean_kl_posterior(p.blocks.log_softmax(logits), loc, nu, rho, p.kl_nats)

    assert torch.autograd.gradcheck(fn, (logits, loc, nu, rho), eps=1e-6, atol=1e-5, rtol=1e-4)

    # The KL of the map is constant in every input: its gradient vanishes.
    def block_kl(logits, loc, nu, rho):
        mean, std = fn(logits, loc, nu, rho)
        return p.blocks.sum(gaussian_kl(mean, std, nu, rho))

    jac = torch.autograd.functional.jacobian(block_kl, (logits, loc, nu, rho))
    assert max(j.abs().max().item() for j in jac) < 1e-8
