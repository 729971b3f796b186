"""relcode.StreamEncoder and relcode.open_decoder: the bytes and values of the in-memory API,
bounded work in flight, posterior files, bad input refused before any output, interrupted
encodes that leave nothing behind, and every conformance vector decoded lazily."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import relcode
from relcode import format as F
from relcode import streaming

from ..conftest import SPEC


def posterior(rng: np.random.Generator) -> dict:
    """Tensors in the in-memory API's form: coded ones span several groups of 64 and share
    groups; per-element and per-layer priors; raw tensors of several dtypes, empty and 0-d."""
    return {
        "w": (rng.normal(0, 0.1, (30, 10)), rng.uniform(0.02, 0.06, (30, 10)), 0.0, 0.1),
        "v": (
            rng.normal(0, 0.1, 77).astype(np.float32),
            0.03,
            rng.normal(0, 0.01, 77).astype(np.float32),
            rng.uniform(0.05, 0.2, 77).astype(np.float32),
        ),
        "b": (rng.normal(0, 0.1, 5), rng.uniform(0.02, 0.06, 5), 0.01, 0.2),
        "s": (np.float64(0.3), 0.1, 0.0, 1.0),
        "z": (np.zeros((0, 4)), 0.1, 0.0, 1.0),
        "bn.mean": np.arange(6, dtype=np.float64),
        "steps": np.array(12, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((2, 0), dtype=np.float16),
    }


def stream_encode(dest: Path, tensors: dict, **kw) -> F.Report:
    with relcode.StreamEncoder(dest, progress=False, **kw) as enc:
        for n, v in tensors.items():
            if isinstance(v, tuple):
                enc.add(n, v[0], v[1], prior_mean=v[2], prior_std=v[3])
            else:
                enc.add_raw(n, v)
    assert enc.report is not None
    return enc.report


CONFIGS = [
    {},
    {"digest": "all", "workers": 1},
    {"layout": "fixed", "block_size": 5, "bits_per_block": 6},
    {"method": "pfr", "bits": None, "bits_per_block": 4},
    {"method": "mrc", "pool": True, "bits_per_block": 7},
]


@pytest.mark.parametrize(
    "cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default"
)
def test_stream_encoder_bytes_equal_in_memory_encoder(tmp_path: Path, rng, cfg: dict) -> None:
    tensors = posterior(rng)
    kw = {"seed": 9, "chunk_size": 64, "bits_per_block": 10, **cfg}
    kw.pop("workers", None)
    buf = io.BytesIO()
    ref = relcode.encode(buf, tensors, **kw)
    rep = stream_encode(tmp_path / "s.relc", tensors, **kw, workers=cfg.get("workers", 3))
    assert (tmp_path / "s.relc").read_bytes() == buf.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["s.relc"]  # no temporaries left
    assert (rep.bits, rep.blocks, rep.groups, rep.bytes) == (ref.bits, ref.blocks, ref.groups, ref.bytes)
    assert rep.file_sha256 == ref.file_sha256
    # With one digest for the file, the in-memory report hashes the coded tensors only.
    assert (
        rep.sha256 == ref.sha256 if cfg.get("digest") != "all" else ref.sha256.items() <= rep.sha256.items()
    )
    assert sorted(rep.sha256) == sorted(tensors)
    assert rep.kl.keys() == ref.kl.keys()
    for n in rep.kl:
        assert rep.kl[n] == pytest.approx(ref.kl[n], rel=1e-9, abs=1e-9)


def test_bytes_do_not_depend_on_workers_threads_or_add_order(tmp_path: Path, rng) -> None:
    tensors = posterior(rng)
    outs = []
    for i, (workers, threads) in enumerate([(1, 1), (4, None), (2, 2)]):
        items = list(tensors.items())[:: 1 if i % 2 == 0 else -1]
        stream_encode(
            tmp_path / f"{i}.relc", dict(items), seed=3, chunk_size=50, workers=workers, threads=threads
        )
        outs.append((tmp_path / f"{i}.relc").read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_memory_mapped_inputs(tmp_path: Path, rng) -> None:
    qm = rng.normal(0, 0.1, (40, 25)).astype(np.float32)
    np.save(tmp_path / "qm.npy", qm)
    mm = np.load(tmp_path / "qm.npy", mmap_mode="r")
    buf = io.BytesIO()
    relcode.encode(buf, {"w": (qm, 0.05, 0.0, 0.1)}, seed=1, chunk_size=128, bits_per_block=8)
    stream_encode(tmp_path / "m.relc", {"w": (mm, 0.05, 0.0, 0.1)}, seed=1, chunk_size=128, bits_per_block=8)
    assert (tmp_path / "m.relc").read_bytes() == buf.getvalue()


def test_work_in_flight_is_bounded(tmp_path: Path, rng, monkeypatch) -> None:
    """At most workers + 1 groups are submitted and not yet written, whatever the file size:
    the encoder's memory is a few groups plus a constant."""
    written: list[int] = []
    started: list[tuple[int, int]] = []
    real_chunk, real_write = streaming.encode_chunk, F.StreamWriter.write_group

    def chunk(spec):
        started.append((spec.g, len(written)))
        return real_chunk(spec)

    def write_group(self, g, *a, **k):
        written.append(g)
        return real_write(self, g, *a, **k)

    monkeypatch.setattr(streaming, "encode_chunk", chunk)
    monkeypatch.setattr(F.StreamWriter, "write_group", write_group)
    n = 40 * 25
    stream_encode(
        tmp_path / "b.relc", {"w": (rng.normal(0, 0.1, n), 0.05, 0.0, 0.1)}, seed=1, chunk_size=25, workers=2
    )
    assert written == list(range(40))
    assert max(g - w for g, w in started) <= 3


