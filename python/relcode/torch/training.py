"""Training a Bayesian view: the β-ELBO of MIRACLE, minibatch by minibatch.

The loss of one step is the data term (``loss_fn`` of the model's output and the targets,
a mean over the batch, as MIRACLE) plus the parameterisation's KL penalty (Mean-Var:
Σ_b β_b KL_b over uncoded blocks, with β annealed after every step; Mean-KL: nothing, every
block is at its budget by construction). A non-finite loss stops training with a
:class:`~relcode.errors.TrainingError` naming the step, rather than letting NaN weights reach
a file.

``data`` is any re-iterable of ``(inputs, targets)`` batches (a ``DataLoader``), cycled
as needed; :func:`batches` makes one from two tensors.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import InputError, TrainingError
from .bayesian import BayesianModel

__all__ = ["Trainer", "batches", "evaluate", "fit"]


class batches:  # used like a function returning an iterable
    """Shuffled minibatches of ``(x, y)``, reshuffled (seeded) on every pass.

    >>> import torch
    >>> b = batches(torch.arange(10.0), torch.arange(10), batch_size=4, seed=0)
    >>> [len(x) for x, _ in b]
    [4, 4, 2]
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0, drop_last: bool = False
    ):
        if len(x) != len(y):
            raise InputError(f"inputs and targets differ in length: {len(x)} and {len(y)}")
        if batch_size < 1 or len(x) == 0:
            raise InputError("batch_size must be positive and the data non-empty")
        self.x, self.y, self.batch_size, self.drop_last = x, y, int(batch_size), drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        perm = torch.randperm(len(self.x), generator=self.generator)
        n = len(perm) - (len(perm) % self.batch_size if self.drop_last else 0)
        for i in range(0, n, self.batch_size):
            idx = perm[i : i + self.batch_size]
            yield self.x[idx], self.y[idx]

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def _cycle(data: Iterable[Any]) -> Iterator[Any]:
    while True:
        empty = True
        for item in data:
            empty = False
            yield item
        if empty:
            raise InputError("the training data yielded no batches (an exhausted iterator cannot be cycled)")


def _to(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def _device_of(model: BayesianModel) -> torch.device:
    return model.coded.device


class Trainer:
    """Adam on a Bayesian view's trainable parameters over cycled ``data``.

    ``loss_fn(output, targets)`` is the data term (default cross-entropy). ``lr`` is the
    learning rate of the posterior and prior parameters (default: the parameterisation's,
    3e-2 for Mean-KL's dimensionless logits and locations, 1e-3 for Mean-Var's means and
    standard deviations in weight units); ``lr_uncoded`` that of the wrapped model's ordinary
    (uncoded) parameters. Adam's moments carry over between calls to :meth:`run`.
    """

    def __init__(
        self,
        model: BayesianModel,
        data: Iterable[Any],
        *,
        loss_fn: Callable[[Any, Any], torch.Tensor] = F.cross_entropy,
        lr: float | None = None,
        lr_uncoded: float = 1e-3,
        device: str | torch.device | None = None,
    ) -> None:
        if not isinstance(model, BayesianModel):
            raise InputError("Trainer needs a relcode.torch.BayesianModel")
        lr = model.posterior_param.default_lr if lr is None else lr
        if not (lr > 0 and lr_uncoded > 0):
            raise InputError("learning rates must be positive")
        self.model = model
        if device is not None:
            model.to(device)
        self.device = _device_of(model)
        self.data = _cycle(data)
        self.loss_fn = loss_fn
        self.lr = lr
        own = {id(p) for p in model.module.parameters()}
        groups = [
            {"params": [p for p in model.trainable_parameters() if id(p) not in own], "lr": lr},
            {"params": [p for p in model.trainable_parameters() if id(p) in own], "lr": lr_uncoded},
        ]
        self.optimizer = torch.optim.Adam([g for g in groups if g["params"]])
        self.steps = 0

    def step(self) -> dict[str, float]:
        """One optimiser step; returns the step's data loss and (uncoded) KL in nats."""
        model = self.model
        model.train()
        x, y = _to(next(self.data), self.device)
        out = model(x)
        nll = self.loss_fn(out, y)
        active = ~model.block_coded
        if model.posterior_param.trains_on_kl:
            block_kl = model.block_kl()
            loss = nll + model.kl_penalty(block_kl)
        else:  # Mean-KL: every block's KL is its budget by construction
            block_kl = torch.full_like(active, model.posterior_param.kl_nats, dtype=torch.float64)
            loss = nll
        if not torch.isfinite(loss):
            raise TrainingError(
                f"the training loss became {loss.item()} at step {self.steps} (data term {nll.item()}); "
                "lower the learning rate or check the data and the loss function"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        model.posterior_param.after_step(block_kl.detach(), active)
        self.steps += 1
        return {
            "loss": loss.detach().item(),
            "nll": nll.detach().item(),
            "kl": (block_kl.detach() * active).sum().item(),
        }

    def run(
        self,
        steps: int,
        *,
        progress: bool | str = True,
        callback: Callable[[int, dict[str, float]], Any] | None = None,
    ) -> list[dict[str, float]]:
        """``steps`` optimiser steps; ``callback(step, info)`` after each (return ``False`` to
        stop early). Progress goes to stderr (``progress`` may be the bar's label)."""
        if steps < 0:
            raise InputError("steps must be non-negative")
        history = []
        desc = progress if isinstance(progress, str) else "training"
        bar = tqdm(total=steps, desc=desc, disable=not progress or steps == 0, file=sys.stderr, leave=False)
        t0 = time.perf_counter()
        try:
            for _ in range(steps):
                info = self.step()
                history.append(info)
                bar.update(1)
                if self.steps % 20 == 0:
                    bar.set_postfix(nll=f"{info['nll']:.3f}", kl_bits=f"{info['kl'] / math.log(2):.0f}")
                if callback is not None and callback(self.steps, info) is False:
                    break
        finally:
            bar.close()
        if history:
            history[-1]["seconds"] = time.perf_counter() - t0
        return history


def fit(
    model: BayesianModel,
    data: Iterable[Any],
    steps: int,
    *,
    loss_fn: Callable[[Any, Any], torch.Tensor] = F.cross_entropy,
    lr: float | None = None,
    device: str | torch.device | None = None,
    progress: bool | str = True,
    callback: Callable[[int, dict[str, float]], Any] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` for ``steps`` minibatch steps (see :class:`Trainer`)."""
    return Trainer(model, data, loss_fn=loss_fn, lr=lr, device=device).run(
        steps, progress=progress, callback=callback
    )


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Classification accuracy of ``model`` in evaluation mode (posterior means for a
    Bayesian view) on ``(x, y)``, on the model's device."""
    was = model.training
    model.eval()
    dev = next(iter(model.buffers()), next(iter(model.parameters()), None))
    device = dev.device if dev is not None else torch.device("cpu")
    correct = 0
    for i in range(0, len(x), batch_size):
        out = model(x[i : i + batch_size].to(device))
        correct += int((out.argmax(-1).cpu() == y[i : i + batch_size]).sum())
    model.train(was)
    return correct / max(len(x), 1)
