"""relcode: relative entropy coding.

Send a sample of a learned Gaussian posterior Q for about KL(Q || P) bits, using a coding
distribution P that encoder and decoder share, and compress Bayesian neural networks with
it. Any machine decodes a relcode file to the same bits.
"""

from __future__ import annotations

from . import _native, channel, errors, format, reference, sharing, stream, streaming, weights
from .errors import (
    ChecksumError,
    FormatError,
    InputError,
    LimitError,
    RelcodeError,
    SamplerError,
    TrainingError,
    VersionError,
)
from .format import decode, encode, inspect, verify
from .streaming import StreamDecoder, StreamEncoder, open_decoder

__version__: str = _native.__version__

__all__ = [
    "ChecksumError",
    "FormatError",
    "InputError",
    "LimitError",
    "RelcodeError",
    "SamplerError",
    "StreamDecoder",
    "StreamEncoder",
    "TrainingError",
    "VersionError",
    "__version__",
    "channel",
    "decode",
    "encode",
    "errors",
    "format",
    "inspect",
    "open_decoder",
    "reference",
    "sharing",
    "stream",
    "streaming",
    "verify",
    "weights",
]
