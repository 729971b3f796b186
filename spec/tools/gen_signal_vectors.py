"""Writes the compact signal conformance vectors (spec/signal.md) into spec/vectors/signal/:
files a decoder must decode (with the SHA-256 of their decoded coded vector) and files it
must refuse (with the error class). The messages are seeded random indices, which decode
like any others. Run from the repository root: PYTHONPATH=python python spec/tools/gen_signal_vectors.py
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from relcode.inr import files
from relcode.inr.codec import PACKAGE_CODECS, load_codec

OUT = Path(__file__).resolve().parents[1] / "vectors" / "signal"
CODEC = "image-64-0.25.relc"  # shipped with the package


def make(
    codec, shape: tuple[int, int], seed: int, scale: float, rng: np.random.Generator
) -> tuple[bytes, str, int]:
    from relcode.inr.signals import patch_grid

    patches = int(np.prod(patch_grid(shape, codec.arch.patch)))
    base = files.signal_base(codec, patches, files.compact_scale(scale))
    msgs = rng.integers(0, 1 << int(codec.bits), base.num_blocks, dtype=np.uint64)
    import io

    buf = io.BytesIO()
    rep = files.write_compact(buf, codec, base, shape, msgs, seed)
    w = rep.decoded.astype("<f4").tobytes()
    return buf.getvalue(), hashlib.sha256(w).hexdigest(), base.num_blocks


def main() -> None:
    codec = load_codec(PACKAGE_CODECS / CODEC)
    rng = np.random.default_rng(20261203)
    OUT.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"codec": CODEC, "codec_sha256": codec.sha256, "decode": [], "reject": []}
    cases = [
        ("one_patch", (64, 64), 0, 1.0),
        ("six_patches", (100, 150), 7, 0.75),
        ("big_seed", (64, 1), 2**40 + 3, 2.5),
    ]
    good = {}
    for name, shape, seed, scale in cases:
        data, sha, n = make(codec, shape, seed, scale, rng)
        (OUT / f"{name}.rsig").write_bytes(data)
        good[name] = data
        manifest["decode"].append(
            {
                "file": f"{name}.rsig",
                "shape": list(shape),
                "seed": seed,
                "scale": float(np.float32(scale)),
                "blocks": n,
                "decoded_sha256": sha,
                "bytes": len(data),
            }
        )
    g = good["one_patch"]
    at = files.parse_compact(g, 2)["messages_at"]
    rejects = {
        "bad_magic": (b"rT" + g[2:], "FormatError"),
        "too_short": (g[:2], "FormatError"),
        "version_2": (g[:2] + b"\x02" + g[3:], "VersionError"),
        "truncated_codec_id": (g[:7], "FormatError"),
        "unknown_codec_id": (g[:3] + bytes(8) + g[11:], "InputError"),
        "truncated_shape": (g[:12], "FormatError"),
        "zero_dimension": (g[:11] + b"\x00" + g[12:], "FormatError"),
        "non_minimal_varint": (g[:11] + b"\xc0\x80\x00" + g[12:], "FormatError"),
        "scale_nan": (g[: at - 4] + struct.pack("<f", float("nan")) + g[at:], "FormatError"),
        "scale_zero": (g[: at - 4] + struct.pack("<f", 0.0) + g[at:], "FormatError"),
        "too_many_patches": (g[:11] + files._uleb(64 * 33) + files._uleb(64 * 32) + g[13:], "FormatError"),
        "one_byte_more": (g + b"\x00", "FormatError"),
        "one_byte_less": (g[:-5] + g[-4:], "FormatError"),
        "message_flipped": (g[:at] + bytes([g[at] ^ 1]) + g[at + 1 :], "ChecksumError"),
        "check_flipped": (g[:-1] + bytes([g[-1] ^ 0x80]), "ChecksumError"),
    }
    assert zlib.crc32(b"") == 0
    for name, (data, err) in rejects.items():
        (OUT / f"reject_{name}.rsig").write_bytes(data)
        manifest["reject"].append({"file": f"reject_{name}.rsig", "error": err})
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(manifest['decode'])} decode and {len(manifest['reject'])} reject vectors to {OUT}")


if __name__ == "__main__":
    main()
