"""relcode.torch Bayesian view: wrapping arbitrary modules, LRT, KL, priors, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import relcode  # noqa: E402
from relcode.errors import InputError, TrainingError  # noqa: E402
from relcode.torch import BayesianModel  # noqa: E402
from relcode.torch.hashing import expand, signs  # noqa: E402
from relcode.torch.training import Trainer, batches  # noqa: E402
from relcode.torchops import gaussian_kl  # noqa: E402


class Mixed(nn.Module):
    """Conv2d, Conv1d, LayerNorm, Linear and a bare parameter, in a forward of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1, padding_mode="reflect")
        self.conv1d = nn.Conv1d(3, 2, 2)
        self.norm = nn.LayerNorm(30)
        self.fc = nn.Linear(30, 4)
        self.scale = nn.Parameter(torch.tensor(1.5))
        self.register_buffer("offset", torch.tensor(0.25))

    def forward(self, x):
        h = self.conv(x)  # (n, 3, 4, 4)
        h = self.conv1d(h.flatten(2))  # (n, 2, 15)
        h = self.norm(h.flatten(1))
        return self.fc(torch.relu(h)) * self.scale + self.offset


def test_wraps_arbitrary_modules_without_changing_them() -> None:
    torch.manual_seed(0)
    net = Mixed()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    bm = BayesianModel(net, bits=8, n_blocks=9, parameterisation="mean_var", hashing={"fc.weight": 3})
    names = [t.name for t in bm.tensors]
    assert names == sorted(n for n, _ in net.named_parameters())
    assert {t.name: t.group for t in bm.tensors}["fc.weight"] == 3
    x = torch.randn(5, 1, 4, 4)
    out = bm(x)
    assert out.shape == (5, 4)
    # The wrapped model is a copy: the original is untouched and still works.
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    # Gradients reach every posterior parameter, LRT or not (conv/fc via LRT, LayerNorm and
    # the scalar by weight sampling).
    (out.sum() + bm.kl_penalty()).backward()
    assert bm.posterior_param.mean.grad is not None
    for t in bm.tensors:
        assert bm.posterior_param.mean.grad[t.slice].abs().sum() > 0, t.name
    # Evaluation mode: posterior means, deterministic; equals the plain model carrying them.
    bm.eval()
    with torch.no_grad():
        a, b = bm(x), bm(x)
        plain = bm.plain_model()(x)
    assert torch.equal(a, b) and torch.equal(a, plain)


def test_lrt_matches_weight_sampling_in_distribution() -> None:
    torch.manual_seed(1)
    lin = nn.Linear(6, 2)
    bm = BayesianModel(
        lin, bits=8, n_blocks=2, parameterisation="mean_var", parameterisation_options={"init_std": 0.5}
    )
    x = torch.randn(1, 6).expand(4000, 6)
    with torch.no_grad():
        lrt = bm(x)  # one noise draw per example
        bm.lrt = False
        plain = torch.cat([bm(x[:1]) for _ in range(4000)])  # one weight draw per pass
    assert set(bm.lrt_modules()) == {""}
    for a, b in ((lrt.mean(0), plain.mean(0)), (lrt.std(0), plain.std(0))):
        torch.testing.assert_close(a, b, rtol=0.1, atol=0.05)
    # The LRT output std is the analytic one.
    _, std = bm.effective()
    by_name = {t.name: t for t in bm.tensors}
    w_std = std[by_name["weight"].slice].view(2, 6)
    b_std = std[by_name["bias"].slice]
    want = torch.sqrt((x[0] ** 2 * w_std**2).sum(1) + b_std**2)
    torch.testing.assert_close(lrt.std(0), want.detach(), rtol=0.03, atol=0)


@pytest.mark.parametrize("parameterisation", ["mean_var", "mean_kl"])
def test_reported_kl_is_the_closed_form(parameterisation: str) -> None:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    bm = BayesianModel(net, bits=6, n_blocks=5, parameterisation=parameterisation)
    q_mean, q_std, p_mean, p_std = bm.posterior()
    per_var = gaussian_kl(q_mean, q_std, p_mean, p_std)
    want = torch.zeros(5, dtype=torch.float64).index_add(0, bm.blocks.block_of, per_var)
    torch.testing.assert_close(bm.block_kl(), want)
    if parameterisation == "mean_kl":
        np.testing.assert_allclose(bm.block_kl().detach().numpy(), 6 * math.log(2), rtol=0, atol=1e-6)
    # Coded blocks leave the reported KL.
    bm.freeze_prior()
    bm.set_coded([0, 3], [np.zeros(len(bm.blocks.members[b]), np.float32) for b in (0, 3)])
    torch.testing.assert_close(bm.kl(), bm.block_kl()[[1, 2, 4]].sum())


def test_per_parameter_prior_and_freezing() -> None:
    torch.manual_seed(3)
    net = nn.Linear(4, 3)
    std = np.linspace(0.1, 1.2, 12)
    bm = BayesianModel(
        net, bits=8, n_blocks=3, prior={"weight": (0.05, std), "bias": (0.0, 0.3)}, learn_prior=True
    )
    _, p_std = bm.prior()
    np.testing.assert_allclose(p_std.detach().numpy()[bm.tensors[1].slice], std.astype(np.float32), rtol=1e-6)
    assert bm.prior.mean.requires_grad
    bm.freeze_prior()
    tensors = bm.prior.tensors()
    assert tensors["weight"][1].dtype == np.float32 and tensors["weight"][1].shape == (12,)
    assert tensors["bias"][0].shape == (3,)
    assert not any(p.requires_grad for p in bm.prior.parameters())
    with pytest.raises(InputError, match="not coded tensors"):
        BayesianModel(net, prior={"nope": (0, 1)})
    with pytest.raises(InputError, match="expected 1 or 12"):
        BayesianModel(net, prior={"weight": (0, np.ones(5)), "bias": (0, 1)})


