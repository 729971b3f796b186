"""Memory and speed of the streaming encoder and decoder on synthetic posteriors.

For each size (default 10 M and 100 M weights) the script writes a synthetic posterior file
in safetensors (``NAME.mean``/``NAME.std`` float32, per-layer priors for the weight
matrices, per-element priors for the biases, one raw tensor; generated and written a piece
at a time, never whole in memory), then, each in a fresh subprocess so that peak memory is
the process's own:

- encodes it with :class:`relcode.StreamEncoder` (default: pfr with an 8-bit budget per
  block, KL layout, groups of 2^16 weights);
- decodes it to a safetensors file with :func:`relcode.open_decoder` (streaming).

It prints one table: wall time, weights per second, weights per CPU-second (per core: CPU
time of all the child's threads) and peak RSS of each, the file size and bits per weight.
Times start after the child's imports. Peak RSS is the child's own resident high-water mark
(``VmHWM``; it includes the interpreter, numpy and the native module). Everything is written
under a temporary directory that is removed at the end.

    python benches/stream_bench.py                  # 10 M and 100 M weights (tens of minutes)
    python benches/stream_bench.py --sizes 1M,4M    # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROW = 1024  # columns of every synthetic weight matrix


def parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:], 1)
    return int(float(text[:-1] if text[-1:] in "KMG" else text) * mult)


def layer_shapes(n: int) -> list[tuple[str, tuple[int, ...]]]:
    """Coded tensors adding up to about ``n`` weights: an embedding of a quarter of them and
    square-ish layers of at most 4 M weights with their biases."""
    shapes = [("embed.weight", (max(1, n // 4 // ROW), ROW))]
    left = n - math.prod(shapes[0][1])
    i = 0
    while left > ROW + ROW:
        rows = min(4096, (left - ROW) // ROW)
        shapes.append((f"layer{i:03d}.weight", (rows, ROW)))
        shapes.append((f"layer{i:03d}.bias", (ROW,)))
        left -= rows * ROW + ROW
        i += 1
    if left > 0:
        shapes.append(("head.bias", (left,)))
    return shapes


def write_posterior(path: Path, n: int, seed: int = 0) -> int:
    """Writes the synthetic posterior piece by piece; returns the number of coded weights."""
    from relcode._tensorfiles import SafetensorsWriter

    shapes = layer_shapes(n)
    table = []
    for name, shape in shapes:
        table += [(f"{name}.mean", "float32", shape), (f"{name}.std", "float32", shape)]
        if name.endswith(".weight"):
            table.append((f"{name}.prior_std", "float32", ()))
        else:
            table += [(f"{name}.prior_mean", "float32", shape), (f"{name}.prior_std", "float32", shape)]
    table.append(("step", "int64", ()))
    table.sort(key=lambda t: t[0].encode())
    rng = np.random.default_rng(seed)
    piece = 1 << 22
    with SafetensorsWriter(path, table) as w:
        for name, _, shape in table:
            size = math.prod(shape)
            for a in range(0, max(size, 1), piece):
                m = min(piece, size - a)
                if name == "step":
                    v = np.array([1000], dtype=np.int64)
                elif name.endswith(".prior_std"):
                    v = np.full(m, 0.1, np.float32) if shape else np.array([0.1], np.float32)
                    v = v.reshape(shape) if not shape else v
                elif name.endswith(".prior_mean"):
                    v = rng.normal(0, 0.01, m).astype(np.float32)
                elif name.endswith(".mean"):
                    v = rng.normal(0, 0.05, m).astype(np.float32)
                else:  # .std: mostly close to the prior (uninformative), some informative
                    v = np.where(rng.random(m) < 0.7, 0.09, rng.uniform(0.01, 0.06, m)).astype(np.float32)
                w.write(name, v)
    return sum(math.prod(s) for _, s in shapes)


def peak_rss_mb() -> float:
    """This process's resident high-water mark. On Linux, VmHWM of its own address space:
    ``ru_maxrss`` survives exec, so a child started by (v)fork + exec would report its
    parent's peak if that were larger."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 2**20 if sys.platform == "darwin" else ru / 1024


def child_stats(t0: float, c0: float) -> dict:
    """Wall and CPU time (all threads) since (t0, c0), taken after the imports, and the
    process's peak RSS."""
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "maxrss_mb": peak_rss_mb()}


def run_encode(args: argparse.Namespace) -> None:
    import relcode

    t0, c0 = time.perf_counter(), time.process_time()
    options = {"pool": True} if args.pool else {}
    with relcode.StreamEncoder(
        args.dest, seed=0, method=args.method, bits_per_block=args.bits_per_block, chunk_size=args.chunk_size,
        workers=args.workers, progress=False, **options,
    ) as enc:  # fmt: skip
        enc.add_safetensors(args.src)
    rep = enc.report
    out = child_stats(t0, c0)
    out.update(bits=rep.bits, bytes=rep.bytes, blocks=rep.blocks, kl=sum(rep.kl.values()))
    print(json.dumps(out))


