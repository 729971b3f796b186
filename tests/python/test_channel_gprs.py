"""The rejection samplers through the Python API: grs, agrs, gprs, gprs_parallel, gprs_bnb.

Round trips are bit exact; decoders agree with an independent numpy reading of
spec/channel.md sections 4, 5.3 and 5.4 built on ``relcode.reference``; samples pass
Kolmogorov-Smirnov and moment tests at fixed seeds; runtimes follow the reference oracles;
messages are pinned; bad input raises from the ``relcode.errors`` family.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

import relcode
from relcode import reference
from relcode.errors import InputError, SamplerError

NODE = int.from_bytes(b"NODE", "little")

# (name, method, options)
VARIANTS = [
    ("grs", "grs", {}),
    ("agrs", "agrs", {}),
    ("gprs", "gprs", {}),
    ("gprs_parallel", "gprs_parallel", {"parallel": 4}),
    ("gprs_bnb/sample", "gprs_bnb", {"split": "sample"}),
    ("gprs_bnb/dyadic", "gprs_bnb", {"split": "dyadic"}),
]
IDS = [v[0] for v in VARIANTS]


def _code(method, mu, s, n, seed, p_mean=0.0, p_std=1.0, **opts):
    return relcode.channel.encode(
        np.full((n, 1), mu), np.full((n, 1), s), p_mean, p_std, method=method, seed=seed, **opts
    )


def _assert_exact(name, x, mu, s, alpha=1e-4):
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    res = stats.kstest(x, "norm", args=(mu, s))
    assert res.pvalue > alpha, f"{name} vs N({mu}, {s}^2): KS D={res.statistic:.5f} p={res.pvalue:.2e}"
    assert abs(x.mean() - mu) < 4 * s / math.sqrt(n), f"{name}: mean {x.mean()}"
    z = (np.mean((x - mu) ** 2) / s**2 - 1) / math.sqrt(2 / n)
    assert abs(z) < 4, f"{name}: variance z = {z:.2f}"


# ------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(("name", "method", "opts"), VARIANTS, ids=IDS)
def test_round_trip_is_bit_exact(name, method, opts):
    rng = np.random.default_rng(5)
    n = 48
    q_mean = rng.uniform(-2.5, 2.5, (n, 1))
    q_std = rng.uniform(0.02, 0.9, (n, 1)).astype(np.float32)  # float32 targets are accepted
    p_mean = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    p_std = rng.uniform(1.0, 2.0, (n, 1)).astype(np.float32)
    q_mean = p_mean + p_std * q_mean
    q_std = q_std * p_std
    ids = np.arange(n, dtype=np.uint64) * 7 + 3
    code = relcode.channel.encode(q_mean, q_std, p_mean, p_std, method=method, seed=12, ids=ids, **opts)
    x = relcode.channel.decode(code.message, p_mean, p_std, method=method, seed=12, ids=ids, **opts)
    assert x.dtype == np.float32 and x.shape == (n, 1)
    assert np.array_equal(x.view(np.uint32), code.sample.view(np.uint32))
    bits = relcode.channel.message_bits(code.message, method=method, **opts)
    assert np.array_equal(bits, code.bits)
    one = relcode.channel.encode(
        q_mean, q_std, p_mean, p_std, method=method, seed=12, ids=ids, threads=1, **opts
    )
    assert np.array_equal(one.message, code.message) and np.array_equal(one.steps, code.steps)


def test_message_layouts():
    code = _code("gprs_parallel", 1.0, 0.25, 8, 0, parallel=8)
    assert code.message.shape == (8, 2)  # (j, n): sub-process first, as written
    assert (code.message[:, 0] < 8).all() and (code.message[:, 1] >= 1).all()
    code = _code("agrs", 1.0, 0.25, 8, 0)
    assert code.message.shape == (8, 2)  # (bound, step)
    assert (code.message >= 1).all()
    for method, opts in [("grs", {}), ("gprs", {}), ("gprs_bnb", {"split": "dyadic"})]:
        assert _code(method, 1.0, 0.25, 8, 0, **opts).message.shape == (8,)
    info = relcode.channel.methods()
    for m in ("grs", "agrs", "gprs", "gprs_parallel", "gprs_bnb"):
        assert info[m]["exact"] and info[m]["max_dim"] == 1 and info[m]["needs_bounded_ratio"]


# ------------------------------------------- decoders from the spec, in plain numpy
def _point_x(c, upper):
    """Coord::x: the standard-normal value of tail coordinate (c, side)."""
    if c <= 0:
        return math.inf if upper else -math.inf
    q = float(reference.ndtri(np.float64(c)))
    return -q if upper else q


def _mass(lo, hi):
    (a, au), (b, bu) = lo, hi
    if not au and not bu:
        return b - a
    if au and bu:
        return a - b
    if not au and bu:
        return (0.5 - a) + (0.5 - b)
    return 0.0


def _sample(lo, hi, u):
    """Interval::sample: the point at P-mass u * mass past lo (spec section 5.1)."""
    t = u * _mass(lo, hi)
    (a, au), (b, bu) = lo, hi
    if not au and not bu:
        p = (a + t, False)
    elif au and bu:
        p = (a - t, True)
    else:
        left = 0.5 - a
        if t <= left:
            p = (a + t, False)
        else:
            p = (b + ((left + (0.5 - b)) - t), True)
    if p[0] <= 0:
        p = (5e-324, p[1])
    return p


def _dyadic_point(depth, j):
    if depth == 0:
        return (0.0, False) if j == 0 else (0.0, True)
    scale = 2.0**-depth
    if j <= 1 << (depth - 1):
        return (float(j) * scale, False)
    return (float((1 << depth) - j) * scale, True)


def _weight(c, p_mean, p_std):
    z = np.float32(_point_x(*c))
    return np.float32(p_std) * z + np.float32(p_mean)


def _node_u(seed, sid, h):
    return float(reference.uniforms(seed, NODE, sid, h, 1)[0])


def _decode_bnb(h, split, seed, sid, p_mean, p_std):
    depth = h.bit_length() - 1
    if split == "dyadic":
        k = h - (1 << depth)
        lo, hi = _dyadic_point(depth, k), _dyadic_point(depth, k + 1)
    else:
        lo, hi, a = (0.0, False), (0.0, True), 1
        for level in range(depth - 1, -1, -1):
            x = _sample(lo, hi, _node_u(seed, sid, a))
            bit = (h >> level) & 1
            lo, hi = (lo, x) if bit == 0 else (x, hi)
            a = 2 * a + bit
    return _weight(_sample(lo, hi, _node_u(seed, sid, h)), p_mean, p_std)


def _decode_agrs(bound, k, seed, sid, p_mean, p_std):
    d = bound.bit_length() - 1
    j = bound - (1 << d)
    lo = _dyadic_point(d, j)
    hi = _dyadic_point(d, j + 2) if j + 1 < (1 << d) else _dyadic_point(d, j + 1)
    return _weight(_sample(lo, hi, _node_u(seed, sid, k)), p_mean, p_std)


@pytest.mark.parametrize(("name", "method", "opts"), VARIANTS, ids=IDS)
def test_decoders_match_the_spec_in_numpy(name, method, opts):
    n, seed, p_mean, p_std = 24, 77, 0.25, 1.5
    rng = np.random.default_rng(9)
    mu = rng.uniform(-3, 3, n)
    s = rng.uniform(0.01, 0.8, n)
    ids = np.arange(n, dtype=np.uint64) + 1000
    q_mean, q_std = (p_mean + p_std * mu)[:, None], (p_std * s)[:, None]
    code = relcode.channel.encode(q_mean, q_std, p_mean, p_std, method=method, seed=seed, ids=ids, **opts)
    for i in range(n):
        sid = int(ids[i])
        if method in ("grs", "gprs"):
            want = reference.candidate(seed, sid, int(code.message[i]) - 1, p_mean, p_std)[0]
        elif method == "gprs_parallel":
            j, m = (int(v) for v in code.message[i])
            want = reference.candidate(seed, sid, (m - 1) * opts["parallel"] + j, p_mean, p_std)[0]
        elif method == "agrs":
            b, k = (int(v) for v in code.message[i])
            want = _decode_agrs(b, k, seed, sid, p_mean, p_std)
        else:
            want = _decode_bnb(int(code.message[i]), opts["split"], seed, sid, p_mean, p_std)
        got = code.sample[i, 0]
        assert np.float32(want).view(np.uint32) == got.view(np.uint32), f"{name} problem {i}"


# ----------------------------------------------------------------------- exactness
@pytest.mark.parametrize(("name", "method", "opts"), VARIANTS, ids=IDS)
@pytest.mark.parametrize(("mu", "s"), [(1.0, 0.25), (0.0, 0.05), (1.0, 0.97)])
def test_samples_follow_the_target(name, method, opts, mu, s):
    code = _code(method, mu, s, 4000, 101, **opts)
    _assert_exact(name, code.sample, mu, s)


@pytest.mark.parametrize("method", ["agrs", "gprs_bnb"])
@pytest.mark.parametrize(("mu", "s"), [(0.0, 1e-3), (-5.0, 0.5), (6.0, 0.2)])
def test_small_sigma_and_distant_means(method, mu, s):
    for opts in [{}] if method == "agrs" else [{"split": "sample"}, {"split": "dyadic"}]:
        # in a non-standard prior: P = N(-1, 3^2)
        code = _code(method, -1.0 + 3.0 * mu, 3.0 * s, 3000, 202, p_mean=-1.0, p_std=3.0, **opts)
        _assert_exact(method, code.sample, -1.0 + 3.0 * mu, 3.0 * s)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "method", "opts"), VARIANTS, ids=IDS)
def test_exactness_sweep(name, method, opts):
    targets = [(0.0, 0.5), (1.0, 0.25), (2.0, 0.25), (0.0, 0.05), (1.0, 0.9), (1.0, 0.97)]
    for k, (mu, s) in enumerate(targets):
        _assert_exact(name, _code(method, mu, s, 20_000, 300 + k, **opts).sample, mu, s)
    # p-values over seeds are uniform (a biased sampler piles them up near 0)
    pvals = []
    for seed in range(20):
        x = _code(method, 1.0, 0.25, 3000, 400 + seed, **opts).sample.ravel()
        pvals.append(stats.kstest(x, "norm", args=(1.0, 0.25)).pvalue)
    assert stats.kstest(pvals, "uniform").pvalue > 1e-3, pvals


# ------------------------------------------------------------------------ runtimes
@pytest.mark.parametrize("method", ["grs", "gprs"])
def test_mean_proposals_equal_r_max(method):
    code = _code(method, 1.0, 0.25, 10_000, 7)
    steps = code.steps.astype(float)
    se = steps.std(ddof=1) / math.sqrt(steps.size)
    assert abs(steps.mean() - 6.818) < 4 * se, (steps.mean(), se)


def test_parallel_rounds_and_split_on_sample_depth():
    rounds = [_code("gprs_parallel", 1.0, 0.25, 4000, 8, parallel=j).steps.mean() for j in (1, 2, 4, 8)]
    assert all(a > b for a, b in itertools.pairwise(rounds)), rounds
    for r, j in zip(rounds, (1, 2, 4, 8)):
        assert 6.818 / j < r < 6.818 / j + 2 * math.log2(j) + 0.5
    depth = [_code("gprs_bnb", 1.0, s, 3000, 9).steps.mean() for s in (0.7, 0.9, 0.97, 0.99)]
    assert max(depth) - min(depth) < 0.3 and all(1.9 < d < 2.4 for d in depth), depth


def test_a_target_equal_to_the_prior_sends_index_one():
    for _, method, opts in VARIANTS:
        code = _code(method, 0.0, 1.0 - 1e-6, 20, 1, **opts)
        index = code.message if code.message.ndim == 1 else code.message[:, 1]
        assert (index == 1).all() and (code.steps == 1).all(), method


@pytest.mark.slow
def test_code_lengths():
    for mu, s in [(0.0, 0.5), (1.0, 0.25), (2.0, 0.25), (0.0, 0.05)]:
        kl = (0.5 * (s * s + mu * mu - 1) - math.log(s)) / math.log(2)
        gprs = _code("gprs", mu, s, 20_000, 11)
        assert np.log2(gprs.message.astype(float)).mean() <= kl + 1.53
        dyadic = _code("gprs_bnb", mu, s, 20_000, 12, split="dyadic")
        assert abs(np.log2(dyadic.message.astype(float)).mean() - kl) < 1.0


# ------------------------------------------------------------------ value stability
def test_value_stability():
    # the same pinned cases as the Rust suite: (method, options, mu, s, seed, id) -> message
    cases = [
        ("grs", {}, 1.0, 0.25, 0, 0, 3),
        ("grs", {}, -0.5, 0.6, 7, 123, 3),
        ("agrs", {}, 1.0, 0.25, 0, 0, (6, 2)),
        ("agrs", {}, 4.0, 0.1, 7, 123, (65534, 5)),
        ("gprs", {}, 1.0, 0.25, 0, 0, 3),
        ("gprs", {}, -0.5, 0.6, 7, 123, 3),
        ("gprs_parallel", {}, 1.0, 0.25, 0, 0, (1, 7)),
        ("gprs_parallel", {"parallel": 8}, 2.0, 0.25, 7, 123, (7, 1)),
        ("gprs_bnb", {}, 1.0, 0.25, 0, 0, 15),
        ("gprs_bnb", {}, 4.0, 0.1, 7, 123, 16383),
        ("gprs_bnb", {"split": "dyadic"}, 1.0, 0.25, 0, 0, 7),
        ("gprs_bnb", {"split": "dyadic"}, 4.0, 0.1, 7, 123, 8191),
    ]
    for method, opts, mu, s, seed, sid, want in cases:
        code = relcode.channel.encode([[mu]], [[s]], 0.0, 1.0, method=method, seed=seed, ids=[sid], **opts)
        got = tuple(int(v) for v in code.message[0]) if code.message.ndim == 2 else int(code.message[0])
        assert got == want, (method, opts, mu, s)


# --------------------------------------------------------------- bad input and caps
@pytest.mark.parametrize(("name", "method", "opts"), VARIANTS, ids=IDS)
def test_bad_input_raises(name, method, opts):
    with pytest.raises(InputError, match="one dimension"):
        relcode.channel.encode(np.zeros((2, 2)), np.full((2, 2), 0.5), 0.0, 1.0, method=method, **opts)
    for s in (1.0, 1.3):
        with pytest.raises(InputError, match="mrc"):
            _code(method, 0.2, s, 1, 0, **opts)
    for mu, s in [(np.nan, 0.5), (0.0, np.nan), (np.inf, 0.5), (0.0, 0.0)]:
        with pytest.raises(InputError):
            _code(method, mu, s, 1, 0, **opts)
    two_fields = method in ("agrs", "gprs_parallel")
    zero = np.zeros((1, 2) if two_fields else 1, dtype=np.uint64)
    with pytest.raises(InputError):
        relcode.channel.decode(zero, 0.0, 1.0, method=method, dim=1, **opts)


def test_invalid_messages_and_options():
    with pytest.raises(InputError, match="cannot be written"):  # j >= J does not fit log2 J bits
        relcode.channel.decode([[4, 1]], 0.0, 1.0, method="gprs_parallel", parallel=4, dim=1)
    with pytest.raises(InputError, match="power of two"):
        _code("gprs_parallel", 0.0, 0.5, 1, 0, parallel=3)
    with pytest.raises(InputError, match="deeper"):
        relcode.channel.decode(np.array([1 << 63], np.uint64), 0.0, 1.0, method="gprs_bnb", dim=1)
    with pytest.raises(InputError, match="deeper"):
        relcode.channel.decode(np.array([[1 << 63, 1]], np.uint64), 0.0, 1.0, method="agrs", dim=1)
    with pytest.raises(InputError, match="split"):
        _code("gprs_bnb", 0.0, 0.5, 1, 0, split="median")
    with pytest.raises(InputError, match="does not apply"):
        _code("gprs", 0.0, 0.5, 1, 0, parallel=2)


@pytest.mark.parametrize(("name", "method", "opts"), VARIANTS, ids=IDS)
def test_iteration_cap_raises(name, method, opts):
    with pytest.raises(SamplerError, match="max_steps"):
        _code(method, 3.0, 0.1, 4, 0, max_steps=1, **opts)


@pytest.mark.parametrize("opts", [{"split": "sample"}, {"split": "dyadic"}])
def test_depth_cap_raises(opts):
    # KL ~ 72 bits: deeper than 62 levels of heap index
    with pytest.raises(SamplerError):
        _code("gprs_bnb", 10.0, 0.5, 1, 0, **opts)
    with pytest.raises(SamplerError):
        _code("agrs", 10.0, 0.5, 1, 0)
