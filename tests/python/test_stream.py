"""relcode.stream: bit-identity across backends, threads and the numpy reference; random
access; statistical quality; ndtri accuracy; bad input."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import threading

import numpy as np
import pytest
from scipy import stats

import relcode
from relcode import reference as R
from relcode.stream import PURPOSES

from ..conftest import ROOT

BACKENDS = relcode.stream.backends()


def u32(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32)


def test_random123_known_answers() -> None:
    ctr = np.array(
        [[0, 0, 0, 0], [0xFFFFFFFF] * 4, [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344]], dtype=np.uint32
    )
    want = [
        [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8],
        [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ]
    for i, key in enumerate([[0, 0], [0xFFFFFFFF] * 2, [0xA4093822, 0x299F31D0]]):
        np.testing.assert_array_equal(relcode.stream.philox4x32_10(ctr[i : i + 1], key)[0], want[i])
        np.testing.assert_array_equal(R.philox4x32_10(ctr[i : i + 1], key)[0], want[i])


def test_philox_many_rows_native_equals_reference(rng: np.random.Generator) -> None:
    ctr = rng.integers(0, 2**32, size=(50_000, 4), dtype=np.uint64).astype(np.uint32)
    key = np.array([0xDEADBEEF, 0x12345678], dtype=np.uint32)
    np.testing.assert_array_equal(relcode.stream.philox4x32_10(ctr, key), R.philox4x32_10(ctr, key))


def test_backends_threads_and_reference_agree_on_millions(rng: np.random.Generator) -> None:
    """Scalar = AVX2 = AVX-512 = multithreaded = numpy reference, bit for bit."""
    total = 0
    for _ in range(4):
        seed = int(rng.integers(0, 2**63)) * 2 + 1
        stream = int(rng.integers(0, 2**63))
        start = int(rng.integers(0, 2**62))
        count = 700_001
        base = relcode.stream.normals(seed, stream, start, count, backend="scalar", threads=1)
        for backend in BACKENDS:
            for threads in (1, 2, 3):
                got = relcode.stream.normals(seed, stream, start, count, backend=backend, threads=threads)
                np.testing.assert_array_equal(u32(got), u32(base), err_msg=f"{backend} x{threads}")
        sub = slice(int(rng.integers(0, count - 100_000)), None)
        piece = base[sub][:100_000]
        ref = R.normals(seed, stream, start + sub.start, piece.size)
        np.testing.assert_array_equal(u32(ref), u32(piece))
        total += count
    assert total >= 2_800_000


def test_random_access_equals_sequential(rng: np.random.Generator) -> None:
    seed, stream = 7, 2**63 + 5
    whole = relcode.stream.normals(seed, stream, 1_000, 20_000)
    cuts = np.sort(rng.choice(np.arange(1, 20_000), size=60, replace=False))
    bounds = [0, *cuts.tolist(), 20_000]
    parts = [relcode.stream.normals(seed, stream, 1_000 + a, b - a) for a, b in itertools.pairwise(bounds)]
    np.testing.assert_array_equal(u32(np.concatenate(parts)), u32(whole))
    for p in rng.integers(0, 20_000, size=200):
        one = relcode.stream.normals(seed, stream, 1_000 + int(p), 1)
        assert u32(one)[0] == u32(whole)[p]


def test_streams_and_purposes_are_distinct() -> None:
    a = relcode.stream.normals(1, 0, 0, 1000)
    b = relcode.stream.normals(1, 1, 0, 1000)
    c = relcode.stream.normals(2, 0, 0, 1000)
    d = relcode.stream.normals(1, 0, 0, 1000, purpose="POOL")
    for x, y in [(a, b), (a, c), (a, d), (b, c)]:
        assert abs(np.corrcoef(x, y)[0, 1]) < 0.1
        assert not np.array_equal(x, y)


def test_threaded_callers_get_identical_results() -> None:
    """The GIL is released: concurrent Python threads run and each gets the right bits."""
    want = relcode.stream.normals(3, 4, 5, 300_000)
    results: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: results.append(relcode.stream.normals(3, 4, 5, 300_000)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for r in results:
        np.testing.assert_array_equal(u32(r), u32(want))


def test_normals_match_standard_normal() -> None:
    """KS on 10^7 draws at a fixed seed, moments, and tail counts within binomial bounds."""
    n = 10_000_000
    z = relcode.stream.normals(2026, 11, 0, n).astype(np.float64)
    ks = stats.kstest(z, "norm")
    assert ks.pvalue > 1e-3, ks
    assert ks.statistic < 1.63 / np.sqrt(n) * 1.5
    se = 1 / np.sqrt(n)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1) < 5 * np.sqrt(2) * se
    assert abs(stats.skew(z)) < 5 * np.sqrt(6) * se
    assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24) * se
    for t in (3.0, 4.0, 5.0):
        p = 2 * stats.norm.sf(t)
        k = int((np.abs(z) > t).sum())
        lo, hi = stats.binom.ppf([1e-6, 1 - 1e-6], n, p)
        assert lo <= k <= hi, (t, k, n * p)
    assert np.abs(z).max() <= 6.765
    # a broken sampler (e.g. uniforms reused across the pair) fails these
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 5 * se * 2


def test_tail_reaches_beyond_six_sigma() -> None:
    """The radius word is refined below 2^-23, so |z| > 5.8 occurs at about its true rate."""
    n = 1 << 26
    z = relcode.stream.normals(99, 1, 0, n)
    k = int((np.abs(z) > 5.8).sum())
    p = 2 * stats.norm.sf(5.8)
    lo, hi = stats.binom.ppf([1e-6, 1 - 1e-6], n, p)
    assert lo <= k <= hi, (k, n * p)


def test_ndtri_accuracy() -> None:
    """Relative error against 50-digit arithmetic over the whole domain, tails included."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    rng = np.random.default_rng(5)
    ps = np.concatenate(
        [
            rng.uniform(0, 1, 1500),
            np.exp(-rng.uniform(0, 690, 1500)),
            1 - np.exp(-rng.uniform(0, 36, 500)),
            [0.075, 0.925, 0.5 + 1e-9, 1e-300, 5e-324, 1 - 2**-53],
        ]
    )
    ps = ps[(ps > 0) & (ps < 1)]
    xs = relcode.stream.ndtri(ps)
    worst = 0.0
    for p, x in zip(ps, xs):
        if x == 0.0:
            assert p == 0.5
            continue
        xm = mp.mpf(float(x))
        # first-order inversion error: (Phi(x) - p) / phi(x)
        dx = (mp.ncdf(xm) - mp.mpf(float(p))) / mp.npdf(xm)
        worst = max(worst, float(abs(dx / xm)))
    assert worst < 8e-16, worst  # measured 6.3e-16 (2.9 ulp), in the far tails


