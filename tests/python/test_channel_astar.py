"""A* coding through the Python API: astar (global bound), as_star, ad_star, dad_star.

Round trips, exactness at fixed seeds (KS, mean and variance), the reference's runtime and
codelength numbers, invariance under standardisation, hard-coded messages, and refusals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import relcode
from relcode import reference as R
from relcode.errors import InputError, SamplerError
from relcode.stream import PURPOSES

METHODS = ["astar", "as_star", "ad_star", "dad_star"]
TREE = ["as_star", "ad_star"]


def _opts(method: str) -> dict:
    return {"depth": 10} if method == "dad_star" else {}


def _copies(method: str, mu: float, s: float, n: int, seed: int, **options) -> relcode.channel.Code:
    """n copies of Q = N(mu, s^2) against P = N(0, 1); problem i uses stream id i."""
    return relcode.channel.encode(
        np.full((n, 1), mu), np.full((n, 1), s), 0.0, 1.0, method=method, seed=seed, **options
    )


def _kl_bits(mu: float, s: float) -> float:
    return (0.5 * (s * s + mu * mu - 1.0) - math.log(s)) / math.log(2)


def _r_max(mu: float, s: float) -> float:
    return math.exp(-math.log(s) + mu * mu / (2.0 * (1.0 - s * s)))


# ------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_is_bit_exact(method: str) -> None:
    rng = np.random.default_rng(1)
    n = 300
    p_mean = rng.normal(size=(n, 1)).astype(np.float32)
    p_std = rng.uniform(0.5, 2.0, size=(n, 1)).astype(np.float32)
    if method == "astar":  # exp(D_inf) proposals: moderate targets
        mu, s = rng.uniform(-1, 1, size=(n, 1)), rng.uniform(0.3, 0.95, size=(n, 1))
    else:
        # D_inf = -ln s + mu^2 / (2 (1 - s^2)) up to 15 nats: AD* stays far from the depth limit
        s = np.exp(rng.uniform(-7, -0.01, size=(n, 1)))
        mu = rng.uniform(-4, 4, size=(n, 1)) * np.sqrt(1 - s**2)
    q_mean = p_mean + p_std.astype(np.float64) * mu
    q_std = p_std.astype(np.float64) * s
    opts = _opts(method)
    ids = rng.integers(0, 2**63, size=n, dtype=np.uint64)
    code = relcode.channel.encode(q_mean, q_std, p_mean, p_std, method=method, seed=99, ids=ids, **opts)
    assert code.sample.dtype == np.float32 and code.sample.shape == (n, 1)
    assert code.message.shape == (n,) and (code.message >= 1).all()
    x = relcode.channel.decode(code.message, p_mean, p_std, method=method, seed=99, ids=ids, **opts)
    np.testing.assert_array_equal(x.view(np.uint32), code.sample.view(np.uint32))
    np.testing.assert_array_equal(relcode.channel.message_bits(code.message, method, **opts), code.bits)
    one = relcode.channel.encode(
        q_mean, q_std, p_mean, p_std, method=method, seed=99, ids=ids, threads=1, **opts
    )
    np.testing.assert_array_equal(one.message, code.message)
    np.testing.assert_array_equal(one.steps, code.steps)
    if method == "dad_star":
        assert (code.bits == 11).all()


def test_astar_codes_blocks_and_decodes_as_pfr() -> None:
    d = 8
    q_mean = np.zeros((50, d))
    q_mean[:, 0] = 0.5
    q_std = np.full((50, d), 0.98)
    q_std[:, 0] = 0.5
    code = relcode.channel.encode(q_mean, q_std, 0.0, 1.0, method="astar", seed=4)
    for method in ("astar", "pfr"):
        x = relcode.channel.decode(code.message, 0.0, 1.0, method=method, seed=4, dim=d)
        np.testing.assert_array_equal(x, code.sample)


def test_astar_selects_the_pfr_arrival() -> None:
    a = _copies("astar", 1.0, 0.25, 4000, seed=8)
    p = _copies("pfr", 1.0, 0.25, 4000, seed=8)
    same = (a.message == p.message) & (a.steps == p.steps)
    assert same.sum() >= 3996


# A decoder written from spec/channel.md section 5 alone, in Python floats (binary64) and the
# pure-numpy reference streams: it must reproduce the native decoder bit for bit.

Point = tuple[float, bool]  # (c, upper)
FULL: tuple[Point, Point] = ((0.0, False), (0.0, True))


def _mass(lo: Point, hi: Point) -> float:
    if not lo[1] and not hi[1]:
        return hi[0] - lo[0]
    if lo[1] and hi[1]:
        return lo[0] - hi[0]
    return (0.5 - lo[0]) + (0.5 - hi[0])


def _sample(lo: Point, hi: Point, u: float) -> Point:
    m = _mass(lo, hi)
    t = u * m
    if not lo[1] and not hi[1]:
        p = (lo[0] + t, False)
    elif lo[1] and hi[1]:
        p = (lo[0] - t, True)
    elif t <= 0.5 - lo[0]:
        p = (lo[0] + t, False)
    else:
        p = (hi[0] + (m - t), True)
    return (5e-324, p[1]) if p[0] <= 0 else p


def _dyadic_point(d: int, j: int) -> Point:
    if d == 0:
        return (0.0, j == 1)
    if j <= 2 ** (d - 1):
        return (float(j) * 2.0**-d, False)
    return (float(2**d - j) * 2.0**-d, True)


def _node_uniform(seed: int, sid: int, h: int) -> float:
    return float(R.uniforms(seed, PURPOSES["NODE"], sid, h, 1)[0])


def _spec_decode(method: str, h: int, seed: int, sid: int, pm: np.float32, ps: np.float32) -> np.float32:
    depth = h.bit_length() - 1
    if method == "as_star":
        lo, hi = FULL
        g = 1
        for i in range(depth - 1, -1, -1):
            m = _sample(lo, hi, _node_uniform(seed, sid, g))
            b = (h >> i) & 1
            lo, hi = (lo, m) if b == 0 else (m, hi)
            g = 2 * g + b
        point = _sample(lo, hi, _node_uniform(seed, sid, h))
    else:
        k = h - 2**depth
        point = _sample(_dyadic_point(depth, k), _dyadic_point(depth, k + 1), _node_uniform(seed, sid, h))
    x = float(R.ndtri(point[0]))
    z = np.float32(-x if point[1] else x)
    return ps * z + pm


@pytest.mark.parametrize("method", ["as_star", "ad_star", "dad_star"])
def test_native_decoder_follows_the_spec(method: str) -> None:
    rng = np.random.default_rng(31)
    seed = 123456789
    depth_limit = 62 if method != "dad_star" else 20
    opts = {"depth": 20} if method == "dad_star" else {}
    depths = np.concatenate([rng.integers(0, 12, size=60), rng.integers(0, depth_limit + 1, size=40)])
    hs = [(1 << int(d)) + int(rng.integers(0, 1 << int(d), dtype=np.uint64)) for d in depths]
    hs += [1, 2, 3, (1 << depth_limit), (1 << (depth_limit + 1)) - 1]  # both outermost tails
    ids = rng.integers(0, 2**64 - 1, size=len(hs), dtype=np.uint64)
    pm = rng.normal(size=(len(hs), 1)).astype(np.float32)
    ps = rng.uniform(0.1, 3.0, size=(len(hs), 1)).astype(np.float32)
    msg = np.array(hs, dtype=np.uint64)
    x = relcode.channel.decode(msg, pm, ps, method=method, seed=seed, ids=ids, **opts)
    want = [
        _spec_decode(method, h, seed, int(i), pm[j, 0], ps[j, 0]) for j, (h, i) in enumerate(zip(hs, ids))
    ]
    np.testing.assert_array_equal(x[:, 0].view(np.uint32), np.array(want, dtype=np.float32).view(np.uint32))
    assert np.isfinite(x).all()


# ------------------------------------------------------------------------------------------
# Exactness
# ------------------------------------------------------------------------------------------

CASES = [(0.0, 0.5), (1.0, 0.25), (2.0, 0.25), (0.0, 0.05), (1.0, 0.9), (1.0, 0.97), (0.0, 1e-3), (1.0, 1e-3)]
FAR = [(6.0, 0.3), (-8.0, 0.2)]  # location 6 and 8 prior stds out: D_inf 30 and 48 bits


def _exact_cases() -> list:
    out = []
    for method in ["as_star", "ad_star"]:
        out += [(method, mu, s, 20_000) for mu, s in CASES + FAR]
    # astar spends exp(D_inf) + 1 proposals (4860 at (1, 0.97)); far targets are out of reach
    out += [("astar", mu, s, 20_000 if _r_max(mu, s) < 100 else 5_000) for mu, s in CASES]
    return out


@pytest.mark.parametrize(("method", "mu", "s", "n"), _exact_cases())
def test_exact_samplers_match_the_target(method: str, mu: float, s: float, n: int) -> None:
    x = _copies(method, mu, s, n, seed=2024).sample[:, 0].astype(np.float64)
    ks = stats.kstest(x, "norm", args=(mu, s))
    assert ks.pvalue > 1e-4, f"KS D={ks.statistic:.4f} p={ks.pvalue:.2e}"
    assert abs(x.mean() - mu) < 4 * s / math.sqrt(n)
    assert abs(x.var(ddof=1) / s**2 - 1) < 4 * math.sqrt(2 / (n - 1))


# ------------------------------------------------------------------------------------------
# Runtime and codelength against the reference simulations
# ------------------------------------------------------------------------------------------


def _within(mean: float, sd: float, n: int, want: float) -> bool:
    """Four combined standard errors of ours and the reference's (>= 1500-2000 runs)."""
    return abs(mean - want) < 4 * sd * math.sqrt(1 / n + 1 / 2000)


