"""spec/format.md section 13.1: a file with two errors is refused with the error of the check
that comes first in the order of checks."""

from __future__ import annotations

import importlib.util
import struct

import pytest

import relcode

from ..conftest import SPEC

_spec = importlib.util.spec_from_file_location("gen_format_vectors", SPEC / "tools" / "gen_format_vectors.py")
G = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(G)

GOOD = (SPEC / "vectors" / "format" / "decode" / "method_pfr.relc").read_bytes()


def parts() -> tuple[tuple[int, int], list, list]:
    return G.parse_file(GOOD)


def msgs_index(chunks: list) -> int:
    return next(i for i, c in enumerate(chunks) if c.kind == b"MSGS")


def with_msgs(chunks: list, payload: bytes, crc: int | None = None) -> list:
    out = list(chunks)
    out[msgs_index(out)] = G.Chunk(b"MSGS", payload, crc=crc)
    return out


def refused(data: bytes) -> str:
    with pytest.raises(relcode.FormatError) as info:
        relcode.verify(data)
    return type(info.value).__name__


def test_major_version_before_reserved_preamble_bytes() -> None:
    _, chunks, digests = parts()
    assert refused(G.build_file(chunks, digests, version=(2, 0), preamble_reserved=1)) == "VersionError"


def test_frame_length_before_header_limit() -> None:
    # step 4 (the HEAD frame runs past the file) before step 5 (the header limit)
    b = bytearray(GOOD)
    b[16 + 8 : 16 + 12] = struct.pack("<I", 2**32 - 1)
    assert refused(bytes(b)) == "FormatError"


def test_unknown_required_chunk_before_crc() -> None:
    version, chunks, digests = parts()
    chunks = with_msgs(chunks, chunks[msgs_index(chunks)].payload, crc=0)  # a wrong CRC
    chunks.insert(1, G.Chunk(b"ZZZZ", b"future"))
    assert refused(G.build_file(chunks, digests, version=version)) == "VersionError"


def test_header_versions_before_other_chunks_crc() -> None:
    version, chunks, digests = parts()
    header = G.header_of(chunks)
    chunks = G.with_header(
        with_msgs(chunks, chunks[msgs_index(chunks)].payload, crc=0), {**header, "stream": 2}
    )
    assert refused(G.build_file(chunks, digests, version=version)) == "VersionError"


def test_crc_before_message_errors() -> None:
    version, chunks, digests = parts()
    p = bytearray(chunks[msgs_index(chunks)].payload)
    p[4] = 200  # an unknown method id, and the CRC no longer matches
    crc = G.crc32c(b"MSGS" + struct.pack("<HHI", 0, 0, len(p)) + bytes(chunks[msgs_index(chunks)].payload))
    assert (
        refused(G.build_file(with_msgs(chunks, bytes(p), crc=crc), digests, version=version))
        == "ChecksumError"
    )


def test_reserved_byte_before_method_id() -> None:
    version, chunks, digests = parts()
    p = bytearray(chunks[msgs_index(chunks)].payload)
    p[4], p[5] = 200, 1
    assert refused(G.build_file(with_msgs(chunks, bytes(p)), digests, version=version)) == "FormatError"


def test_method_id_before_options() -> None:
    version, chunks, digests = parts()
    p = chunks[msgs_index(chunks)].payload
    m = struct.unpack("<H", p[6:8])[0]
    opts = G.mp_pack({"future": 1, "split": 3})  # an unknown key, and a known key out of place
    p = p[:4] + bytes([200]) + p[5:6] + struct.pack("<H", len(opts)) + opts + p[8 + m :]
    assert refused(G.build_file(with_msgs(chunks, p), digests, version=version)) == "VersionError"


def test_unknown_option_before_inapplicable_option() -> None:
    version, chunks, digests = parts()
    p = chunks[msgs_index(chunks)].payload
    m = struct.unpack("<H", p[6:8])[0]
    opts = G.mp_pack({**G.mp_unpack(p[8 : 8 + m]), "depth": 3, "future": 1})
    p = p[:6] + struct.pack("<H", len(opts)) + opts + p[8 + m :]
    assert refused(G.build_file(with_msgs(chunks, p), digests, version=version)) == "VersionError"


def test_message_errors_before_digests() -> None:
    version, chunks, digests = parts()
    p = chunks[msgs_index(chunks)].payload
    m = struct.unpack("<H", p[6:8])[0]
    opts = G.mp_pack({**G.mp_unpack(p[8 : 8 + m]), "depth": 3})  # does not apply to pfr
    p = p[:6] + struct.pack("<H", len(opts)) + opts + p[8 + m :]
    wrong = [bytes(32)] * len(digests)
    assert refused(G.build_file(with_msgs(chunks, p), wrong, version=version)) == "FormatError"
    assert refused(G.build_file(chunks, wrong, version=version)) == "ChecksumError"
