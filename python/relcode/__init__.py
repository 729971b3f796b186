"""relcode: relative entropy coding.

Send a sample of a learned Gaussian posterior Q for about KL(Q || P) bits, using a coding
distribution P that encoder and decoder share, and compress Bayesian neural networks with
it. Any machine decodes a relcode file to the same bits.
"""

from __future__ import annotations

from . import _native, channel, errors, format, reference, stream
from .errors import (
    ChecksumError,
    FormatError,
    InputError,
    LimitError,
    RelcodeError,
    SamplerError,
    VersionError,
)
from .format import decode, encode, inspect, verify

__version__: str = _native.__version__

__all__ = [
    "ChecksumError",
    "FormatError",
    "InputError",
    "LimitError",
    "RelcodeError",
    "SamplerError",
    "VersionError",
    "__version__",
    "channel",
    "decode",
    "encode",
    "errors",
    "format",
    "inspect",
    "reference",
    "stream",
    "verify",
]
