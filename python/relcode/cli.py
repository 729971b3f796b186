"""The ``relcode`` command line. Data goes to stdout, messages and progress bars to stderr.

Exit status: 0 on success; 1 when the input is invalid or a check fails (a corrupt file, a
checksum mismatch, a missing base file, a bad posterior); 2 for usage errors (argparse);
130 when interrupted (Ctrl-C: the work in flight is cancelled, so it stops within a second
or two; one line "interrupted", a second Ctrl-C is ignored). A failed or interrupted command
leaves no output file behind.

Output files (``-o``, every command; :mod:`relcode._output`): written to a temporary file in
the same directory, flushed and renamed when complete. Refused before any work: ``-o -``
(no command writes to stdout; ``./-`` names a file ``-``), a directory or a path ending in
``/``, a symbolic link, a FIFO or device, and any input of the command (same inode). A
replaced file keeps its permission bits. Temporary files left by a killed run are removed
by the next write to the same destination.

``relcode encode POSTERIOR.safetensors -o MODEL.relc`` encodes a posterior file (tensors
``NAME.mean``, ``NAME.std`` and optionally ``NAME.prior_std``/``NAME.prior_mean``; see
:mod:`relcode.streaming`) in bounded memory, on local threads or a Dask cluster
(``--scheduler``); ``relcode inspect FILE [--json]`` summarises a file; ``relcode verify
FILE`` decodes it a few groups at a time and checks every CRC32C and SHA-256;
``relcode decode FILE -o OUT`` writes the decoded tensors to OUT (``.safetensors``,
``.npz`` or a torch state_dict ``.pt``), tensor by tensor. Files that reference a base file
find it with ``--base FILE`` or ``--base-dir DIR`` (and in their own directory).

``relcode image train-prior|compress|decompress`` and ``relcode audio ...`` compress images
and 16 kHz speech with COMBINER (:mod:`relcode.inr`).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from . import deps
from .errors import CancelledError, RelcodeError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EXIT_CODES = """exit status:
  0    success
  1    invalid input or a failed check (corrupt file, checksum mismatch, bad posterior)
  2    usage error
  130  interrupted (Ctrl-C); no partial output is left behind