def write_posterior(path: Path, rng, *, dtype=np.float32) -> dict:
    """A posterior file and the same tensors in the in-memory API's form."""
    w_m, w_s = rng.normal(0, 0.1, (12, 9)).astype(dtype), rng.uniform(0.02, 0.06, (12, 9)).astype(dtype)
    b_m = rng.normal(0, 0.1, 9).astype(np.float16)
    b_ps = rng.uniform(0.05, 0.2, 9).astype(np.float32)
    st = {
        "layer.weight.mean": w_m,
        "layer.weight.std": w_s,
        "layer.weight.prior_std": np.array([0.1], dtype=np.float32),  # per layer
        "layer.bias.mean": b_m,
        "layer.bias.std": np.array(0.04, dtype=np.float32),  # one posterior std for the tensor
        "layer.bias.prior_std": b_ps,  # per element
        "layer.bias.prior_mean": np.full(9, 0.01, dtype=np.float32),
        "head.mean": rng.normal(0, 0.1, (3, 4)).astype(np.float64),
        "head.std": rng.uniform(0.02, 0.06, (3, 4)),
        "bn.running_var": np.ones(4, dtype=np.float32),
        "bn.count": np.array(3, dtype=np.int64),
    }
    save_file(st, str(path), metadata={"arch": "tiny"})
    return {
        "layer.weight": (w_m, w_s, 0.0, 0.1),
        "layer.bias": (b_m, 0.04, np.full(9, 0.01, np.float32), b_ps),
        "head": (st["head.mean"], st["head.std"], 0.0, 0.25),
        "bn.running_var": st["bn.running_var"],
        "bn.count": st["bn.count"],
    }


def test_posterior_file_bytes_equal_in_memory_encoder(tmp_path: Path, rng) -> None:
    tensors = write_posterior(tmp_path / "post.safetensors", rng)
    buf = io.BytesIO()
    relcode.encode(buf, tensors, seed=4, chunk_size=32, bits_per_block=9, metadata={"arch": "tiny"})
    with relcode.StreamEncoder(
        tmp_path / "p.relc",
        seed=4,
        chunk_size=32,
        bits_per_block=9,
        metadata={"arch": "tiny"},
        progress=False,
    ) as enc:
        names = enc.add_safetensors(tmp_path / "post.safetensors", prior_std=0.25)
    assert names == ["head", "layer.bias", "layer.weight", "bn.count", "bn.running_var"]
    assert (tmp_path / "p.relc").read_bytes() == buf.getvalue()
    post = streaming.read_posterior(tmp_path / "post.safetensors", prior_std=0.25)
    assert post.metadata == {"arch": "tiny"}


