"""The GPU encoder (relcode.gpu): candidates bit-identical to the stream, keys bit-identical to
the CPU encoder's arithmetic, indices and codes identical to the CPU encoder's.

The default run executes the Triton kernels in Triton's interpreter on the CPU, at small
sizes; tests marked ``gpu`` run the compiled kernels on a CUDA device at realistic sizes
(``pytest -m gpu tests/python/test_gpu.py``), and ``slow`` ones compile every kernel variant
for a Hopper GPU without one and inspect the instructions.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import relcode
from relcode import channel
from relcode import reference as R

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
gpu = relcode.gpu

SPEC = Path(__file__).resolve().parents[2] / "spec"
FIXED = ["mrc", "orc", "pfr"]
HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")


def problems(rng: np.random.Generator, n: int, d: int) -> tuple[np.ndarray, ...]:
    pm = rng.normal(0, 0.1, (n, d)).astype(np.float32)
    ps = rng.uniform(0.5, 1.5, (n, d)).astype(np.float32)
    qm = pm + ps * rng.normal(0, 0.6, (n, d))
    qs = ps * rng.uniform(0.3, 1.2, (n, d))
    return qm, qs, pm, ps


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.fixture
def interpret(monkeypatch: pytest.MonkeyPatch) -> None:
    """``device="cuda"`` runs the kernels in Triton's interpreter (on the GPU's tensors if any)."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")


# ------------------------------------------------------------------ a reference of the keys
def fine_uniform(w: np.ndarray) -> np.ndarray:
    j = w >> np.uint32(9)
    main = (j.astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-23)
    tail = ((w & np.uint32(0x1FF)).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-32)
    return np.where(j != 0, main, tail).astype(np.float32)


def reference_keys(
    method: str, a: np.ndarray, b: np.ndarray, z: np.ndarray, seed: int, sid: int
) -> np.ndarray:
    """The keys of rust/relcode/src/channel/fixed.rs in numpy, for one problem: candidates
    ``z`` (N, d) float32 scored with coefficients (a, b) in dimension order, NOIS noise,
    binary64 arrival times in blocks of sixteen (Hillis-Steele, then a sequential carry)."""
    n = z.shape[0]
    acc = np.zeros(n, dtype=np.float32)
    for j in range(z.shape[1]):
        acc = acc + (a[j] * z[:, j] + b[j]) * z[:, j]
    ng = (n + 15) // 16
    e = -R._logf(fine_uniform(relcode.stream.words(seed, "NOIS", sid, 0, 16 * ng)))
    if method == "mrc":
        return acc - R._logf(e[:n])
    inc = e.astype(np.float64)
    if method == "orc":
        inc = inc / np.maximum(float(n) - np.arange(16 * ng, dtype=np.float64), 1.0)
    x = inc.reshape(ng, 16)
    for s in (1, 2, 4, 8):
        prev = x.copy()
        x[:, s:] = prev[:, s:] + prev[:, :-s]
    carry = np.zeros(ng)
    for g in range(1, ng):
        carry[g] = carry[g - 1] + x[g - 1, 15]
    t = (carry[:, None] + x).reshape(-1)[:n].astype(np.float32)
    return acc - R._logf(t)