def test_ndtri_monotone_and_symmetric(rng: np.random.Generator) -> None:
    p = np.sort(rng.uniform(0, 1, 200_000))
    x = relcode.stream.ndtri(p)
    assert np.all(np.diff(x) >= 0)
    dyadic = np.arange(1, 1024) / 1024.0
    np.testing.assert_array_equal(relcode.stream.ndtri(dyadic), -relcode.stream.ndtri(1 - dyadic))
    np.testing.assert_array_equal(relcode.stream.ndtri(p), R.ndtri(p))


def test_ndtri_shapes() -> None:
    u = np.full((3, 4), 0.25)
    assert relcode.stream.ndtri(u).shape == (3, 4)
    assert relcode.stream.ndtri(np.zeros((0,)) + 0.5).shape == (0,)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 1.5, np.nan, np.inf])
def test_ndtri_rejects_values_outside_open_interval(bad: float) -> None:
    with pytest.raises(relcode.InputError) as e:
        relcode.stream.ndtri(np.array([0.3, bad]))
    assert isinstance(e.value, ValueError) and isinstance(e.value, relcode.RelcodeError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"seed": 2**64},
        {"seed": 1.5},
        {"seed": True},
        {"stream": 2**64},
        {"start": -3},
        {"count": "4"},
        {"start": 2**64 - 2, "count": 3},
        {"backend": "sse9"},
        {"threads": 0},
    ],
)
def test_normals_bad_arguments(kwargs: dict) -> None:
    args = {"seed": 0, "stream": 0, "start": 0, "count": 4, **kwargs}
    with pytest.raises(relcode.InputError):
        relcode.stream.normals(**args)


def test_normals_edge_positions() -> None:
    z = relcode.stream.normals(0, 0, 2**64 - 2, 2)
    np.testing.assert_array_equal(u32(z), u32(R.normals(0, 0, 2**64 - 2, 2)))
    assert relcode.stream.normals(0, 0, 5, 0).shape == (0,)


def test_philox_bad_arguments() -> None:
    with pytest.raises(relcode.InputError):
        relcode.stream.philox4x32_10(np.zeros((2, 3), dtype=np.uint32), [0, 0])
    with pytest.raises(relcode.InputError):
        relcode.stream.philox4x32_10(np.zeros((2, 4), dtype=np.uint32), [0, 0, 0])
    with pytest.raises(relcode.InputError):
        relcode.stream.philox4x32_10(np.full((1, 4), -1), [0, 0])
    with pytest.raises(relcode.InputError):
        relcode.stream.philox4x32_10(np.zeros((1, 4)), [0, 0])
    with pytest.raises(relcode.InputError):
        relcode.stream.derive_key(0, "NOPE")


def test_purposes_are_ascii_tags() -> None:
    assert PURPOSES["CAND"] == 0x444E4143
    assert relcode.stream.words(0, "CAND", 0, 0, 4).dtype == np.uint32


def _build_digest(rustflags: str, target_dir: str) -> str:
    env = {**os.environ, "RUSTFLAGS": rustflags, "CARGO_TARGET_DIR": target_dir}
    out = subprocess.run(
        ["cargo", "run", "--quiet", "--release", "-p", "relcode", "--example", "stream_digest"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


@pytest.mark.slow
def test_baseline_and_native_builds_agree(tmp_path) -> None:
    """A baseline x86-64 build and a target-cpu=native build print the same digests."""
    base = _build_digest("", str(tmp_path / "base"))
    native = _build_digest("-C target-cpu=native", str(tmp_path / "native"))
    assert base == native
    z = relcode.stream.normals(1, 2, 3, 1 << 20)
    assert f"normals {hashlib.sha256(z.tobytes()).hexdigest()}" in base.splitlines()
