"""relcode.format.StreamWriter: group-by-group writing gives the bytes of relcode.encode, and
an interrupted stream leaves nothing at the destination."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import relcode
from relcode import format as F


def test_stream_writer_matches_in_memory_encoder(tmp_path: Path, rng) -> None:
    w_prior = (rng.normal(0, 0.01, 300), rng.uniform(0.05, 0.2, 300))
    tensors = {
        "w": (rng.normal(0, 0.1, 300), 0.03, *w_prior),
        "b": (rng.normal(0, 0.1, 50), 0.03, 0.0, 0.1),
        "r": np.arange(7, dtype=np.int32),
    }
    buf = io.BytesIO()
    relcode.encode(buf, tensors, seed=5, chunk_size=64, bits_per_block=10)
    specs = {
        "w": {"shape": (300,), "prior": (None, None)},
        "b": {"shape": (50,), "prior": (0.0, 0.1)},
        "r": {"shape": (7,), "dtype": "int32"},
    }
    qm = np.concatenate([tensors["b"][0], tensors["w"][0]])  # coded vector: b then w
    dest = tmp_path / "s.relc"
    with F.StreamWriter(dest, specs, seed=5, chunk_size=64) as sw:
        sw.write_raw("r", tensors["r"])
        assert len(sw.groups) == 6
        for g, (s, c) in enumerate(sw.groups):
            lo, hi = max(s - 50, 0), max(s + c - 50, 0)
            pm, ps = sw.group_prior(g, {"w": (w_prior[0][lo:hi], w_prior[1][lo:hi])})
            # Encode the group "elsewhere", then write it.
            out = F.encode_group_payloads(g, 5, s, qm[s : s + c], 0.03, pm, ps, bits_per_block=10)
            sw.write_group(g, *out[:3], p_mean=pm, p_std=ps)
    assert dest.read_bytes() == buf.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["s.relc"]


def test_interrupted_stream_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "x.relc"
    with (
        pytest.raises(KeyboardInterrupt),
        F.StreamWriter(dest, {"w": {"shape": (10,), "prior": (0.0, 1.0)}}, seed=1) as sw,
    ):
        sw.encode_group(0, np.zeros(10), 0.5, 0.0, 1.0, bits_per_block=8)
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    sw = F.StreamWriter(dest, {"w": {"shape": (10,), "prior": (0.0, 1.0)}}, seed=1)
    with pytest.raises(relcode.InputError, match="not written"):
        sw.close()
    assert list(tmp_path.iterdir()) == []


def test_stream_writer_refuses_bad_groups(tmp_path: Path) -> None:
    with F.StreamWriter(
        tmp_path / "y.relc", {"w": {"shape": (20,), "prior": (0.0, 1.0)}}, seed=1, chunk_size=10
    ) as sw:
        with pytest.raises(relcode.InputError, match="group 0 next"):
            sw.encode_group(1, np.zeros(10), 0.5, 0.0, 1.0)
        with pytest.raises(relcode.InputError, match="finite"):
            sw.encode_group(0, np.full(10, np.nan), 0.5, 0.0, 1.0)
        sw.abort()
    assert list(tmp_path.iterdir()) == []
