"""Generates the conformance vectors of spec/format.md in spec/vectors/format/.

    python spec/tools/gen_format_vectors.py [--out spec/vectors/format]

``decode/NAME.relc`` must decode; ``decode/NAME.json`` records the SHA-256 of each decoded
tensor's little-endian bytes, its shape and dtype, its first values (as bit patterns) and,
for files that reference a base file, the base's name. ``reject/NAME.relc`` must be refused
with the error class in ``reject/NAME.json``. ``manifest.json`` lists every vector and the
coding methods that this build could not encode (their encoders are not available yet);
rerun the script when they land, and it adds their vectors. Output is deterministic: a
rerun with the same build rewrites identical bytes.

The byte-level helpers here (CRC32C, a minimal MessagePack codec, a chunk parser and
builder) are an independent reading of spec/format.md; the tests reuse them to build
hostile files.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"\x89RELC\r\n\x1a"
END_MAGIC = b"\x89RELCEND"

# ---------------------------------------------------------------------------------------
# CRC32C (Castagnoli, reflected polynomial 0x82F63B78)

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    _CRC_TABLE.append(_c)


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------------------------------
# MessagePack (the subset files use; canonical: shortest forms, sorted map keys)


class F32(float):
    """A float written as MessagePack float 32."""


def mp_pack(v: Any) -> bytes:
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, F32):
        return b"\xca" + struct.pack(">f", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, int):
        if 0 <= v < 0x80:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        for lo, hi, tag, fmt in (
            (0, 1 << 8, 0xCC, ">B"),
            (0, 1 << 16, 0xCD, ">H"),
            (0, 1 << 32, 0xCE, ">I"),
            (0, 1 << 64, 0xCF, ">Q"),
            (-(1 << 7), 0, 0xD0, ">b"),
            (-(1 << 15), 0, 0xD1, ">h"),
            (-(1 << 31), 0, 0xD2, ">i"),
            (-(1 << 63), 0, 0xD3, ">q"),
        ):
            if lo <= v < hi:
                return bytes([tag]) + struct.pack(fmt, v)
        raise ValueError(v)
    if isinstance(v, str):
        b = v.encode()
        n = len(b)
        head = (
            bytes([0xA0 | n])
            if n < 32
            else b"\xd9" + bytes([n])
            if n < 256
            else b"\xda" + struct.pack(">H", n)
        )
        return head + b
    if isinstance(v, (bytes, bytearray)):
        n = len(v)
        return (b"\xc4" + bytes([n]) if n < 256 else b"\xc5" + struct.pack(">H", n)) + bytes(v)
    if isinstance(v, (list, tuple)):
        n = len(v)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(mp_pack(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        items = sorted((mp_pack(k), mp_pack(x)) for k, x in v.items())
        return head + b"".join(k + x for k, x in items)
    raise TypeError(type(v))


def mp_unpack(b: bytes) -> Any:
    def val(i: int) -> tuple[Any, int]:
        t = b[i]
        i += 1
        if t < 0x80:
            return t, i
        if t >= 0xE0:
            return t - 256, i
        if 0x80 <= t <= 0x8F:
            return mapn(t & 15, i)
        if 0x90 <= t <= 0x9F:
            return arrn(t & 15, i)
        if 0xA0 <= t <= 0xBF:
            n = t & 31
            return b[i : i + n].decode(), i + n
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if t in simple:
            return simple[t], i
        fixed = {
            0xCC: ">B",
            0xCD: ">H",
            0xCE: ">I",
            0xCF: ">Q",
            0xD0: ">b",
            0xD1: ">h",
            0xD2: ">i",
            0xD3: ">q",
        }
        if t in fixed:
            s = struct.calcsize(fixed[t])
            return struct.unpack(fixed[t], b[i : i + s])[0], i + s
        if t == 0xCA:
            return F32(struct.unpack(">f", b[i : i + 4])[0]), i + 4
        if t == 0xCB:
            return struct.unpack(">d", b[i : i + 8])[0], i + 8
        lens = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4}
        k = lens[t]
        n = int.from_bytes(b[i : i + k], "big")
        i += k
        if t in (0xD9, 0xDA, 0xDB):
            return b[i : i + n].decode(), i + n
        if t in (0xC4, 0xC5, 0xC6):
            return bytes(b[i : i + n]), i + n
        return (arrn if t in (0xDC, 0xDD) else mapn)(n, i)

    def arrn(n: int, i: int) -> tuple[list, int]:
        out = []
        for _ in range(n):
            x, i = val(i)
            out.append(x)
        return out, i

    def mapn(n: int, i: int) -> tuple[dict, int]:
        out = {}
        for _ in range(n):
            k, i = val(i)
            x, i = val(i)
            out[k] = x
        return out, i

    v, end = val(0)
    assert end == len(b)
    return v


# ---------------------------------------------------------------------------------------
# Chunks


class Chunk:
    """A chunk: type, flags, payload; `crc` None means "compute it"."""

    def __init__(
        self, kind: bytes, payload: bytes, flags: int = 0, crc: int | None = None, reserved: int = 0
    ):
        self.kind, self.payload, self.flags, self.crc, self.reserved = kind, payload, flags, crc, reserved

    def frame(self) -> bytes:
        head = self.kind + struct.pack("<HHI", self.flags, self.reserved, len(self.payload))
        crc = crc32c(head + self.payload) if self.crc is None else self.crc
        return head + struct.pack("<I", crc) + self.payload


def parse_file(data: bytes) -> tuple[tuple[int, int], list[Chunk], list[bytes]]:
    """(version, chunks before the index, digests) of a valid file."""
    major, minor = struct.unpack("<HH", data[8:12])
    index_at = struct.unpack("<Q", data[-16:-8])[0]
    chunks, at = [], 16
    while at < index_at:
        kind = data[at : at + 4]
        flags, _, n, _crc = struct.unpack("<HHII", data[at + 4 : at + 16])
        chunks.append(Chunk(kind, data[at + 16 : at + 16 + n], flags))
        at += 16 + n
    ip = data[index_at + 16 : -16]
    ne, nd = struct.unpack("<II", ip[:8])
    digests = [ip[8 + 16 * ne + 32 * k : 8 + 16 * ne + 32 * (k + 1)] for k in range(nd)]
    return (major, minor), chunks, digests


def build_file(
    chunks: list[Chunk],
    digests: list[bytes],
    version: tuple[int, int] = (1, 0),
    preamble_reserved: int = 0,
    index_override: bytes | None = None,
) -> bytes:
    out = bytearray(MAGIC + struct.pack("<HHI", version[0], version[1], preamble_reserved))
    entries = b""
    for c in chunks:
        entries += c.kind + struct.pack("<HHQ", c.flags, 0, len(out))
        out += c.frame()
    at = len(out)
    payload = index_override or struct.pack("<II", len(chunks), len(digests)) + entries + b"".join(digests)
    out += Chunk(b"INDX", payload).frame()
    out += struct.pack("<Q", at) + END_MAGIC
    return bytes(out)


def header_of(chunks: list[Chunk]) -> dict:
    return mp_unpack(chunks[0].payload)


def with_header(chunks: list[Chunk], header: dict) -> list[Chunk]:
    return [Chunk(b"HEAD", mp_pack(header)), *chunks[1:]]


# ---------------------------------------------------------------------------------------
# Vectors


def le_sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()).hexdigest()


def sidecar(tensors: dict[str, np.ndarray], description: str, base: str | None = None) -> dict:
    out: dict[str, Any] = {"description": description, "tensors": {}}
    if base:
        out["base"] = base
    for name, a in sorted(tensors.items()):
        flat = a.reshape(-1)[:4]
        bits = [int(x) for x in flat.view(np.uint32 if a.dtype == np.float32 else np.uint8)] if a.size else []
        out["tensors"][name] = {
            "shape": list(a.shape),
            "dtype": a.dtype.name,
            "sha256": le_sha(a),
            "first": flat.tolist() if a.dtype != np.float32 else [float(x) for x in flat],
            "first_bits": [f"{b:08x}" for b in bits] if a.dtype == np.float32 else None,
        }
    return out


def posterior(rng: np.random.Generator, shape: tuple[int, ...], p_std: float = 0.2) -> tuple:
    return (rng.normal(0, p_std / 2, shape), np.full(shape, p_std / 3), 0.0, p_std)


METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "mrc": {"bits": 8},
    "orc": {"bits": 8},
    "pfr": {"bits": 8},
    "dad_star": {"depth": 10},
}


def generate(out: Path) -> dict:
    import relcode
    from relcode import format as F

    dec = out / "decode"
    rej = out / "reject"
    for d in (dec, rej):
        d.mkdir(parents=True, exist_ok=True)
        for p in d.iterdir():
            p.unlink()
    manifest: dict[str, Any] = {
        "format_version": list(F.FORMAT_VERSION),
        "decode": [],
        "reject": [],
        "skipped": {},
    }

    def put(name: str, data: bytes, description: str, base: str | None = None) -> None:
        (dec / f"{name}.relc").write_bytes(data)
        basepath = dec / base if base else None
        tensors = relcode.decode(data, base=basepath)
        (dec / f"{name}.json").write_text(json.dumps(sidecar(tensors, description, base), indent=1) + "\n")
        manifest["decode"].append(name)

    def enc(tensors: dict, **kw: Any) -> bytes:
        buf = io.BytesIO()
        relcode.encode(buf, tensors, **kw)
        return buf.getvalue()

    # One vector per method, with blocks of the widest dimension it takes.
    methods = relcode.channel.methods()
    for m, props in methods.items():
        rng = np.random.default_rng(sum(m.encode()))
        opts = dict(METHOD_OPTIONS.get(m, {}))
        one_d = props["max_dim"] == 1
        layout = "fixed" if one_d else "kl"
        try:
            data = enc(
                {"w": posterior(rng, (6, 5)), "b": posterior(rng, (4,))},
                seed=11,
                method=m,
                layout=layout,
                bits_per_block=8,
                **({"block_size": 1} if one_d else {}),
                **opts,
            )
        except relcode.RelcodeError as e:
            if "not available" not in str(e):
                raise
            manifest["skipped"][m] = str(e)
            continue
        put(f"method_{m}", data, f"method {m} {opts}, {layout} layout")
        if m == "pfr":
            data = enc(
                {"w": posterior(rng, (5, 4))}, seed=12, method="pfr", bits=None, layout="kl", bits_per_block=6
            )
            put("method_pfr_exact", data, "exact pfr (Elias-delta indices), kl layout")
            data = enc(
                {"w": posterior(rng, (5, 4))},
                seed=12,
                method="pfr",
                bits=None,
                index_code="zeta",
                zeta_k=4,
                layout="fixed",
                block_size=2,
            )
            put("method_pfr_exact_zeta", data, "exact pfr with zeta_4 indices, fixed layout of 2")

    # The shared-pool mode of the fixed-budget methods.
    rng = np.random.default_rng(70)
    try:
        data = enc({"w": posterior(rng, (6, 5))}, seed=13, method="mrc", bits=8, pool=True, bits_per_block=8)
    except relcode.RelcodeError as e:
        if "not available" not in str(e):
            raise
        manifest["skipped"]["pool"] = str(e)
    else:
        put("method_mrc_pool", data, "mrc in shared-pool mode")

    rng = np.random.default_rng(7)
    # Layouts.
    data = enc({"a": posterior(rng, (9, 7)), "b": posterior(rng, (11,))}, seed=3, method="mrc", bits=10,
               layout="fixed", block_size=5)  # fmt: skip
    put("layout_fixed", data, "fixed layout, blocks of 5 across two tensors")
    data = enc({"a": posterior(rng, (9, 7)), "b": posterior(rng, (11,))}, seed=3, method="pfr", bits=12,
               layout="kl", max_block_size=6, bits_per_block=12)  # fmt: skip
    put("layout_kl", data, "KL-greedy layout, at most 12 bits and 6 elements per block")
    lay = F.Layout.explicit({"x": (2, 3)}, [[("x", 5), ("x", 0)], [("x", 3)], [("x", 1), ("x", 2), ("x", 4)]])
    buf = io.BytesIO()
    with F.Writer(buf, lay, seed=4, method="orc", bits=6) as w:
        w.set_prior("x", 0.0, 0.5)
        for b in (2, 0, 1):
            w.encode_block(b, 0.1, 0.2)
    put("layout_explicit", buf.getvalue(), "explicit layout, blocks coded out of order")
    # Multi-chunk.
    data = enc({"big": posterior(rng, (300,)), "small": posterior(rng, (40,))}, seed=5, method="pfr", bits=8,
               chunk_size=64, bits_per_block=8)  # fmt: skip
    put("multi_chunk", data, "six groups of at most 64 elements")
    # Inline per-element prior, scalar prior, empty, 0-d and raw tensors.
    qm = rng.normal(0, 0.05, (3, 4))
    data = enc(
        {
            "per_element": (qm, 0.02, rng.normal(0, 0.01, (3, 4)), rng.uniform(0.05, 0.1, (3, 4))),
            "zero_d": (np.float64(0.25), 0.1, 0.0, 1.0),
            "empty": (np.zeros((0, 5)), np.ones((0, 5)), 0.0, 1.0),
            "raw_f32": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
            "raw_i64": np.array([1, -2, 3], dtype=np.int64),
            "raw_bool": np.array([True, False]),
            "raw_f16": np.array([0.5, -2.0], dtype=np.float16),
            "raw_empty": np.zeros((0,), dtype=np.float32),
        },
        seed=6,
        method="pfr",
        bits=10,
        bits_per_block=10,
        metadata={"model": "vectors", "layers": [3, 4]},
    )
    put("tensors_prior_inline", data, "per-element prior inline, scalar prior, empty, 0-d and raw tensors")
    data = enc({"w": posterior(rng, (4, 4))}, seed=8, method="mrc", bits=8, bits_per_block=8, digest="all")
    put("digest_all", data, "one SHA-256 over all tensors")
    # A referenced prior: a base (codec) file and a file that uses it.
    lay = F.Layout.kl(
        {"a": rng.uniform(0, 3, (5, 6)), "b": rng.uniform(0, 3, 3)}, 12, seed=21, max_block_size=8
    )
    base_buf = io.BytesIO()
    F.write_base(
        base_buf, lay, {"a": (rng.normal(0, 0.1, (5, 6)), rng.uniform(0.1, 0.2, (5, 6))), "b": (0.0, 0.3)},
        raw={"freq": np.arange(3, dtype=np.float32)}, metadata={"arch": "siren", "hidden": 16},
    )  # fmt: skip
    (dec / "base_codec.relc").write_bytes(base_buf.getvalue())
    put("base_codec", base_buf.getvalue(), "a base (codec) file: priors, layout, raw tensor, no messages")
    buf = io.BytesIO()
    with F.Writer(buf, base=base_buf.getvalue(), seed=22, method="pfr", bits=12, digest="all") as w:
        for b in range(lay.num_blocks):
            pm, ps = w.block_prior(b)
            w.encode_block(b, pm + 0.4 * ps, 0.3 * ps)
    put("with_base", buf.getvalue(), "messages only; priors and layout by reference", base="base_codec.relc")
    buf = io.BytesIO()
    with F.Writer(buf, base=base_buf.getvalue(), seed=23, method="pfr", bits=10, digest="all", instances=3,
                  metadata={"patches": 3}) as w:  # fmt: skip
        for i in (2, 0, 1):
            for b in range(lay.num_blocks):
                pm, ps = w.block_prior(b)
                w.encode_block(b, pm + 0.1 * (i + 1) * ps, 0.3 * ps, instance=i)
    put("with_base_instances", buf.getvalue(), "three instances of the base's tensors, decoded stacked",
        base="base_codec.relc")  # fmt: skip
    # An unknown optional chunk is skipped.
    _, chunks, digests = parse_file(enc({"w": posterior(rng, (3,))}, seed=1, bits=8))
    chunks.insert(1, Chunk(b"ZZZZ", b"future data", flags=1))
    put("unknown_optional_chunk", build_file(chunks, digests), "an unknown chunk marked optional")
    put("newer_minor_version", build_file(chunks, digests, version=(1, 7)), "minor version 7 of major 1")

    # ---- reject ----
    good = enc({"w": posterior(rng, (6, 5)), "b": posterior(rng, (4,))}, seed=2, method="pfr", bits=8,
               bits_per_block=8)  # fmt: skip
    _, chunks, digests = parse_file(good)

    def bad(name: str, data: bytes, cls: str, description: str, base: str | None = None) -> None:
        (rej / f"{name}.relc").write_bytes(data)
        side = {"error": cls, "description": description}
        if base:
            side["base"] = base
        (rej / f"{name}.json").write_text(json.dumps(side, indent=1) + "\n")
        manifest["reject"].append(name)

    def msgs_index(cs: list[Chunk]) -> int:
        return next(i for i, c in enumerate(cs) if c.kind == b"MSGS")

    bad("empty", b"", "FormatError", "an empty file")
    bad("not_relcode", b"PK\x03\x04" + good[4:], "FormatError", "wrong magic")
    bad("truncated_half", good[: len(good) // 2], "FormatError", "cut in half")
    bad("truncated_tail", good[:-1], "FormatError", "last byte missing")
    bad("appended", good + b"\x00", "FormatError", "a byte appended")
    bad("major_version_2", build_file(chunks, digests, version=(2, 0)), "VersionError", "major version 2")
    bad("preamble_reserved", build_file(chunks, digests, preamble_reserved=1), "FormatError",
        "reserved preamble bytes not zero")  # fmt: skip
    cs = list(chunks)
    cs[1] = Chunk(cs[1].kind, cs[1].payload, reserved=1)
    bad("frame_reserved", build_file(cs, digests), "FormatError", "reserved frame bytes not zero")
    cs = list(chunks)
    cs[1] = Chunk(cs[1].kind, cs[1].payload, flags=1)
    bad("known_chunk_flags", build_file(cs, digests), "FormatError", "a known chunk with the optional flag")
    cs = [*chunks[:1], Chunk(b"ZZZZ", b"needed", flags=0), *chunks[1:]]
    bad(
        "unknown_required_chunk",
        build_file(cs, digests),
        "VersionError",
        "an unknown chunk not marked optional",
    )
    cs = list(chunks)
    i = msgs_index(cs)
    p = bytearray(cs[i].payload)
    p[-1] ^= 0x01
    cs[i] = Chunk(
        cs[i].kind, bytes(p), crc=crc32c(cs[i].kind + struct.pack("<HHI", 0, 0, len(p)) + cs[i].payload)
    )
    bad("crc_mismatch", build_file(cs, digests), "ChecksumError", "a message bit flipped, CRC not updated")
    cs = list(chunks)
    cs[i] = Chunk(cs[i].kind, bytes(p))
    bad("digest_mismatch", build_file(cs, digests), "ChecksumError",
        "a message changed with a valid CRC: decodes to other values than recorded")  # fmt: skip
    h = header_of(chunks)
    bad("stream_version_2", build_file(with_header(chunks, {**h, "stream": 2}), digests), "VersionError",
        "stream version 2")  # fmt: skip
    bad("channel_version_9", build_file(with_header(chunks, {**h, "channel": 9}), digests), "VersionError",
        "channel version 9")  # fmt: skip

    def tensor0(**kw: Any) -> bytes:
        t0 = dict(h["tensors"][0], **kw)
        return build_file(with_header(chunks, {**h, "tensors": [t0, *h["tensors"][1:]]}), digests)

    bad("claims_1e12_elements", tensor0(shape=[1000000, 1000000]), "LimitError", "a tensor of 10^12 elements")
    bad("shape_overflows", tensor0(shape=[2**40, 2**40]), "LimitError", "a shape product past 2^64")
    nested: Any = 0
    for _ in range(200):
        nested = [nested]
    bad("deep_metadata", build_file(with_header(chunks, {**h, "meta": nested}), digests), "LimitError",
        "metadata nested 200 levels deep")  # fmt: skip
    bad("unknown_dtype", tensor0(dtype="complex64"), "VersionError", "an unknown dtype")
    bad("groups_mismatch", build_file(with_header(chunks, {**h, "groups": 2}), digests), "FormatError",
        "the header declares more groups than LAYO chunks")  # fmt: skip
    bad("negative_prior_std", tensor0(prior_std=F32(-1.0)), "FormatError", "a negative prior std")
    # Frame length fields that overflow the file.
    data = bytearray(good)
    data[16 + 8 : 16 + 12] = struct.pack("<I", 0xFFFFFFFF)
    bad("length_overflow", bytes(data), "FormatError", "the HEAD chunk claims 2^32 - 1 bytes")
    data = bytearray(good)
    data[-16:-8] = struct.pack("<Q", 2**64 - 1)
    bad("index_offset_overflow", bytes(data), "FormatError", "the tail points past the end of the file")
    entries_claim = struct.pack("<II", 0xFFFFFFFF, 0)
    bad("index_count_overflow", build_file(chunks, digests, index_override=entries_claim), "FormatError",
        "the index claims 2^32 - 1 entries")  # fmt: skip
    # MSGS with an unknown method id and an unknown option.
    cs = list(chunks)
    p = bytearray(cs[i].payload)
    p[4] = 200
    cs[i] = Chunk(b"MSGS", bytes(p))
    bad("unknown_method", build_file(cs, digests), "VersionError", "method id 200")
    cs = list(chunks)
    p = cs[i].payload
    optlen = struct.unpack("<H", p[6:8])[0]
    opts = mp_unpack(p[8 : 8 + optlen])
    newopts = mp_pack({**opts, "future": 1})
    cs[i] = Chunk(b"MSGS", p[:6] + struct.pack("<H", len(newopts)) + newopts + p[8 + optlen :])
    bad("unknown_option", build_file(cs, digests), "VersionError", "an option this build does not know")
    # Layout sizes that do not add up, and a gap in DATA.
    cs = list(chunks)
    j = next(k for k, c in enumerate(cs) if c.kind == b"LAYO")
    p = bytearray(cs[j].payload)
    p[40] ^= 1  # the first block size
    cs[j] = Chunk(b"LAYO", bytes(p))
    bad("layout_sizes", build_file(cs, digests), "FormatError", "block sizes that do not add up to the group")
    data = enc({"w": (np.zeros(4), 0.1, np.zeros(4), np.full(4, 0.5)), "r": np.arange(3.0)}, seed=1, bits=8)
    _, cs, dg = parse_file(data)
    k = next(k for k, c in enumerate(cs) if c.kind == b"DATA" and c.payload[0] == 0)
    p = bytearray(cs[k].payload)
    p[8:16] = struct.pack("<Q", 1)  # raw values start at element 1: a gap at 0
    cs[k] = Chunk(b"DATA", bytes(p))
    bad("data_gap", build_file(cs, dg), "FormatError", "raw DATA that leaves a gap")
    bad("missing_base", (dec / "with_base.relc").read_bytes(), "FormatError", "the base file is not given")
    bad("wrong_base", (dec / "with_base.relc").read_bytes(), "ChecksumError",
        "a base file with another SHA-256", base="../decode/base_codec_other.relc")  # fmt: skip
    _, cs, dg = parse_file((dec / "with_base_instances.relc").read_bytes())
    many = build_file(with_header(cs, {**header_of(cs), "instances": 2**40}), dg)
    bad("instances_overflow", many, "LimitError", "2^40 instances", base="../decode/base_codec.relc")
    other = io.BytesIO()
    F.write_base(other, lay, {"a": (0.0, 0.2), "b": (0.0, 0.3)})
    (dec / "base_codec_other.relc").write_bytes(other.getvalue())
    manifest["decode"].sort()
    manifest["reject"].sort()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "vectors" / "format")
    args = ap.parse_args()
    m = generate(args.out)
    print(f"{len(m['decode'])} decode and {len(m['reject'])} reject vectors in {args.out}")
    for name, why in m["skipped"].items():
        print(f"skipped method {name}: {why}")


if __name__ == "__main__":
    main()
