#!/usr/bin/env python3
"""Write spec/vectors/stream/*.json from relcode.reference (the pure-numpy implementation).

The vectors pin stream version 1. Regenerate them only together with a new stream version.
Usage: python spec/tools/gen_stream_vectors.py [OUTDIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from relcode import reference as R

PURPOSES = {
    name: int.from_bytes(name.encode(), "little")
    for name in ("CAND", "NODE", "NOIS", "POOL", "XFRM", "PERM", "SIGN")
}
U64 = (1 << 64) - 1


def hexwords(a) -> list[str]:
    return [f"{int(x):08x}" for x in np.asarray(a, dtype=np.uint32).reshape(-1)]


def write(out: Path, name: str, payload: dict) -> None:
    payload = {"stream_version": 1, **payload}
    (out / name).write_text(json.dumps(payload, indent=1) + "\n")


def main() -> None:
    out = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "vectors" / "stream"
    )
    out.mkdir(parents=True, exist_ok=True)

    cases = [
        ([0, 0, 0, 0], [0, 0]),
        ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2),
        ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0]),
        ([1, 2, 3, 4], [5, 6]),
        ([0x80000000, 0, 0xFFFFFFFF, 7], [0x9E3779B9, 0xBB67AE85]),
    ]
    write(
        out,
        "philox.json",
        {
            "description": "Philox4x32-10: counter (4 words), key (2 words) -> output (4 words), hex",
            "cases": [
                {"counter": hexwords(c), "key": hexwords(k), "output": hexwords(R.philox4x32_10([c], k))}
                for c, k in cases
            ],
        },
    )

    keys = []
    for seed in (0, 1, 42, 2**32, U64):
        for name, p in PURPOSES.items():
            keys.append({"seed": str(seed), "purpose": name, "key": hexwords(R.derive_key(seed, p))})
    write(
        out,
        "keys.json",
        {"description": "key(seed, purpose), hex words; seeds as decimal strings", "cases": keys},
    )

    normals = []
    for seed, stream, start, count in [
        (0, 0, 0, 64),
        (1, 7, 5, 37),
        (42, 2**63 + 11, 1000003, 40),
        (U64, U64, 2**64 - 40, 40),
        (123456789, 3, 2**40 + 1, 19),
    ]:
        z = R.normals(seed, stream, start, count)
        normals.append(
            {
                "seed": str(seed),
                "stream": str(stream),
                "start": str(start),
                "bits": hexwords(z.view(np.uint32)),
            }
        )
    write(
        out,
        "normals.json",
        {"description": "normals of the CAND stream at start.., binary32 bit patterns", "cases": normals},
    )

    unis = []
    for seed, stream, start, count in [(0, 0, 0, 16), (9, 2**40, 12345, 9), (U64, 1, 2**63 - 3, 8)]:
        u = R.uniforms(seed, PURPOSES["NODE"], stream, start, count)
        unis.append(
            {
                "seed": str(seed),
                "purpose": "NODE",
                "stream": str(stream),
                "start": str(start),
                "bits": [f"{int(b):016x}" for b in u.view(np.uint64)],
            }
        )
    write(out, "uniforms.json", {"description": "u52 uniforms, binary64 bit patterns", "cases": unis})

    ps = np.array(
        [0.5, 0.075, 0.925, 0.0749999, 0.9250001, 1e-3, 0.999, 1e-11, 1.3887e-11, 1e-20, 1e-100, 1e-300,
         5e-324, 2.0**-1074 * 3, 1 - 2.0**-53, 0.3, 0.7, 2.0**-53, 0.123456789, 1 - 1e-12]
    )  # fmt: skip
    ps = np.concatenate([ps, np.random.default_rng(7).uniform(0, 1, 44)])
    x = R.ndtri(ps)
    write(
        out,
        "ndtri.json",
        {
            "description": "ndtri: input and output as binary64 bit patterns",
            "cases": [
                {"p": f"{int(a):016x}", "x": f"{int(b):016x}"}
                for a, b in zip(ps.view(np.uint64), x.view(np.uint64))
            ],
        },
    )

    cands = []
    for seed, stream, index, pm, ps_ in [
        (0, 0, 0, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
        (5, 17, 65535, [0.1, -0.2, 0.3, 0.0, 1.5], [0.05, 0.1, 0.2, 1.0, 0.01]),
        (77, 2**33, 3, [-1.0], [0.125]),
        (3, 9, 17, [0.25, -0.5], [0.5, 2.0]),
        (11, 2**63 + 5, 2**62 + 21, [0.0, 1.0, -1.0], [1.0, 0.5, 0.25]),
        (2, 1000, 1000, list(np.linspace(-1, 1, 25)), list(np.linspace(0.05, 0.5, 25))),
    ]:
        w = R.candidate(seed, stream, index, pm, ps_)
        cands.append(
            {
                "seed": str(seed),
                "stream": str(stream),
                "index": str(index),
                "prior_mean": hexwords(np.asarray(pm, dtype=np.float32).view(np.uint32)),
                "prior_std": hexwords(np.asarray(ps_, dtype=np.float32).view(np.uint32)),
                "bits": hexwords(w.view(np.uint32)),
            }
        )
    write(
        out,
        "candidates.json",
        {
            "description": "weights of candidate `index` of a block with stream id `stream` (normal j at "
            "position floor(index/16)*16*d + 16*j + index%16 of the CAND stream, d = len(prior_mean)), "
            "binary32 bit patterns",
            "cases": cands,
        },
    )
    print(f"wrote vectors to {out}")


if __name__ == "__main__":
    main()
