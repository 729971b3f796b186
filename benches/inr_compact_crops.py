"""Crops (64x64 by default) of Kodak images the shipped codecs never saw (kodim13-24), each compressed as its
own file at whole-file rates: relcode in the compact container (spec/signal.md) and in the
relcode container, against optimised JPEG and JPEG 2000 (Pillow) given at most as many bytes,
in one run. Prints a table and writes JSON.

    PYTHONPATH=python python benches/inr_compact_crops.py --bpp 1.5,1.0 --crops 6
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("inr_eval", HERE / "inr_eval.py")
ie = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ie)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bpp", default="1.5,1.0", help="whole-file rates (default 1.5,1.0)")
    ap.add_argument("--crops", type=int, default=6, help="random crops (default 6)")
    ap.add_argument("--size", type=int, default=64, help="crop side in pixels (default 64)")
    ap.add_argument("--seed", type=int, default=5, help="seed of the crop positions (default 5)")
    ap.add_argument("--kodak", type=Path, default=ie.KODAK)
    ap.add_argument("--json", type=Path, default=None, help="write every row here")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from relcode.inr import EncodeSettings, image

    rng = np.random.default_rng(args.seed)
    crops = []
    for _ in range(args.crops):
        img = ie.kodak(int(rng.integers(13, 25)), args.kodak)
        n = args.size
        y, x = int(rng.integers(0, img.shape[0] - n)), int(rng.integers(0, img.shape[1] - n))
        crops.append(img[y : y + n, x : x + n].copy())
    rows = []
    for bpp in [float(b) for b in args.bpp.split(",") if b]:
        for i, c in enumerate(crops):
            r: dict = {"bpp": bpp, "crop": i}
            for cont in ("compact", "relcode"):
                buf = io.BytesIO()
                t = time.perf_counter()
                rep = image.compress(c, buf, bpp=bpp, settings=EncodeSettings(container=cont))
                dec = image.decompress(buf.getvalue())
                r[cont] = {"bytes": rep.bytes, "header": rep.header_bytes, "psnr": ie.psnr(dec, c),
                           "seconds": time.perf_counter() - t}  # fmt: skip
            n = r["compact"]["bytes"]
            j = ie.jpeg(c, n, True)
            r["jpeg_opt"] = None if j is None else {"bytes": j[0], "psnr": ie.psnr(j[1], c)}
            j2 = ie.jpeg2000(c, n)
            r["jpeg2000"] = None if j2 is None else {"bytes": j2[0], "psnr": ie.psnr(j2[1], c)}
            rows.append(r)
            print(f"  {bpp} bpp crop {i}: compact {r['compact']['psnr']:.2f} dB", file=sys.stderr)
    print(
        "| bpp | relcode compact | relcode container | JPEG (optimised) | JPEG 2000 | > JPEG | > JPEG 2000 |"
    )
    print("|---|---|---|---|---|---|---|")
    for bpp in sorted({r["bpp"] for r in rows}, reverse=True):
        rs = [r for r in rows if r["bpp"] == bpp]

        def mean(k: str, rs=rs) -> float:
            return float(np.mean([r[k]["psnr"] for r in rs if r[k]]))

        wj = sum(r["jpeg_opt"] is None or r["compact"]["psnr"] > r["jpeg_opt"]["psnr"] for r in rs)
        w2 = sum(r["jpeg2000"] is None or r["compact"]["psnr"] > r["jpeg2000"]["psnr"] for r in rs)
        cells = [f"{mean(k):.2f} dB" for k in ("compact", "relcode", "jpeg_opt", "jpeg2000")]
        print(f"| {bpp:g} | {' | '.join(cells)} | {wj}/{len(rs)} | {w2}/{len(rs)} |")
    hb = {r["compact"]["header"] for r in rows}, {r["relcode"]["header"] for r in rows}
    print(f"\nheaders: compact {sorted(hb[0])} bytes, relcode container {sorted(hb[1])} bytes")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
