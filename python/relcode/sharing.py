"""Weight sharing with random signs (the hashing trick of Chen et al., as MIRACLE uses it).

A tensor of ``numel`` weights is driven by ``ceil(numel / group)`` coded variables: variable
``j`` sets the ``group`` consecutive row-major weights ``j·group … j·group + group − 1``, each
multiplied by a fixed random sign. The sign pattern decorrelates the weights of a group; it
comes from relcode's counter-based stream (purpose ``SIGN``, spec/stream.md; stream id =
the tensor's position among the coded tensors), so a decoder regenerates it on any machine
from the file's seed without storing it. Expansion multiplies by ±1 and is exact in float32,
so decoders reproduce the encoder's weights bit for bit.

MIRACLE's LeNet-5 shares conv2 weights in pairs and fc1 weights in groups of 50: 431,080
weights become 26,580 coded variables, which is what lets ~1.5 kB describe the network.

>>> import numpy as np
>>> v = np.array([1.0, 2.0], dtype=np.float32)
>>> expand(v, shape=(3,), group=2, signs=np.array([1, -1, 1], dtype=np.float32))
array([ 1., -1.,  2.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from . import stream

__all__ = ["SIGN_PURPOSE", "expand", "n_variables", "signs"]

#: The stream purpose of the sign patterns: b"SIGN" read as a little-endian uint32.
SIGN_PURPOSE: int = int.from_bytes(b"SIGN", "little")


def n_variables(numel: int, group: int) -> int:
    """Coded variables of a tensor of ``numel`` weights shared in groups of ``group``."""
    return -(-int(numel) // int(group))


def signs(seed: int, stream_id: int, numel: int) -> np.ndarray:
    """The ±1 float32 sign of each weight: bit 0 of word k of stream (seed, SIGN, stream_id)."""
    words = stream.words(seed, SIGN_PURPOSE, stream_id, 0, numel)
    return np.where(words & 1, np.float32(-1.0), np.float32(1.0)).astype(np.float32)


def expand(variables: np.ndarray, shape: tuple[int, ...], group: int, signs: np.ndarray | None) -> np.ndarray:
    """Weights of ``shape`` from coded ``variables`` (numpy; the torch view does the same)."""
    numel = int(np.prod(shape, dtype=np.int64))
    v = np.asarray(variables)
    if group == 1:
        return v.reshape(shape)
    w = np.repeat(v, group)[:numel]
    if signs is not None:
        w = w * signs
    return w.reshape(shape)
