"""Pool mode of the fixed-budget samplers (spec/channel.md section 7)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import relcode
from relcode import channel
from relcode import reference as R

FIXED = [("mrc", {}), ("orc", {}), ("pfr", {})]


def pair_correlation(x: np.ndarray, mu: np.ndarray, s: np.ndarray) -> float:
    """Correlation between the standardised samples of blocks 2i and 2i+1."""
    u = (x - mu) / s
    return float(np.corrcoef(u[0::2].ravel(), u[1::2].ravel())[0, 1])


@pytest.mark.parametrize("d", [1, 3, 16, 25, 40])
@pytest.mark.parametrize(("method", "opts"), FIXED)
def test_round_trip(method: str, opts: dict, d: int, rng: np.random.Generator) -> None:
    n = 9
    pm = rng.normal(0, 0.1, (n, d)).astype(np.float32)
    ps = rng.uniform(0.5, 1.5, (n, d)).astype(np.float32)
    qm = pm + ps * rng.normal(0, 0.6, (n, d))
    qs = ps * rng.uniform(0.3, 1.2, (n, d))
    code = channel.encode(qm, qs, pm, ps, method=method, bits=10, pool=True, seed=4, **opts)
    x = channel.decode(code.message, pm, ps, method=method, bits=10, pool=True, seed=4)
    np.testing.assert_array_equal(x.view(np.uint32), code.sample.view(np.uint32))
    # the pool and per-block modes are different codes: the same message decodes differently
    y = channel.decode(code.message, pm, ps, method=method, bits=10, seed=4)
    assert not np.array_equal(x, y)


def test_decoding_follows_the_spec_with_the_reference_stream() -> None:
    """Candidate k of block b: x_j = sign_j z_k[perm(j)], z_k from stream (seed, POOL, d)."""
    d, seed, bid = 6, 77, 12345
    pm = np.linspace(-1, 1, d).astype(np.float32)
    ps = np.linspace(0.5, 2, d).astype(np.float32)
    code = channel.encode((pm + 0.3 * ps)[None], (0.5 * ps)[None], pm, ps, method="mrc", bits=9, pool=True,
                          seed=seed, ids=[bid])  # fmt: skip
    k = int(code.message[0])
    pool_purpose = relcode.stream.PURPOSES["POOL"]
    z = np.array(
        [
            R.normals(seed, d, (k // 16) * 16 * d + 16 * i + k % 16, 1, purpose=pool_purpose)[0]
            for i in range(d)
        ],
        dtype=np.float32,
    )
    w = relcode.stream.words(seed, "XFRM", bid, 0, 1 + d)
    neg = [(int(w[j // 32]) >> (j % 32)) & 1 for j in range(d)]
    perm = list(range(d))
    for step, i in enumerate(range(d - 1, 0, -1)):
        j = (int(w[1 + step]) * (i + 1)) >> 32
        perm[i], perm[j] = perm[j], perm[i]
    x = np.array([-z[perm[j]] if neg[j] else z[perm[j]] for j in range(d)], dtype=np.float32)
    np.testing.assert_array_equal((ps * x + pm).view(np.uint32), code.sample[0].view(np.uint32))


@pytest.mark.parametrize("method", ["mrc", "pfr"])
def test_marginals_equal_the_per_block_mode(method: str) -> None:
    """Same N, same target: each coordinate's distribution (over the shared randomness, so
    over pools: one pool per seed) matches the per-block mode's."""
    seeds, per_seed, d = 240, 25, 4
    mu = np.array([0.8, -0.5, 0.0, 1.5])
    s = np.array([0.3, 0.5, 0.7, 0.4])
    qm, qs = np.tile(mu, (per_seed, 1)), np.tile(s, (per_seed, 1))
    a = np.concatenate(
        [
            channel.encode(qm, qs, 0.0, 1.0, method=method, bits=8, pool=True, seed=1000 + i).sample
            for i in range(seeds)
        ]
    )
    m = a.shape[0]
    qm_all, qs_all = np.tile(mu, (m, 1)), np.tile(s, (m, 1))
    b = channel.encode(qm_all, qs_all, 0.0, 1.0, method=method, bits=8, seed=2).sample
    for j in range(d):
        assert stats.ks_2samp(a[:, j], b[:, j]).pvalue > 1e-3, j
    # within one pool, blocks are drawn from transformed copies of the same 2^8 vectors
    assert np.unique(a[:per_seed], axis=0).shape[0] <= per_seed