@pytest.mark.parametrize(("mu", "s"), [(0.0, 0.5), (1.0, 0.25), (2.0, 0.25), (0.0, 0.05)])
def test_astar_proposals_are_r_max_plus_one(mu: float, s: float) -> None:
    steps = _copies("astar", mu, s, 20_000, seed=3).steps
    se = steps.std() / math.sqrt(steps.size)
    assert abs(steps.mean() - (_r_max(mu, s) + 1)) < 4 * se


def test_as_star_nodes_grow_with_d_inf_at_fixed_kl() -> None:
    ref = {(1.0, 0.25): 3.27, (0.0, 0.05): 5.48, (1.0, 0.7): 2.14, (1.0, 0.9): 3.08, (1.0, 0.97): 8.39}
    means = {}
    for (mu, s), want in ref.items():
        steps = _copies("as_star", mu, s, 20_000, seed=5).steps
        means[mu, s] = steps.mean()
        assert _within(steps.mean(), steps.std(), steps.size, want), (mu, s, steps.mean())
    assert means[1.0, 0.7] < means[1.0, 0.9] < means[1.0, 0.97] / 2


def test_ad_star_heap_index_costs_about_kl_bits() -> None:
    for mu, s in [(0.0, 0.5), (1.0, 0.25), (2.0, 0.25), (0.0, 0.05), (0.0, 0.01), (3.0, 0.2), (4.0, 0.1)]:
        code = _copies("ad_star", mu, s, 5_000, seed=6)
        log2h = np.log2(code.message.astype(np.float64)).mean()
        kl = _kl_bits(mu, s)
        assert kl - 1 <= log2h <= kl + 1, (mu, s, log2h, kl)
    # nodes follow D_inf at fixed KL (reference: 2.06 / 3.42 / 11.16)
    for s, want in [(0.7, 2.06), (0.9, 3.42), (0.97, 11.16)]:
        steps = _copies("ad_star", 1.0, s, 20_000, seed=7).steps
        assert _within(steps.mean(), steps.std(), steps.size, want), (s, steps.mean())