def test_bfloat16_posterior(tmp_path: Path, rng) -> None:
    import torch
    from safetensors.torch import save_file as save_torch

    m = torch.tensor(rng.normal(0, 0.1, 50), dtype=torch.bfloat16)
    s = torch.tensor(rng.uniform(0.02, 0.06, 50), dtype=torch.bfloat16)
    save_torch({"w.mean": m, "w.std": s}, str(tmp_path / "bf.safetensors"))
    with relcode.StreamEncoder(tmp_path / "a.relc", seed=1, bits_per_block=8, progress=False) as enc:
        enc.add_safetensors(tmp_path / "bf.safetensors", prior_std=0.1)
    buf = io.BytesIO()
    relcode.encode(buf, {"w": (m.float().numpy(), s.float().numpy(), 0.0, 0.1)}, seed=1, bits_per_block=8)
    assert (tmp_path / "a.relc").read_bytes() == buf.getvalue()


BAD = {
    "missing std": ({"w.mean": np.zeros(4, np.float32)}, "'w.mean' has no 'w.std'"),
    "std without mean": (
        {"w.mean": np.zeros(4, np.float32), "w.std": np.ones(4, np.float32), "u.std": np.ones(2, np.float32)},
        "'u.std' has no 'u.mean'",
    ),
    "prior without mean": ({"u.prior_std": np.ones(2, np.float32)}, "'u.prior_std' has no 'u.mean'"),
    "shape mismatch": (
        {"w.mean": np.zeros((2, 3), np.float32), "w.std": np.ones((3, 2), np.float32)},
        r"'w.std' has shape \(3, 2\)",
    ),
    "prior shape mismatch": (
        {
            "w.mean": np.zeros(4, np.float32),
            "w.std": np.ones(4, np.float32),
            "w.prior_std": np.ones(3, np.float32),
        },
        r"'w.prior_std' has shape \(3,\)",
    ),
    "nan mean": (
        {"w.mean": np.array([0, np.nan, 0], np.float32), "w.std": np.ones(3, np.float32)},
        "'w.mean' .*element 1 is nan",
    ),
    "zero std": (
        {"w.mean": np.zeros(3, np.float32), "w.std": np.array([1, 1, 0], np.float32)},
        "'w.std' .*element 2 is 0.0",
    ),
    "negative prior std": (
        {
            "w.mean": np.zeros(3, np.float32),
            "w.std": np.ones(3, np.float32),
            "w.prior_std": np.full(3, -1.0, np.float32),
        },
        "'w.prior_std' .*element 0 is -1.0",
    ),
    "integer mean": (
        {"w.mean": np.zeros(3, np.int32), "w.std": np.ones(3, np.float32)},
        "'w.mean' has dtype I32",
    ),
    "unstorable raw dtype": (
        {"w.mean": np.zeros(3, np.float32), "w.std": np.ones(3, np.float32), "u": np.zeros(2, np.uint32)},
        "raw tensor 'u' has dtype uint32",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_posterior_is_refused_before_any_output(tmp_path: Path, case: str) -> None:
    tensors, message = BAD[case]
    src = tmp_path / "in" / "post.safetensors"
    src.parent.mkdir()
    save_file(tensors, str(src))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(relcode.InputError, match=message):
        with relcode.StreamEncoder(out / "m.relc", seed=0, progress=False) as enc:
            enc.add_safetensors(src, prior_std=0.1)
    assert list(out.iterdir()) == []


def test_missing_prior_is_refused(tmp_path: Path) -> None:
    save_file(
        {"w.mean": np.zeros(3, np.float32), "w.std": np.ones(3, np.float32)}, str(tmp_path / "p.safetensors")
    )
    with pytest.raises(relcode.InputError, match=r"'w' has no 'w\.prior_std'"):
        streaming.read_posterior(tmp_path / "p.safetensors")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros(3), np.ones(4)), r"posterior std of 'w' has shape \(4,\)"),
        ((np.array([0.0, np.inf]), 1.0), "posterior mean of 'w'.*element 1 is inf"),
        ((np.zeros(2), -1.0), "posterior std of 'w' is -1.0"),
        ((np.array(["a"]), 1.0), "must be"),
    ],
)
def test_bad_arrays_are_refused_before_any_output(tmp_path: Path, args, message: str) -> None:
    with pytest.raises(relcode.InputError, match=message):
        with relcode.StreamEncoder(tmp_path / "m.relc", seed=0, progress=False) as enc:
            enc.add("w", *args, prior_std=0.1)
    assert list(tmp_path.iterdir()) == []


