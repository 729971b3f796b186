"""relcode.torch compress/decompress: files, bit-exact predictions, relcode.decode without
torch, strict/missing/unexpected keys, and files or models that do not match."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import relcode  # noqa: E402
from relcode.errors import ChecksumError, FormatError, InputError  # noqa: E402
from relcode.torch import BayesianModel, compress, decompress  # noqa: E402
from relcode.torch.datasets import digits  # noqa: E402
from relcode.torch.hashing import expand, signs  # noqa: E402
from relcode.torch.training import Trainer, batches, evaluate  # noqa: E402

from ..conftest import ROOT  # noqa: E402


def small_net() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10))


@pytest.fixture(scope="module")
def data():
    return digits(8)


@pytest.fixture(scope="module")
def compressed(data, tmp_path_factory):
    """A small MLP trained on digits, compressed with fine-tuning, shared weights in layer 1."""
    torch.manual_seed(0)
    net = small_net()
    bm = BayesianModel(net, bits=10, block_size=12, hashing={"1.weight": 2}, seed=3)
    train = batches(data.x_train, data.y_train, 64, seed=1)
    Trainer(bm, train).run(120, progress=False)
    path = tmp_path_factory.mktemp("relc") / "mlp.relc"
    report = compress(bm, path, train, rounds=4, steps=10, progress=False)
    return bm, report, path


def test_round_trip_gives_identical_predictions(data, compressed) -> None:
    bm, report, path = compressed
    assert path.stat().st_size == report.bytes
    assert report.message_bits == 10 * bm.n_blocks
    fresh = small_net()
    keys = decompress(path, fresh)
    assert keys.missing_keys == [] and keys.unexpected_keys == []
    with torch.no_grad():
        a = fresh(data.x_test)
        b = report.model(data.x_test)
        c = bm.eval()(data.x_test)
    assert torch.equal(a, b) and torch.equal(a, c)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, report.model.state_dict()[k]), k
    assert evaluate(fresh, data.x_test, data.y_test) > 0.5  # ~1.7 kbit for 2,170 weights


def test_relcode_decode_yields_the_coded_bits_without_torch(compressed) -> None:
    bm, report, path = compressed
    script = textwrap.dedent(
        f"""
        import sys, json, hashlib, relcode
        arrays = relcode.decode({str(path)!r})
        plain = relcode.weights.state_dict({str(path)!r})
        assert "torch" not in sys.modules, "relcode.decode imported torch"
        digest = lambda d: {{k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in d.items()}}
        print(json.dumps([digest(arrays), digest(plain)]))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "python")})  # fmt: skip
    digests, plain = json.loads(out.stdout)
    # relcode.weights.state_dict (no torch) gives the coded model's weights bit for bit
    state = report.model.state_dict()
    assert set(plain) == set(state)
    for k, v in state.items():
        assert plain[k] == hashlib.sha256(v.numpy().tobytes()).hexdigest(), k
    coded = bm.coded_value.numpy()
    for t in bm.tensors:
        want = coded[t.slice].reshape(t.file_shape)
        assert digests[t.name] == hashlib.sha256(want.astype("<f4").tobytes()).hexdigest(), t.name
    # Shared weights: expanding the decoded variables with the regenerated signs gives the
    # decompressed weights bit for bit.
    arrays = relcode.decode(path)
    t = next(t for t in bm.tensors if t.group > 1)
    w = expand(arrays[t.name], t.shape, t.group, signs(relcode.inspect(path)["seed"], t.index, t.numel))
    assert np.array_equal(w.view(np.uint32), report.model.state_dict()[t.name].numpy().view(np.uint32))
    relcode.verify(path)
    # The priors are stored as the exact float32 bits the encoder froze and coded with.
    with relcode.format.open(path) as f:
        for name, (mean, std) in bm.prior.tensors().items():
            fm, fs = f.prior(name)
            assert np.array_equal(np.broadcast_to(mean, fm.shape).view(np.uint32), fm.view(np.uint32))
            assert np.array_equal(np.broadcast_to(std, fs.shape).view(np.uint32), fs.view(np.uint32))


