"""relcode.channel, the candidate-based methods: mrc, orc, truncated and exact pfr."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import relcode
from relcode import channel
from relcode import reference as R

LN2 = np.log(2)


def std_target(mu: float, s: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, 1), mu), np.full((n, 1), s)


def kl_bits(mu: float, s: float) -> float:
    return (0.5 * (s * s + mu * mu - 1) - np.log(s)) / LN2


def r_max(mu: float, s: float) -> float:
    return np.exp(-np.log(s) + mu * mu / (2 * (1 - s * s)))


FIXED = [("mrc", {"bits": 6}), ("orc", {"bits": 6}), ("pfr", {"bits": 6})]


def test_methods_registry() -> None:
    m = channel.methods()
    assert set(m) == {
        "mrc", "orc", "pfr", "astar", "as_star", "ad_star", "dad_star",
        "grs", "agrs", "gprs", "gprs_parallel", "gprs_bnb",
    }  # fmt: skip
    assert m["mrc"]["fixed_budget"] and not m["mrc"]["exact"]
    assert m["pfr"]["exact"] and m["pfr"]["max_dim"] is None
    assert m["gprs_bnb"]["max_dim"] == 1
    assert sorted(v["id"] for v in m.values()) == list(range(12))


@pytest.mark.parametrize("d", [1, 2, 3, 16, 25, 64])
@pytest.mark.parametrize(("method", "opts"), [*FIXED, ("pfr", {})])
def test_round_trip(method: str, opts: dict, d: int, rng: np.random.Generator) -> None:
    if method == "pfr" and not opts and d > 3:
        pytest.skip("exact PFR needs exp(D_inf) proposals: only small blocks are practical")
    n = 7
    pm = rng.normal(0, 0.1, (n, d)).astype(np.float32)
    ps = rng.uniform(0.8, 1.5, (n, d)).astype(np.float32)
    qm = pm + ps * rng.normal(0, 0.5, (n, d))
    qs = ps * rng.uniform(0.6, 0.95, (n, d))
    code = channel.encode(qm, qs, pm, ps, method=method, seed=11, **opts)
    assert code.sample.shape == (n, d) and code.sample.dtype == np.float32
    x = channel.decode(code.message, pm, ps, method=method, seed=11, **opts)
    np.testing.assert_array_equal(x.view(np.uint32), code.sample.view(np.uint32))
    np.testing.assert_array_equal(channel.message_bits(code.message, method, **opts), code.bits)


@pytest.mark.parametrize("bits", [0, 1, 3, 4, 5, 17])
def test_small_and_odd_budgets(bits: int) -> None:
    qm, qs = std_target(0.5, 0.7, 5)
    for m in ("mrc", "orc", "pfr"):
        code = channel.encode(qm, qs, 0.0, 1.0, method=m, bits=bits, seed=1)
        assert (code.message < 2**bits).all()
        assert (code.bits == bits).all() and (code.steps == 2**bits).all()
        x = channel.decode(code.message, 0.0, 1.0, method=m, bits=bits, seed=1, dim=1)
        np.testing.assert_array_equal(x, code.sample)


def test_samples_are_candidates_of_the_reference_stream() -> None:
    """The group-interleaved layout of spec/channel.md, recomputed with the numpy reference."""
    d = 5
    pm = np.array([0.1, -0.2, 0.3, 0.0, 1.5], dtype=np.float32)
    ps = np.array([0.05, 0.1, 0.2, 1.0, 0.01], dtype=np.float32)
    qm = (pm + 0.5 * ps)[None, :].repeat(3, 0)
    qs = (0.6 * ps)[None, :].repeat(3, 0)
    ids = np.array([3, 2**33, 2**63 + 1], dtype=np.uint64)
    code = channel.encode(qm, qs, pm, ps, method="mrc", bits=10, seed=99, ids=ids)
    for i, k in enumerate(code.message.tolist()):
        pos = [(k // 16) * 16 * d + 16 * j + k % 16 for j in range(d)]
        z = np.array([R.normals(99, int(ids[i]), p, 1)[0] for p in pos], dtype=np.float32)
        np.testing.assert_array_equal((ps * z + pm).view(np.uint32), code.sample[i].view(np.uint32))


@pytest.mark.parametrize(("method", "opts"), [*FIXED, ("pfr", {})])
def test_same_messages_on_every_backend_and_thread_count(
    method: str, opts: dict, rng: np.random.Generator
) -> None:
    d = 2 if method == "pfr" and not opts else 9  # exact PFR: exp(D_inf) proposals
    qm = rng.normal(0, 0.7, (40, d))
    qs = rng.uniform(0.5, 0.95, (40, d))
    ref = channel.encode(qm, qs, 0.0, 1.0, method=method, seed=5, threads=1, backend="scalar", **opts)
    for backend in relcode.stream.backends():
        for threads in (1, 2, 3):
            c = channel.encode(
                qm, qs, 0.0, 1.0, method=method, seed=5, threads=threads, backend=backend, **opts
            )
            np.testing.assert_array_equal(c.message, ref.message)
            np.testing.assert_array_equal(c.sample.view(np.uint32), ref.sample.view(np.uint32))


def test_value_stability() -> None:
    """Hard-coded messages and sample bits: any change to streams, layout or encoders shows."""
    qm = np.array([[0.3, -0.5, 1.2], [2.0, 0.0, 0.1]])
    qs = np.array([[0.5, 0.2, 0.9], [0.1, 0.3, 0.6]])
    pm, ps = [0.1, 0.0, -0.2], [1.0, 0.5, 2.0]
    kw = {"seed": 2026, "ids": [7, 2**40]}
    want = {
        ("mrc", 12): [1809, 695],
        ("orc", 12): [5, 89],
        ("pfr", 12): [5, 89],
        ("pfr", None): [6, 90],
    }
    for (m, bits), msg in want.items():
        opts = {} if bits is None else {"bits": bits}
        code = channel.encode(qm, qs, pm, ps, method=m, **kw, **opts)
        assert code.message.tolist() == msg, (m, bits)
    code = channel.encode(qm, qs, pm, ps, method="pfr", **kw)
    assert code.sample.view(np.uint32).tolist() == [
        [1003277760, 3196766229, 1055186040],
        [1072498140, 3200445019, 1058923267],
    ]
    assert code.bits.tolist() == [5, 11]
    z = channel.encode(qm, qs, pm, ps, method="pfr", index_code="zeta", zeta_k=3, **kw)
    assert z.bits.tolist() == [4, 11]


def test_batch_members_are_independent() -> None:
    """n copies of one problem get n independent samples (own stream ids)."""
    qm, qs = std_target(0.0, 0.5, 4000)
    code = channel.encode(qm, qs, 0.0, 1.0, method="pfr", bits=8, seed=3)
    x = code.sample[:, 0]
    assert np.unique(x).size > 3000
    assert abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < 0.05


def test_mrc_bias_matches_reference_numbers() -> None:
    """MRC, Q = N(1, 1/16): mean 0.933 / 0.993 / 0.998 and sd 0.355 / 0.261 / 0.253 at 2^3, 2^5, 2^7."""
    n = 20_000
    qm, qs = std_target(1.0, 0.25, n)
    for bits, mean, sd in [(3, 0.933, 0.355), (5, 0.993, 0.261), (7, 0.998, 0.253)]:
        x = channel.encode(qm, qs, 0.0, 1.0, method="mrc", bits=bits, seed=bits).sample[:, 0]
        assert abs(x.mean() - mean) < 4 * sd / np.sqrt(n), (bits, x.mean())
        assert abs(x.std() - sd) < 0.012, (bits, x.std())
    # and a broken sampler (uniform choice among candidates) is far off
    assert abs(0.0 - 0.993) > 0.5


def test_orc_and_mrc_have_the_same_distribution() -> None:
    qm, qs = std_target(1.0, 0.25, 20_000)
    a = channel.encode(qm, qs, 0.0, 1.0, method="mrc", bits=5, seed=1).sample[:, 0]
    b = channel.encode(qm, qs, 0.0, 1.0, method="orc", bits=5, seed=2).sample[:, 0]
    assert stats.ks_2samp(a, b).pvalue > 1e-3
    # ORC's index concentrates on small values; MRC's is uniform
    ia = channel.encode(qm, qs, 0.0, 1.0, method="mrc", bits=5, seed=1).message
    ib = channel.encode(qm, qs, 0.0, 1.0, method="orc", bits=5, seed=2).message
    counts = np.bincount(ia.astype(np.int64), minlength=32)
    assert stats.chisquare(counts).pvalue > 1e-4
    assert np.median(ib) < 6 < np.median(ia)


def test_truncated_pfr_is_less_biased_than_mrc() -> None:
    """Reference: Q = N(1, 1/16), N = 2^5: KS distance 0.002 (truncated PFR) vs 0.022 (MRC)."""
    n = 20_000
    qm, qs = std_target(1.0, 0.25, n)
    p = channel.encode(qm, qs, 0.0, 1.0, method="pfr", bits=5, seed=4).sample[:, 0]
    m = channel.encode(qm, qs, 0.0, 1.0, method="mrc", bits=5, seed=4).sample[:, 0]
    dp = stats.kstest(p, "norm", args=(1.0, 0.25)).statistic
    dm = stats.kstest(m, "norm", args=(1.0, 0.25)).statistic
    assert dp < 0.012 < dm, (dp, dm)


@pytest.mark.parametrize(
    ("mu", "s"), [(0, 0.5), (1, 0.25), (2, 0.25), (0, 0.05), (1, 0.9), (1, 0.97), (0, 1e-3), (3, 0.2)]
)
def test_exact_pfr_matches_target(mu: float, s: float) -> None:
    n = 8000
    qm, qs = std_target(mu, s, n)
    code = channel.encode(qm, qs, 0.0, 1.0, method="pfr", seed=int(100 * mu + 1000 * s), max_steps=1 << 26)
    x = code.sample[:, 0].astype(np.float64)
    ks = stats.kstest(x, "norm", args=(mu, s))
    assert ks.pvalue > 1e-4, ks
    assert abs(x.mean() - mu) < 4 * s / np.sqrt(n)
    assert abs(x.var() / s**2 - 1) < 4 * np.sqrt(2 / n)
    # runtime: exp(D_inf) + 1 proposals on average (within 5 standard errors of the heavy tail)
    steps = code.steps.astype(np.float64)
    assert abs(steps.mean() - (r_max(mu, s) + 1)) < 5 * steps.std() / np.sqrt(n) + 0.05
    # codelength: E[log2 K] <= KL + 1.53 bits
    assert np.log2(code.message.astype(np.float64)).mean() <= kl_bits(mu, s) + 1.53 + 0.05


def test_q_equal_p_gives_index_one() -> None:
    code = channel.encode(np.zeros((50, 1)), np.full((50, 1), 1 - 1e-12), 0.0, 1.0, method="pfr", seed=0)
    assert (code.message == 1).all()


def test_pfr_invariant_under_standardisation() -> None:
    """(P = N(m, sp^2), Q = N(mq, sq^2)) selects what the standardised pair selects."""
    m, sp, mq, sq = 0.75, 2.5, 1.5, 1.0
    a = channel.encode([[mq]], [[sq]], m, sp, method="pfr", seed=8)
    b = channel.encode([[(mq - m) / sp]], [[sq / sp]], 0.0, 1.0, method="pfr", seed=8)
    assert a.message.tolist() == b.message.tolist()


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("q_mean", "q_std", "p_std"),
    [([[np.nan]], [[1.0]], 1.0), ([[0.0]], [[0.0]], 1.0), ([[0.0]], [[-1.0]], 1.0), ([[0.0]], [[1.0]], 0.0),
     ([[np.inf]], [[1.0]], 1.0), ([[0.0]], [[np.inf]], 1.0), ([[0.0]], [[1.0]], np.nan)],
)  # fmt: skip
def test_bad_parameters(q_mean, q_std, p_std) -> None:
    with pytest.raises(relcode.InputError):
        channel.encode(q_mean, q_std, 0.0, p_std, method="mrc", bits=4)


def test_bad_shapes_methods_and_options() -> None:
    with pytest.raises(relcode.InputError):
        channel.encode(np.zeros(3), np.ones(3), 0.0, 1.0, method="mrc", bits=4)
    with pytest.raises(relcode.InputError):
        channel.encode(np.zeros((2, 3)), np.ones((3, 2)), 0.0, 1.0, method="mrc", bits=4)
    with pytest.raises(relcode.InputError):
        channel.encode(np.zeros((2, 3)), np.ones((2, 3)), np.zeros(4), 1.0, method="mrc", bits=4)
    with pytest.raises(relcode.InputError, match="unknown method"):
        channel.encode(np.zeros((1, 1)), np.ones((1, 1)), 0.0, 1.0, method="magic")
    with pytest.raises(relcode.InputError, match="unknown option"):
        channel.encode(np.zeros((1, 1)), np.ones((1, 1)), 0.0, 1.0, method="mrc", bits=4, colour="red")
    with pytest.raises(relcode.InputError, match="does not apply"):
        channel.encode(np.zeros((1, 1)), np.ones((1, 1)), 0.0, 1.0, method="mrc", bits=4, depth=3)
    with pytest.raises(relcode.InputError, match="needs bits"):
        channel.encode(np.zeros((1, 1)), np.ones((1, 1)), 0.0, 1.0, method="mrc")
    with pytest.raises(relcode.InputError):
        channel.encode(np.zeros((1, 1)), np.ones((1, 1)), 0.0, 1.0, method="mrc", bits=33)
    with pytest.raises(relcode.InputError):
        channel.encode(np.zeros((1, 1)), np.ones((1, 1)), 0.0, 1.0, method="pfr", index_code="zeta")
    with pytest.raises(relcode.InputError):
        channel.encode(np.zeros((1, 1)), np.ones((1, 1)), 0.0, 1.0, method="pfr", ids=[-1])


def test_exact_methods_refuse_unbounded_ratios_and_name_alternatives() -> None:
    with pytest.raises(relcode.InputError, match="mrc, orc or pfr with bits") as e:
        channel.encode([[0.2]], [[1.3]], 0.0, 1.0, method="pfr")
    assert "dimension 0" in str(e.value)
    # the fixed-budget methods accept the same target
    channel.encode([[0.2]], [[1.3]], 0.0, 1.0, method="pfr", bits=6)


def test_iteration_cap_raises() -> None:
    with pytest.raises(relcode.SamplerError, match="iteration cap"):
        channel.encode([[4.0]], [[0.05]], 0.0, 1.0, method="pfr", max_steps=3)


def test_invalid_messages_are_rejected() -> None:
    with pytest.raises(relcode.InputError):
        channel.decode(np.array([16], dtype=np.uint64), 0.0, 1.0, method="mrc", bits=4, dim=1)
    with pytest.raises(relcode.InputError):
        channel.decode(np.array([0], dtype=np.uint64), 0.0, 1.0, method="pfr", dim=1)
    with pytest.raises(relcode.InputError):
        channel.decode(np.array([-1]), 0.0, 1.0, method="pfr", dim=1)
    with pytest.raises(relcode.InputError):
        channel.decode(np.array([1.5]), 0.0, 1.0, method="pfr", dim=1)
    with pytest.raises(relcode.InputError):
        channel.decode(np.array([1], dtype=np.uint64), 0.0, -1.0, method="pfr", dim=1)


def test_a_sampler_failure_is_the_same_error_from_every_entry_point() -> None:
    """One typed mapping of core errors: the channel and the file encoder agree."""
    import io

    with pytest.raises(relcode.SamplerError, match="iteration cap") as a:
        channel.encode([[4.0]], [[0.05]], 0.0, 1.0, method="pfr", max_steps=3)
    with pytest.raises(relcode.SamplerError, match="iteration cap") as b:
        relcode.encode(io.BytesIO(), {"w": (np.full(1, 4.0), 0.05, 0.0, 1.0)}, seed=0, method="pfr",
                       bits=None, max_steps=3, bits_per_block=40)  # fmt: skip
    assert type(a.value) is type(b.value) is relcode.SamplerError
    with pytest.raises(relcode.InputError) as c:
        relcode.encode(io.BytesIO(), {"w": (np.zeros(3), 0.05, 0.0, 1.0)}, seed=0, method="nope")
    assert type(c.value) is relcode.InputError