def test_dad_star_bias_shrinks_with_depth() -> None:
    """Reference: Q = N(1, 1/16), KS distance 0.024 / 0.008 / 0.006 at depths 3 / 4 / 6."""
    n = 20_000
    dist = {}
    for depth, want in [(2, 0.089), (3, 0.024), (4, 0.008), (6, 0.006)]:
        code = _copies("dad_star", 1.0, 0.25, n, seed=10, depth=depth)
        assert (code.bits == depth + 1).all() and (code.message < 2 ** (depth + 1)).all()
        dist[depth] = stats.kstest(code.sample[:, 0], "norm", args=(1.0, 0.25)).statistic
        assert abs(dist[depth] - want) < 0.25 * want + 0.006, (depth, dist[depth])
    assert dist[2] > dist[3] > dist[6]
    # the bias is visible at depth 3 and gone at depth 6
    assert (
        stats.kstest(
            _copies("dad_star", 1.0, 0.25, n, seed=10, depth=3).sample[:, 0], "norm", args=(1.0, 0.25)
        ).pvalue
        < 1e-6
    )
    assert dist[6] < 1.95 / math.sqrt(n)


# ------------------------------------------------------------------------------------------
# Invariance and value stability
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_results_are_invariant_under_standardisation(method: str) -> None:
    rng = np.random.default_rng(12)
    n = 400
    # prior means and stds with few significant bits, so standardising is exact in binary64
    m = (rng.integers(-64, 64, size=(n, 1)) / 16).astype(np.float32)
    sp = (rng.integers(8, 64, size=(n, 1)) / 16).astype(np.float32)
    mu = rng.integers(-24, 24, size=(n, 1)) / 16
    s = rng.integers(2, 15, size=(n, 1)) / 16
    if method == "astar":
        mu, s = mu / 4, np.maximum(s, 0.5)
    opts = _opts(method)
    std = relcode.channel.encode(mu, s, 0.0, 1.0, method=method, seed=5, **opts)
    q_mean = m.astype(np.float64) + sp.astype(np.float64) * mu
    q_std = sp.astype(np.float64) * s
    gen = relcode.channel.encode(q_mean, q_std, m, sp, method=method, seed=5, **opts)
    np.testing.assert_array_equal(gen.message, std.message)
    np.testing.assert_array_equal(gen.steps, std.steps)
    want = sp * std.sample + m  # float32: multiply, then add
    np.testing.assert_array_equal(gen.sample.view(np.uint32), want.view(np.uint32))


