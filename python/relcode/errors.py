"""The exceptions relcode raises: one small tree under :class:`RelcodeError`.

Every error that bad input can cause is one of these; a panic or crash in the native
code is a bug. Classes that describe bad values also derive from :class:`ValueError`,
so callers that already catch ``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = [
    "CancelledError",
    "ChecksumError",
    "FormatError",
    "InputError",
    "LimitError",
    "RelcodeError",
    "SamplerError",
    "TrainingError",
    "VersionError",
]


class RelcodeError(Exception):
    """Base class of every relcode error."""


class InputError(RelcodeError, ValueError):
    """An argument is invalid: wrong shape or dtype, out of range, NaN, unknown name."""


class SamplerError(RelcodeError, RuntimeError):
    """A sampler cannot produce a sample: its iteration cap was reached, or the target is
    outside what the method accepts. Never a silently wrong sample."""


class CancelledError(RelcodeError):
    """Work was cancelled before it was complete (an interrupt stopped the encoder); nothing
    was written."""


class TrainingError(RelcodeError, RuntimeError):
    """Training cannot go on: the loss became NaN or infinite. Stops with the step and the
    reason instead of letting a diverged posterior reach a file."""


class FormatError(RelcodeError, ValueError):
    """A file or byte string is not a valid relcode stream (corrupt, truncated, hostile)."""


class VersionError(FormatError):
    """The stream uses a major format or stream version this build cannot decode."""


class ChecksumError(FormatError):
    """A CRC32C or SHA-256 recorded in the stream does not match its contents."""


class LimitError(FormatError):
    """The stream claims more than a reader accepts (sizes, counts, nesting)."""