def stream_candidates(seed: int, sid: int, n: int, d: int, purpose: str = "CAND") -> np.ndarray:
    """Candidates 0 .. n-1 of dimension d from relcode.stream (group-interleaved layout)."""
    k = np.arange(n)[:, None]
    j = np.arange(d)[None, :]
    pos = (k // 16) * 16 * d + 16 * j + k % 16
    flat = relcode.stream.normals(seed, sid, 0, int(pos.max()) + 1, purpose=purpose)
    return flat[pos]


# ------------------------------------------------------------------ the stream
def test_importing_relcode_and_encoding_on_the_cpu_never_imports_torch_or_triton() -> None:
    code = (
        "import sys, numpy as np, relcode\n"
        "relcode.channel.encode(np.zeros((2, 3)), np.ones((2, 3)), 0.0, 1.0, method='mrc', bits=4)\n"
        "assert 'torch' not in sys.modules and 'triton' not in sys.modules, 'imported'\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(relcode.__file__).parents[1]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_normals_match_the_conformance_vectors() -> None:
    cases = json.loads((SPEC / "vectors" / "stream" / "normals.json").read_text())["cases"]
    for c in cases:
        want = np.array([int(b, 16) for b in c["bits"]], dtype=np.uint32)
        got = gpu.normals(int(c["seed"]), int(c["stream"]), int(c["start"]), want.size, device="cpu",
                          interpret=True)  # fmt: skip
        np.testing.assert_array_equal(got.view(np.uint32), want)


@pytest.mark.parametrize("purpose", ["CAND", "POOL"])
def test_normals_hash_equals_the_reference_stream(purpose: str) -> None:
    seed, sid, start, count = 2**64 - 5, 2**63 + 17, 2**40 + 3, 1 << 13
    got = gpu.normals(seed, sid, start, count, purpose=purpose, device="cpu", interpret=True)
    tag = relcode.stream.PURPOSES[purpose]
    assert sha(got) == sha(R.normals(seed, sid, start, count, purpose=tag))
    assert sha(got) == sha(relcode.stream.normals(seed, sid, start, count, purpose=purpose))


# ------------------------------------------------------------------ candidates and keys
@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("pool", [False, True])
def test_scored_candidates_and_keys_are_the_cpu_encoders(
    method: str, pool: bool, rng: np.random.Generator
) -> None:
    n, d, bits, seed = 3, 5, 7, 2**63 + 9
    qm, qs, pm, ps = problems(rng, n, d)
    ids = rng.integers(0, 2**64, n, dtype=np.uint64)
    a, b = gpu.coefficients(qm, qs, pm, ps)
    if pool:
        a, b = gpu.pool_coefficients(a, b, seed, ids)
    index, z, keys = gpu.select(
        method, a, b, ids, seed, bits, pool=pool, device="cpu", interpret=True, dump=True
    )
    for i in range(n):
        # pool mode scores the pool vectors (pool dimension order) with moved coefficients
        want_z = stream_candidates(seed, d if pool else int(ids[i]), 1 << bits, d, "POOL" if pool else "CAND")
        assert sha(z[i]) == sha(want_z)
        want = reference_keys(method, a[i], b[i], want_z, seed, int(ids[i]))
        np.testing.assert_array_equal(keys[i].view(np.uint32), want.view(np.uint32))
        assert index[i] == np.flatnonzero(want == want.max())[0]


def test_pool_transforms_follow_the_spec() -> None:
    seed, ids, d = 77, np.array([0, 12345, 2**64 - 1], dtype=np.uint64), 37
    perm, neg = gpu.transforms(seed, ids, d)
    nsign = (d + 31) // 32
    for r, bid in enumerate(ids):
        w = relcode.stream.words(seed, "XFRM", int(bid), 0, nsign + d - 1)
        assert list(neg[r]) == [bool((int(w[j // 32]) >> (j % 32)) & 1) for j in range(d)]
        p = list(range(d))
        for step, i in enumerate(range(d - 1, 0, -1)):
            j = (int(w[nsign + step]) * (i + 1)) >> 32
            p[i], p[j] = p[j], p[i]
        assert list(perm[r]) == p


# ------------------------------------------------------------------ indices and codes
# (n, d, bits): the interpreter's cost grows with d (per-block mode) and with the number of
# programs, not with n or 2^bits, so these stay small; pool mode also covers d = 64
CASES = [(4, 1, 6), (3, 3, 3), (2, 2, 0), (1, 16, 8)]


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("pool", [False, True])
def test_encode_on_the_device_equals_the_cpu_encoder(
    method: str, pool: bool, interpret: None, rng: np.random.Generator
) -> None:
    for n, d, bits in CASES + ([(2, 64, 5)] if pool else []):
        qm, qs, pm, ps = problems(rng, n, d)
        ids = rng.integers(0, 2**64, n, dtype=np.uint64)
        kw = dict(method=method, bits=bits, seed=int(rng.integers(0, 2**63)), ids=ids, pool=pool)
        got = channel.encode(qm, qs, pm, ps, device="cuda", **kw)
        want = channel.encode(qm, qs, pm, ps, **kw)
        np.testing.assert_array_equal(got.message, want.message)
        assert got.message.dtype == want.message.dtype
        np.testing.assert_array_equal(got.sample.view(np.uint32), want.sample.view(np.uint32))
        np.testing.assert_array_equal(got.bits, want.bits)
        np.testing.assert_array_equal(got.steps, want.steps)
        assert got.method == want.method


@pytest.mark.parametrize("method", FIXED)
def test_launch_geometry_never_changes_the_result(
    method: str, monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    """Several problem chunks, group chunks (the PFR/ORC carry crosses launches) and tiles
    of one group and one problem."""
    n, d, bits = 3, 1, 7
    qm, qs, pm, ps = problems(rng, n, d)
    ids = np.arange(n, dtype=np.uint64) * 3
    a, b = gpu.coefficients(qm, qs, pm, ps)
    want = channel.encode(qm, qs, pm, ps, method=method, bits=bits, seed=5, ids=ids).message
    monkeypatch.setattr(gpu, "MAX_GROUPS_PER_LAUNCH", 4)
    monkeypatch.setattr(gpu, "MAX_CARRIES", 8)
    monkeypatch.setattr(gpu, "INTERPRET_GROUPS", 2)
    monkeypatch.setattr(gpu, "INTERPRET_ELEMENTS", 2)
    got = gpu.select(method, a, b, ids, 5, bits, device="cpu", interpret=True)
    np.testing.assert_array_equal(got, want)


def test_cached_pools_serve_smaller_budgets(interpret: None, rng: np.random.Generator) -> None:
    """Pools of (seed, d) are prefixes of one another: a pool built for 2^8 candidates serves
    2^5; clearing the cache rebuilds it."""
    qm, qs, pm, ps = problems(rng, 3, 4)
    for bits in (8, 5, 2):
        kw = dict(method="mrc", bits=bits, seed=12, pool=True)
        got = channel.encode(qm, qs, pm, ps, device="cuda", **kw)
        np.testing.assert_array_equal(got.message, channel.encode(qm, qs, pm, ps, **kw).message)
    gpu.clear_cache()
    got = channel.encode(qm, qs, pm, ps, device="cuda", method="orc", bits=5, seed=12, pool=True)
    want = channel.encode(qm, qs, pm, ps, method="orc", bits=5, seed=12, pool=True)
    np.testing.assert_array_equal(got.message, want.message)


@pytest.mark.parametrize("method", FIXED)
def test_degenerate_targets_select_as_on_the_cpu(method: str, interpret: None) -> None:
    """All keys NaN or -inf (a tiny posterior std overflows the coefficients): index 0; Q = P:
    the noise alone decides, ties to the smallest index."""
    d = 3
    pm = np.zeros((3, d), dtype=np.float32)
    ps = np.ones((3, d), dtype=np.float32)
    qm = np.array([[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [0.2, -0.1, 0.0]])
    qs = np.array([[1e-30, 1e-30, 1e-30], [1.0, 1.0, 1.0], [1e-30, 0.5, 2.0]])
    kw = dict(method=method, bits=6, seed=1)
    got = channel.encode(qm, qs, pm, ps, device="cuda", **kw)
    want = channel.encode(qm, qs, pm, ps, **kw)
    np.testing.assert_array_equal(got.message, want.message)
    assert got.message[0] == 0


# ------------------------------------------------------------------ errors and devices
@pytest.mark.skipif(HAS_CUDA, reason="checks the error without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(relcode.InputError, match="needs a CUDA GPU"):
        channel.encode(np.zeros((1, 2)), np.ones((1, 2)), 0.0, 1.0, method="mrc", bits=4, device="cuda")


def test_auto_device_gives_the_cpu_result(rng: np.random.Generator) -> None:
    qm, qs, pm, ps = problems(rng, 3, 2)
    for method, kw in [("mrc", {"bits": 5}), ("pfr", {})]:
        want = channel.encode(qm[:, :1], qs[:, :1] * 0.5, pm[:, :1], ps[:, :1], method=method, seed=2, **kw)
        got = channel.encode(qm[:, :1], qs[:, :1] * 0.5, pm[:, :1], ps[:, :1], method=method, seed=2,
                             device="auto", **kw)  # fmt: skip
        np.testing.assert_array_equal(got.message, want.message)


@pytest.mark.parametrize(
    ("method", "options", "match"),
    [
        ("gprs", {}, "runs the fixed-budget methods"),
        ("pfr", {}, "runs the fixed-budget methods"),
        ("mrc", {}, "needs bits=C"),
        ("mrc", {"bits": 4, "max_steps": 0}, "max_steps must be positive"),
        ("mrc", {"bits": 33}, "bits must be at most 32"),
        ("orc", {"bits": 4, "depth": 3}, "does not apply"),
    ],
)
def test_bad_options_on_the_device_are_the_cpu_errors(
    method: str, options: dict, match: str, interpret: None
) -> None:
    with pytest.raises(relcode.InputError, match=match):
        channel.encode(
            np.zeros((2, 1)), np.full((2, 1), 0.5), 0.0, 1.0, method=method, device="cuda", **options
        )


def test_bad_targets_and_devices(interpret: None) -> None:
    qm, qs = np.zeros((3, 2)), np.ones((3, 2))
    qs[1, 1] = 0.0
    for device in ("cuda", "cpu"):
        with pytest.raises(
            relcode.InputError, match=r"problem 1: stds must be positive and finite \(dimension 1\)"
        ):
            channel.encode(qm, qs, 0.0, 1.0, method="mrc", bits=3, device=device)
    qm[2, 0] = np.nan
    with pytest.raises(relcode.InputError, match=r"problem 1: stds"):
        channel.encode(qm, qs, 0.0, 1.0, method="mrc", bits=3, device="cuda")
    with pytest.raises(relcode.InputError, match="unknown device"):
        channel.encode(np.zeros((1, 1)), np.ones((1, 1)), 0.0, 1.0, method="mrc", bits=3, device="tpu:x")
    with pytest.raises(relcode.InputError, match="pool mode keeps in memory"):
        channel.encode(np.zeros((1, 64)), np.ones((1, 64)), 0.0, 1.0, method="mrc", bits=23, pool=True,
                       device="cuda")  # fmt: skip


# ------------------------------------------------------------------ compiled for a real GPU
def _compile(rule: int, pool: bool) -> str:
    """PTX of the fused kernel for sm_90 (no GPU needed: Triton ships ptxas)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    k = gpu._kernels(False)
    ptr = {"f": "*fp32", "d": "*fp64", "l": "*i64", "i": "*i32"}
    sig = dict(
        zip(
            ["coef_a_ptr", "coef_b_ptr", "ids_ptr", "keys_ptr", "pool_ptr", "carry_ptr", "best_val_ptr",
             "best_idx_ptr", "dump_z_ptr", "dump_key_ptr"],
            [ptr[c] for c in "fflifdflff"],
        )
    )  # fmt: skip
    sig.update(d="i32", n_cand="i64", g0="i32", gc="i32", nbc="i32", tiles="i32")
    meta = {"RULE": rule, "POOL": pool, "DUMP": False, "B": 4 if pool else 1, "G": gpu.GROUPS_PER_PROGRAM}
    options = {**gpu._EXACT, "num_warps": gpu.NUM_WARPS}
    src = ASTSource(fn=k._fixed_kernel, signature=sig, constexprs=meta)
    c = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options)
    return c.asm["ptx"]


def _check_ptx(ptx: str, rule: int, pool: bool) -> None:
    """No fused multiply-add, no approximation, no flush to zero; every floating-point
    +, -, x, /, sqrt explicitly round-to-nearest (which ptxas never contracts)."""
    ops = {line.split()[0] for line in ptx.splitlines() if line.strip() and line.strip()[0].isalpha()}
    forbidden = ("fma", "approx", "ftz", "rcp", "lg2", "ex2", "sin.", "cos.", "div.full")
    assert not [o for o in ops if any(f in o for f in forbidden) or (o.startswith("mad") and "f" in o[-3:])]
    arith = [
        o for o in ops if o.split(".")[0] in ("add", "sub", "mul", "div", "sqrt") and o[-3:] in ("f32", "f64")
    ]
    assert arith and all(".rn." in o for o in arith), arith
    if not pool:
        assert "sqrt.rn.f32" in ops
    if rule == 1:
        assert "div.rn.f64" in ops


def test_the_fused_kernel_compiles_for_a_gpu_without_contraction() -> None:
    _check_ptx(_compile(0, False), 0, False)


@pytest.mark.slow
@pytest.mark.parametrize(("rule", "pool"), [(0, True), (1, False), (1, True), (2, False), (2, True)])
def test_every_kernel_variant_compiles_without_contraction(rule: int, pool: bool) -> None:
    _check_ptx(_compile(rule, pool), rule, pool)


# ------------------------------------------------------------------ on a real GPU
@pytest.mark.gpu
@needs_cuda
def test_gpu_normals_hash_equals_the_cpu_stream() -> None:
    for seed, sid, start in [(0, 0, 0), (2**64 - 1, 2**63 + 5, 2**64 - (1 << 22)), (9, 3, 2**41 + 1)]:
        got = gpu.normals(seed, sid, start, 1 << 22, device="cuda", interpret=False)
        assert sha(got) == sha(relcode.stream.normals(seed, sid, start, 1 << 22))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("pool", [False, True])
def test_gpu_candidates_and_keys_are_the_cpu_encoders(
    method: str, pool: bool, rng: np.random.Generator
) -> None:
    n, d, bits, seed = 4, 16, 10, 31
    qm, qs, pm, ps = problems(rng, n, d)
    ids = rng.integers(0, 2**64, n, dtype=np.uint64)
    a, b = gpu.coefficients(qm, qs, pm, ps)
    if pool:
        a, b = gpu.pool_coefficients(a, b, seed, ids)
    _, z, keys = gpu.select(
        method, a, b, ids, seed, bits, pool=pool, device="cuda", interpret=False, dump=True
    )
    for i in range(n):
        want_z = stream_candidates(seed, d if pool else int(ids[i]), 1 << bits, d, "POOL" if pool else "CAND")
        assert sha(z[i]) == sha(want_z)
        want = reference_keys(method, a[i], b[i], want_z, seed, int(ids[i]))
        np.testing.assert_array_equal(keys[i].view(np.uint32), want.view(np.uint32))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("pool", [False, True])
def test_gpu_encode_equals_the_cpu_encoder_at_scale(
    method: str, pool: bool, rng: np.random.Generator
) -> None:
    """C = 16, d = 16, thousands of blocks: the same file bytes (messages) and samples."""
    n, d, bits = 2048, 16, 16
    qm, qs, pm, ps = problems(rng, n, d)
    ids = np.arange(n, dtype=np.uint64) + 1000
    kw = dict(method=method, bits=bits, seed=2026, ids=ids, pool=pool)
    got = channel.encode(qm, qs, pm, ps, device="cuda", **kw)
    want = channel.encode(qm, qs, pm, ps, **kw)
    np.testing.assert_array_equal(got.message, want.message)
    np.testing.assert_array_equal(got.sample.view(np.uint32), want.sample.view(np.uint32))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("method", FIXED)
def test_gpu_launch_chunks_never_change_the_result(
    method: str, monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    n, d, bits = 300, 8, 16
    qm, qs, pm, ps = problems(rng, n, d)
    a, b = gpu.coefficients(qm, qs, pm, ps)
    ids = np.arange(n, dtype=np.uint64)
    want = channel.encode(qm, qs, pm, ps, method=method, bits=bits, seed=4).message
    monkeypatch.setattr(gpu, "MAX_GROUPS_PER_LAUNCH", 1000)
    monkeypatch.setattr(gpu, "MAX_CARRIES", 1 << 16)
    got = gpu.select(method, a, b, ids, 4, bits, device="cuda", interpret=False)
    np.testing.assert_array_equal(got, want)