output (-o): never '-' (stdout), a directory, a link, a FIFO or device, or an input file;
  written complete or not at all; a replaced file keeps its permissions"""


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
    kw = {
        "base": args.base,
        "base_dirs": args.base_dir or (),
        "max_elements": getattr(args, "max_elements", None),
    }
    if args.base is None:
        signal = _signal_base(args)
        if signal is not None:
            kw["base"] = signal
    return kw


def _signal_base(args: argparse.Namespace) -> bytes | None:
    """A compressed image or audio file's base is never stored: it is rebuilt from the codec
    the file names (the package's shipped codecs, --base-dir, $RELCODE_CODEC_PATH or the
    file's own directory). None for every other file, or when the base was found as a file."""
    from . import format as fmt

    with fmt.open(args.file, base_dirs=args.base_dir or ()) as f:
        meta = f.metadata
        if f.base_sha256 is None or f.base is not None or not isinstance(meta, dict):
            return None
    from .inr import files

    if not files.is_signal_metadata(meta):
        return None
    data, args.signal = files.base_of(args.file, codec_dirs=args.base_dir or ())
    return data


def _plain(v: object) -> object:
    """Metadata for people: bytes as hex, containers recursively."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _fmt_bytes(n: int) -> str:
    return f"{n} B" if n < 10_000 else f"{n / 1024:.1f} KiB" if n < 10_000_000 else f"{n / 2**20:.1f} MiB"


def _f32(v: object) -> str:
    import numpy as np

    return str(np.float32(v)) if isinstance(v, float) else "per element"


def _cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from . import format as fmt

    if _compact_signal(args):
        return _inspect_compact(args)
    info = fmt.inspect(args.file, **_base_args(args))
    signal = getattr(args, "signal", None)
    if signal is not None:
        info["signal"] = signal
    if args.json:
        print(json.dumps(_plain(info), indent=2, default=repr))
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
    if signal is not None:
        shape = "x".join(map(str, signal["shape"]))
        lines.append(
            f"compressed {signal['codec_kind']}: {shape}, codec {signal['codec'][:16]}… "
            f"({signal['codec_bits_per_sample']:g} bits per sample nominal), rate scale {signal['scale']:.4g}"
        )
    if info["metadata"] is not None:
        lines.append(f"metadata: {_plain(info['metadata'])!r}")
    print("\n".join(lines))
    return EXIT_OK


def _inspect_compact(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .inr import files

    data = Path(args.file).read_bytes()
    info = files.parse_compact(data)
    try:
        sf = files.read_signal(args.file, codec_dirs=args.base_dir or ())
        info.update(files.parse_compact(data, sf.codec.arch.dim_in))
        info.update(codec=sf.codec.sha256, codec_kind=sf.codec.kind, blocks=sf.blocks,
                    bits=sf.blocks * int(sf.codec.bits), verified=True)  # fmt: skip
    except RelcodeError as e:  # the header is still worth showing
        info.update(verified=False, error=str(e))
    info["bytes"] = len(data)
    if args.json:
        print(json.dumps(_plain(info), indent=2, default=repr))
        return EXIT_OK
    lines = [f"{args.file}: compact signal file v{info['version']}, {_fmt_bytes(len(data))}"]
    lines.append(f"codec {info.get('codec') or info['codec_id'] + '...'}" + (
        f" ({info['codec_kind']})" if "codec_kind" in info else " (not found)"))  # fmt: skip
    if info["verified"]:
        shape = "x".join(map(str, info["shape"]))
        lines.append(f"shape {shape}, seed {info['seed']}, rate scale {info['scale']:.6g}")
        lines.append(f"{info['blocks']} blocks, {info['bits']} message bits, CRC-32 verified")
    else:
        lines.append(f"not decoded: {info['error']}")
    print("\n".join(lines))
    return EXIT_OK


def _progress_arg(args: argparse.Namespace) -> bool | None:
    """None: a bar when stderr is a terminal; --quiet: none; --progress: always."""
    if getattr(args, "quiet", False):
        return False
    return True if getattr(args, "progress", False) else None


def _compact_signal(args: argparse.Namespace) -> bool:
    """Whether FILE is a compact image or audio file (spec/signal.md), not a relcode file."""
    from pathlib import Path

    from . import _checks

    with open(_checks.input_file(Path(args.file)), "rb") as f:
        head = f.read(2)
    from .inr import files

    return files.is_compact(head)


def _cmd_verify(args: argparse.Namespace) -> int:
    from . import streaming

    if _compact_signal(args):
        from .inr import files

        sf = files.read_signal(args.file, codec_dirs=args.base_dir or ())  # checks its CRC-32
        if not args.quiet:
            print(f"{args.file}: OK (compact {sf.codec.kind} file, {sf.blocks} blocks, CRC-32 verified)",
                  file=sys.stderr)  # fmt: skip
        return EXIT_OK

    with streaming.open_decoder(args.file, threads=args.threads, **_base_args(args)) as dec:
        summary = dec.verify(progress=_progress_arg(args))
    if not args.quiet:
        print(
            f"{args.file}: OK ({summary['tensors']} tensors, every CRC32C and SHA-256 verified)",
            file=sys.stderr,
        )
    return EXIT_OK


def _cmd_decode(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import streaming

    out = Path(args.output)
    if out.suffix not in (".safetensors", ".npz", ".pt", ".pth"):
        print("relcode decode: -o must end in .safetensors, .npz, .pt or .pth", file=sys.stderr)
        return EXIT_USAGE
    if out.suffix in (".pt", ".pth"):
        deps.require("torch", "writing .pt files")
    from . import pretrained

    if pretrained.is_model_file(args.file, max_elements=args.max_elements):
        # a compressed pretrained model: every tensor with its own name, shape and dtype
        n = pretrained.decompress_to(args.file, out, max_elements=args.max_elements)
        if not args.quiet:
            print(f"relcode decode: wrote {n} tensors to {out}", file=sys.stderr)
        return EXIT_OK
    with streaming.open_decoder(args.file, threads=args.threads, **_base_args(args)) as dec:
        dec.write(out, progress=_progress_arg(args))
        n = len(dec)
    if not args.quiet:
        print(f"relcode decode: wrote {n} tensors to {out}", file=sys.stderr)
    return EXIT_OK


def _option_value(text: str) -> object:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def _cmd_encode(args: argparse.Namespace) -> int:
    import json

    from . import streaming

    options: dict[str, object] = {}
    for item in args.option or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            print(f"relcode encode: --option expects KEY=VALUE, got {item!r}", file=sys.stderr)
            return EXIT_USAGE
        options[key.strip()] = _option_value(value.strip())
    common = dict(
        seed=args.seed, method=args.method, bits_per_block=args.bits_per_block, layout=args.layout,
        block_size=args.block_size, max_block_size=args.max_block_size, chunk_size=args.chunk_size,
        digest=args.digest, progress=_progress_arg(args), max_excess=args.max_excess, **options,
    )  # fmt: skip
    if args.scheduler:
        deps.require("distributed", "relcode encode --scheduler")
        from distributed import Client

        from . import distributed

        with Client(args.scheduler) as client:
            rep = distributed.encode(
                args.output, args.posterior, client=client, prior_mean=args.prior_mean,
                prior_std=args.prior_std, **common,
            )  # fmt: skip
    else:
        with streaming.StreamEncoder(args.output, workers=args.workers, **common) as enc:
            enc.add_safetensors(args.posterior, prior_mean=args.prior_mean, prior_std=args.prior_std)
        rep = enc.report
        assert rep is not None
    if args.json:
        keys = ("blocks", "groups", "bits", "bytes", "kl", "sha256", "file_sha256", "steps", "rate")
        print(json.dumps({k: getattr(rep, k) for k in keys}, indent=2))
    for name, r in rep.over_budget.items():  # a warning, even with --quiet
        print(
            f"relcode encode: warning: tensor {name!r}: {r['over_budget_blocks']} of {r['blocks']} blocks "
            f"exceed their fixed budget (the worst by {r['worst_excess_bits']:.1f} bits); their samples are "
            "approximate and may lie far from the posterior. Raise --bits-per-block, or refuse such "
            "files with --max-excess 0",
            file=sys.stderr,
        )
    if not args.quiet:
        print(
            f"relcode encode: wrote {args.output}: {rep.bytes} bytes, {rep.blocks} blocks, "
            f"{rep.bits} message bits (KL {sum(rep.kl.values()):.0f} bits), {rep.groups} groups",
            file=sys.stderr,
        )
    return EXIT_OK


def _cmd_compress_model(args: argparse.Namespace) -> int:
    import json

    if args.calibration is not None:
        deps.require("pretrained", "relcode compress-model --calibration", ("torch", "transformers"))
    from . import pretrained

    rep = pretrained.compress_model_dir(
        args.model, args.output, args.bits_per_weight, calibration=args.calibration, seed=args.seed,
        block_size=args.block_size, max_block_bits=args.max_block_bits, threads=args.threads,
        progress=_progress_arg(args),
    )  # fmt: skip
    if args.json:
        print(json.dumps(rep.to_json(), indent=2))
    if not args.quiet:
        print(f"relcode compress-model: wrote {args.output}: {rep.summary()}", file=sys.stderr)
    off = abs(rep.bits_per_weight - rep.target_bits_per_weight)
    if off > 0.1 or rep.over_budget_blocks:
        # never silent: a missed rate or a block over its budget is said even with --quiet
        print(
            f"relcode compress-model: warning: the file has {rep.bits_per_weight:.3f} bits/weight for "
            f"{rep.target_bits_per_weight:g} asked; {rep.over_budget_blocks} blocks over budget",
            file=sys.stderr,
        )
    return EXIT_OK


def _add_file_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a relcode file")
    p.add_argument("--base", metavar="FILE", help="the base (codec) file the file references")
    p.add_argument(
        "--base-dir", metavar="DIR", action="append", help="a directory to search for the base file"
    )
    p.add_argument(
        "--max-elements",
        type=int,
        metavar="N",
        help="accept files of up to N elements whatever their size (trusted files; default: 2^31, "
        "and at most 4096 per byte of the file)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relcode",
        description="Relative entropy coding: compress Gaussian posteriors and Bayesian neural networks.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"relcode {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the end-to-end demonstration")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.set_defaults(func=_cmd_demo, needs=("demo",))

    p = sub.add_parser("inspect", help="summarise a relcode file without decoding it")
    _add_file_args(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser(
        "encode",
        help="encode a posterior safetensors file (NAME.mean, NAME.std, NAME.prior_std) in bounded memory",
        description="Encode a posterior file into a relcode file, a chunk at a time (bounded memory), on "
        "local threads or a Dask cluster. Coded tensors are NAME.mean + NAME.std (+ NAME.prior_std, "
        "NAME.prior_mean: one value per layer or one per element); every other tensor is stored verbatim.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("posterior", metavar="POSTERIOR", help="a .safetensors posterior file")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="the relcode file to write")
    p.add_argument("--seed", type=int, default=0, help="root seed of the file's random streams (default 0)")
    p.add_argument(
        "--method", default="pfr",
        help="channel simulation method (default pfr: truncated pfr, bits = ceil(--bits-per-block); "
        "--option bits=none for exact pfr)",
    )  # fmt: skip
    p.add_argument(
        "--bits-per-block", type=float, default=16,
        help="KL bits per block (default 16); rounded up, also the default bits option of mrc, orc and pfr",
    )  # fmt: skip
    p.add_argument("--layout", choices=("kl", "fixed"), default="kl", help="block layout (default kl)")
    p.add_argument("--block-size", type=int, default=None, help="elements per block (fixed layout)")
    p.add_argument("--max-block-size", type=int, default=25, help="largest KL-layout block (default 25)")
    p.add_argument(
        "--chunk-size", type=int, default=1 << 20, help="elements per group: the unit of work (default 2^20)"
    )
    p.add_argument("--prior-std", type=float, default=None, help="prior std where NAME.prior_std is absent")
    p.add_argument("--prior-mean", type=float, default=0.0, help="prior mean where NAME.prior_mean is absent")
    p.add_argument(
        "--option", action="append", metavar="KEY=VALUE", help="a method option, e.g. pool=true (repeatable)"
    )
    p.add_argument("--digest", choices=("tensor", "all"), default="tensor", help="SHA-256 per tensor or one")
    p.add_argument("--workers", type=int, default=None, help="chunks encoded at once (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="encode on the Dask cluster at ADDRESS")
    p.add_argument(
        "--max-excess", type=float, default=None, metavar="BITS",
        help="fail (exit 1, no file written) when a block's KL exceeds its fixed budget (mrc, orc, pfr with "
        "bits, dad_star) by more than BITS; checked before any block is coded. Without it such blocks are "
        "coded approximately and reported with a warning",
    )  # fmt: skip
    p.add_argument(
        "--strict-budget", dest="max_excess", action="store_const", const=0.0, help="--max-excess 0"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or summary (warnings are still printed)"
    )
    p.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("verify", help="decode a file and check every checksum (exit 0 if intact)")
    _add_file_args(p)
    p.add_argument("--threads", type=int, default=None, help="decoder threads (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("decode", help="decode a file to .safetensors, .npz or a torch .pt, tensor by tensor")
    _add_file_args(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.safetensors, OUT.npz or OUT.pt")
    p.add_argument("--threads", type=int, default=None, help="decoder threads (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser(
        "compress-model",
        help="compress a pretrained model's weights to a target rate (no training needed)",
        description=(
            "Compresses every float tensor of MODEL (a .safetensors file or a transformers /\n"
            "sentence-transformers model directory) by relative entropy coding at --bits-per-weight\n"
            "for the whole file; integer and small tensors are stored verbatim.\n"
            "`relcode decode OUT.relc -o W.safetensors` restores every tensor with its name, shape\n"
            "and dtype."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="MODEL.safetensors or a model directory")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the relcode file to write")
    p.add_argument("--bits-per-weight", type=float, required=True, help="target rate of the whole file")
    p.add_argument(
        "--calibration", metavar="FILE", default=None,
        help="weights the rate by the model's sensitivity to each weight, measured on FILE: UTF-8 text, one "
        "sample per line (a sentence-transformers or transformers model directory, with its tokenizer), "
        "or a .safetensors/.npz of tokenised input batches ('0.input_ids', '0.attention_mask', "
        "'1.input_ids', ...; a transformers model directory)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="root seed of the file's random streams (default 0)")
    p.add_argument(
        "--block-size", type=int, default=None, help="weights per block (default: chosen per group)"
    )
    p.add_argument(
        "--max-block-bits",
        type=int,
        default=12,
        help="largest message per block (default 12; time grows as 2^bits)",
    )
    p.add_argument("--threads", type=int, default=None, help="encoder threads (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or summary (warnings still show)"
    )
    p.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    p.set_defaults(func=_cmd_compress_model)

    from .inr.commands import add_parsers as _inr_parsers

    _inr_parsers(sub)  # relcode image ..., relcode audio ...

    p = sub.add_parser("bench", help="benchmarks against numpy/torch baselines, printed as ratios")
    p.add_argument("names", nargs="*", default=["all"], help="which benchmarks (default: all)")
    p.set_defaults(func=_cmd_bench, needs=("bench", ("scipy",)))
    return parser


def _command_name(args: argparse.Namespace) -> str:
    return " ".join(str(x) for x in (args.command, getattr(args, "action", None)) if x)


#: Arguments that name files a command reads (never overwritten by its output).
_INPUT_ARGS = ("posterior", "file", "base", "model", "calibration", "input", "inputs", "codec")


def _inputs(args: argparse.Namespace) -> list[str]:
    """The files a command reads, those of an input directory included."""
    import os

    paths: list[str] = []
    for key in _INPUT_ARGS:
        value = getattr(args, key, None)
        for p in value if isinstance(value, list) else [value]:
            if not isinstance(p, str):
                continue
            paths.append(p)
            if os.path.isdir(p):
                try:
                    paths += [e.path for e in os.scandir(p) if e.is_file()]
                except OSError:
                    pass
    return paths


def _interrupted(command: str, in_process: bool) -> int:
    """Ctrl-C: one line, no partial output, exit status 130. A second Ctrl-C while the
    program ends is ignored (the encoder's threads are already cancelled and end at once)."""
    import signal

    from . import _output

    old = None
    with contextlib.suppress(ValueError):  # not the main thread
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    _output.discard_all()
    print(f"relcode {command}: interrupted", file=sys.stderr, flush=True)
    if in_process and old is not None:
        signal.signal(signal.SIGINT, old)
    return EXIT_INTERRUPTED


def _ascii_safe_stdout() -> None:
    """Text that the terminal's encoding cannot show is escaped instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            if stream.errors == "strict":
                stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _ascii_safe_stdout()
    try:
        need = getattr(args, "needs", None)
        if need:  # optional modules first: one line saying what to install, not a traceback
            deps.require(need[0], f"relcode {_command_name(args)}", *need[1:])
        if getattr(args, "output", None) is not None:
            from . import _output

            _output.check_destination(args.output, _inputs(args))  # before any work
        return args.func(args)
    except deps.MissingDependencyError as e:
        print(e, file=sys.stderr)  # "relcode image compress needs torch: pip install 'relcode[image]'"
        return EXIT_ERROR
    except (KeyboardInterrupt, CancelledError):
        try:
            return _interrupted(args.command, argv is not None)
        except KeyboardInterrupt:  # a second Ctrl-C before the first was handled
            return _interrupted(args.command, argv is not None)
    except RelcodeError as e:
        print(f"relcode {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print(f"relcode {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
