"""The ``relcode`` command line. Data goes to stdout, messages to stderr.

Exit status: 0 on success; 1 when the input is invalid or a check fails (a corrupt file, a
checksum mismatch, a missing base file); 2 for usage errors (argparse); 130 when
interrupted.

``relcode inspect FILE [--json]`` summarises a file; ``relcode verify FILE`` decodes it and
checks every CRC32C and SHA-256; ``relcode decode FILE -o OUT`` writes the decoded tensors
to OUT (``.safetensors`` or ``.npz``). Files that reference a base file find it with
``--base FILE`` or ``--base-dir DIR`` (and in their own directory).

``relcode image train-prior|compress|decompress`` and ``relcode audio ...`` compress images
and 16 kHz speech with COMBINER (:mod:`relcode.inr`).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from .errors import RelcodeError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    unknown = [n for n in args.names if n != "all" and n not in bench.BENCHES]
    if unknown:
        print(f"relcode bench: unknown benchmark {unknown[0]!r}; choose from all, {', '.join(bench.BENCHES)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    print(bench.run(args.names))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    return demo.main(json_output=args.json)


def _base_args(args: argparse.Namespace) -> dict:
    return {"base": args.base, "base_dirs": args.base_dir or ()}


def _fmt_bytes(n: int) -> str:
    return f"{n} B" if n < 10_000 else f"{n / 1024:.1f} KiB" if n < 10_000_000 else f"{n / 2**20:.1f} MiB"


def _f32(v: object) -> str:
    import numpy as np

    return str(np.float32(v)) if isinstance(v, float) else "per element"


def _cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from . import format as fmt

    info = fmt.inspect(args.file, **_base_args(args))
    if args.json:
        print(json.dumps(info, indent=2, default=repr))
        return EXIT_OK
    lines = [
        f"{args.file}: relcode {info['version']}, {_fmt_bytes(info['bytes'])}, seed {info['seed']}, "
        f"stream v{info['stream_version']}, channel v{info['channel_version']}",
        f"sha256 {info['file_sha256']}",
    ]
    if info["base"]:
        state = "attached" if info["base_attached"] else "not found"
        lines.append(f"base file {info['base']} ({state})")
    if not info["messages"]:
        lines.append("base file: priors and layout only, no messages")
    if info["tensors"]:
        lines.append(f"{len(info['tensors'])} tensors:")
        for t in info["tensors"]:
            shape = "x".join(map(str, t["shape"])) or "scalar"
            if t["coded"]:
                pm, ps = (_f32(t[k]) for k in ("prior_mean", "prior_std"))
                prior = f"prior mean {pm}, std {ps}"
                lines.append(f"  {t['name']:<32} {shape:<14} float32  coded, {prior}")
            else:
                lines.append(f"  {t['name']:<32} {shape:<14} {t['dtype']:<8} raw")
    for g in info["groups"]:
        rule = g["rule"] + (f" {g['block_size']}" if "block_size" in g else "")
        msg = f", {g['method']} {g['options']}, {g['bits']} bits" if "method" in g else ""
        span = f"{g['start']}..{g['start'] + g['count']}"
        lines.append(f"  group {g['id']}: elements {span}, {g['blocks']} blocks ({rule}){msg}")
    if info["messages"] and info["groups"]:
        lines.append(f"{info['blocks']} blocks, {info['bits']} message bits ({info['bits'] / 8:.0f} bytes)")
    lines.append(f"digests ({info['digest']}): " + ", ".join(d[:16] + "…" for d in info["digests"]))
    if info["metadata"] is not None:
        lines.append(f"metadata: {info['metadata']!r}")
    print("\n".join(lines))
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from . import format as fmt

    summary = fmt.verify(args.file, threads=args.threads, **_base_args(args))
    if not args.quiet:
        print(
            f"{args.file}: OK ({summary['tensors']} tensors, every CRC32C and SHA-256 verified)",
            file=sys.stderr,
        )
    return EXIT_OK


def _cmd_decode(args: argparse.Namespace) -> int:
    import os
    import tempfile
    from pathlib import Path

    from . import format as fmt

    out = Path(args.output)
    if out.suffix not in (".safetensors", ".npz"):
        print("relcode decode: -o must end in .safetensors or .npz", file=sys.stderr)
        return EXIT_USAGE
    tensors = fmt.decode(args.file, threads=args.threads, **_base_args(args))
    fd, tmp = tempfile.mkstemp(
        prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent if str(out.parent) else "."
    )
    os.close(fd)
    try:
        if out.suffix == ".npz":
            import numpy as np

            with open(tmp, "wb") as f:
                np.savez(f, **tensors)
        else:
            from safetensors.numpy import save_file

            save_file({k: v.copy() if not v.flags.c_contiguous else v for k, v in tensors.items()}, tmp)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if not args.quiet:
        print(f"relcode decode: wrote {len(tensors)} tensors to {out}", file=sys.stderr)
    return EXIT_OK


def _add_file_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a relcode file")
    p.add_argument("--base", metavar="FILE", help="the base (codec) file the file references")
    p.add_argument(
        "--base-dir", metavar="DIR", action="append", help="a directory to search for the base file"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relcode",
        description="Relative entropy coding: compress Gaussian posteriors and Bayesian neural networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the end-to-end demonstration")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("inspect", help="summarise a relcode file without decoding it")
    _add_file_args(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("verify", help="decode a file and check every checksum (exit 0 if intact)")
    _add_file_args(p)
    p.add_argument("--threads", type=int, default=None, help="decoder threads (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("decode", help="decode a file to .safetensors or .npz")
    _add_file_args(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.safetensors or OUT.npz")
    p.add_argument("--threads", type=int, default=None, help="decoder threads (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=_cmd_decode)

    from .inr.commands import add_parsers as _inr_parsers

    _inr_parsers(sub)  # relcode image ..., relcode audio ...

    p = sub.add_parser("bench", help="benchmarks against numpy/torch baselines, printed as ratios")
    p.add_argument("names", nargs="*", default=["all"], help="which benchmarks (default: all)")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RelcodeError as e:
        print(f"relcode {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print(f"relcode {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"relcode {args.command}: interrupted", file=sys.stderr)
        return 130