def test_bad_options_are_refused_before_any_output(tmp_path: Path) -> None:
    with pytest.raises(relcode.RelcodeError):
        stream_encode(tmp_path / "m.relc", {"w": (np.zeros(5), 1.0, 0.0, 1.0)}, seed=0, method="nope")
    with pytest.raises(relcode.InputError, match="block_size"):
        relcode.StreamEncoder(tmp_path / "m.relc", seed=0, layout="fixed")
    with pytest.raises(relcode.InputError, match="twice"):
        with relcode.StreamEncoder(tmp_path / "m.relc", seed=0) as enc:
            enc.add_raw("a", np.zeros(2))
            enc.add_raw("a", np.zeros(2))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_encode_leaves_nothing(tmp_path: Path, rng, monkeypatch, exc) -> None:
    real = streaming.encode_chunk

    def chunk(spec):
        if spec.g == 5:
            raise exc("stop")
        return real(spec)

    monkeypatch.setattr(streaming, "encode_chunk", chunk)
    (tmp_path / "m.relc").write_bytes(b"an older file")
    with pytest.raises(exc):
        stream_encode(
            tmp_path / "m.relc", {"w": (rng.normal(0, 0.1, 800), 0.05, 0.0, 0.1)}, seed=1, chunk_size=50
        )
    assert [p.name for p in tmp_path.iterdir()] == ["m.relc"]
    assert (tmp_path / "m.relc").read_bytes() == b"an older file"  # untouched


def test_progress_bar_on_stderr(tmp_path: Path, rng, capsys) -> None:
    with relcode.StreamEncoder(tmp_path / "m.relc", seed=1, chunk_size=100, progress=True) as enc:
        enc.add("w", rng.normal(0, 0.1, 300), 0.05, prior_std=0.1)
    captured = capsys.readouterr()
    assert captured.out == "" and "encoding" in captured.err and "weight" in captured.err
    with relcode.StreamEncoder(tmp_path / "n.relc", seed=1, progress=False) as enc:
        enc.add("w", rng.normal(0, 0.1, 300), 0.05, prior_std=0.1)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------
# Decoding


@pytest.fixture
def model(tmp_path: Path, rng) -> tuple[Path, dict]:
    tensors = posterior(rng)
    path = tmp_path / "m.relc"
    stream_encode(path, tensors, seed=2, chunk_size=40, bits_per_block=8, metadata={"arch": "t"})
    return path, relcode.decode(path)


def test_decoder_values_equal_in_memory_decoder(model) -> None:
    path, ref = model
    with relcode.open_decoder(path, threads=2) as dec:
        assert dec.names == sorted(ref, key=str.encode) == list(dec)
        assert len(dec) == len(ref) and "w" in dec and "nope" not in dec
        for n, a in dec.items():
            assert a.dtype == ref[n].dtype and a.shape == ref[n].shape
            assert a.tobytes() == ref[n].tobytes()
        for n in reversed(dec.names):
            assert dec[n].tobytes() == ref[n].tobytes()
        assert dec.tensors["w"] == {"shape": (30, 10), "dtype": "float32", "coded": True}
        assert dec.metadata == {"arch": "t"}
        with pytest.raises(KeyError):
            dec.tensor("nope")


