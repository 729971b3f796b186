"""Hostile input: mutated files (bit flips, truncations, insertions, length-field overwrites,
with and without recomputed CRCs) decode to their recorded SHA-256 or raise a FormatError
subclass; never a crash, a hang or an allocation the file does not justify."""

from __future__ import annotations

import importlib.util
import io
import resource
import struct
import time

import numpy as np
import pytest

import relcode

from ..conftest import SPEC

_spec = importlib.util.spec_from_file_location("gen_format_vectors", SPEC / "tools" / "gen_format_vectors.py")
G = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(G)

ALLOWED = (relcode.FormatError,)  # VersionError, ChecksumError and LimitError are FormatErrors


def sample(rng: np.random.Generator, exact: bool = False) -> bytes:
    buf = io.BytesIO()
    relcode.encode(
        buf,
        {
            "w": (
                rng.normal(0, 0.05, (6, 7)),
                0.03,
                rng.normal(0, 0.01, (6, 7)),
                rng.uniform(0.08, 0.1, (6, 7)),
            ),
            "b": (rng.normal(0, 0.05, 5), 0.03, 0.0, 0.1),
            "r": np.arange(4, dtype=np.int16),
        },
        seed=int(rng.integers(1000)),
        chunk_size=16,
        bits_per_block=8,
        **({"bits": None} if exact else {}),
        metadata={"k": [1, 2]},
    )
    return buf.getvalue()


def instanced(rng: np.random.Generator) -> tuple[bytes, bytes]:
    """A base file and a file with three instances that uses it."""
    lay = relcode.format.Layout.kl({"w": rng.uniform(0, 3, (4, 5))}, 10, seed=2)
    base = io.BytesIO()
    relcode.format.write_base(base, lay, {"w": (0.0, 0.2)}, raw={"f": np.ones(2, np.float32)})
    buf = io.BytesIO()
    with relcode.format.Writer(buf, base=base.getvalue(), instances=3, bits=8, digest="all") as w:
        for i in range(3):
            for b in range(lay.num_blocks):
                w.encode_block(b, 0.05 * i, 0.1, instance=i)
    return buf.getvalue(), base.getvalue()


def fix_crcs(b: bytearray) -> None:
    at = 16
    while at + 16 <= len(b):
        n = struct.unpack("<I", b[at + 8 : at + 12])[0]
        end = at + 16 + n
        if end > len(b):
            return
        b[at + 12 : at + 16] = struct.pack("<I", G.crc32c(bytes(b[at : at + 12] + b[at + 16 : end])))
        at = end


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(5))
        i = int(rng.integers(len(b))) if b else 0
        if kind == 0 and b:
            b[i] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            del b[i:]
        elif kind == 2:
            b[i:i] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        elif kind == 3 and len(b) >= 4:
            vals = [0, 1, 0xFFFFFFFF, 0x80000000, int(rng.integers(2**32))]
            v = vals[int(rng.integers(len(vals)))]
            j = min(i, len(b) - 4)
            b[j : j + 4] = struct.pack("<I", v)
        elif kind == 4 and len(b) >= 8:
            vals = [0, 2**64 - 1, 10**12, 2**40]
            v = vals[int(rng.integers(len(vals)))]
            j = min(i, len(b) - 8)
            b[j : j + 8] = struct.pack("<Q", v)
    if rng.random() < 0.5:
        fix_crcs(b)
    return bytes(b)


def check(data: bytes, original: dict[str, np.ndarray], base: bytes | None = None) -> str:
    try:
        out = relcode.decode(data, base=base)
    except ALLOWED as e:
        return type(e).__name__
    # Decoded with verified digests: a mutation never changes both values and digests.
    assert sorted(out.values(), key=lambda a: a.size).__len__() == len(original)
    for a, b in zip(sorted(out.values(), key=lambda a: (a.size, a.dtype.name)),
                    sorted(original.values(), key=lambda a: (a.size, a.dtype.name))):  # fmt: skip
        assert np.array_equal(a, b)
    return "decoded"


def run(n: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    inst, base = instanced(rng)
    files = [sample(rng), sample(rng, exact=True), inst]
    bases = [None, None, base]
    methods = relcode.channel.methods()
    for m, opts in (("as_star", {}), ("dad_star", {"depth": 12}), ("astar", {})):
        if m not in methods:
            continue
        buf = io.BytesIO()
        try:
            relcode.encode(buf, {"w": (rng.normal(0, 0.05, 20), 0.03, 0.0, 0.1)}, seed=3, method=m,
                           layout="fixed", block_size=1, **opts)  # fmt: skip
        except relcode.RelcodeError as e:  # not in this build
            assert "not available" in str(e)
            continue
        files.append(buf.getvalue())
        bases.append(None)
    originals = [relcode.decode(f, base=b) for f, b in zip(files, bases)]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    for k in range(n):
        f = k % len(files)
        outcome = check(mutate(files[f], rng), originals[f], bases[f])
        counts[outcome] = counts.get(outcome, 0) + 1
    assert time.perf_counter() - t0 < 0.05 * n + 5, "a mutated file took too long"
    # ru_maxrss is in KiB on Linux: mutated 1 kB files never make the process grow by 100 MB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 100 * 1024
    return counts


def test_random_mutations() -> None:
    counts = run(400, 1)
    assert sum(counts.values()) == 400
    assert {"ChecksumError", "FormatError"} <= set(counts), counts


@pytest.mark.slow
def test_random_mutations_long() -> None:
    for seed in range(10):
        run(5000, 100 + seed)


def test_every_single_bit_flip(rng) -> None:
    data = sample(rng)
    original = relcode.decode(data)
    for i in range(len(data)):
        for fix in (False, True):
            b = bytearray(data)
            b[i] ^= 1 << (i % 8)
            if fix:
                fix_crcs(b)
            check(bytes(b), original)


def test_huge_claims_fail_fast(rng) -> None:
    _, chunks, digests = G.parse_file(sample(rng))
    h = G.header_of(chunks)
    for shape in ([10**12], [10**6, 10**6], [2**63, 2**63], [2**32] * 3):
        t = dict(h["tensors"][0], shape=shape)
        data = G.build_file(G.with_header(chunks, {**h, "tensors": [t, *h["tensors"][1:]]}), digests)
        t0 = time.perf_counter()
        with pytest.raises(relcode.LimitError):
            relcode.decode(data)
        assert time.perf_counter() - t0 < 0.5


def test_unknown_chunks_optional_or_required(rng) -> None:
    data = sample(rng)
    _, chunks, digests = G.parse_file(data)
    optional = G.build_file([chunks[0], G.Chunk(b"NEW1", b"x" * 10, flags=1), *chunks[1:]], digests)
    assert all(
        np.array_equal(a, b) for a, b in zip(relcode.decode(optional).values(), relcode.decode(data).values())
    )
    required = G.build_file([chunks[0], G.Chunk(b"NEW1", b"x" * 10), *chunks[1:]], digests)
    with pytest.raises(relcode.VersionError):
        relcode.decode(required)
    bad_type = G.build_file([chunks[0], G.Chunk(b"ne w", b"", flags=1), *chunks[1:]], digests)
    with pytest.raises(relcode.FormatError):
        relcode.decode(bad_type)


def test_errors_are_value_errors(rng) -> None:
    with pytest.raises(ValueError):
        relcode.decode(b"not a relcode file at all, just some bytes")
    with pytest.raises(relcode.FormatError):
        relcode.verify(sample(rng)[:-3])
    with pytest.raises(relcode.FormatError):
        relcode.inspect(b"")