# (method, q_mean, q_std, p_mean, p_std, id) -> (message, steps, sample bits); seed 20240611
STABLE = [
    ("astar", 1.0, 0.25, 0.0, 1.0, 0, 1, 2, 0x3F00F8FD),
    ("astar", 0.4, 0.3, 0.1, 0.5, 7, 1, 2, 0x3F48EF9B),
    ("astar", -2.0, 0.05, -1.5, 2.0, 1 << 40, 44, 54, 0xBFFB1DCD),
    ("as_star", 1.0, 0.25, 0.0, 1.0, 0, 14, 4, 0x3F974887),
    ("as_star", 0.4, 0.3, 0.1, 0.5, 7, 3, 2, 0x3DA51EB1),
    ("as_star", 5.0, 0.01, 0.0, 1.0, 1 << 40, 16383, 14, 0x409FC49B),
    ("ad_star", 1.0, 0.25, 0.0, 1.0, 0, 3, 4, 0x3F237336),
    ("ad_star", 0.4, 0.3, 0.1, 0.5, 7, 3, 2, 0x3E91F3BB),
    ("ad_star", 5.0, 0.01, 0.0, 1.0, 1 << 40, 16777213, 24, 0x409FEBBD),
    ("dad_star", 1.0, 0.25, 0.0, 1.0, 0, 3, 4, 0x3F237336),
    ("dad_star", 0.4, 0.3, 0.1, 0.5, 7, 3, 2, 0x3E91F3BB),
    ("dad_star", 5.0, 0.01, 0.0, 1.0, 1 << 40, 1023, 11, 0x406FD6A5),
]


@pytest.mark.parametrize("method", METHODS)
def test_value_stability(method: str) -> None:
    rows = [r for r in STABLE if r[0] == method]
    col = np.array([r[1:6] for r in rows], dtype=np.float64)
    ids = np.array([r[5] for r in rows], dtype=np.uint64)
    code = relcode.channel.encode(
        col[:, :1],
        col[:, 1:2],
        col[:, 2:3],
        col[:, 3:4],
        method=method,
        seed=20240611,
        ids=ids,
        **_opts(method),
    )
    got = list(zip(code.message.tolist(), code.steps.tolist(), code.sample[:, 0].view(np.uint32).tolist()))
    assert got == [r[6:] for r in rows]
    x = relcode.channel.decode(
        np.array([r[6] for r in rows], dtype=np.uint64),
        col[:, 2:3],
        col[:, 3:4],
        method=method,
        seed=20240611,
        ids=ids,
        **_opts(method),
    )
    assert x[:, 0].view(np.uint32).tolist() == [r[8] for r in rows]


# ------------------------------------------------------------------------------------------
# Refusals
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["as_star", "ad_star", "dad_star"])
def test_one_dimensional_methods_refuse_blocks(method: str) -> None:
    with pytest.raises(InputError, match="one dimension"):
        relcode.channel.encode(
            np.zeros((2, 3)), np.full((2, 3), 0.5), 0.0, 1.0, method=method, **_opts(method)
        )
    with pytest.raises(InputError, match="one dimension"):
        relcode.channel.decode(np.ones(2, dtype=np.uint64), 0.0, 1.0, method=method, dim=3, **_opts(method))


@pytest.mark.parametrize("method", METHODS)
def test_bad_targets_are_refused(method: str) -> None:
    opts = _opts(method)
    for s in (1.0, 1.3):
        with pytest.raises(InputError, match="mrc, orc or pfr with bits"):
            relcode.channel.encode([[0.2]], [[s]], 0.0, 1.0, method=method, **opts)
    for qm, qs in [(np.nan, 0.5), (0.0, np.nan), (np.inf, 0.5), (0.0, 0.0), (0.0, -1.0)]:
        with pytest.raises(InputError):
            relcode.channel.encode([[qm]], [[qs]], 0.0, 1.0, method=method, **opts)
    with pytest.raises(InputError):
        relcode.channel.encode([[0.0]], [[0.5]], 0.0, np.nan, method=method, **opts)


