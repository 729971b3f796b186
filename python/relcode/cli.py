"""The ``relcode`` command line. Data goes to stdout, messages to stderr; exit status 0 on
success, 1 when the input is invalid or a check fails, 2 for usage errors (argparse)."""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relcode",
        description="Relative entropy coding: compress Gaussian posteriors and Bayesian neural networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the end-to-end demonstration")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.set_defaults(func=_cmd_demo)

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
    except KeyboardInterrupt:
        print(f"relcode {args.command}: interrupted", file=sys.stderr)
        return 130
