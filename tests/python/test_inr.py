"""relcode.inr, the model side: architecture, batched variational SIREN, training, EM prior
learning, KL-greedy blocks and progressive coding. Tiny networks, tens of steps."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import relcode  # noqa: E402
from relcode import coding as engine  # noqa: E402
from relcode import reference  # noqa: E402
from relcode.errors import InputError  # noqa: E402
from relcode.inr import coding, signals, siren  # noqa: E402
from relcode.inr.model import BayesianSiren  # noqa: E402
from relcode.inr.train import Batch, BlockBetas, Trainer, _rate_step, evaluate_mse, fit, learn_prior  # noqa: E402
from relcode.torchops import gaussian_kl  # noqa: E402

TINY = siren.Architecture(dim_in=2, dim_out=3, dim_emb=8, dim_hid=8, layers=3, patch=(8, 8), max_freq=8.0)


def tiny_values(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random 8x8 RGB patches in [0, 1] (a few low-frequency waves each)."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 1, 8), np.linspace(0, 1, 8), indexing="ij")
    out = []
    for _ in range(n):
        a, b, p = rng.uniform(0.5, 3, 3), rng.uniform(0.5, 3, 3), rng.uniform(0, 6, 3)
        img = 0.5 + 0.35 * np.sin(a * x[..., None] * 3 + b * y[..., None] * 2 + p)
        out.append(img.reshape(64, 3))
    return np.stack(out).astype(np.float32)


# -- architecture ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), [("cifar", 1123), ("kodak", 12675), ("patch64", 3267)])
def test_presets_match_the_published_sizes(name: str, params: int) -> None:
    assert siren.preset(name).num_params == params


def test_architecture_round_trip_and_errors() -> None:
    a = siren.preset("audio")
    assert siren.Architecture.from_dict(a.to_dict()) == a
    with pytest.raises(InputError, match="multiple of 2"):
        siren.Architecture(dim_in=2, dim_out=3, dim_emb=6, dim_hid=8, layers=3, patch=(8, 8))
    with pytest.raises(InputError, match="patch"):
        siren.Architecture(dim_in=2, dim_out=3, dim_emb=8, dim_hid=8, layers=3, patch=(8,))
    with pytest.raises(InputError, match="version"):
        siren.Architecture.from_dict({**a.to_dict(), "version": 99})
    with pytest.raises(InputError, match="unknown architecture preset"):
        siren.preset("nope")


def test_coordinates_and_features() -> None:
    c = TINY.coordinates()
    assert c.shape == (64, 2) and c.dtype == np.float32
    assert c.min() == pytest.approx(-7 / 8) and c.max() == pytest.approx(7 / 8)
    assert (c[1] - c[0] == np.array([0, 0.25], np.float32)).all()  # row-major: x varies fastest
    f = TINY.features()
    assert f.shape == (64, 8) and np.abs(f).max() <= 1
    np.testing.assert_allclose(f[:, 0], np.cos(np.pi * c[:, 0]), atol=1e-6)


def test_numpy_forward_matches_the_torch_model_means() -> None:
    w = np.stack([TINY.init_weights(s) for s in range(3)])
    ref = TINY.forward(w)
    m = BayesianSiren(TINY, 3, np.zeros(TINY.num_params), np.ones(TINY.num_params), init_mean=w, device="cpu")
    with torch.no_grad():
        out = m(torch.as_tensor(TINY.features()), sample=False).numpy()
    np.testing.assert_allclose(out, ref, atol=2e-5)
    assert ref.shape == (3, 64, 3) and ref.dtype == np.float32
    np.testing.assert_array_equal(TINY.forward(w, chunk=7), ref)  # chunking does not change bits


# -- model ---------------------------------------------------------------------------


def test_kl_is_zero_at_the_prior_and_analytic() -> None:
    pm, ps = TINY.init_weights(0), TINY.init_std().astype(np.float32) * 0.5
    m = BayesianSiren(TINY, 2, pm, ps, init_std=1.0, device="cpu")
    assert float(m.kl().detach().abs().max()) < 1e-5
    kl = gaussian_kl(torch.tensor(1.0), torch.tensor(0.5), torch.tensor(0.0), torch.tensor(1.0))
    assert float(kl) == pytest.approx(math.log(2) + (0.25 + 1) / 2 - 0.5, rel=1e-6)


def test_fixed_parameters_leave_the_kl_and_the_gradient() -> None:
    m = BayesianSiren(TINY, 2, TINY.init_weights(0), TINY.init_std() * 0.5, device="cpu")
    m.fix([0, 0], [3, 5], [0.25, -0.5])
    mean, std = m.effective()
    assert float(mean[0, 3].detach()) == 0.25 and float(std[0, 5].detach()) == 0.0
    assert float(m.kl()[0, 3].detach()) == 0.0
    out = m(torch.as_tensor(TINY.features()))
    (out.sum() + m.kl().sum()).backward()
    assert float(m.mean.grad[0, 3]) == 0.0 and float(m.mean.grad[0, 5]) == 0.0
    assert float(m.mean.grad[1, 3].abs()) > 0


def test_signals_in_a_batch_are_independent() -> None:
    m = BayesianSiren(TINY, 3, TINY.init_weights(0), TINY.init_std() * 0.5, device="cpu")
    batch = Batch(TINY, tiny_values(3), device="cpu")
    pred = m(batch.features, sample=True)
    loss = ((pred[1] - batch.values[1]) ** 2).mean() + m.kl()[1].sum()
    loss.backward()
    g = m.mean.grad.abs().sum(1)
    assert float(g[0]) == 0 and float(g[2]) == 0 and float(g[1]) > 0


def test_training_fits_and_pixels_subsample() -> None:
    torch.manual_seed(0)
    vals = tiny_values(4)
    m = BayesianSiren(TINY, 4, TINY.init_weights(1), TINY.init_std() * 0.5, device="cpu")
    batch = Batch(TINY, vals, device="cpu")
    before = float(evaluate_mse(m, batch).mean())
    tr = Trainer(m, batch, lr=3e-3, pixels=16, seed=1)
    for _ in range(60):
        tr.step(1e-7)
    assert float(evaluate_mse(m, batch).mean()) < before / 3
    with pytest.raises(InputError):
        Trainer(m, Batch(TINY, vals[:2], device="cpu"))


def test_padding_weights_exclude_samples() -> None:
    vals = tiny_values(1)
    w = np.ones((1, 64), np.float32)
    w[0, 32:] = 0
    bad = vals.copy()
    bad[0, 32:] = 100.0  # padded garbage must not matter
    m = BayesianSiren(TINY, 1, TINY.init_weights(0), TINY.init_std() * 0.5, device="cpu")
    a = float(evaluate_mse(m, Batch(TINY, vals, w, device="cpu"))[0])
    b = float(evaluate_mse(m, Batch(TINY, bad, w, device="cpu"))[0])
    assert a == pytest.approx(b)


# -- rate control and EM -----------------------------------------------------------------


def test_rate_step_direction_and_limits() -> None:
    assert _rate_step(1.0, 200, 100, 0.5, 0.05) == pytest.approx(1.5)  # too many bits: more beta
    assert _rate_step(1.0, 50, 100, 0.5, 0.05) == pytest.approx(1 / 1.5)
    assert _rate_step(1.0, 97, 100, 0.5, 0.05) == 1.0  # inside the band
    assert 1.0 < _rate_step(1.0, 101, 100, 0.5, 0.05) < 1.03


def test_block_betas_move_towards_the_budget() -> None:
    bb = BlockBetas(np.array([0, 0, 1, 1]), 2, 1e-3, budget=16, band=0.4, device="cpu")
    bk = bb.adjust(torch.tensor([10.0, 10.0, 3.0, 3.0]))
    assert bk.tolist() == [20.0, 6.0]
    assert bb.beta.tolist() == pytest.approx([1.1e-3, 1e-3 / 1.1])
    bb.adjust(torch.tensor([10.0, 10.0, 3.0, 3.0]), active=torch.tensor([False, True]))
    assert float(bb.beta[0]) == pytest.approx(1.1e-3)


def test_em_m_step_is_the_closed_form() -> None:
    res = learn_prior(TINY, tiny_values(6), iterations=1, steps=5, pixels=None, device="cpu", seed=3)
    mu, sd = res.post_mean.astype(np.float64), res.post_std.astype(np.float64)
    np.testing.assert_allclose(res.mean, mu.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.std, np.sqrt((sd**2 + (mu - mu.mean(0)) ** 2).mean(0)), rtol=1e-4)
    assert res.kl_bits.shape == (TINY.num_params,) and (res.kl_bits >= 0).all()


def test_em_with_rate_control_reaches_the_budget_and_learns() -> None:
    vals = tiny_values(8, seed=2)
    kw = dict(bits_per_signal=150, beta=1e-4, iterations=8, steps=25, pixels=None, device="cpu")
    fixed = learn_prior(TINY, vals, update_prior=False, **kw)
    learned = learn_prior(TINY, vals, **kw)
    np.testing.assert_array_equal(fixed.mean, TINY.init_weights(0))  # the ablation keeps its prior
    assert not np.array_equal(learned.mean, TINY.init_weights(0))
    assert 75 < learned.history[-1]["kl_bits"] < 300
    assert learned.history[-1]["psnr"] > learned.history[0]["psnr"] + 3
    # above budget, rate control raises beta every iteration
    betas = [h["beta"] for h in fixed.history]
    assert all(b2 > b1 for b1, b2 in itertools.pairwise(betas)) and fixed.history[-1]["kl_bits"] > 150


# -- blocks -------------------------------------------------------------------------------


def test_kl_greedy_sizes_rule() -> None:
    kl = [5, 5, 5, 2, 20, 1, 1, 1]
    assert reference.kl_greedy_sizes(kl, budget=16, max_size=25).tolist() == [3, 1, 1, 3]
    assert reference.kl_greedy_sizes([0.1] * 60, max_size=25).tolist() == [25, 25, 10]
    with pytest.raises(ValueError):
        reference.kl_greedy_sizes([1, np.nan])


def test_format_layout_packs_like_the_reference_rule(rng: np.random.Generator) -> None:
    kl = rng.exponential(1.5, (3, 40))
    lay = relcode.format.Layout.kl({"w": kl}, bits_per_block=16, seed=22, max_block_size=25)
    blocks = engine.Blocks.from_layout(lay)
    order = blocks.members
    assert sorted(order.tolist()) == list(range(120))
    np.testing.assert_array_equal(blocks.sizes, reference.kl_greedy_sizes(kl.reshape(-1)[order], 16, 25))
    assert blocks.ids[0] == 0 and blocks.ids[-1] == blocks.num_blocks - 1  # one group: ids are positions
    bo = blocks.block_of()
    assert (np.bincount(bo) == blocks.sizes).all()
    for d, bs in blocks.by_size().items():
        assert blocks.member_matrix(bs).shape == (bs.size, d)


def test_round_sizes() -> None:
    for nb, r in [(1, 20), (7, 3), (100, 20), (5000, 30)]:
        s = engine.growing_rounds(nb, r)
        assert sum(s) == nb and min(s) >= 1 and len(s) <= r
        assert s[0] <= s[-1]
    assert engine.growing_rounds(0, 5) == []


def test_progressive_coding_decodes_exactly() -> None:
    P, N = 3, TINY.num_params
    vals = tiny_values(P, seed=5)
    pm, ps = TINY.init_weights(0), (TINY.init_std() * 0.5).astype(np.float32)
    m = BayesianSiren(TINY, P, pm, ps, device="cpu")
    batch = Batch(TINY, vals, device="cpu")
    tr = Trainer(m, batch, lr=3e-3, seed=0)
    kl = np.tile(np.full(N, 0.4), P)
    lay = relcode.format.Layout.kl({"w": kl.reshape(P, N)}, bits_per_block=8, seed=1, max_block_size=25)
    blocks = engine.Blocks.from_layout(lay)
    betas = BlockBetas(blocks.block_of(), blocks.num_blocks, 1e-5, budget=8, device="cpu")
    fit(tr, 40, betas)
    opts = coding.ChannelOptions(bits=8, seed=9)
    res = coding.encode_progressive(
        m, tr, betas, blocks, np.tile(pm, P), np.tile(ps, P), opts, rounds=4, finetune_steps=12
    )
    assert res.bits == 8 * blocks.num_blocks and len(res.rounds) == 4
    assert bool(m.coded.all())
    np.testing.assert_array_equal(m.coded_value.numpy(), res.weights)
    w = coding.decode_weights(res.messages, blocks, np.tile(pm, P), np.tile(ps, P), opts)
    np.testing.assert_array_equal(w.view(np.uint32), res.weights.reshape(-1).view(np.uint32))
    with pytest.raises(InputError):
        coding.decode_weights(res.messages[:-1], blocks, np.tile(pm, P), np.tile(ps, P), opts)


# -- signals --------------------------------------------------------------------------


def test_image_patches_round_trip_with_padding(rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, (13, 21, 3), dtype=np.uint8)
    p = signals.image_to_patches(img, (8, 8))
    assert p.values.shape == (6, 64, 3) and p.grid == (2, 3) and p.weights.sum() == 13 * 21
    back = signals.from_patches(p.values, p.grid, (8, 8), p.shape)
    np.testing.assert_array_equal(signals.to_pixels(back), img)
    with pytest.raises(InputError, match="at most"):
        signals.image_to_patches(np.zeros((8 * 33, 8 * 32, 3), np.uint8), (8, 8))
    with pytest.raises(InputError, match="empty"):
        signals.image_to_patches(np.zeros((0, 5, 3), np.uint8), (8, 8))


def test_audio_patches_round_trip(rng: np.random.Generator) -> None:
    a = rng.integers(-32768, 32768, 1000).astype(np.int16)
    p = signals.audio_to_patches(a, 300)
    assert p.values.shape == (4, 300, 1) and p.weights.sum() == 1000
    back = signals.from_patches(p.values, p.grid, (300,), p.shape)
    np.testing.assert_array_equal(signals.to_samples(back)[:, 0], a)


def test_quantisation_and_psnr() -> None:
    assert signals.to_pixels(np.array([-0.1, 0.5, 1.2, 0.5 / 255], np.float32)).tolist() == [0, 128, 255, 0]
    assert signals.psnr(np.zeros(4), np.zeros(4), 255) == math.inf
    assert signals.psnr(np.zeros(4), np.full(4, 255.0), 255) == 0.0
