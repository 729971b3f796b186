"""Compact signal files (spec/signal.md): every decode vector decodes to its recorded SHA-256,
also through the pure-numpy reference of the candidates; every reject vector raises its error."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import relcode
from relcode import reference
from relcode.inr import files
from relcode.inr.codec import PACKAGE_CODECS, load_codec

from ..conftest import SPEC

DIR = SPEC / "vectors" / "signal"
MANIFEST = json.loads((DIR / "manifest.json").read_text())
CODEC = load_codec(PACKAGE_CODECS / MANIFEST["codec"])


def test_the_vectors_use_the_shipped_codec() -> None:
    assert CODEC.sha256 == MANIFEST["codec_sha256"]


@pytest.mark.parametrize("case", MANIFEST["decode"], ids=lambda c: c["file"])
def test_decode_vectors(case) -> None:
    data = (DIR / case["file"]).read_bytes()
    assert len(data) == case["bytes"]
    sf = files.read_signal(data)  # the codec is found by its id among the shipped ones
    assert sf.shape == tuple(case["shape"]) and sf.blocks == case["blocks"]
    w = sf.weights.reshape(-1)
    assert hashlib.sha256(w.astype("<f4").tobytes()).hexdigest() == case["decoded_sha256"]
    head = files.parse_compact(data, CODEC.arch.dim_in)
    assert head["seed"] == case["seed"] and head["scale"] == case["scale"]
    assert head["messages_at"] + 2 * case["blocks"] + 4 == len(data)  # 16-bit messages
    # the reference: a truncated-pfr index is its candidate, mean + std * z from the streams
    assert CODEC.method == "pfr" and not CODEC.pool
    base = files.signal_base(CODEC, sf.weights.shape[0], head["scale"])
    at = head["messages_at"]
    for b in range(0, base.num_blocks, max(1, base.num_blocks // 12)):
        index = int.from_bytes(data[at + 2 * b : at + 2 * b + 2], "big")
        mem = base.blocks.block(b)
        want = reference.candidate(
            head["seed"], int(base.blocks.ids[b]), index, base.p_mean[mem], base.p_std[mem]
        )
        np.testing.assert_array_equal(w[mem].view(np.uint32), want.astype(np.float32).view(np.uint32))


@pytest.mark.parametrize("case", MANIFEST["reject"], ids=lambda c: c["file"])
def test_reject_vectors(case) -> None:
    data = (DIR / case["file"]).read_bytes()
    with pytest.raises(getattr(relcode.errors, case["error"])) as info:
        files.read_signal(data)
    assert type(info.value).__name__ == case["error"]
