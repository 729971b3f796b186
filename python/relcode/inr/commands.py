"""``relcode image`` and ``relcode audio``: train a codec, compress, decompress.

Results go to stdout (a line per file, or JSON with ``--json``), progress bars and
messages to stderr. Exit status 0 on success, 1 for bad input (unreadable or unsupported
signals, a missing or mismatched codec, a corrupt file), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parsers"]

KINDS = {
    "image": {"unit": "bpp", "rate": "--bpp", "ext": "PNG", "help": "bits per pixel"},
    "audio": {"unit": "kbps", "rate": "--kbps", "ext": "WAV", "help": "kilobits per second"},
}


def _settings(args: argparse.Namespace):
    from .pipeline import EncodeSettings

    return EncodeSettings(
        steps=args.steps,
        rounds=args.rounds,
        finetune_steps=args.finetune_steps,
        finetune=not args.no_finetune,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
    )


def _torch_threads() -> None:
    import os

    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def _emit(args: argparse.Namespace, text: str, data: dict[str, Any]) -> None:
    print(json.dumps(data) if args.json else text)


def _cmd_train(args: argparse.Namespace) -> int:
    from . import audio, image, siren

    _torch_threads()
    kind = args.kind
    over = {
        k: v for k, v in (("dim_hid", args.hidden), ("layers", args.layers), ("dim_emb", args.features)) if v
    }
    rate = args.bpp if kind == "image" else args.kbps
    if args.preset is None:  # the rate's default network
        base = image.default_architecture(rate) if kind == "image" else siren.preset("audio")
        arch = dataclasses.replace(base, **over)
    else:
        arch = siren.preset(args.preset, **over)
    if arch.kind != kind:
        raise_usage(f"preset {args.preset!r} is for {arch.kind}, not {kind}")
    prog = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=args.iterations, desc="EM", unit="it", file=sys.stderr)

        def prog(_i: int, rec: dict[str, float]) -> None:
            bar.update(1)
            bar.set_postfix(kl=f"{rec['kl_bits']:.0f}", psnr=f"{rec['psnr']:.2f}", beta=f"{rec['beta']:.2e}")

    t0 = time.perf_counter()
    common = dict(
        arch=arch,
        crops=args.crops,
        seed=args.seed,
        progress=prog,
        iterations=args.iterations,
        steps=args.steps,
        lr=args.lr,
        update_prior=not args.fixed_prior,
        max_block_size=args.max_block_size,
        device=args.device,
        info={"sources": [Path(p).name for p in args.inputs]},
    )
    if kind == "image":
        codec = image.train_codec(args.inputs, bpp=rate, **common)
    else:
        codec = audio.train_codec(args.inputs, kbps=rate, **common)
    sha = codec.save(args.output)
    secs = time.perf_counter() - t0
    size = Path(args.output).stat().st_size
    _emit(
        args,
        f"{args.output}: {kind} codec {sha}, {codec.arch.num_params} parameters per patch, "
        f"{size} bytes, trained in {secs:.1f} s",
        {
            "codec": str(args.output),
            "sha256": sha,
            "bytes": size,
            "seconds": secs,
            "parameters": codec.arch.num_params,
            "beta": codec.beta,
            **codec.info,
        },
    )
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    from . import audio, image
    from .signals import psnr

    _torch_threads()
    kind = args.kind
    settings = _settings(args)
    t0 = time.perf_counter()
    if kind == "image":
        src = image.read_image(args.input)
        rep = image.compress(
            src,
            args.output,
            codec=args.codec,
            bpp=args.bpp,
            beta=args.beta,
            settings=settings,
            progress=not args.quiet,
        )
        samples, peak = src.shape[0] * src.shape[1], 255.0
        rate = rep.bytes * 8 / samples
    else:
        src = audio.read_wav(args.input)
        rep = audio.compress(
            src,
            args.output,
            codec=args.codec,
            kbps=args.kbps,
            beta=args.beta,
            settings=settings,
            progress=not args.quiet,
        )
        samples, peak = src.size, 65536.0
        rate = rep.bytes * 8 / (samples / audio.RATE) / 1000
    secs = time.perf_counter() - t0
    q = psnr(rep.decoded, src, peak)
    unit = KINDS[kind]["unit"]
    _emit(
        args,
        f"{args.output}: {rep.bytes} bytes ({rep.header_bytes} header + {rep.blocks} blocks x "
        f"{rep.message_bits // max(rep.blocks, 1)} bits), {rate:.4f} {unit}, PSNR {q:.2f} dB, {secs:.1f} s",
        {
            "output": str(args.output),
            "bytes": rep.bytes,
            "header_bytes": rep.header_bytes,
            "blocks": rep.blocks,
            "message_bits": rep.message_bits,
            unit: rate,
            "psnr": q,
            "seconds": secs,
            "scale": rep.scale,
            "sha256": rep.file_sha256,
        },
    )
    return 0


def _cmd_decompress(args: argparse.Namespace) -> int:
    from . import audio, image

    t0 = time.perf_counter()
    dirs = args.codec_dir or ()
    if args.kind == "image":
        img = image.decompress(args.input, codec=args.codec, codec_dirs=dirs)
        image.write_png(args.output, img)
        desc = f"{img.shape[1]}x{img.shape[0]} RGB"
    else:
        a = audio.decompress(args.input, codec=args.codec, codec_dirs=dirs)
        audio.write_wav(args.output, a)
        desc = f"{a.size} samples ({a.size / audio.RATE:.2f} s)"
    secs = time.perf_counter() - t0
    _emit(
        args, f"{args.output}: {desc}, decoded in {secs:.3f} s", {"output": str(args.output), "seconds": secs}
    )
    return 0


class _Usage(Exception):
    pass


def raise_usage(msg: str) -> None:
    raise _Usage(msg)


def _wrap(fn):
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except _Usage as e:
            print(f"relcode {args.kind}: {e}", file=sys.stderr)
            return 2

    return run


def add_parsers(sub: Any) -> None:
    """Adds the ``image`` and ``audio`` command groups to the main parser's subparsers."""
    for kind, k in KINDS.items():
        top = sub.add_parser(kind, help=f"COMBINER {kind} compression (train a codec, compress, decompress)")
        top.set_defaults(kind=kind)
        s = top.add_subparsers(dest="action", required=True, metavar="ACTION")

        p = s.add_parser("train-prior", help=f"learn a codec (prior and block layout) from training {kind}s")
        p.add_argument("inputs", nargs="+", metavar=k["ext"], help=f"training {kind}s ({k['ext']} files)")
        p.add_argument("-o", "--output", required=True, metavar="CODEC", help="the codec file to write")
        p.add_argument(
            k["rate"],
            dest=k["unit"],
            type=float,
            required=True,
            help=f"nominal message rate in {k['help']} (the average training KL)",
        )
        p.add_argument(
            "--preset",
            default=None,
            help="architecture preset: patch64, cifar, kodak, audio (default: "
            + ("patch64, 16/24/32 hidden units below 0.4/0.75 bpp/above)" if kind == "image" else "audio)"),
        )
        p.add_argument("--hidden", type=int, help="override the hidden width")
        p.add_argument("--layers", type=int, help="override the number of linear layers")
        p.add_argument("--features", type=int, help="override the number of Fourier features")
        p.add_argument("--crops", type=int, default=64, help="random training patches (default 64)")
        p.add_argument("--iterations", type=int, default=15, help="EM iterations (default 15)")
        p.add_argument("--steps", type=int, default=60, help="Adam steps per EM iteration (default 60)")
        p.add_argument("--lr", type=float, default=2e-3, help="learning rate (default 2e-3)")
        p.add_argument(
            "--max-block-size",
            type=int,
            default=25 if kind == "image" else 200,
            help=f"most parameters per block (default {25 if kind == 'image' else 200})",
        )
        p.add_argument("--fixed-prior", action="store_true", help="keep the initial prior (ablation)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=_wrap(_cmd_train), needs=(kind,))

        p = s.add_parser("compress", help=f"compress a {k['ext']} file")
        p.add_argument("input", metavar=f"IN.{k['ext'].lower()}")
        p.add_argument("-o", "--output", required=True, metavar="OUT.relc")
        p.add_argument(
            "--codec", metavar="CODEC", help="codec file (default: the shipped codec nearest the rate)"
        )
        g = p.add_mutually_exclusive_group(required=True)
        g.add_argument(k["rate"], dest=k["unit"], type=float, help=f"whole-file rate in {k['help']}")
        g.add_argument("--beta", type=float, help="rate-distortion trade-off instead of a rate")
        p.add_argument("--steps", type=int, default=1000, help="posterior fitting steps (default 1000)")
        p.add_argument("--rounds", type=int, default=20, help="coding rounds (default 20)")
        p.add_argument(
            "--finetune-steps", type=int, default=300, help="fine-tuning steps in all (default 300)"
        )
        p.add_argument("--no-finetune", action="store_true", help="no fine-tuning between rounds (ablation)")
        p.add_argument("--lr", type=float, default=2e-3, help="learning rate (default 2e-3)")
        p.add_argument("--seed", type=int, default=0, help="seed of the file's random streams")
        p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=_wrap(_cmd_compress), needs=(kind,))

        p = s.add_parser("decompress", help=f"decompress to a {k['ext']} file")
        p.add_argument("input", metavar="IN.relc")
        p.add_argument("-o", "--output", required=True, metavar=f"OUT.{k['ext'].lower()}")
        p.add_argument("--codec", metavar="CODEC", help="the codec file (default: found by its SHA-256)")
        p.add_argument(
            "--codec-dir",
            action="append",
            metavar="DIR",
            help="a directory to search for the codec (repeatable)",
        )
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(func=_wrap(_cmd_decompress), needs=(kind,))