def test_decoder_pieces_are_bounded(model, monkeypatch) -> None:
    path, ref = model
    spans = []
    real = F.File.decode_range

    def decode_range(self, a, b, **kw):
        spans.append((a, b))
        return real(self, a, b, **kw)

    monkeypatch.setattr(F.File, "decode_range", decode_range)
    dec = relcode.streaming.StreamDecoder(F.open(path), threads=2, piece=80)
    got = {}
    for n, s, v in dec.pieces():
        got.setdefault(n, []).append((s, v.copy()))
    assert max(b - a for a, b in spans) <= 80  # two groups of 40
    assert len(spans) == len(set(spans))  # tensors sharing a group decode it once
    for n, parts in got.items():
        flat = np.concatenate([v for _, v in parts]) if parts else np.zeros(0)
        assert flat.tobytes() == ref[n].reshape(-1).tobytes()


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".pt"])
def test_decoder_writes_files(model, tmp_path: Path, suffix: str) -> None:
    path, ref = model
    out = tmp_path / f"w{suffix}"
    relcode.open_decoder(path).write(out)
    if suffix == ".safetensors":
        loaded = load_file(out)
        from safetensors import safe_open

        with safe_open(str(out), "np") as f:
            assert f.metadata() == {"arch": "t"}
    elif suffix == ".npz":
        loaded = dict(np.load(out))
    else:
        import torch

        loaded = {k: v.numpy() for k, v in torch.load(out, weights_only=True).items()}
        mm = torch.load(out, weights_only=True, mmap=True)
        assert all(mm[k].numpy().tobytes() == ref[k].tobytes() for k in ref)
    assert sorted(loaded) == sorted(ref)
    for n in ref:
        assert loaded[n].dtype == ref[n].dtype and loaded[n].shape == ref[n].shape
        assert loaded[n].tobytes() == ref[n].tobytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.relc", out.name])


