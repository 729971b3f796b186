"""GPU encoder benchmark: the fused Triton kernel of ``relcode.gpu``, an unfused torch pipeline
(torch.randn candidates, matmul scoring, Gumbel noise, argmax) and the CPU encoder, in
candidate-dimensions per second, with ratios, all measured in one run.

    PYTHONPATH=python python benches/gpu_bench.py              # C = 16, d = 16
    PYTHONPATH=python python benches/gpu_bench.py --sweep      # also try launch geometries

Targets (H100/H200-class GPU, C = 16, d = 16): at least 2e11 candidate-dimensions per second
for the fused kernel, and at least twice the unfused torch pipeline. Before timing, the GPU's
indices are checked against the CPU encoder's on the blocks the CPU encodes; a mismatch
stops the benchmark with status 1. Without a CUDA device (or torch / triton) the script says
so and exits with status 2.

The fused kernel is timed through ``relcode.gpu.select`` (coefficients in, indices out,
including the copies and the final reduction); ``encode`` rows time
``relcode.channel.encode(device="cuda")`` end to end (coefficients, transforms, the samples
decoded on the CPU). The CPU encoder uses every core; the torch pipeline draws its own
candidates (its indices are not relcode's), so it measures only the work a non-fused GPU
encoder does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _fail(msg: str) -> int:
    print(f"gpu_bench: {msg}", file=sys.stderr)
    return 2


def best_time(fn: Callable[[], Any], sync: Callable[[], None], repeat: int) -> float:
    """Best wall time of ``fn`` over ``repeat`` runs, after one warm-up run (compilation)."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def torch_unfused(torch: Any, a: Any, b: Any, bits: int, chunk: int) -> Any:
    """MRC the unfused way: materialise the candidates, score by matmul, add Gumbel noise,
    take the argmax; blocks in chunks so the candidates fit in memory."""
    n, d = a.shape
    out = []
    for r0 in range(0, n, chunk):
        ac, bc = a[r0 : r0 + chunk], b[r0 : r0 + chunk]
        z = torch.randn(ac.shape[0], 1 << bits, d, device=a.device)
        score = torch.bmm(z * z, ac[:, :, None]) + torch.bmm(z, bc[:, :, None])
        u = torch.rand(ac.shape[0], 1 << bits, 1, device=a.device).clamp_min_(1e-38)
        out.append((score - torch.log(-torch.log(u))).argmax(dim=1))
    return torch.cat(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bits", type=int, default=16, help="C: 2^C candidates per block")
    p.add_argument("--dim", type=int, default=16, help="d: block dimension")
    p.add_argument("--blocks", type=int, default=8192, help="blocks coded on the GPU")
    p.add_argument("--cpu-blocks", type=int, default=256, help="blocks coded (and checked) on the CPU")
    p.add_argument("--torch-chunk", type=int, default=32, help="blocks per chunk of the torch pipeline")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sweep", action="store_true", help="also time launch geometries (mrc, per block)")
    args = p.parse_args(argv)

    try:
        import torch
    except ImportError:
        return _fail("torch is not installed; the GPU benchmark needs torch and triton")
    try:
        import triton
    except ImportError:
        return _fail("triton is not installed; the GPU benchmark needs torch and triton")
    if not torch.cuda.is_available():
        return _fail("no CUDA device is available (torch.cuda.is_available() is False); nothing to measure")
    import relcode
    from relcode import channel, gpu

    torch.backends.cuda.matmul.allow_tf32 = False
    n, d, bits = args.blocks, args.dim, args.bits
    ncpu = min(args.cpu_blocks, n)
    cand_dims = float(1 << bits) * d
    rng = np.random.default_rng(2026)
    pm = rng.normal(0, 0.1, (n, d)).astype(np.float32)
    ps = rng.uniform(0.5, 1.5, (n, d)).astype(np.float32)
    qm = pm + ps * rng.normal(0, 0.6, (n, d))
    qs = ps * rng.uniform(0.3, 1.2, (n, d))
    ids = np.arange(n, dtype=np.uint64)
    seed = 7
    a, b = gpu.coefficients(qm, qs, pm, ps)
    ap, bp = gpu.pool_coefficients(a, b, seed, ids)
    sync = torch.cuda.synchronize

    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  triton {triton.__version__}  "
          f"relcode {relcode.__version__}  CPU threads: {os.cpu_count()}")  # fmt: skip
    print(f"C = {bits} ({1 << bits} candidates), d = {d}, {n} blocks on the GPU, {ncpu} on the CPU")

    results: list[tuple[str, float, float]] = []  # (label, GPU rate, CPU rate)
    ok = True
    for method in ("mrc", "orc", "pfr"):
        for pool in (False, True):
            ca, cb = (ap, bp) if pool else (a, b)
            label = f"{method}{' pool' if pool else ''}"
            t_gpu = best_time(lambda: gpu.select(method, ca, cb, ids, seed, bits, pool=pool),  # noqa: B023
                              sync, args.repeat)  # fmt: skip
            got = gpu.select(method, ca[:ncpu], cb[:ncpu], ids[:ncpu], seed, bits, pool=pool)
            kw = dict(method=method, bits=bits, seed=seed, ids=ids[:ncpu], pool=pool)
            want = channel.encode(qm[:ncpu], qs[:ncpu], pm[:ncpu], ps[:ncpu], **kw).message
            t_cpu = best_time(lambda: channel.encode(qm[:ncpu], qs[:ncpu], pm[:ncpu], ps[:ncpu], **kw),  # noqa: B023
                              lambda: None, 1)  # fmt: skip
            same = bool(np.array_equal(got, want))
            ok &= same
            results.append((label, n * cand_dims / t_gpu, ncpu * cand_dims / t_cpu))
            print(f"  {label:9s} GPU indices {'==' if same else '!='} CPU indices on {ncpu} blocks")
    if not ok:
        print(
            "gpu_bench: the GPU selected other indices than the CPU encoder; not timing further",
            file=sys.stderr,
        )
        return 1

    t_enc = best_time(
        lambda: channel.encode(qm, qs, pm, ps, method="mrc", bits=bits, seed=seed, device="cuda"),
        sync,
        args.repeat,
    )
    at = torch.from_numpy(a).cuda()
    bt = torch.from_numpy(b).cuda()
    t_torch = best_time(lambda: torch_unfused(torch, at, bt, bits, args.torch_chunk), sync, args.repeat)
    r_torch = n * cand_dims / t_torch

    print()
    print("candidate-dimensions per second")
    print(f"{'':10s}  {'fused GPU':>11}  {'CPU encoder':>11}  {'GPU/CPU':>8}  {'GPU/torch':>9}")
    for label, r_gpu, r_cpu in results:
        print(f"{label:10s}  {r_gpu:11.3e}  {r_cpu:11.3e}  {r_gpu / r_cpu:7.1f}x  {r_gpu / r_torch:8.2f}x")
    print(f"torch unfused pipeline (randn, bmm, Gumbel, argmax): {r_torch:.3e}")
    print(f"encode(device='cuda') end to end, mrc (samples decoded on the CPU): {n * cand_dims / t_enc:.3e}")
    fused = results[0][1]
    print()
    print(f"target >= 2e11 cand-dims/s (fused mrc): {fused:.3e}  {'met' if fused >= 2e11 else 'NOT met'}")
    print(f"target >= 2x the unfused torch pipeline: {fused / r_torch:.2f}x  "
          f"{'met' if fused >= 2 * r_torch else 'NOT met'}")  # fmt: skip

    if args.sweep:
        print()
        print("launch geometry (mrc, per block): groups per program x warps")
        saved = (gpu.GROUPS_PER_PROGRAM, gpu.NUM_WARPS)
        try:
            for groups in (32, 64, 128, 256):
                for warps in (4, 8):
                    gpu.GROUPS_PER_PROGRAM, gpu.NUM_WARPS = groups, warps
                    t = best_time(lambda: gpu.select("mrc", a, b, ids, seed, bits), sync, args.repeat)
                    print(f"  {groups:4d} x {warps}: {n * cand_dims / t:.3e} cand-dims/s")
        finally:
            gpu.GROUPS_PER_PROGRAM, gpu.NUM_WARPS = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
