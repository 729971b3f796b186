"""relcode.format: round trips, layouts, the Writer, base files, determinism and atomic writes."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import relcode
from relcode import format as F


def posterior(rng: np.random.Generator, shape, scale=0.1):
    q_mean = rng.normal(0, scale, shape)
    return q_mean, np.full(shape, scale / 2), 0.0, scale


AVAILABLE = ["mrc", "orc", "pfr"]


@pytest.mark.parametrize("layout", ["kl", "fixed"])
@pytest.mark.parametrize("method", AVAILABLE)
def test_roundtrip_every_layout_and_method(tmp_path: Path, rng, layout: str, method: str) -> None:
    tensors = {
        "conv.weight": posterior(rng, (4, 3, 3)),
        "fc.bias": (rng.normal(0, 0.1, 7), 0.02, rng.normal(0, 0.01, 7), rng.uniform(0.05, 0.2, 7)),
        "scalar": (np.float64(0.1), 0.05, 0.0, 1.0),
        "empty": (np.zeros((0, 3)), np.ones((0, 3)), 0.0, 1.0),
        "running_mean": np.linspace(-1, 1, 5, dtype=np.float32),
        "steps": np.array(7, dtype=np.int64),
    }
    rep = relcode.encode(tmp_path / "m.relc", tensors, seed=3, method=method, bits_per_block=8, layout=layout)
    out = relcode.decode(tmp_path / "m.relc")
    assert sorted(out) == sorted(tensors)
    for name in ("conv.weight", "fc.bias", "scalar", "empty"):
        assert out[name].dtype == np.float32
        assert out[name].shape == np.shape(tensors[name][0])
        np.testing.assert_array_equal(out[name], rep.decoded[name])
    np.testing.assert_array_equal(out["running_mean"], tensors["running_mean"])
    assert out["steps"].dtype == np.int64 and out["steps"] == 7
    assert rep.bits == 8 * rep.blocks
    assert rep.bytes == (tmp_path / "m.relc").stat().st_size
    relcode.verify(tmp_path / "m.relc")


def test_sources_path_bytes_and_file_objects(tmp_path: Path, rng) -> None:
    buf = io.BytesIO()
    rep = relcode.encode(buf, {"w": posterior(rng, (10,))}, seed=0, bits_per_block=6)
    data = buf.getvalue()
    (tmp_path / "w.relc").write_bytes(data)
    for src in (
        data,
        bytearray(data),
        memoryview(data),
        io.BytesIO(data),
        tmp_path / "w.relc",
        str(tmp_path / "w.relc"),
    ):
        np.testing.assert_array_equal(relcode.decode(src)["w"], rep.decoded["w"])


def test_report_and_inspect(tmp_path: Path, rng) -> None:
    qm, qs, pm, ps = posterior(rng, (50,))
    rep = relcode.encode(
        tmp_path / "a.relc", {"w": (qm, qs, pm, ps)}, seed=1, metadata={"model": "x", "n": [1, 2]}
    )
    kl = np.sum(np.log(ps / qs) + (qs**2 + (qm - pm) ** 2) / (2 * ps**2) - 0.5) / np.log(2)
    assert rep.kl["w"] == pytest.approx(kl)
    info = relcode.inspect(tmp_path / "a.relc")
    assert info["version"] == "1.0" and info["seed"] == 1 and info["metadata"] == {"model": "x", "n": [1, 2]}
    assert info["tensors"][0]["name"] == "w" and info["tensors"][0]["shape"] == [50]
    assert info["blocks"] == rep.blocks and info["bits"] == rep.bits
    assert info["digests"] == [rep.sha256["w"]]
    assert info["groups"][0]["method"] == "pfr" and info["groups"][0]["options"] == {"bits": 16}
    assert [c["type"] for c in info["chunks"]] == ["HEAD", "LAYO", "MSGS"]


def test_deterministic_bytes_independent_of_dict_order_and_threads(rng) -> None:
    tensors = {f"t{i}": posterior(rng, (int(rng.integers(1, 40)),)) for i in range(6)}
    outs = set()
    for threads in (1, 2, None):
        keys = list(tensors)
        random.Random(threads or 0).shuffle(keys)
        buf = io.BytesIO()
        relcode.encode(buf, {k: tensors[k] for k in keys}, seed=9, bits_per_block=10, threads=threads)
        outs.add(buf.getvalue())
    assert len(outs) == 1
    data = outs.pop()
    a = relcode.decode(data, threads=1)
    b = relcode.decode(data, threads=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_multi_chunk_files_decode_group_by_group(rng) -> None:
    buf = io.BytesIO()
    rep = relcode.encode(
        buf, {"w": posterior(rng, (300,)), "v": posterior(rng, (50,))}, seed=2, chunk_size=64
    )
    assert rep.groups == 6
    f = F.open(buf.getvalue())
    for name in ("v", "w"):
        np.testing.assert_array_equal(f.tensor(name), rep.decoded[name])
    lay = f.layout
    assert len(lay.groups) == 6 and lay.num_blocks == rep.blocks
    assert lay.stream_id(lay.num_blocks - 1) >> 32 == 5


def test_layout_queries(rng) -> None:
    lay = F.Layout.fixed({"b": (5,), "a": (2, 3)}, block_size=4, seed=1)
    assert lay.names == ["a", "b"] and lay.num_blocks == 3
    members = sorted(m for b in range(lay.num_blocks) for m in lay.block(b))
    assert members == [("a", i) for i in range(6)] + [("b", i) for i in range(5)]
    arrays = {"a": np.zeros((2, 3)), "b": np.zeros(5)}
    for b in range(lay.num_blocks):
        lay.scatter(b, np.full(int(lay.block_sizes[b]), b + 1.0), arrays)
    for b in range(lay.num_blocks):
        assert np.all(lay.gather(b, arrays) == b + 1)
    assert lay.stream_id(2) == 2
    ex = F.Layout.explicit({"a": (3,)}, [[("a", 2), ("a", 0)], [("a", 1)]])
    assert ex.block(0) == [("a", 2), ("a", 0)]
    with pytest.raises(relcode.InputError):
        F.Layout.explicit({"a": (3,)}, [[("a", 2), ("a", 0)]])
    kl = F.Layout.kl({"a": np.full(10, 5.0)}, 16, max_block_size=25)
    assert kl.block_sizes.tolist() == [3, 3, 3, 1]


def test_writer_any_order_matches_decoder(rng) -> None:
    lay = F.Layout.kl({"w": rng.uniform(0, 3, (6, 5)), "b": rng.uniform(0, 3, 4)}, 12, seed=4)
    qm = {"w": rng.normal(0, 0.1, (6, 5)), "b": rng.normal(0, 0.1, 4)}
    buf = io.BytesIO()
    with F.Writer(buf, lay, seed=7, method="pfr", bits=12, metadata={"arch": "mlp"}) as w:
        w.set_prior("w", 0.0, 0.2)
        w.set_prior("b", np.zeros(4), np.full(4, 0.3))
        w.add_raw("scale", np.float32(2.0))
        coded = {"w": np.zeros((6, 5), np.float32), "b": np.zeros(4, np.float32)}
        for b in rng.permutation(lay.num_blocks):
            x = w.encode_block(b, lay.gather(b, qm), 0.05)
            lay.scatter(b, x, coded)
    out = relcode.decode(buf.getvalue())
    for k in coded:
        np.testing.assert_array_equal(out[k], coded[k])
    assert out["scale"] == np.float32(2.0)
    assert F.open(buf.getvalue()).metadata == {"arch": "mlp"}


def test_writer_refuses_incomplete_files_and_writes_nothing(tmp_path: Path) -> None:
    lay = F.Layout.fixed({"w": (4,)}, 2)
    dest = tmp_path / "x.relc"
    with pytest.raises(relcode.InputError, match="no message"), F.Writer(dest, lay, bits=4) as w:
        w.set_prior("w", 0.0, 1.0)
        w.add_block(0, 3)
        w.close()
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError), F.Writer(dest, lay, bits=4) as w:
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_leaves_no_file(tmp_path: Path) -> None:
    dest = tmp_path / "bad.relc"
    dest.write_bytes(b"old")
    with pytest.raises(relcode.InputError):
        relcode.encode(dest, {"w": (np.array([np.nan]), 1.0, 0.0, 1.0)}, seed=0)
    assert dest.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_written_files_get_the_mode_open_gives(tmp_path: Path, rng) -> None:
    # atomic writes go through a temporary file; the result must not stay owner-only (0o600)
    import os

    mask = os.umask(0o027)
    try:
        x = rng.normal(size=40).astype(np.float32)
        relcode.encode(tmp_path / "a.relc", {"x": (x, 0.5, 0.0, 1.0)}, seed=0, bits_per_block=8)
        with relcode.StreamEncoder(tmp_path / "b.relc", seed=0, bits_per_block=8, progress=False) as enc:
            enc.add("x", x, 0.5, prior_std=1.0)
        relcode.open_decoder(tmp_path / "a.relc").write(tmp_path / "c.safetensors")
    finally:
        os.umask(mask)
    for name in ("a.relc", "b.relc", "c.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name


def test_base_files_share_priors_and_layout(tmp_path: Path, rng) -> None:
    lay = F.Layout.kl({"a": rng.uniform(0, 2, (8, 9))}, 16, seed=3)
    sha = F.write_base(
        tmp_path / "codec.relc", lay, {"a": (rng.normal(0, 0.1, (8, 9)), rng.uniform(0.05, 0.2, (8, 9)))},
        metadata={"arch": "siren"}, raw={"freq": np.arange(4, dtype=np.float32)},
    )  # fmt: skip
    codec = F.open(tmp_path / "codec.relc")
    assert codec.sha256() == sha and codec.metadata == {"arch": "siren"}
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        with F.Writer(imgs / f"{i}.relc", base=codec, seed=i, bits=16, digest="all", metadata={"i": i}) as w:
            for b in range(lay.num_blocks):
                pm, ps = w.block_prior(b)
                w.encode_block(b, pm + 0.3 * ps, 0.5 * ps)
        with pytest.raises(relcode.FormatError, match="base"):
            relcode.decode(imgs / f"{i}.relc")
        out = relcode.decode(imgs / f"{i}.relc", base_dirs=[tmp_path])
        np.testing.assert_array_equal(out["a"], w.report.decoded["a"])
        np.testing.assert_array_equal(out["freq"], np.arange(4, dtype=np.float32))
        assert relcode.inspect(imgs / f"{i}.relc", base=codec)["metadata"] == {"i": i}
    other = F.write_base(tmp_path / "other.relc", lay, {"a": (0.0, 1.0)})
    assert other != sha
    with pytest.raises(relcode.ChecksumError):
        relcode.decode(imgs / "0.relc", base=tmp_path / "other.relc")


def test_docstring_examples() -> None:
    import doctest

    res = doctest.testmod(F, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 10 and res.failed == 0


def test_instances_share_one_base(tmp_path: Path, rng) -> None:
    lay = F.Layout.kl({"w": rng.uniform(0, 2, (4, 6)), "b": rng.uniform(0, 2, 3)}, 12, seed=1)
    F.write_base(
        tmp_path / "codec.relc", lay, {"w": (0.0, 0.2), "b": (0.0, 0.3)}, raw={"f": np.ones(2, np.float32)}
    )
    codec = F.open(tmp_path / "codec.relc")
    with pytest.raises(relcode.InputError):
        F.Writer(tmp_path / "x.relc", lay, instances=2)
    k = 4
    with F.Writer(tmp_path / "img.relc", base=codec, instances=k, seed=3, bits=10, digest="all") as w:
        ids = {w.stream_id(b, i) for i in range(k) for b in range(lay.num_blocks)}
        assert len(ids) == k * lay.num_blocks
        with pytest.raises(relcode.InputError, match="instance"):
            w.encode_block(0, 0.0, 0.1, instance=k)
        for i in reversed(range(k)):
            for b in range(lay.num_blocks):
                pm, ps = w.block_prior(b)
                w.encode_block(b, pm + 0.2 * i * ps, 0.4 * ps, instance=i)
    out = relcode.decode(tmp_path / "img.relc")  # the codec is found in the same directory
    assert out["w"].shape == (k, 4, 6) and out["b"].shape == (k, 3) and out["f"].shape == (2,)
    np.testing.assert_array_equal(out["w"], w.report.decoded["w"])
    assert not np.array_equal(out["w"][0], out["w"][1])
    f = F.open(tmp_path / "img.relc")
    assert f.instances == k and f.tensor("b").shape == (k, 3) and f.layout.num_blocks == lay.num_blocks
    # One MSGS chunk for all instances: the per-instance overhead is the messages alone.
    assert [c["type"] for c in f.info["chunks"]].count("MSGS") == len(lay.groups)


def test_encode_instances_matches_one_by_one(tmp_path: Path, rng) -> None:
    lay = F.Layout.fixed({"w": (12,)}, 4, seed=2)
    F.write_base(tmp_path / "c.relc", lay, {"w": (0.0, 0.3)})
    qm = rng.normal(0, 0.1, (3, 12))
    outs = []
    for batched in (True, False):
        buf = io.BytesIO()
        with F.Writer(buf, base=tmp_path / "c.relc", instances=3, seed=4, bits=8) as w:
            for b in range(lay.num_blocks):
                e = lay.block_elements(b)
                if batched:
                    w.encode_instances(b, qm[:, e], 0.05)
                else:
                    for i in range(3):
                        w.encode_block(b, qm[i, e], 0.05, instance=i)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]


@settings(max_examples=25, deadline=None)
@given(
    shapes=st.lists(st.lists(st.integers(0, 6), min_size=0, max_size=3), min_size=1, max_size=4),
    layout=st.sampled_from(["kl", "fixed"]),
    method=st.sampled_from(AVAILABLE),
    bits=st.integers(1, 12),
    chunk=st.integers(1, 50),
    seed=st.integers(0, 2**64 - 1),
)
def test_roundtrip_property(shapes, layout, method, bits, chunk, seed) -> None:
    r = np.random.default_rng(seed % 1000)
    tensors = {
        f"t{i}": (r.normal(0, 0.1, s), r.uniform(0.01, 0.1, s), 0.0, 0.2) for i, s in enumerate(shapes)
    }
    buf = io.BytesIO()
    rep = relcode.encode(buf, tensors, seed=seed, method=method, bits=bits, layout=layout, chunk_size=chunk)
    out = relcode.decode(buf.getvalue())
    for name, (qm, *_rest) in tensors.items():
        assert out[name].shape == qm.shape
        np.testing.assert_array_equal(out[name], rep.decoded[name])
    assert rep.bits == bits * rep.blocks


def test_torch_tensors_of_any_float_dtype_and_parameters_are_accepted(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    import relcode.channel as ch

    w = torch.nn.Parameter(torch.randn(6, 7, dtype=torch.bfloat16))  # requires_grad
    raw = torch.ones(3, dtype=torch.float16, requires_grad=True)
    rep = relcode.encode(tmp_path / "t.relc", {"w": (w, 0.05, 0.0, 0.2), "r": raw}, seed=0, bits_per_block=8)
    ref = relcode.encode(
        tmp_path / "n.relc",
        {"w": (w.detach().float().numpy(), 0.05, 0.0, 0.2), "r": raw.detach().numpy()},
        seed=0,
        bits_per_block=8,
    )
    assert rep.sha256 == ref.sha256  # bfloat16 upcast exactly; detached
    out = relcode.decode(tmp_path / "t.relc")
    assert out["r"].dtype == np.float16
    with relcode.StreamEncoder(tmp_path / "s.relc", seed=0, bits_per_block=8) as enc:
        enc.add("w", w, 0.05, prior_std=0.2)
        enc.add_raw("r", raw)
    assert enc.report.sha256 == ref.sha256
    code = ch.encode(w.reshape(-1, 7), torch.full((6, 7), 0.05), 0.0, torch.tensor(0.2), bits=6)
    assert code.sample.shape == (6, 7)