def test_per_layer_prior_learns_until_frozen_and_stores_float32() -> None:
    torch.manual_seed(4)
    x = torch.randn(64, 5)
    y = (x[:, 0] > 0).long()
    bm = BayesianModel(nn.Linear(5, 2), bits=6, n_blocks=2, parameterisation="mean_var",
                       parameterisation_options={"beta_init": 1.0})  # fmt: skip
    before = bm.prior.log_std.detach().clone()
    Trainer(bm, batches(x, y, 16)).run(5, progress=False)
    assert not torch.equal(before, bm.prior.log_std.detach())
    bm.freeze_prior()
    frozen = {k: v[1].copy() for k, v in bm.prior.tensors().items()}
    Trainer(bm, batches(x, y, 16)).run(5, progress=False)
    assert all(np.array_equal(frozen[k], v[1]) for k, v in bm.prior.tensors().items())
    assert all(v[1].dtype == np.float32 and v[1].shape == () for v in bm.prior.tensors().values())


def test_hashing_signs_come_from_the_stream_and_expand_exactly() -> None:
    net = nn.Linear(10, 3, bias=False)
    bm = BayesianModel(net, bits=8, n_blocks=2, hashing={"weight": 4})
    t = bm.tensors[0]
    assert t.n_vars == 8  # ceil(30 / 4)
    s = signs(bm.seed, t.index, 30)
    assert set(np.unique(s)) == {-1.0, 1.0}
    v = np.arange(8, dtype=np.float32) + 0.5
    w_np = expand(v, (3, 10), 4, s)
    w_t = bm._expand(torch.as_tensor(v), t).numpy()
    assert np.array_equal(w_np.view(np.uint32), w_t.view(np.uint32))
    assert np.array_equal(np.abs(w_np).reshape(-1), np.repeat(v, 4)[:30])
    # Signs depend on the seed (they are regenerated, not stored).
    assert not np.array_equal(signs(1, 0, 30), signs(2, 0, 30))


def test_bad_input() -> None:
    net = nn.Linear(3, 2)
    with pytest.raises(InputError, match="matches"):
        BayesianModel(net, include="nothing*")
    net.register_parameter("count", nn.Parameter(torch.ones(2, dtype=torch.int64), requires_grad=False))
    with pytest.raises(InputError, match=r"count.*floating"):
        BayesianModel(net)
    net = nn.Linear(3, 2)
    with pytest.raises(InputError, match="n_blocks"):
        BayesianModel(net, n_blocks=100)
    with pytest.raises(InputError, match="not both"):
        BayesianModel(net, n_blocks=2, block_size=3)
    with pytest.raises(InputError, match="parameterisation"):
        BayesianModel(net, parameterisation="mean_std")
    with pytest.raises(InputError, match="match no coded"):
        BayesianModel(net, hashing={"conv.weight": 2})
    with pytest.raises(InputError, match="bits"):
        BayesianModel(net, bits=0)
    with pytest.raises(InputError, match=r"nn\.Module"):
        BayesianModel("not a model")  # type: ignore[arg-type]


def test_nan_loss_stops_training_with_the_step() -> None:
    net = nn.Linear(3, 2)
    bm = BayesianModel(net, bits=8, n_blocks=2)
    x = torch.randn(8, 3)
    x[5] = float("nan")
    y = torch.zeros(8, dtype=torch.long)
    trainer = Trainer(bm, batches(x, y, 4, seed=0))
    with pytest.raises(TrainingError, match="at step"):
        trainer.run(4, progress=False)
    assert issubclass(TrainingError, relcode.RelcodeError)


@pytest.mark.gpu
def test_trains_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(5)
    x = torch.randn(128, 6)
    y = (x[:, 0] > 0).long()
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    bm = BayesianModel(net, bits=8, n_blocks=8, device="cuda")
    assert bm.coded.device.type == "cuda"
    history = Trainer(bm, batches(x, y, 32)).run(20, progress=False)
    assert np.isfinite(history[-1]["nll"])


def test_mean_var_beta_anneals_towards_the_budget_per_block() -> None:
    torch.manual_seed(6)
    bm = BayesianModel(nn.Linear(8, 4), bits=4, block_size=9, parameterisation="mean_var",
                       parameterisation_options={"beta_init": 1e-3, "beta_step": 0.5})  # fmt: skip
    kl = torch.tensor([100.0, 0.1, 100.0, 0.1])  # nats: over, under, over (coded), under
    active = torch.tensor([True, True, False, True])
    bm.posterior_param.after_step(kl, active)
    torch.testing.assert_close(bm.posterior_param.beta, torch.tensor([1.5e-3, 1e-3 / 1.5, 1e-3, 1e-3 / 1.5]))
    # The penalty is Σ β_b KL_b over uncoded blocks only.
    bm.freeze_prior()
    bm.set_coded([2], [np.zeros(len(bm.blocks.members[2]), np.float32)])
    block_kl = bm.block_kl()
    want = (bm.posterior_param.beta * block_kl)[[0, 1, 3]].sum()
    torch.testing.assert_close(bm.kl_penalty(block_kl), want)