@pytest.mark.parametrize("method", METHODS)
def test_bad_messages_are_refused(method: str) -> None:
    opts = _opts(method)
    with pytest.raises(InputError):
        relcode.channel.decode(np.zeros(1, dtype=np.uint64), 0.0, 1.0, method=method, dim=1, **opts)
    if method in TREE:
        with pytest.raises(InputError, match="depth"):
            relcode.channel.decode(np.array([1 << 63], dtype=np.uint64), 0.0, 1.0, method=method, dim=1)


def test_dad_star_index_beyond_depth_and_options() -> None:
    ok = relcode.channel.decode(np.array([15], dtype=np.uint64), 0.0, 1.0, method="dad_star", depth=3, dim=1)
    assert np.isfinite(ok).all()
    with pytest.raises(InputError):
        relcode.channel.decode(np.array([16], dtype=np.uint64), 0.0, 1.0, method="dad_star", depth=3, dim=1)
    with pytest.raises(InputError, match="depth"):
        relcode.channel.encode([[0.0]], [[0.5]], 0.0, 1.0, method="dad_star")
    with pytest.raises(InputError, match="depth"):
        relcode.channel.encode([[0.0]], [[0.5]], 0.0, 1.0, method="dad_star", depth=63)
    with pytest.raises(InputError, match="does not apply"):
        relcode.channel.encode([[0.0]], [[0.5]], 0.0, 1.0, method="as_star", depth=4)


@pytest.mark.parametrize("method", METHODS)
def test_iteration_cap_raises(method: str) -> None:
    with pytest.raises(SamplerError, match="iteration cap"):
        relcode.channel.encode([[2.0]], [[0.05]], 0.0, 1.0, method=method, max_steps=1, **_opts(method))


def test_too_deep_targets_raise_instead_of_sampling() -> None:
    # AD* needs nodes about D_inf deep: 76 bits here, beyond 62-deep heap indices
    with pytest.raises(SamplerError):
        relcode.channel.encode([[10.0]], [[0.1]], 0.0, 1.0, method="ad_star")
    # narrower than the quantile domain resolves
    with pytest.raises(InputError, match="resolves"):
        relcode.channel.encode([[0.5]], [[1e-10]], 0.0, 1.0, method="as_star")


# ------------------------------------------------------------------------------------------
# Slow: p-values over many seeds, bigger sweeps
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["astar", "as_star", "ad_star"])
def test_ks_p_values_are_uniform_over_seeds(method: str) -> None:
    pvalues = []
    for seed in range(20):
        for mu, s in [(1.0, 0.25), (1.0, 0.9), (0.0, 0.05)]:
            x = _copies(method, mu, s, 5_000, seed=1000 + seed).sample[:, 0]
            pvalues.append(stats.kstest(x, "norm", args=(mu, s)).pvalue)
    assert stats.kstest(pvalues, "uniform").pvalue > 1e-3
    assert min(pvalues) > 1e-4


@pytest.mark.slow
def test_as_star_and_ad_star_table() -> None:
    """The whole table of reference section 7 (nodes), 20,000 runs per cell."""
    table = {
        (0.0, 0.5): (1.80, 1.86),
        (1.0, 0.25): (3.27, 2.83),
        (2.0, 0.25): (4.61, 4.68),
        (0.0, 0.05): (5.48, 6.33),
        (0.0, 0.01): (8.59, 10.63),
        (0.0, 0.002): (11.94, 15.00),
        (3.0, 0.2): (7.46, 8.33),
        (4.0, 0.1): (11.61, 14.42),
        (5.0, 0.05): (17.15, 22.02),
        (1.0, 0.99): (25.1, 35.18),
    }
    for (mu, s), wants in table.items():
        for method, want in zip(TREE, wants):
            steps = _copies(method, mu, s, 20_000, seed=44).steps
            assert _within(steps.mean(), steps.std(), steps.size, want), (method, mu, s, steps.mean())


@pytest.mark.slow
def test_astar_at_high_d_inf_in_log_space() -> None:
    """D_inf = 16.6 bits (r_max 1e5): the Gumbel process stays exact where float32 times
    broke published implementations (above ~28 bits the cap, not a wrong sample, stops it)."""
    mu, s, n = 0.0, 1e-5, 300
    code = _copies("astar", mu, s, n, seed=1)
    assert abs(code.steps.mean() / (_r_max(mu, s) + 1) - 1) < 4 / math.sqrt(n)
    assert stats.kstest(code.sample[:, 0], "norm", args=(mu, s)).pvalue > 1e-4
