"""Benchmark harness: relcode against a plain numpy or torch baseline, in one run, as ratios.

Timings on shared machines are noisy; the ratios measured in one run are what to report.
numpy, torch and relcode run on one thread here (``threads=1``), so the numbers are per core.
Run ``relcode bench stream`` (or ``channel``, ``all``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from . import stream

__all__ = ["best_time", "run", "stream_bench"]


def best_time(fn: Callable[[], object], repeat: int = 7, min_time: float = 0.05) -> float:
    """Best wall time of ``fn`` over ``repeat`` rounds, each looping until ``min_time``."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        best = min(best, dt / n)
    return best


def _table(title: str, rows: list[tuple[str, float]], unit: str, base: str) -> str:
    ref = dict(rows)[base]
    width = max(len(name) for name, _ in rows)
    lines = [title, f"{'':{width}}  {unit:>14}  ratio vs {base}"]
    for name, rate in rows:
        lines.append(f"{name:{width}}  {rate / 1e6:10.1f} M/s  {rate / ref:8.2f}x")
    return "\n".join(lines)


def _torch_one_thread():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def stream_bench(count: int = 1 << 20) -> str:
    """Standard normals per second: relcode (each backend) vs numpy Philox and torch.randn."""
    rows: list[tuple[str, float]] = []
    gen = np.random.Generator(np.random.Philox(1))
    t = best_time(lambda: gen.standard_normal(count, dtype=np.float32))
    rows.append(("numpy Generator(Philox) float32", count / t))
    torch = _torch_one_thread()
    if torch is not None:
        torch.manual_seed(0)
        t = best_time(lambda: torch.randn(count))
        rows.append(("torch.randn, 1 thread", count / t))
    for b in stream.backends():
        t = best_time(lambda b=b: stream.normals(1, 2, 3, count, backend=b, threads=1))
        rows.append((f"relcode {b}, 1 thread", count / t))
    t = best_time(lambda: stream.normals(1, 2, 3, count, threads=1))
    rows.append(("relcode auto, 1 thread", count / t))
    u = np.random.default_rng(0).uniform(size=count // 8)
    t_ref = best_time(lambda: __import__("scipy.special", fromlist=["ndtri"]).ndtri(u))
    t_rel = best_time(lambda: stream.ndtri(u, threads=1))
    out = _table(
        f"standard normals ({count} per call, float32)", rows, "normals/s", "numpy Generator(Philox) float32"
    )
    out += (
        f"\n\nndtri ({u.size} per call, float64): relcode {u.size / t_rel / 1e6:.1f} M/s, "
        f"scipy.special.ndtri {u.size / t_ref / 1e6:.1f} M/s, ratio {t_ref / t_rel:.2f}x"
    )
    return out


def _targets(blocks: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.5, (blocks, d)), rng.uniform(0.2, 0.6, (blocks, d))


def _coefficients(qm: np.ndarray, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (0.5 * (1 - 1 / qs**2)).astype(np.float32), (qm / qs**2).astype(np.float32)


def _numpy_mrc(gen: np.random.Generator, a: np.ndarray, b: np.ndarray, n: int) -> None:
    """Vectorised numpy MRC: fresh candidates per block, Gumbel-max selection."""
    for i in range(a.shape[0]):
        z = gen.standard_normal((n, a.shape[1]), dtype=np.float32)
        logw = ((a[i] * z + b[i]) * z).sum(axis=1)
        int(np.argmax(logw + gen.gumbel(size=n)))


def _torch_mrc(torch, a, b, n: int) -> None:
    for i in range(a.shape[0]):
        z = torch.randn(n, a.shape[1])
        logw = ((a[i] * z + b[i]) * z).sum(dim=1)
        g = -torch.log(-torch.log(torch.rand(n)))
        int(torch.argmax(logw + g))


def _torch_table(torch, a, b, table, table2) -> None:
    """MIRACLE/COMBINER-style: every block scored against one shared candidate table."""
    logits = table2 @ a.T + table @ b.T
    g = -torch.log(-torch.log(torch.rand(logits.shape)))
    torch.argmax(logits + g, dim=0)


_CHANNEL_COLUMNS = ("numpy", "torch", "torch table", "relcode", "relcode pool")


def _channel_row(d: int, bits: int, torch) -> dict[str, float]:
    """Candidate-dimensions per second of each implementation for blocks of dimension d."""
    from functools import partial

    from . import channel

    n = 1 << bits
    # real models have many blocks, and pools score them in bundles
    blocks = max(16, min(64, (1 << 22) // (n * d)))
    qm, qs = _targets(blocks, d)
    a, b = _coefficients(qm, qs)
    work = blocks * n * d
    gen = np.random.Generator(np.random.Philox(3))
    rate = {"numpy": work / best_time(partial(_numpy_mrc, gen, a, b, n), repeat=3)}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        table = torch.randn(n, d)
        rate["torch"] = work / best_time(partial(_torch_mrc, torch, ta, tb, n), repeat=3)
        shared = partial(_torch_table, torch, ta, tb, table, table * table)
        rate["torch table"] = work / best_time(shared, repeat=3)
    ps = np.ones((blocks, d), dtype=np.float32)
    pm = np.zeros((blocks, d), dtype=np.float32)
    run = partial(channel.encode, qm, qs, pm, ps, method="mrc", bits=bits, threads=1)
    rate["relcode"] = work / best_time(run, repeat=3)
    run(pool=True)  # builds the shared pool once
    rate["relcode pool"] = work / best_time(partial(run, pool=True), repeat=3)
    return rate


def channel_bench(bits: int = 16, dims: tuple[int, ...] = (1, 3, 16, 64)) -> str:
    """Fixed-budget coding (mrc, 2^bits candidates per block) in candidate-dimensions per second:
    relcode per-block and pool modes against numpy and torch implementations and a
    MIRACLE-style torch loop that reuses one candidate table for every block."""
    torch = _torch_one_thread()
    nan = float("nan")
    head = ("d", *_CHANNEL_COLUMNS, "rc/numpy", "rc/torch", "pool/table")
    lines = [
        f"fixed-budget coding (mrc), 2^{bits} candidates per block, one thread, candidate-dimensions/s",
        "  ".join(f"{h:>12}" for h in head),
    ]
    for d in dims:
        rate = _channel_row(d, bits, torch)
        cells = [f"{rate.get(k, nan) / 1e6:10.1f} M" for k in _CHANNEL_COLUMNS]
        ratios = [
            rate["relcode"] / rate["numpy"],
            rate["relcode"] / rate.get("torch", nan),
            rate["relcode pool"] / rate.get("torch table", nan),
        ]
        cells += [f"{r:11.1f}x" for r in ratios]
        lines.append(f"{d:>12}  " + "  ".join(cells))
    lines.append("torch table: one shared candidate table for every block (its build time excluded).")
    lines.append(_pool_build_line(bits))
    lines.append("")
    lines.append(_rules_table(bits))
    return "\n".join(lines)


def _rules_table(bits: int, dims: tuple[int, ...] = (1, 2, 3)) -> str:
    """The three fixed-budget rules per block at small d, where the encoder noise (one draw
    per candidate, and for orc/pfr the arrival-time chain) weighs most against the normals."""
    from functools import partial

    from . import channel

    n = 1 << bits
    lines = [f"per-block rules at small d (2^{bits} candidates, one thread), candidate-dimensions/s"]
    lines.append("  ".join(f"{h:>12}" for h in ("d", "mrc", "orc", "pfr")))
    for d in dims:
        blocks = max(16, min(64, (1 << 22) // (n * d)))
        qm, qs = _targets(blocks, d)
        pm, ps = np.zeros((blocks, d), np.float32), np.ones((blocks, d), np.float32)
        cells = []
        for method in ("mrc", "orc", "pfr"):
            run = partial(channel.encode, qm, qs, pm, ps, method=method, bits=bits, threads=1)
            cells.append(f"{blocks * n * d / best_time(run, repeat=5) / 1e6:10.1f} M")
        lines.append(f"{d:>12}  " + "  ".join(cells))
    return "\n".join(lines)


def _build_pool(channel, seeds, d: int, bits: int) -> None:
    channel.prepare_pool(next(seeds), d, bits, threads=1)


def _pool_build_line(bits: int) -> str:
    """Time to build a shared pool on one thread (fresh seeds, so nothing is cached)."""
    from functools import partial

    from . import channel

    out = []
    for d in (16, 32):
        seeds = iter(range(10_000 + 100 * d, 10_000 + 100 * d + 100))
        build = partial(_build_pool, channel, seeds, d, bits)
        t = best_time(build, repeat=5, min_time=0.0)
        out.append(f"d = {d}: {t * 1e3:.1f} ms")
    return f"pool build (2^{bits} candidates, one thread): " + ", ".join(out)


# Published / reference mean steps (samplers reference, sections 7 and 8): Q = N(1, s^2) against
# P = N(0, 1) for the D_inf sweep; (mu, s) targets of increasing KL for the KL sweep.
_DINF_SWEEP = (0.7, 0.9, 0.97, 0.99)
_DINF_REFERENCE = {
    "gprs_bnb (sample)": (2.07, 2.11, 2.18, 2.19),
    "as_star": (2.14, 3.08, 8.39, 25.1),
    "ad_star": (2.06, 3.42, 11.16, 35.18),
}
_KL_SWEEP = ((0.0, 0.5), (1.0, 0.25), (2.0, 0.25), (3.0, 0.2), (4.0, 0.1), (5.0, 0.05))
_KL_REFERENCE = {
    "gprs_bnb (sample)": (1.71, 3.15, 4.52, 7.23, 11.52, 16.96),
    "gprs_bnb (dyadic)": (1.67, 2.63, 4.23, 7.92, 14.07, 21.57),
    "as_star": (1.80, 3.27, 4.61, 7.46, 11.61, 17.15),
    "ad_star": (1.86, 2.83, 4.68, 8.33, 14.42, 22.02),
}
_ONE_D = {
    "gprs_bnb (sample)": ("gprs_bnb", {"split": "sample"}),
    "gprs_bnb (dyadic)": ("gprs_bnb", {"split": "dyadic"}),
    "as_star": ("as_star", {}),
    "ad_star": ("ad_star", {}),
}


def _mean_steps(method: str, opts: dict, mu: float, s: float, n: int) -> float:
    from . import channel

    code = channel.encode(np.full((n, 1), mu), np.full((n, 1), s), 0.0, 1.0, method=method, seed=11, **opts)
    return float(code.steps.mean())


def steps_bench(n: int = 3000) -> str:
    """Mean steps of the 1D tree samplers against the published numbers: flat or growing in
    D_inf at fixed KL (mu = 1), and growing with KL."""
    kl = [(0.5 * (s * s + m * m - 1) - np.log(s)) / np.log(2) for m, s in _KL_SWEEP]
    dinf = [(-np.log(s) + 1 / (2 * (1 - s * s))) / np.log(2) for s in _DINF_SWEEP]
    lines = [f"mean steps over {n} problems (reference values in parentheses)", ""]
    bits = ", ".join(f"{x:.1f}" for x in dinf)
    lines.append(f"vs D_inf at KL ~0.8 bits (Q = N(1, s^2)); D_inf bits: {bits}")
    for name, ref in _DINF_REFERENCE.items():
        method, opts = _ONE_D[name]
        got = [_mean_steps(method, opts, 1.0, s, n) for s in _DINF_SWEEP]
        lines.append(f"  {name:<18} " + "  ".join(f"{g:6.2f} ({r:5.2f})" for g, r in zip(got, ref)))
    lines.append("")
    lines.append("vs KL; KL bits: " + ", ".join(f"{x:.2f}" for x in kl))
    for name, ref in _KL_REFERENCE.items():
        method, opts = _ONE_D[name]
        got = [_mean_steps(method, opts, m, s, n) for m, s in _KL_SWEEP]
        lines.append(f"  {name:<18} " + "  ".join(f"{g:6.2f} ({r:5.2f})" for g, r in zip(got, ref)))
    lines.append("")
    lines.append("global samplers, mean proposals vs exp(D_inf) (Q = N(1, 1/16): 6.82; N(2, 1/16): 33.8)")
    for method in ("gprs", "grs", "pfr", "astar"):
        got = [_mean_steps(method, {}, m, 0.25, n) for m in (1.0, 2.0)]
        lines.append(f"  {method:<18} {got[0]:6.2f} {got[1]:7.2f}")
    return "\n".join(lines)


BENCHES: dict[str, Callable[[], str]] = {
    "stream": stream_bench,
    "channel": channel_bench,
    "steps": steps_bench,
}


def run(names: list[str]) -> str:
    """Runs the named benchmarks ("all" for every one) and returns their tables."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if names == ["all"]:
        names = list(BENCHES)
    return "\n\n".join(BENCHES[n]() for n in names)