def test_decompress_in_a_fresh_process(data, compressed) -> None:
    _, report, path = compressed
    script = textwrap.dedent(
        f"""
        import torch, hashlib
        from torch import nn
        import relcode.torch as rt
        from relcode.torch.datasets import digits
        torch.set_num_threads(1)
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10))
        rt.decompress({str(path)!r}, net)
        with torch.no_grad():
            print(hashlib.sha256(net(digits(8).x_test).numpy().tobytes()).hexdigest())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "python"), "OMP_NUM_THREADS": "1"})  # fmt: skip
    with torch.no_grad():
        want = hashlib.sha256(report.model(data.x_test).numpy().tobytes()).hexdigest()
    assert out.stdout.strip() == want


def test_strict_missing_and_unexpected_keys(compressed) -> None:
    _, _, path = compressed
    bigger = small_net()
    bigger.register_parameter("extra", nn.Parameter(torch.zeros(3)))
    with pytest.raises(InputError, match="missing keys \\['extra'\\]"):
        decompress(path, bigger)
    keys = decompress(path, bigger, strict=False)
    assert keys.missing_keys == ["extra"] and keys.unexpected_keys == []
    assert torch.equal(bigger.extra, torch.zeros(3))

    smaller = nn.Sequential(nn.Flatten(), nn.Linear(64, 24))
    with pytest.raises(InputError, match="unexpected keys"):
        decompress(path, smaller)
    keys = decompress(path, smaller, strict=False)
    assert keys.missing_keys == [] and sorted(keys.unexpected_keys) == ["3.bias", "3.weight"]


def test_models_that_do_not_match_the_file(compressed) -> None:
    _, _, path = compressed
    wide = nn.Sequential(nn.Flatten(), nn.Linear(64, 30), nn.ReLU(), nn.Linear(30, 10))
    for strict in (True, False):
        with pytest.raises(InputError, match="structure does not match"):
            decompress(path, wide, strict=strict)
    other = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(InputError, match="another model"):
        decompress(path, other, strict=False)
    # Same keys and shapes, different modules (Tanh for ReLU): refused unless strict=False.
    tanh = nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.Tanh(), nn.Linear(24, 10))
    with pytest.raises(InputError, match="different structure"):
        decompress(path, tanh)
    assert decompress(path, tanh, strict=False).missing_keys == []
    with pytest.raises(InputError, match=r"nn\.Module"):
        decompress(path, "model")  # type: ignore[arg-type]


def test_files_that_are_not_relcode_torch_files(tmp_path, compressed) -> None:
    plain = tmp_path / "plain.relc"
    relcode.encode(plain, {"w": (np.zeros(8), 0.5, 0.0, 1.0)}, seed=0, bits_per_block=4)
    with pytest.raises(FormatError, match=r"not a relcode\.torch model file"):
        decompress(plain, small_net())
    _, _, path = compressed
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    with pytest.raises(FormatError):
        decompress(bytes(data), small_net())
    with pytest.raises((ChecksumError, FormatError)):
        relcode.decode(bytes(data))


class WithBuffers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 4)
        self.bn = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 2).to(torch.bfloat16)

    def forward(self, x):
        return self.head(self.bn(self.fc(x)).to(torch.bfloat16)).float()


def test_uncoded_parameters_and_buffers_are_stored_verbatim() -> None:
    torch.manual_seed(4)
    net = WithBuffers()
    net.train()
    net(torch.randn(16, 5))  # running statistics and num_batches_tracked move
    bm = BayesianModel(net, include="fc.*", bits=8, block_size=8)
    buf = io.BytesIO()
    report = compress(bm, buf, progress=False)
    fresh = WithBuffers()
    assert decompress(buf.getvalue(), fresh) == ([], [])
    for k, v in net.state_dict().items():
        got = fresh.state_dict()[k]
        assert got.dtype == v.dtype, k
        if not k.startswith("fc."):
            assert torch.equal(got, v), k
    assert fresh.bn.num_batches_tracked.item() == 1
    fresh.eval()
    report.model.eval()
    x = torch.randn(4, 5)
    assert torch.equal(fresh(x), report.model(x))
    # Without store_uncoded only the coded tensors are in the file.
    bm2 = BayesianModel(net, include="fc.*", bits=8, block_size=8)
    buf2 = io.BytesIO()
    compress(bm2, buf2, store_uncoded=False, progress=False)
    assert sorted(relcode.decode(buf2.getvalue())) == ["fc.bias", "fc.weight"]
    with pytest.raises(InputError, match="missing keys"):
        decompress(buf2.getvalue(), WithBuffers())
    keys = decompress(buf2.getvalue(), WithBuffers(), strict=False)
    assert "bn.running_mean" in keys.missing_keys


def test_float64_model_round_trip() -> None:
    torch.manual_seed(5)
    net = nn.Linear(6, 3).double()
    bm = BayesianModel(net, bits=8, block_size=7)
    buf = io.BytesIO()
    report = compress(bm, buf, progress=False)
    fresh = nn.Linear(6, 3).double()
    decompress(buf.getvalue(), fresh)
    assert fresh.weight.dtype == torch.float64
    assert torch.equal(fresh.weight, report.model.weight)
    # float64 weights carry float32 values exactly.
    assert torch.equal(fresh.weight, fresh.weight.float().double())


@pytest.mark.gpu
def test_gpu_training_gives_a_file_that_decodes_identically_on_the_cpu(data) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(6)
    bm = BayesianModel(small_net(), bits=10, block_size=12, device="cuda")
    train = batches(data.x_train, data.y_train, 64, seed=1)
    Trainer(bm, train).run(50, progress=False)
    buf = io.BytesIO()
    report = compress(bm, buf, train, rounds=3, steps=5, progress=False)
    cpu = small_net()
    decompress(buf.getvalue(), cpu)
    for k, v in report.model.state_dict().items():
        assert torch.equal(cpu.state_dict()[k], v.cpu()), k
    coded = bm.coded_value.cpu().numpy()
    arrays = relcode.decode(buf.getvalue())
    for t in bm.tensors:
        assert np.array_equal(arrays[t.name].reshape(-1).view(np.uint32), coded[t.slice].view(np.uint32))


def test_file_size_is_known_before_coding() -> None:
    from relcode.torch.compress import file_size

    torch.manual_seed(7)
    net = small_net()
    bm = BayesianModel(net, bits=12, block_size=40, hashing={"1.weight": 4})
    predicted = file_size(bm)
    buf = io.BytesIO()
    report = compress(bm, buf, progress=False)
    assert predicted == report.bytes == len(buf.getvalue())
    with pytest.raises(InputError, match="fixed-budget"):
        file_size(bm, method="gprs")


@pytest.mark.gpu
def test_gpu_channel_writes_the_same_file_as_the_cpu_channel() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    files = []
    for channel_device in ("cpu", "cuda"):
        torch.manual_seed(8)
        bm = BayesianModel(small_net(), bits=12, block_size=16, seed=9)
        buf = io.BytesIO()
        compress(bm, buf, progress=False, channel_device=channel_device)
        files.append(buf.getvalue())
    assert files[0] == files[1]
