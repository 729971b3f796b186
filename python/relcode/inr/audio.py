"""Audio compression with COMBINER: 16 kHz mono 16-bit WAV in, a relcode file out, and back.

Audio is cut into patches of the codec's length (800 samples, 50 ms, for the audio preset,
as RECOMBINER does for LibriSpeech), each represented by a small variational SIREN over
time. Rates are given in kilobits per second of audio (the whole file, header included).

Accepted inputs: uncompressed PCM WAV, mono, 16 bits, 16 000 samples per second; other
formats are refused with an :class:`~relcode.errors.InputError`.
"""

from __future__ import annotations

import io
import math
import os
import wave
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .codec import Codec, load_codec, nearest_codec, shipped_codecs
from .pipeline import EncodeReport, EncodeSettings, decode, encode
from .signals import audio_to_patches, from_patches, random_crops, to_samples

__all__ = ["RATE", "compress", "decompress", "read_wav", "train_codec", "write_wav"]

#: The sample rate of every signal (samples per second).
RATE = 16000


def check_audio(samples: Any) -> np.ndarray:
    a = np.asarray(samples)
    if a.dtype != np.int16 or a.ndim != 1:
        raise InputError(f"audio must be a 1-D int16 array, got {a.dtype} {a.shape}")
    if a.size == 0:
        raise InputError("the audio is empty")
    return np.ascontiguousarray(a)


def read_wav(path: str | os.PathLike) -> np.ndarray:
    """Reads a 16 kHz mono 16-bit PCM WAV file as int16 samples."""
    try:
        with wave.open(str(path), "rb") as w:
            ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            if ch != 1 or width != 2 or rate != RATE:
                raise InputError(
                    f"{path}: unsupported WAV ({ch} channels, {8 * width} bits, {rate} Hz); "
                    f"mono 16-bit {RATE} Hz PCM only"
                )
            data = w.readframes(n)
    except (wave.Error, EOFError, OSError) as e:
        raise InputError(f"cannot read WAV {path}: {e}") from None
    return check_audio(np.frombuffer(data, dtype="<i2").astype(np.int16))


def write_wav(path: str | os.PathLike, samples: np.ndarray) -> None:
    """Writes int16 samples as a 16 kHz mono WAV file, atomically."""
    from ..format import write_output

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(check_audio(samples).astype("<i2").tobytes())
    write_output(Path(path), buf.getvalue())


def _as_audio(audio: Any) -> np.ndarray:
    if isinstance(audio, (str, os.PathLike)):
        return read_wav(audio)
    return check_audio(audio)


def default_codec(kbps: float | None, samples: int) -> Codec:
    """The shipped audio codec nearest the message rate a whole-file target leaves."""

    return nearest_codec(
        shipped_codecs("audio"), None if kbps is None else kbps * 1000 / RATE, samples, "audio"
    )


def compress(
    audio: Any,
    dest: Any,
    *,
    codec: Codec | str | os.PathLike | None = None,
    kbps: float | None = None,
    beta: float | None = None,
    settings: EncodeSettings | None = None,
    progress: bool = False,
) -> EncodeReport:
    """Compresses audio (a WAV path or int16 samples at 16 kHz) into ``dest``. Rate: ``kbps``
    kilobits per second for the whole file, or ``beta``. The report's ``decoded`` is the
    decoded audio."""
    a = _as_audio(audio)
    if codec is None:
        codec = default_codec(kbps, a.size)
    elif not isinstance(codec, Codec):
        codec = load_codec(codec)
    if codec.kind != "audio":
        raise InputError(f"the codec codes {codec.kind} signals, not audio")
    patches = audio_to_patches(a, codec.arch.patch[0])
    bps = None if kbps is None else float(kbps) * 1000.0 / RATE
    rep = encode(codec, patches, dest, bits_per_sample=bps, beta=beta, settings=settings, progress=progress)
    rep.decoded = to_samples(from_patches(rep.reconstruction, patches.grid, codec.arch.patch, patches.shape))[
        :, 0
    ]
    return rep


def decompress(source: Any, *, codec: Codec | str | os.PathLike | None = None, codec_dirs=()) -> np.ndarray:
    """Decodes compressed audio to int16 samples (16 kHz)."""
    if codec is not None and not isinstance(codec, Codec):
        codec = load_codec(codec)
    sf, recon = decode(source, codec=codec, codec_dirs=codec_dirs)
    if sf.codec.kind != "audio":
        raise InputError("this file holds an image, not audio (use relcode image decompress)")
    grid = (math.ceil(sf.shape[0] / sf.codec.arch.patch[0]),)
    return to_samples(from_patches(recon, grid, sf.codec.arch.patch, sf.shape))[:, 0]


def train_codec(
    clips: list[Any],
    *,
    kbps: float,
    arch: Any = "audio",
    crops: int = 64,
    seed: int = 0,
    progress: Any = None,
    **kwargs: Any,
) -> Codec:
    """Learns an audio codec for ``kbps`` message kilobits per second from ``crops`` random
    patch-long excerpts of training clips (WAV paths or int16 arrays).

    Blocks hold up to ``max_block_size`` = 200 parameters by default (images: COMBINER's
    25): speech at a few kbps spends only about 20 blocks of 16 bits on a 50 ms patch,
    fewer than its 3,201 parameters / 25 (RECOMBINER's audio rates need large blocks too)."""
    from .siren import Architecture, preset
    from .train import train_codec as _train

    a = preset(arch) if isinstance(arch, str) else arch
    if not isinstance(a, Architecture) or a.kind != "audio":
        raise InputError("an audio codec needs an audio architecture")
    sigs = [_as_audio(c) for c in clips]
    values = random_crops(sigs, crops, a.patch, seed=seed)
    info = {"training_clips": len(sigs)}
    info.update(kwargs.pop("info", {}) or {})
    bps = float(kbps) * 1000.0 / RATE
    kwargs.setdefault("max_block_size", 200)
    return _train(a, values, bits_per_sample=bps, seed=seed, progress=progress, info=info, **kwargs)
