"""The whole encoder and decoder of one signal, whatever its kind (image or audio).

Encoding a signal cut into ``P`` patches (:mod:`relcode.inr.signals`) with a codec:

1. **Rate.** A target size in bits per sample (the whole file, header included) fixes the
   number of blocks, and so the rate scale of the layout (:func:`~relcode.inr.files.
   scale_for_blocks`); or a target ``beta`` is fitted first with one global beta, and the
   KL it reaches sets the scale; or the codec's nominal rate is used.
2. **Posterior inference**: the ``P`` variational networks start at the prior mean and are
   fitted together, with per-block betas pulling every block's KL just under its budget.
3. **Progressive coding** (:mod:`relcode.inr.coding`) in rounds with fine-tuning in between.
4. **File**: the messages go into a signal file (:mod:`relcode.inr.files`); the format's
   report of what a decoder will decode is checked against the coded weights.

The returned reconstruction is computed by the decoder's own function from the coded
weights, so ``decode`` of the file returns it exactly.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .codec import Codec
from .files import (
    compact_header_bytes,
    compact_scale,
    read_signal,
    scale_for_blocks,
    signal_base,
    write_compact,
    write_signal,
)
from .signals import Patches

__all__ = ["EncodeReport", "EncodeSettings", "decode", "encode", "header_bytes"]


@dataclass
class EncodeSettings:
    """Encoder effort. ``steps`` Adam steps of posterior inference (on ``pixels`` random
    samples per patch per step, all samples at the end), learning rate ``lr``; coding in
    ``rounds`` rounds with ``finetune_steps`` fine-tuning steps in all between them
    (``finetune=False``: none, the ablation); ``seed`` seeds the file's random streams and
    the training noise; ``device`` is the torch device (default: CUDA when present);
    ``container`` is ``"compact"`` (spec/signal.md: 22-24 bytes of header) or
    ``"relcode"`` (a relcode file referencing the codec's base: about 330 bytes)."""

    steps: int = 1000
    lr: float = 2e-3
    lr_std: float | None = None
    pixels: int | None = 1024
    init_std: float = 3e-3
    rounds: int = 20
    finetune_steps: int = 300
    finetune: bool = True
    adjust_every: int = 10
    beta_fit_fraction: float = 0.5
    seed: int = 0
    device: Any = None
    threads: int | None = None
    container: str = "compact"

    def __post_init__(self) -> None:
        if self.container not in ("compact", "relcode"):
            raise InputError(f"container must be 'compact' or 'relcode', got {self.container!r}")
        if self.steps < 0 or self.rounds < 1 or self.finetune_steps < 0:
            raise InputError("steps and finetune_steps must be non-negative and rounds positive")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError("lr must be positive")
        if self.pixels is not None and self.pixels < 1:
            raise InputError("pixels must be positive (or None for every sample)")


@dataclass
class EncodeReport:
    """What :func:`encode` did: the file's size and its parts, the rate, the coded weights
    and the reconstruction (float32, (P, n, C): what the decoder computes), timings."""

    bytes: int
    header_bytes: int
    message_bits: int
    blocks: int
    scale: float
    weights: np.ndarray
    reconstruction: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    file_sha256: str = ""
    #: The decoded signal as integers (uint8 image, int16 audio), set by the image and
    #: audio front ends: exactly what decompressing the file gives.
    decoded: np.ndarray | None = None


def header_bytes(
    codec: Codec,
    shape: tuple[int, ...],
    patches: int,
    scale: float = 1.0,
    seed: int = 0,
    container: str = "compact",
) -> int:
    """Bytes of a signal file that are not message bits: for a compact file its header and
    check value; for a relcode file the format's framing, the header with the references and
    metadata, the index and the digest (a dry run with zero messages; the count does not
    depend on the message values)."""
    if container == "compact":
        return compact_header_bytes(codec, shape, seed)
    base = signal_base(codec, patches, scale)
    buf = io.BytesIO()
    rep = write_signal(buf, codec, base, shape, np.zeros(base.num_blocks, dtype=np.uint64), seed)
    return rep.bytes - (rep.bits + 7) // 8


def _max_blocks(
    codec: Codec, shape, patches: int, samples: int, bits_per_sample: float, seed: int, container: str
) -> int:
    target = math.floor(bits_per_sample * samples / 8)
    head = header_bytes(codec, shape, patches, 1.0, seed, container)
    avail = target - head
    n = (avail * 8) // int(codec.bits)
    if n < 1:
        raise InputError(
            f"a rate of {bits_per_sample:g} bits per sample is {target} bytes for this signal, "
            f"less than the file header ({head} bytes)"
        )
    return int(n)


def encode(
    codec: Codec,
    patches: Patches,
    dest: Any,
    *,
    bits_per_sample: float | None = None,
    beta: float | None = None,
    blocks: int | None = None,
    settings: EncodeSettings | None = None,
    progress: bool = False,
) -> EncodeReport:
    """Codes a signal (cut into ``patches`` with the codec's patch shape) into ``dest`` (a
    path or a binary file). Rate: ``bits_per_sample`` for the whole file, or ``beta``, or
    at most ``blocks`` messages, or (none of them) the codec's nominal rate."""
    import torch

    from .coding import encode_progressive
    from .model import LN2, BayesianSiren
    from .train import Batch, BlockBetas, Trainer, fit

    st = settings or EncodeSettings()
    if sum(x is not None for x in (bits_per_sample, beta, blocks)) > 1:
        raise InputError("give one of a rate (bits per sample), a beta or a number of blocks")
    arch = codec.arch
    if patches.values.shape[1:] != (arch.patch_size, arch.dim_out):
        raise InputError(
            f"patches of shape {patches.values.shape[1:]} do not fit the codec's "
            f"{arch.patch} x {arch.dim_out}"
        )
    P = patches.count
    samples = math.prod(patches.shape)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    nmax = None
    if bits_per_sample is not None:
        if not (bits_per_sample > 0 and math.isfinite(bits_per_sample)):
            raise InputError("bits per sample must be positive")
        nmax = _max_blocks(codec, patches.shape, P, samples, bits_per_sample, st.seed, st.container)
        scale = scale_for_blocks(codec, P, nmax)
    elif blocks is not None:
        nmax = int(blocks)
        scale = scale_for_blocks(codec, P, nmax)
    elif beta is not None and not (beta > 0 and math.isfinite(beta)):
        raise InputError("beta must be positive")
    batch = Batch(arch, patches.values, patches.weights, device=st.device)
    model = BayesianSiren(arch, P, codec.prior_mean, codec.prior_std, init_std=st.init_std, device=st.device)
    trainer = Trainer(model, batch, lr=st.lr, lr_std=st.lr_std, pixels=st.pixels, seed=st.seed)
    bar = _bar(progress, st.steps + (st.finetune_steps if st.finetune else 0), "fit")
    history: dict[str, Any] = {}

    def tick(_t: int, rec: dict[str, float]) -> None:
        if bar is not None:
            bar.set_postfix(
                psnr=f"{-10 * math.log10(max(rec['mse'], 1e-12)):.2f}", kl=f"{rec['kl_bits']:.0f}"
            )

    pre_steps = 0
    if nmax is not None:
        init_beta = codec.beta
    elif beta is not None:
        pre_steps = int(st.steps * st.beta_fit_fraction)
        fit(
            trainer,
            pre_steps,
            float(beta),
            adjust_after=1.0,
            full_after=1.0,
            lr_drop_at=1.0,
            progress=_stepper(bar, tick),
        )
        with torch.no_grad():
            kl_total = float(model.kl().sum() / LN2)
        ref = float(codec.kl_bits.astype(np.float64).sum()) * P
        scale = min(max(kl_total / ref, 1e-6), 1e6)
        init_beta = float(beta)
    else:
        scale, init_beta = 1.0, codec.beta
    if st.container == "compact":
        scale = compact_scale(scale)  # stored as a float32, at or below the fitted scale
    base = signal_base(codec, P, scale)
    history["scale"] = scale
    betas = BlockBetas(
        base.blocks.block_of(), base.num_blocks, init_beta, budget=codec.block_bits, device=st.device
    )
    fit(
        trainer,
        st.steps - pre_steps,
        betas,
        adjust_every=st.adjust_every,
        progress=_stepper(bar, tick, pre_steps),
    )
    times["fit"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    opts = codec.channel_options(st.seed)
    res = encode_progressive(
        model,
        trainer,
        betas,
        base.blocks,
        base.p_mean,
        base.p_std,
        opts,
        rounds=st.rounds,
        finetune_steps=st.finetune_steps if st.finetune else 0,
        adjust_every=max(1, st.adjust_every // 2),
        threads=st.threads,
        progress=None if bar is None else (lambda r, rec: bar.update(rec["finetune_steps"])),
    )
    if bar is not None:
        bar.close()
    history["rounds"] = res.rounds
    times["code"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    if st.container == "compact":
        rep = write_compact(dest, codec, base, patches.shape, res.messages, st.seed)
        decoded, head_bytes = rep.decoded, rep.header_bytes
    else:
        rep = write_signal(dest, codec, base, patches.shape, res.messages, st.seed)
        decoded, head_bytes = rep.decoded["w"], rep.bytes - (rep.bits + 7) // 8
    if not np.array_equal(decoded.view(np.uint32), res.weights.view(np.uint32)):
        raise AssertionError("the file does not decode to the coded weights (please report this bug)")
    recon = arch.forward(res.weights)
    times["write"] = time.perf_counter() - t2
    return EncodeReport(
        bytes=rep.bytes,
        header_bytes=head_bytes,
        message_bits=rep.bits,
        blocks=base.num_blocks,
        scale=scale,
        weights=res.weights,
        reconstruction=recon,
        seconds=times,
        history=history,
        file_sha256=rep.file_sha256,
    )


def decode(source: Any, *, codec: Codec | None = None, codec_dirs=()) -> tuple[Any, np.ndarray]:
    """(the :class:`~relcode.inr.files.SignalFile`, the reconstruction (P, n, C) float32)."""
    sf = read_signal(source, codec=codec, codec_dirs=codec_dirs)
    return sf, sf.codec.arch.forward(sf.weights)


def _bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)


def _stepper(bar, tick, offset: int = 0):
    if bar is None:
        return None
    last = [0]

    def fn(t: int, rec: dict[str, float]) -> None:
        bar.update(t + 1 - last[0])
        last[0] = t + 1
        tick(t + offset, rec)

    return fn
