"""Small reference networks used by the demo, the examples and the tests."""

from __future__ import annotations

import itertools

from torch import nn

__all__ = ["lenet5", "mlp"]


def lenet5() -> nn.Sequential:
    """The Caffe LeNet-5 MIRACLE compresses: 431,080 parameters on 1×28×28 inputs.

    conv 5×5×1×20 (valid) → max-pool 2 → conv 5×5×20×50 → max-pool 2 → fc 800×500 → ReLU →
    fc 500×10 (no nonlinearity after the convolutions, as in Caffe's model).

    >>> sum(p.numel() for p in lenet5().parameters())
    431080
    """
    return nn.Sequential(
        nn.Conv2d(1, 20, 5),
        nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(800, 500),
        nn.ReLU(),
        nn.Linear(500, 10),
    )


def mlp(sizes: tuple[int, ...] = (64, 300, 100, 10)) -> nn.Sequential:
    """A ReLU multilayer perceptron on flattened inputs (LeNet-300-100 shape by default,
    for 8×8 digits)."""
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