def test_corrupt_file_is_refused_and_nothing_is_written(tmp_path: Path, rng) -> None:
    n = 500
    for digest in ("tensor", "all"):
        path = tmp_path / f"{digest}.relc"
        stream_encode(
            path, {"w": (rng.normal(0, 0.1, n), 0.05, 0.0, 0.1)}, seed=1, digest=digest, chunk_size=100
        )
        data = bytearray(path.read_bytes())
        data[-16 - 20] ^= 1  # inside the digests of the index
        bad = tmp_path / f"bad_{digest}.relc"
        bad.write_bytes(bytes(data))
        with pytest.raises(relcode.ChecksumError):
            relcode.open_decoder(bad).write(tmp_path / "out.safetensors")
        assert not (tmp_path / "out.safetensors").exists()
        with pytest.raises(relcode.ChecksumError):
            relcode.open_decoder(bad).verify()
        assert relcode.open_decoder(path).verify()["tensors"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


VEC = SPEC / "vectors" / "format"


@pytest.mark.parametrize("name", sorted(p.stem for p in (VEC / "decode").glob("*.json")))
def test_decode_vectors_lazily(name: str) -> None:
    side = json.loads((VEC / "decode" / f"{name}.json").read_text())
    base = (VEC / "decode" / side["base"]) if "base" in side else None
    dec = relcode.open_decoder(VEC / "decode" / f"{name}.relc", base=base, threads=1)
    dec.verify()
    got = dict(dec.items())
    assert sorted(got) == sorted(side["tensors"])
    for t, want in side["tensors"].items():
        a = got[t]
        assert list(a.shape) == want["shape"] and a.dtype.name == want["dtype"]
        assert hashlib.sha256(a.astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest() == want["sha256"]


@pytest.mark.parametrize("name", sorted(p.stem for p in (VEC / "reject").glob("*.json")))
def test_reject_vectors_lazily(name: str) -> None:
    side = json.loads((VEC / "reject" / f"{name}.json").read_text())
    base = (VEC / "reject" / side["base"]) if "base" in side else None
    with pytest.raises(relcode.FormatError) as info:
        relcode.open_decoder(VEC / "reject" / f"{name}.relc", base=base).verify()
    assert type(info.value).__name__ == side["error"], info.value


def test_docstring_examples() -> None:
    import doctest

    from relcode import _tensorfiles

    for mod in (streaming, _tensorfiles):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.attempted > 0 and res.failed == 0, mod.__name__


ENCODE = """
from relcode import StreamEncoder
with StreamEncoder(DEST, seed=0, bits_per_block=4, chunk_size=1 << 16, progress=False) as enc:
    enc.add_safetensors(SRC, prior_std=0.1)
"""
DECODE = """
import relcode
relcode.open_decoder(DEST).write(OUT)
"""
PEAK = """
print([line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0].split()[1])
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_memory_does_not_grow_with_size(tmp_path: Path) -> None:
    """Peak memory of encoding and of decoding 2 M and 8 M weights (fresh processes) differ
    by much less than the data (8 M weights of mean and std are 64 MB)."""
    import subprocess
    import sys

    from relcode._tensorfiles import SafetensorsWriter

    peaks: dict[int, list[float]] = {}
    for n in (2_000_000, 8_000_000):
        src, dest, out = tmp_path / "p.safetensors", tmp_path / "m.relc", tmp_path / "o.npz"
        rng = np.random.default_rng(n)
        with SafetensorsWriter(src, [("w.mean", "float32", (n,)), ("w.std", "float32", (n,))]) as w:
            for name in ("w.mean", "w.std"):
                for a in range(0, n, 1 << 20):
                    m = min(1 << 20, n - a)
                    v = rng.normal(0, 0.05, m) if name == "w.mean" else rng.uniform(0.02, 0.09, m)
                    w.write(name, v.astype(np.float32))
        peaks[n] = []
        for code in (ENCODE, DECODE):
            code = f"SRC, DEST, OUT = {str(src)!r}, {str(dest)!r}, {str(out)!r}\n" + code + PEAK
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            peaks[n].append(int(res.stdout.split()[-1]) / 1024)
    for small, big in zip(peaks[2_000_000], peaks[8_000_000]):
        assert big < 300 and big - small < 30, peaks


# One rule for every entry point: relcode.encode, StreamEncoder and the command line accept
# the same posteriors and refuse the same ones with the same InputError (or LimitError).
RULES = {
    "scalar std": ((np.zeros(6), 0.05, 0.0, 0.1), None),
    "one-element std": ((np.zeros(6), np.full(1, 0.05), 0.0, 0.1), None),
    "broadcast row std": (
        (np.zeros((3, 2)), np.full(2, 0.05), 0.0, 0.1),
        r"has shape \(2,\); give one value",
    ),
    "int32 mean": ((np.zeros(6, np.int32), 0.05, 0.0, 0.1), "must be a float array"),
    "mean 1e300": ((np.full(6, 1e300), 0.05, 0.0, 0.1), r"KL\(Q\|\|P\) is inf bits"),
    "prior std 1e-40": (
        (np.zeros(6), 0.05, 0.0, 1e-40),
        "prior std of 'w' is 1e-40; it must be a finite float32",
    ),
    "prior std 1e39": ((np.zeros(6), 0.05, 0.0, 1e39), "prior std of 'w' is 1e[+]39"),
    "posterior std 1e-30": (
        (np.zeros(6), np.full(6, 1e-30), 0.0, 0.1),
        "less than 2\\^-32 times the prior std",
    ),
    "huge broadcast": ((np.broadcast_to(np.zeros(1), (1 << 40,)), 0.05, 0.0, 0.1), "at most 2147483648"),
}


@pytest.mark.parametrize("case", RULES)
@pytest.mark.parametrize("entry", ["encode", "stream"])
def test_every_entry_point_has_one_rule(tmp_path: Path, case: str, entry: str) -> None:
    (qm, qs, pm, ps), message = RULES[case]
    out = tmp_path / "m.relc"

    def run() -> None:
        if entry == "encode":
            relcode.encode(out, {"w": (qm, qs, pm, ps)}, seed=0)
        else:
            with relcode.StreamEncoder(out, seed=0, progress=False) as enc:
                enc.add("w", qm, qs, prior_mean=pm, prior_std=ps)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # never a numpy RuntimeWarning first
        if message is None:
            run()
            assert out.exists()
        else:
            with pytest.raises(
                relcode.InputError if case != "huge broadcast" else relcode.LimitError, match=message
            ):
                run()
            assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("prior_std", ["1e39", "1e-40", "0", "nan"])
def test_cli_prior_std_out_of_range_is_one_clear_error(tmp_path: Path, prior_std: str, capsys) -> None:
    from relcode.cli import main

    save_file(
        {"w.mean": np.zeros(4, np.float32), "w.std": np.full(4, 0.05, np.float32)}, str(tmp_path / "p.st")
    )
    cmd = ["encode", str(tmp_path / "p.st"), "-o", str(tmp_path / "m.relc"), "--prior-std", prior_std]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(cmd) == 1
    assert [str(w.message) for w in caught] == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err and "prior std" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.st"]