def test_cross_block_dependence_is_far_below_a_shared_table() -> None:
    """Identical posteriors in many blocks: an untransformed shared table (MIRACLE/COMBINER)
    makes their coded samples strongly correlated; the block-keyed transform removes that."""
    n, d, bits = 4000, 8, 10
    rng = np.random.default_rng(0)
    mu = rng.normal(0, 0.8, d)
    s = np.full(d, 0.25)  # about 9 bits of KL in 10 bits of budget
    qm, qs = np.tile(mu, (n, 1)), np.tile(s, (n, 1))
    pooled = channel.encode(qm, qs, 0.0, 1.0, method="mrc", bits=bits, pool=True, seed=3).sample
    # the shared table: one set of 2^bits candidates for every block, own Gumbel noise per block
    table = relcode.stream.normals(3, 0, 0, (1 << bits) * d).reshape(-1, d)
    a, b = 0.5 * (1 - 1 / s**2), mu / s**2
    logw = ((a * table + b) * table).sum(axis=1)
    k = np.argmax(logw[None, :] + rng.gumbel(size=(n, 1 << bits)), axis=1)
    shared = table[k]
    c_pool = pair_correlation(pooled, mu, s)
    c_shared = pair_correlation(shared, mu, s)
    print(f"correlation: shared table {c_shared:.4f}, pool mode {c_pool:.4f}")
    assert c_shared > 0.1, c_shared
    assert abs(c_pool) < 0.05, c_pool
    assert abs(c_pool) < c_shared / 10


def test_value_stability() -> None:
    qm = np.array([[0.3, -0.5, 1.2, 0.0], [2.0, 0.0, 0.1, -1.0]])
    qs = np.array([[0.5, 0.2, 0.9, 0.4], [0.1, 0.3, 0.6, 0.5]])
    got = {
        m: channel.encode(
            qm, qs, 0.0, 1.0, method=m, bits=12, pool=True, seed=2026, ids=[7, 2**40]
        ).message.tolist()
        for m in ("mrc", "orc", "pfr")
    }
    assert got == {"mrc": [2618, 2719], "orc": [65, 693], "pfr": [65, 693]}


def test_pool_needs_a_fixed_budget_method_and_bounded_size() -> None:
    with pytest.raises(relcode.InputError, match="pool mode"):
        channel.encode([[0.0]], [[0.5]], 0.0, 1.0, method="pfr", pool=True)
    with pytest.raises(relcode.InputError, match="does not apply"):
        channel.encode([[0.0]], [[0.5]], 0.0, 1.0, method="gprs", pool=True)
    with pytest.raises(relcode.InputError, match="in memory"):
        channel.encode(np.zeros((1, 64)), np.ones((1, 64)), 0.0, 1.0, method="mrc", bits=23, pool=True)


def test_prepare_pool_builds_ahead_without_changing_results() -> None:
    qm, qs = np.full((3, 5), 0.2), np.full((3, 5), 0.6)
    cold = channel.encode(qm, qs, 0.0, 1.0, method="pfr", bits=9, pool=True, seed=31337)
    channel.prepare_pool(31338, 5, 9)
    warm = channel.encode(qm, qs, 0.0, 1.0, method="pfr", bits=9, pool=True, seed=31338)
    again = channel.encode(qm, qs, 0.0, 1.0, method="pfr", bits=9, pool=True, seed=31337)
    np.testing.assert_array_equal(cold.message, again.message)
    assert warm.sample.shape == (3, 5)
    with pytest.raises(relcode.InputError):
        channel.prepare_pool(0, 0, 9)
    with pytest.raises(relcode.InputError):
        channel.prepare_pool(0, 64, 40)