def run_decode(args: argparse.Namespace) -> None:
    import relcode

    t0, c0 = time.perf_counter(), time.process_time()
    with relcode.open_decoder(args.src, threads=args.workers) as dec:
        dec.write(args.dest)
        n = dec.num_elements
    out = child_stats(t0, c0)
    out["weights"] = n
    print(json.dumps(out))


def run_baseline(args: argparse.Namespace) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    import relcode  # noqa: F401

    print(json.dumps(child_stats(t0, c0)))


def child(mode: str, *extra: str) -> dict:
    cmd = [sys.executable, __file__, f"_{mode}", *extra]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10M,100M", help="comma-separated weight counts (default 10M,100M)")
    p.add_argument("--bits-per-block", type=float, default=8)
    p.add_argument("--method", default="pfr")
    p.add_argument("--pool", action="store_true", help="shared candidate pools (fixed-budget methods)")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=1 << 16,
        help="weights per group (default 2^16: its permutation "
        "stays in cache: ~1.6x the decode speed of 2^20 for ~0.016 bit per weight more)",
    )
    p.add_argument("--workers", type=int, default=None, help="encoder chunks at once / decoder threads")
    p.add_argument("--tmpdir", default=None, help="where to write the files (default: the system's)")
    p.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = p.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    base = child("baseline")
    rows = []
    root = Path(tempfile.mkdtemp(prefix="relcode-stream-bench-", dir=args.tmpdir))
    try:
        for n in sizes:
            post, relc, out = (
                root / "posterior.safetensors",
                root / "model.relc",
                root / "decoded.safetensors",
            )
            t = time.perf_counter()
            n_coded = write_posterior(post, n)
            gen = time.perf_counter() - t
            common = ["--workers", str(args.workers or 0)]
            opts = ["--bits-per-block", str(args.bits_per_block), "--method", args.method]
            opts += ["--chunk-size", str(args.chunk_size), *(["--pool"] if args.pool else [])]
            enc = child("encode", str(post), str(relc), *opts, *common)
            post_bytes = post.stat().st_size
            post.unlink()
            dec = child("decode", str(relc), str(out), *common)
            out.unlink()
            relc.unlink()
            rows.append(
                {
                    "weights": n_coded,
                    "posterior_mb": post_bytes / 2**20,
                    "generate_s": gen,
                    "encode": enc,
                    "decode": dec,
                }
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"relcode streaming benchmark: {args.method}{' pool' if args.pool else ''} at "
        f"{args.bits_per_block:g} "
        f"bits per block (KL layout), groups of {args.chunk_size} weights; {cpus} CPUs "
        f"({platform.processor() or platform.machine()}), load average {load:.1f}; baseline RSS of "
        f"python + relcode {base['maxrss_mb']:.0f} MB"
    )
    head = (
        f"{'weights':>11} | {'enc s':>7} {'enc w/s':>9} {'enc w/cpu-s':>11} {'enc RSS MB':>10} | "
        f"{'file MB':>8} {'bits/w':>7} | {'dec s':>6} {'dec w/s':>9} {'dec w/cpu-s':>11} {'dec RSS MB':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        n, e, d = r["weights"], r["encode"], r["decode"]
        enc = f"{e['wall']:>7.1f} {n / e['wall']:>9.3g} {n / e['cpu']:>11.3g} {e['maxrss_mb']:>10.0f}"
        size = f"{e['bytes'] / 2**20:>8.2f} {e['bytes'] * 8 / n:>7.3f}"
        dec = f"{d['wall']:>6.1f} {n / d['wall']:>9.3g} {n / d['cpu']:>11.3g} {d['maxrss_mb']:>10.0f}"
        print(f"{n:>11,} | {enc} | {size} | {dec}")
    if args.json:
        print(json.dumps({"baseline": base, "rows": rows}, indent=1))


def _child_main() -> None:
    mode = sys.argv[1]
    p = argparse.ArgumentParser()
    if mode in ("_encode", "_decode"):
        p.add_argument("src")
        p.add_argument("dest")
        p.add_argument("--bits-per-block", type=float, default=8)
        p.add_argument("--method", default="pfr")
        p.add_argument("--pool", action="store_true")
        p.add_argument("--chunk-size", type=int, default=1 << 20)
        p.add_argument("--workers", type=int, default=0)
    args = p.parse_args(sys.argv[2:])
    if hasattr(args, "workers"):
        args.workers = args.workers or None
    {"_encode": run_encode, "_decode": run_decode, "_baseline": run_baseline}[mode](args)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        _child_main()
    else:
        main()
