"""Real data that ships with scikit-learn, for the demo, the examples and the tests.

scikit-learn's handwritten digits (1,797 images of 8×8 pixels, 16 grey levels, ten classes)
stand in for MNIST offline. Upsampled to 28×28 they keep LeNet-5's MNIST shapes, so the
Caffe LeNet-5 (431,080 parameters) and MIRACLE's settings apply unchanged. The split into
training and test images is fixed (stratified, seeded), so every run sees the same sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = ["Split", "digits"]


@dataclass(frozen=True)
class Split:
    """Training, validation (possibly empty) and test tensors: float32 images, int64 labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def digits(size: int = 28, *, test_fraction: float = 0.2, val_fraction: float = 0.0, seed: int = 0) -> Split:
    """scikit-learn's digits scaled to [0, 1] as (n, 1, size, size) float32 images (bilinear
    upsampling from 8×8 when ``size`` > 8) with int64 labels.

    ``test_fraction`` of the images are the test set (360 of 1,797 at 0.2) and
    ``val_fraction`` of the rest a validation set; both splits are stratified and seeded.

    >>> d = digits(28)
    >>> tuple(d.x_train.shape), tuple(d.x_test.shape), len(d.y_val)
    ((1437, 1, 28, 28), (360, 1, 28, 28), 0)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not isinstance(size, int) or size < 8:
        raise InputError(f"size must be an integer of at least 8, got {size!r}")
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1:
        raise InputError("test_fraction must be in (0, 1) and val_fraction in [0, 1)")
    data = load_digits()
    x = torch.as_tensor(data.images.astype(np.float32) / 16.0).unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.as_tensor(data.target.astype(np.int64))
    idx = np.arange(len(y))
    train, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=data.target)
    if val_fraction > 0:
        train, val = train_test_split(
            train, test_size=val_fraction, random_state=seed + 1, stratify=data.target[train]
        )
    else:
        val = np.zeros(0, dtype=np.int64)

    def pick(i: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(np.sort(i))
        return x[t].contiguous(), y[t].contiguous()

    return Split(*pick(train), *pick(val), *pick(test))
