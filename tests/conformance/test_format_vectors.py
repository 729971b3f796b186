"""spec/vectors/format: every decode vector decodes to its recorded SHA-256 and values, every
reject vector is refused with its recorded error class."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import relcode

from ..conftest import SPEC

VEC = SPEC / "vectors" / "format"
DECODE = sorted(p.stem for p in (VEC / "decode").glob("*.json"))
REJECT = sorted(p.stem for p in (VEC / "reject").glob("*.json"))


def test_manifest_lists_every_vector() -> None:
    m = json.loads((VEC / "manifest.json").read_text())
    assert m["decode"] == DECODE and m["reject"] == REJECT
    assert tuple(m["format_version"]) == relcode.format.FORMAT_VERSION
    methods = set(relcode.channel.methods())
    covered = {name for name in methods if f"method_{name}" in DECODE}
    assert covered | (set(m["skipped"]) & methods) == methods
    assert not covered & set(m["skipped"])


def base_of(folder: Path, side: dict) -> Path | None:
    return (folder / side["base"]).resolve() if "base" in side else None


@pytest.mark.parametrize("name", DECODE)
def test_decode_vector(name: str) -> None:
    side = json.loads((VEC / "decode" / f"{name}.json").read_text())
    path = VEC / "decode" / f"{name}.relc"
    for source in (path, path.read_bytes()):
        out = relcode.decode(source, base=base_of(VEC / "decode", side))
        assert sorted(out) == sorted(side["tensors"])
        for t, want in side["tensors"].items():
            a = out[t]
            assert list(a.shape) == want["shape"] and a.dtype.name == want["dtype"]
            assert hashlib.sha256(a.astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest() == want["sha256"]
            if want["first_bits"] is not None:
                got = [f"{int(x):08x}" for x in a.reshape(-1)[:4].view(np.uint32)]
                assert got == want["first_bits"]
    relcode.verify(path, base=base_of(VEC / "decode", side))


@pytest.mark.parametrize("name", REJECT)
def test_reject_vector(name: str) -> None:
    side = json.loads((VEC / "reject" / f"{name}.json").read_text())
    cls = getattr(relcode.errors, side["error"])
    data = (VEC / "reject" / f"{name}.relc").read_bytes()
    with pytest.raises(cls) as info:
        relcode.verify(data, base=base_of(VEC / "reject", side))
    assert type(info.value).__name__ == side["error"], info.value
