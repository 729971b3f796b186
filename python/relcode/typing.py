"""Type aliases of the public API (numpy.typing based), for annotations in user code.

>>> import numpy as np
>>> from relcode.typing import Posterior
>>> post: Posterior = (np.zeros((2, 3)), 0.1, 0.0, 0.2)  # q_mean, q_std, p_mean, p_std
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "ArrayLike",
    "Device",
    "Float32Array",
    "Float64Array",
    "Int64Array",
    "NDArray",
    "Posterior",
    "TensorValue",
    "UInt32Array",
    "UInt64Array",
]

#: float32 array: coded samples and decoded coded tensors.
Float32Array = NDArray[np.float32]
#: float64 array: uniforms, ndtri.
Float64Array = NDArray[np.float64]
#: int64 array: code lengths in bits, step counts.
Int64Array = NDArray[np.int64]
#: uint32 array: Philox words and keys.
UInt32Array = NDArray[np.uint32]
#: uint64 array: messages.
UInt64Array = NDArray[np.uint64]
#: A coded tensor's posterior and coding distribution: ``(q_mean, q_std, p_mean, p_std)``;
#: each broadcasts to ``q_mean``'s shape (the priors are usually scalars).
Posterior = tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike]
#: What :func:`relcode.encode` takes per name: a :data:`Posterior` (coded) or an array
#: (stored verbatim, any numeric dtype).
TensorValue = Posterior | ArrayLike
#: Where fixed-budget encoding runs: ``"cpu"``, ``"auto"``, ``"cuda"``, ``"cuda:1"`` or a
#: ``torch.device``.
Device = Union[str, "torch.device"]
