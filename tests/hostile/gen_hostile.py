"""Writes the hostile-input corpus of tests/hostile/files/: small files whose claims (element
counts, lengths, counts) are far larger than their bytes, each with the error class a reader
must raise in bounded memory and time (``expected.json``).

    python tests/hostile/gen_hostile.py [--out tests/hostile/files]

Every file is built byte by byte from spec/format.md with the independent helpers of
spec/tools/gen_format_vectors.py (no relcode encoder involved), so the corpus is
deterministic: a rerun rewrites identical bytes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "gen_format_vectors", HERE.parents[1] / "spec" / "tools" / "gen_format_vectors.py"
)
G = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(G)
Chunk, F32 = G.Chunk, G.F32

S = 65535  # the largest block


def header(tensors: list[dict], groups: int, **kw: object) -> Chunk:
    h = {"stream": 1, "channel": 1, "seed": 7, "digest": "tensor", "messages": True, "tensors": tensors}
    h["groups"] = groups
    h.update(kw)
    return Chunk(b"HEAD", G.mp_pack(h))


def coded(name: str, shape: list[int], **kw: object) -> dict:
    t = {"name": name, "shape": shape, "dtype": "float32", "coded": True}
    t["prior_mean"], t["prior_std"] = F32(0.0), F32(1.0)
    t.update(kw)
    return t


def layo_fixed(g: int, start: int, count: int, size: int = S) -> Chunk:
    blocks = -(-count // size)
    return Chunk(b"LAYO", struct.pack("<IB3xQQQII", g, 0, 1, start, count, blocks, size))


def msgs_mrc1(g: int, blocks: int) -> Chunk:
    """`blocks` one-bit mrc messages (the fewest bits a message can take)."""
    opts = G.mp_pack({"bits": 1})
    p = struct.pack("<IBxH", g, 0, len(opts)) + opts + struct.pack("<IQ", blocks, blocks)
    return Chunk(b"MSGS", p + bytes(-(-blocks // 8)))


def coded_file(total: int, group: int) -> bytes:
    """One coded tensor of `total` elements in groups of `group`, fixed blocks of 65535."""
    chunks, starts = [], range(0, total, group)
    chunks.append(header([coded("w", [total])], len(starts)))
    for g, s in enumerate(starts):
        n = min(group, total - s)
        chunks += [layo_fixed(g, s, n), msgs_mrc1(g, -(-n // S))]
    return G.build_file(chunks, [bytes(32)])


def small_valid() -> tuple[list[Chunk], dict]:
    """A tiny well-formed file (one coded tensor of 8 elements), as chunks and header."""
    h = header([coded("w", [8])], 1)
    return [h, layo_fixed(0, 0, 8, 8), msgs_mrc1(0, 1)], G.mp_unpack(h.payload)


def with_head(payload: bytes) -> bytes:
    cs, _ = small_valid()
    return G.build_file([Chunk(b"HEAD", payload), *cs[1:]], [bytes(32)])


def cases() -> dict[str, tuple[bytes, str, str]]:
    out: dict[str, tuple[bytes, str, str]] = {}

    def add(name: str, data: bytes, cls: str, what: str) -> None:
        out[name] = (data, cls, what)

    add("group_bomb_2p26", coded_file(1 << 26, 1 << 26), "LimitError",
        "one group of 2^26 elements (the spec's group limit) in 1025 one-bit messages")  # fmt: skip
    add("claim_2p31", coded_file(1 << 31, 1 << 26), "LimitError",
        "2^31 coded elements (the spec's element limit) in 32 groups of 2^26")  # fmt: skip
    add("claim_2p32", coded_file(1 << 32, 1 << 26), "LimitError", "2^32 coded elements, past every limit")
    cs, h = small_valid()
    add("groups_2p32", G.build_file([header([coded("w", [8])], 2**32 - 1), *cs[1:]], [bytes(32)]),
        "FormatError", "a header claiming 2^32 - 1 groups, with one LAYO chunk")  # fmt: skip
    # shapes
    for name, shape, cls in (
        ("shape_overflow_3x2p32", [2**32] * 3, "LimitError"),
        ("shape_overflow_2p63", [2**63, 2**63], "LimitError"),
        ("shape_1e12", [10**6, 10**6], "LimitError"),
        ("shape_rank_1000", [1] * 1000, "LimitError"),
    ):
        add(name, G.build_file([header([coded("w", shape)], 1), *cs[1:]], [bytes(32)]), cls,
            f"a tensor of shape {shape[:4]}{'...' if len(shape) > 4 else ''}")  # fmt: skip
    # a raw float64 tensor of 2^28 elements (2 GiB) whose DATA is absent
    raw = {"name": "r", "shape": [1 << 28], "dtype": "float64", "coded": False}
    add("raw_2GiB_absent", G.build_file([header([raw, coded("w", [8])], 1), *cs[1:]], [bytes(32)] * 2),
        "FormatError", "a 2 GiB raw tensor with no DATA chunk")  # fmt: skip
    # a DATA chunk that claims 2^40 values
    data = Chunk(b"DATA", struct.pack("<B3xIQQ", 0, 0, 0, 1 << 40) + bytes(64))
    add("data_count_2p40", G.build_file([header([raw, coded("w", [8])], 1), cs[1], data, cs[2]],
        [bytes(32)] * 2), "FormatError", "a DATA chunk claiming 2^40 float64 values in 64 bytes")  # fmt: skip
    # per-element prior of 2^26 elements with no DATA
    pe = coded("w", [1 << 26], prior_mean="elements")
    data = G.build_file([header([pe], 1), layo_fixed(0, 0, 1 << 26), msgs_mrc1(0, 1025)], [bytes(32)])
    add("prior_elements_absent", data, "LimitError", "2^26 per-element prior means that are absent")
    # MessagePack claims: a tensors array of 2^32 - 1 entries, huge strings, bins and maps
    head = bytes(G.mp_pack({**h, "tensors": []}))
    body = G.mp_pack({k: v for k, v in h.items() if k != "tensors"})
    n = body[0] & 15
    tensors_claim = bytes([0x80 | (n + 1)]) + body[1:] + G.mp_pack("tensors") + b"\xdd\xff\xff\xff\xff"
    add("tensors_2p32", with_head(tensors_claim), "FormatError", "a tensors array claiming 2^32 - 1 maps")
    assert head  # the header without tensors is well formed
    for name, claim in (
        ("meta_str_4GiB", b"\xdb\xff\xff\xff\xff"),
        ("meta_bin_4GiB", b"\xc6\xff\xff\xff\xff"),
        ("meta_map_2p32", b"\xdf\xff\xff\xff\xff"),
        ("meta_array_2p32", b"\xdd\xff\xff\xff\xff"),
    ):
        add(name, with_head(bytes([0x80 | (n + 2)]) + body[1:] + G.mp_pack("meta") + claim
            + G.mp_pack("tensors") + G.mp_pack(h["tensors"])), "FormatError",
            f"metadata claiming 2^32 - 1 ({claim[:1].hex()})")  # fmt: skip
    many = [coded(f"t{i:07d}", [1]) for i in range(1 << 9)]
    add("tensors_512_no_groups", G.build_file([header(many, 1), *cs[1:]], [bytes(32)]), "FormatError",
        "512 tensors whose groups do not cover them")  # fmt: skip
    # frames, index and tail
    good = G.build_file(cs, [bytes(32)])
    b = bytearray(good)
    b[16 + 8 : 16 + 12] = struct.pack("<I", 0xFFFFFFFF)
    add("chunk_length_4GiB", bytes(b), "FormatError", "the HEAD frame claims 2^32 - 1 bytes")
    b = bytearray(good)
    b[-16:-8] = struct.pack("<Q", 2**64 - 17)
    add("index_offset_2p64", bytes(b), "FormatError", "the tail points at byte 2^64 - 17")
    claim = struct.pack("<II", 2**32 - 1, 2**32 - 1)
    data = G.build_file(cs, [bytes(32)], index_override=claim)
    add("index_entries_2p32", data, "FormatError", "the index claims 2^32 - 1 entries and digests")
    # layouts
    p = struct.pack("<IB3xQQQII", 0, 1, 1, 0, 8, 2**32 - 1, 0)
    add("layout_sizes_2p32", G.build_file([cs[0], Chunk(b"LAYO", p), cs[2]], [bytes(32)]), "FormatError",
        "a sizes layout claiming 2^32 - 1 blocks in no bytes")  # fmt: skip
    p = struct.pack("<IB3xQQQII", 0, 2, 1, 0, 8, 1, 3) + b"\x80"
    add("layout_explicit_members_absent", G.build_file([cs[0], Chunk(b"LAYO", p), cs[2]], [bytes(32)]),
        "FormatError", "an explicit layout without its member list")  # fmt: skip
    # messages: 2^32 - 1 messages claimed in one byte
    opts = G.mp_pack({"bits": 1})
    p = struct.pack("<IBxH", 0, 0, len(opts)) + opts + struct.pack("<IQ", 2**32 - 1, 8) + b"\x00"
    add("messages_2p32", G.build_file([cs[0], cs[1], Chunk(b"MSGS", p)], [bytes(32)]), "FormatError",
        "a MSGS chunk claiming 2^32 - 1 messages in 8 bits")  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "files")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for p in args.out.glob("*.relc"):
        p.unlink()
    expected = {}
    for name, (data, cls, what) in sorted(cases().items()):
        (args.out / f"{name}.relc").write_bytes(data)
        expected[name] = {"error": cls, "description": what, "bytes": len(data)}
    (args.out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"{len(expected)} hostile files in {args.out}")


if __name__ == "__main__":
    main()
