"""relcode.torch progressive coding: blocks coded through the channel, frozen at exactly the
samples a decoder regenerates, fine-tuning in between, on real data (scikit-learn digits)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import relcode  # noqa: E402
from relcode.errors import InputError  # noqa: E402
from relcode.torch import BayesianModel  # noqa: E402
from relcode.torch.coding import code_blocks, encode_progressive  # noqa: E402
from relcode.torch.datasets import digits  # noqa: E402
from relcode.torch.models import mlp  # noqa: E402
from relcode.torch.training import Trainer, batches, evaluate  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return digits(8, val_fraction=0.0)


@pytest.fixture(scope="module")
def pretrained(data):
    torch.manual_seed(0)
    net = mlp((64, 32, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(8):
        for x, y in batches(data.x_train, data.y_train, 64, seed=1):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def _decode_all(bm: BayesianModel, messages: np.ndarray, bits: int) -> np.ndarray:
    p_mean, p_std = (t.detach().to(torch.float32).numpy() for t in bm.prior())
    out = np.zeros(bm.n_vars, dtype=np.float32)
    for b, members in enumerate(bm.blocks.members):
        x = relcode.channel.decode(
            messages[b : b + 1], p_mean[members][None], p_std[members][None], method="pfr", seed=bm.seed,
            ids=bm.blocks.stream_ids[b : b + 1], bits=bits,
        )  # fmt: skip
        out[members] = x[0]
    return out


@pytest.mark.parametrize("parameterisation", ["mean_kl", "mean_var"])
def test_progressive_coding_is_bit_exact_and_keeps_accuracy(data, pretrained, parameterisation) -> None:
    torch.manual_seed(1)
    opts = {"beta_init": 1e-3, "beta_step": 1e-2} if parameterisation == "mean_var" else {}
    bm = BayesianModel(pretrained, bits=10, n_blocks=120, parameterisation=parameterisation,
                       parameterisation_options=opts, seed=7)  # fmt: skip
    train = batches(data.x_train, data.y_train, 64, seed=2)
    Trainer(bm, train).run(150, progress=False)
    enc = encode_progressive(bm, train, rounds=6, steps=15, progress=False)
    assert bool(bm.coded.all()) and bool(bm.block_coded.all())
    assert sorted(enc.order) == list(range(bm.n_blocks))
    assert enc.total_bits == 10 * bm.n_blocks and enc.steps == 5 * 15
    # Decoders regenerate exactly the frozen float32 values.
    decoded = _decode_all(bm, enc.messages, 10)
    assert np.array_equal(decoded.view(np.uint32), bm.coded_value.numpy().view(np.uint32))
    # The plain model carries exactly those values; its accuracy is that of the coded view.
    plain = bm.plain_model()
    assert evaluate(plain, data.x_test, data.y_test) == evaluate(bm, data.x_test, data.y_test)
    if parameterisation == "mean_kl":
        np.testing.assert_allclose(enc.kl_bits, 10.0, atol=1e-4)
    # 1,210 bits for 2,410 weights (~150 bytes): far better than chance on real digits.
    assert evaluate(plain, data.x_test, data.y_test) > 0.6


def test_coding_order_options_and_batched_channel_calls(pretrained) -> None:
    bm = BayesianModel(pretrained, bits=6, n_blocks=37, parameterisation="mean_var", seed=3)
    with pytest.raises(InputError, match="freeze the prior"):
        code_blocks(bm, [0], "pfr", {"bits": 6})
    kl_before = bm.block_kl().detach().numpy()
    enc = encode_progressive(bm, None, order="largest_kl", rounds=3, progress=False)
    first_round = enc.order[:13]  # 37 blocks in 3 rounds: 13, 12, 12
    assert set(first_round) == set(np.argsort(-kl_before, kind="stable")[:13].tolist())
    # Without data, coding is one channel call per round; it still covers every block.
    assert sorted(enc.order) == list(range(37))
    with pytest.raises(InputError, match="already coded"):
        encode_progressive(bm, None, progress=False)
    with pytest.raises(InputError, match="order"):
        encode_progressive(
            BayesianModel(pretrained, bits=6, n_blocks=4), None, order="biggest", progress=False
        )


def test_same_inputs_give_the_same_messages(pretrained) -> None:
    runs = []
    for _ in range(2):
        bm = BayesianModel(pretrained, bits=8, n_blocks=20, seed=11)
        runs.append(encode_progressive(bm, None, rounds=4, progress=False).messages)
    assert np.array_equal(runs[0], runs[1])


def test_kl_budget_in_bits_matches_message_length(pretrained) -> None:
    bm = BayesianModel(pretrained, bits=12, n_blocks=10, kl_bits=11.5)
    np.testing.assert_allclose(bm.block_kl().detach().numpy() / math.log(2), 11.5, atol=1e-4)
    enc = encode_progressive(bm, None, progress=False)
    assert (enc.bits == 12).all()
