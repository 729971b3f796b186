"""Trains the image codecs shipped in ``python/relcode/inr/codecs/``.

Usage (from the repository root; about an hour on one CPU core, minutes on a GPU)::

    PYTHONPATH=python python examples/inr_train_codecs.py

Each codec is a prior for 64x64 patches learned by EM on random crops of the permissively
licensed sample images that scikit-learn and scikit-image ship (listed below; never a Kodak
image, so the Kodak evaluation stays fair), at one nominal rate. Lower rates use narrower
networks, so that blocks of at most 25 parameters can still reach them. The script writes
the codec files and ``README.md`` (what was trained, how, the files' SHA-256) next to them;
the same command and versions regenerate the same files on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "python" / "relcode" / "inr" / "codecs"

#: name -> nominal message bits per pixel (the network: relcode.inr.image.default_architecture)
CODECS = {"image-64-0.25": 0.25, "image-64-0.5": 0.5, "image-64-1": 1.0, "image-64-2": 2.0}

SOURCES = [
    ("scikit-learn", "china.jpg", "CC BY 2.0 (danielbuechele on Flickr)"),
    ("scikit-learn", "flower.jpg", "CC BY 2.0 (vultilion on Flickr)"),
    ("scikit-image", "astronaut", "public domain (NASA)"),
    ("scikit-image", "coffee", "CC0 (Rachel Michetti)"),
    ("scikit-image", "chelsea", "CC0 (Stefan van der Walt)"),
    ("scikit-image", "rocket", "public domain (SpaceX)"),
    ("scikit-image", "hubble_deep_field", "public domain (NASA)"),
]


def training_images() -> list[np.ndarray]:
    import skimage.data as skd
    from sklearn.datasets import load_sample_images

    imgs = list(load_sample_images().images)
    for _, name, _ in SOURCES[2:]:
        imgs.append(np.ascontiguousarray(getattr(skd, name)()[:, :, :3]))
    return imgs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--crops", type=int, default=96)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--first-steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", help="comma-separated codec names")
    ap.add_argument("--readme-only", action="store_true", help="only rewrite README.md from the codec files")
    args = ap.parse_args(argv)
    if args.readme_only:
        write_readme(args)
        return 0

    import torch

    from relcode.inr import image

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    imgs = training_images()
    names = args.only.split(",") if args.only else list(CODECS)
    for name in names:
        bpp = CODECS[name]
        t = time.perf_counter()
        codec = image.train_codec(
            imgs,
            bpp=bpp,
            arch=image.default_architecture(bpp),
            crops=args.crops,
            iterations=args.iterations,
            steps=args.steps,
            first_steps=args.first_steps,
            seed=args.seed,
            device="cpu",
            info={"name": name, "training_set": ", ".join(n for _, n, _ in SOURCES)},
            progress=lambda i, r, name=name: print(
                f"{name} EM {i}: KL {r['kl_bits']:.0f} bits, PSNR {r['psnr']:.2f} dB, beta {r['beta']:.2e}",
                file=sys.stderr,
                flush=True,
            ),
        )
        sha = codec.save(args.out / f"{name}.relc")
        secs = time.perf_counter() - t
        size = (args.out / f"{name}.relc").stat().st_size
        print(f"{name}: {size} bytes, {secs:.0f} s, sha256 {sha}", file=sys.stderr, flush=True)
    write_readme(args)
    return 0


def write_readme(args) -> None:
    """README.md of every codec in ``args.out`` (whichever run trained it)."""
    import hashlib

    from relcode.inr import load_codec

    rows = []
    for name, bpp in CODECS.items():
        path = args.out / f"{name}.relc"
        if not path.exists():
            continue
        codec = load_codec(path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        final_bpp = codec.info["final_kl_bits"] / (codec.arch.patch[0] * codec.arch.patch[1])
        rows.append(
            (
                name,
                bpp,
                codec.arch.dim_hid,
                codec.arch.num_params,
                path.stat().st_size,
                final_bpp,
                codec.info["final_psnr"],
                sha,
            )
        )
    lines = [
        "# Shipped image codecs",
        "",
        "Priors for 64x64 patches (SIREN, 32 Fourier features, 4 layers), learned by EM on "
        f"{args.crops} random 64x64 crops of these sample images ({args.iterations} iterations of "
        f"{args.steps} Adam steps, {args.first_steps} in the first, seed {args.seed}); never a Kodak image:",
        "",
    ]
    lines += [f"- {pkg} `{name}`: {lic}" for pkg, name, lic in SOURCES]
    lines += [
        "",
        "Regenerate them with (from the repository root):",
        "",
        "```bash",
        "PYTHONPATH=python python examples/inr_train_codecs.py"
        + (f" --crops {args.crops}" if args.crops != 96 else ""),
        "```",
        "",
        "Training takes about ten minutes per codec on one CPU core. The last two columns are the "
        "training set's average KL (bits per pixel) and PSNR of posterior samples after the last EM "
        "iteration (short fits, so below what compressing an image reaches).",
        "",
        "| codec | nominal bpp | hidden | parameters | bytes | training KL bpp | training PSNR dB "
        "| SHA-256 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, bpp, hid, n, size, kl_bpp, psnr, sha in rows:
        lines.append(f"| {name} | {bpp} | {hid} | {n} | {size} | {kl_bpp:.2f} | {psnr:.2f} | `{sha[:16]}…` |")
    lines += [
        "",
        "`relcode image compress IN.png -o OUT.relc --bpp X` uses the codec whose nominal rate is nearest "
        "the message rate the target leaves after the header; the rate is then met exactly by scaling the "
        "block layout. Compressed files reference their codec by SHA-256 and are found here by the decoder.",
    ]
    (args.out / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
