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


BENCHES: dict[str, Callable[[], str]] = {"stream": stream_bench}


def run(names: list[str]) -> str:
    """Runs the named benchmarks ("all" for every one) and returns their tables."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if names == ["all"]:
        names = list(BENCHES)
    return "\n\n".join(BENCHES[n]() for n in names)
