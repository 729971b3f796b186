"""relcode.torch: compress any torch model with relative entropy coding (MIRACLE, Mean-KL).

A :class:`BayesianModel` views chosen parameters of any ``nn.Module`` as factorised Gaussian
posteriors with a Gaussian coding distribution (prior); :func:`fit` trains it on data;
:func:`compress` codes its blocks one round at a time with fine-tuning in between and writes
a relcode file of about (number of blocks × bits) bits; :func:`decompress` loads that file
into an ordinary model, exactly as the encoder left it. Decoding the file needs no torch:
``relcode.decode`` returns the coded float32 values.

>>> import io, torch, relcode.torch as rt
>>> from torch import nn
>>> _ = torch.manual_seed(0)
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> bm = rt.BayesianModel(net, bits=8, block_size=16)
>>> buf = io.BytesIO()
>>> report = rt.compress(bm, buf, progress=False)  # no data: one round, no fine-tuning
>>> fresh = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> rt.decompress(buf.getvalue(), fresh)
IncompatibleKeys(missing_keys=[], unexpected_keys=[])
>>> x = torch.randn(3, 4)
>>> bool(torch.equal(fresh(x), report.model(x)))
True

A typical run (the ``relcode demo`` does this for LeNet-5)::

    bm = rt.BayesianModel(pretrained, bits=16, block_size=58,         # 16-bit blocks
                          hashing={"2.weight": 2, "5.weight": 50})    # MIRACLE's sharing
    rt.fit(bm, rt.batches(x_train, y_train, 64), steps=600)           # Mean-KL: on budget
    report = rt.compress(bm, "model.relc", rt.batches(x_train, y_train, 64),
                         rounds=12, steps=30)                         # fine-tune in between
    rt.decompress("model.relc", fresh_model)                          # anywhere, exactly

Modules: :mod:`~relcode.torch.bayesian` (the view), :mod:`~relcode.torch.parameterisation`
(Mean-Var, Mean-KL), :mod:`~relcode.torch.lambertw` (the closed-form σ),
:mod:`~relcode.torch.prior`, :mod:`~relcode.torch.hashing` (shared weights),
:mod:`~relcode.torch.blocks`, :mod:`~relcode.torch.training`, :mod:`~relcode.torch.coding`
(progressive coding), :mod:`~relcode.torch.compress` (files), and for the demo and examples
:mod:`~relcode.torch.datasets`, :mod:`~relcode.torch.models`, :mod:`~relcode.torch.baselines`.
Training runs where the model is (``device=``: CUDA when present, or the CPU); the coded
values always come from the CPU channel, so a file decodes to the same bits on any machine.

This package imports torch; ``import relcode`` does not.
"""

from __future__ import annotations

from ..deps import require as _require

_require("torch", "relcode.torch")  # one line saying what to install, before any torch import

from .bayesian import BayesianModel, CodedTensor, model_fingerprint  # noqa: E402
from .coding import Encoded, encode_progressive  # noqa: E402
from .compress import CompressionReport, IncompatibleKeys, compress, decompress, file_size  # noqa: E402
from .parameterisation import MeanKL, MeanVar  # noqa: E402
from .prior import PerLayerPrior, PerParameterPrior  # noqa: E402
from .training import Trainer, batches, evaluate, fit  # noqa: E402

__all__ = [
    "BayesianModel",
    "CodedTensor",
    "CompressionReport",
    "Encoded",
    "IncompatibleKeys",
    "MeanKL",
    "MeanVar",
    "PerLayerPrior",
    "PerParameterPrior",
    "Trainer",
    "batches",
    "compress",
    "decompress",
    "encode_progressive",
    "evaluate",
    "file_size",
    "fit",
    "model_fingerprint",
]
