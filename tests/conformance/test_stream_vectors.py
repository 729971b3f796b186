"""spec/vectors/stream: the native module and the numpy reference both reproduce every vector."""

from __future__ import annotations

import json

import numpy as np
import pytest

import relcode
from relcode import reference as R

from ..conftest import SPEC

VEC = SPEC / "vectors" / "stream"


def load(name: str) -> list[dict]:
    data = json.loads((VEC / name).read_text())
    assert data["stream_version"] == relcode.stream.STREAM_VERSION
    return data["cases"]


def words(xs: list[str]) -> np.ndarray:
    return np.array([int(x, 16) for x in xs], dtype=np.uint32)


def bits64(xs: list[str]) -> np.ndarray:
    return np.array([int(x, 16) for x in xs], dtype=np.uint64)


@pytest.mark.parametrize("impl", ["native", "reference"])
def test_philox(impl: str) -> None:
    f = relcode.stream.philox4x32_10 if impl == "native" else R.philox4x32_10
    for case in load("philox.json"):
        out = f(words(case["counter"]).reshape(1, 4), words(case["key"]))
        np.testing.assert_array_equal(out[0], words(case["output"]))


@pytest.mark.parametrize("impl", ["native", "reference"])
def test_keys(impl: str) -> None:
    for case in load("keys.json"):
        seed = int(case["seed"])
        if impl == "native":
            got = relcode.stream.derive_key(seed, case["purpose"])
        else:
            got = R.derive_key(seed, relcode.stream.PURPOSES[case["purpose"]])
        np.testing.assert_array_equal(got, words(case["key"]))


@pytest.mark.parametrize("backend", ["reference", *relcode.stream.backends(), "auto"])
def test_normals(backend: str) -> None:
    for case in load("normals.json"):
        want = words(case["bits"])
        args = (int(case["seed"]), int(case["stream"]), int(case["start"]), want.size)
        if backend == "reference":
            got = R.normals(*args)
        else:
            got = relcode.stream.normals(*args, backend=backend)
        np.testing.assert_array_equal(got.view(np.uint32), want)


@pytest.mark.parametrize("impl", ["native", "reference"])
def test_uniforms(impl: str) -> None:
    for case in load("uniforms.json"):
        want = bits64(case["bits"])
        seed, stream, start = int(case["seed"]), int(case["stream"]), int(case["start"])
        if impl == "native":
            got = relcode.stream.uniforms(seed, case["purpose"], stream, start, want.size)
        else:
            got = R.uniforms(seed, relcode.stream.PURPOSES[case["purpose"]], stream, start, want.size)
        np.testing.assert_array_equal(got.view(np.uint64), want)


@pytest.mark.parametrize("impl", ["native", "reference"])
def test_ndtri(impl: str) -> None:
    cases = load("ndtri.json")
    p = bits64([c["p"] for c in cases]).view(np.float64)
    want = bits64([c["x"] for c in cases])
    got = relcode.stream.ndtri(p) if impl == "native" else R.ndtri(p)
    np.testing.assert_array_equal(got.view(np.uint64), want)


def test_candidates() -> None:
    """Candidate k's normal j sits at the group-interleaved position of spec/stream.md section 5
    (spec/channel.md section 2); the vector is what the decoder of a real message returns."""
    for case in load("candidates.json"):
        pm = words(case["prior_mean"]).view(np.float32)
        ps = words(case["prior_std"]).view(np.float32)
        seed, stream, index = int(case["seed"]), int(case["stream"]), int(case["index"])
        d = pm.size
        want = words(case["bits"])
        ref = R.candidate(seed, stream, index, pm, ps)
        pos = [(index // 16) * 16 * d + 16 * j + index % 16 for j in range(d)]
        z = np.array([relcode.stream.normals(seed, stream, p, 1)[0] for p in pos], dtype=np.float32)
        native = ps * z + pm
        # exact pfr's message n names candidate n - 1: the channel decoder itself
        decoded = relcode.channel.decode(
            np.array([index + 1], dtype=np.uint64), pm[None], ps[None], method="pfr", seed=seed,
            ids=np.array([stream], dtype=np.uint64),
        )[0]  # fmt: skip
        np.testing.assert_array_equal(ref.view(np.uint32), want)
        np.testing.assert_array_equal(native.view(np.uint32), want)
        np.testing.assert_array_equal(decoded.view(np.uint32), want)
        if index < 2**32:  # mrc's fixed(C) index names candidate k itself
            bits = max(1, index.bit_length())
            mrc = relcode.channel.decode(
                np.array([index], dtype=np.uint64), pm[None], ps[None], method="mrc", bits=bits, seed=seed,
                ids=np.array([stream], dtype=np.uint64),
            )[0]  # fmt: skip
            np.testing.assert_array_equal(mrc.view(np.uint32), want)
