"""SIMD dispatch: a backend this CPU lacks is refused with relcode.InputError by every entry
point, never run; every backend it has gives the scalar bits. (The refusals are tested on any
CPU by the Rust unit tests of stream::dispatch, which mask the detected features.)"""

from __future__ import annotations

import io

import numpy as np
import pytest

import relcode
from relcode import channel, stream

SIMD = ("avx2", "avx512")
HAVE = stream.backends()


def u32(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32)


def problems(rng: np.random.Generator, n: int = 12, d: int = 5) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(0, 0.6, (n, d)), rng.uniform(0.4, 0.9, (n, d))


def test_backends_are_known_and_include_scalar() -> None:
    assert HAVE[0] == "scalar"
    assert set(HAVE) <= {"scalar", *SIMD}


@pytest.mark.parametrize("backend", SIMD)
def test_a_backend_the_cpu_lacks_is_refused(backend: str, rng: np.random.Generator) -> None:
    if backend in HAVE:
        pytest.skip(f"this CPU runs {backend}")
    with pytest.raises(relcode.InputError, match=f'backend "{backend}" needs the CPU features'):
        stream.normals(1, 2, 0, 100, backend=backend)
    qm, qs = problems(rng)
    for method, opts in (("mrc", {"bits": 8}), ("orc", {"bits": 8, "pool": True}), ("pfr", {})):
        with pytest.raises(relcode.InputError, match=backend):
            channel.encode(qm[:, :1], qs[:, :1], 0.0, 1.0, method=method, backend=backend, **opts)
    code = channel.encode(qm, qs, 0.0, 1.0, method="mrc", bits=8)
    with pytest.raises(relcode.InputError, match=backend):
        channel.decode(code.message, 0.0, 1.0, method="mrc", dim=qm.shape[1], bits=8, backend=backend)
    with pytest.raises(relcode.InputError, match=backend):
        tensors = {"w": (qm, 0.05, 0.0, 1.0)}
        relcode.encode(io.BytesIO(), tensors, seed=1, method="mrc", bits=8, backend=backend)


@pytest.mark.parametrize("backend", [*HAVE, "auto"])
def test_every_backend_the_cpu_runs_gives_the_scalar_bits(backend: str, rng: np.random.Generator) -> None:
    want = stream.normals(3, 4, 17, 5000, backend="scalar", threads=1)
    np.testing.assert_array_equal(u32(stream.normals(3, 4, 17, 5000, backend=backend, threads=2)), u32(want))
    qm, qs = problems(rng)
    for method, opts in (("mrc", {"bits": 10}), ("orc", {"bits": 9, "pool": True}), ("pfr", {"bits": 10})):
        ref = channel.encode(qm, qs, 0.0, 1.0, method=method, seed=7, backend="scalar", **opts)
        got = channel.encode(qm, qs, 0.0, 1.0, method=method, seed=7, backend=backend, **opts)
        np.testing.assert_array_equal(got.message, ref.message)
        np.testing.assert_array_equal(u32(got.sample), u32(ref.sample))
        d = qm.shape[1]
        dec = channel.decode(got.message, 0.0, 1.0, method=method, seed=7, dim=d, backend=backend, **opts)
        np.testing.assert_array_equal(u32(dec), u32(ref.sample))
