"""COMBINER: image and audio compression with Bayesian implicit neural representations.

A signal is represented by the weights of small SIRENs (one per patch); a factorised
Gaussian posterior over those weights is fitted to the signal, and relative entropy coding
sends a sample of it, one 16-bit message per block of parameters, for about its KL to a
prior that is learned once, on a training set, and shared by every file (Guo et al.,
COMBINER, NeurIPS 2023; He et al., RECOMBINER, ICLR 2024).

>>> import relcode.inr as inr
>>> inr.preset("patch64").num_params
3267

Modules, in the order data flows:

- :mod:`~relcode.inr.siren`: the architecture, Fourier features and the numpy forward pass
  (the decoder; no torch).
- :mod:`~relcode.inr.signals`: images and audio as patches; quantisation; PSNR.
- :mod:`~relcode.inr.model`: the batched variational SIREN (torch).
- :mod:`~relcode.inr.train`: the beta-ELBO, per-block betas, EM prior learning, codecs.
- :mod:`~relcode.inr.coding`: progressive relative entropy coding with fine-tuning, on the
  shared engine :mod:`relcode.coding` (blocks from the file's KL-greedy layout).
- :mod:`~relcode.inr.codec`: codec files (shared side information).
- :mod:`~relcode.inr.files`: compressed signal files.
- :mod:`~relcode.inr.pipeline`: encode and decode one signal.
- :mod:`~relcode.inr.image`, :mod:`~relcode.inr.audio`: the front ends the CLI uses.

Training needs torch (``device=`` arguments: CUDA when present, else the CPU); decoding
needs only numpy and the native module.
"""

from __future__ import annotations

from . import audio, codec, files, image, pipeline, signals, siren
from .codec import Codec, find_codec, load_codec, shipped_codecs
from .pipeline import EncodeReport, EncodeSettings
from .siren import PRESETS, Architecture, preset

__all__ = [
    "PRESETS",
    "Architecture",
    "Codec",
    "EncodeReport",
    "EncodeSettings",
    "audio",
    "codec",
    "files",
    "find_codec",
    "image",
    "load_codec",
    "pipeline",
    "preset",
    "shipped_codecs",
    "signals",
    "siren",
]
