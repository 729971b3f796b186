"""Blocks as torch index tensors: which coded variables are sent together as one message.

Each block gets a KL budget (its share of the file) and one message of ``bits`` bits; the
parameterisations need the assignment while training (Mean-KL spreads a block's budget over
its variables, Mean-Var anneals one β per block), so it is fixed when the Bayesian view is
built. MIRACLE assigns variables to equal blocks by a seeded random permutation, which the
decoder regenerates from the seed, so the file stores only the rule: the layout is a
:class:`relcode.format.Layout` (``fixed`` rule), exactly what the file records.

:class:`BlockTensors` is the training-side view of the engine's :class:`relcode.coding.Blocks`
(members of each block in coding order and its stream id): padded index tensors for
vectorised per-block reductions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..coding import Blocks
from ..errors import InputError

__all__ = ["BlockTensors"]


class BlockTensors(nn.Module):
    """``members[b]`` are the variable indices of block ``b``; ``stream_ids[b]`` its stream
    id; :attr:`coding_blocks` the same assignment as the coding engine's :class:`~relcode.coding.Blocks`."""

    def __init__(self, n_vars: int, members: list[np.ndarray], stream_ids: np.ndarray) -> None:
        super().__init__()
        self.n_vars = int(n_vars)
        self.n_blocks = len(members)
        if self.n_blocks == 0 and self.n_vars:
            raise InputError("a layout needs at least one block")
        sizes = np.array([len(m) for m in members], dtype=np.int64)
        if (sizes == 0).any():
            raise InputError("every block needs at least one variable")
        flat = np.concatenate(members) if members else np.zeros(0, np.int64)
        if flat.size != self.n_vars or not np.array_equal(np.sort(flat), np.arange(self.n_vars)):
            raise InputError("the blocks must cover every coded variable exactly once")
        self.members = [np.asarray(m, dtype=np.int64) for m in members]
        self.stream_ids = np.asarray(stream_ids, dtype=np.uint64)
        if self.stream_ids.shape != (self.n_blocks,):
            raise InputError("one stream id per block")
        self.sizes = sizes
        dmax = int(sizes.max()) if self.n_blocks else 0
        index = np.full((self.n_blocks, dmax), self.n_vars, dtype=np.int64)
        for b, m in enumerate(self.members):
            index[b, : len(m)] = m
        block_of = np.empty(self.n_vars, dtype=np.int64)
        for b, m in enumerate(self.members):
            block_of[m] = b
        # position of every variable in the row-major padded (n_blocks, max size) matrix
        where = np.empty(self.n_vars, dtype=np.int64)
        for b, m in enumerate(self.members):
            where[m] = b * dmax + np.arange(len(m))
        self.register_buffer("index", torch.as_tensor(index), persistent=False)
        self.register_buffer("pad", torch.as_tensor(index == self.n_vars), persistent=False)
        self.register_buffer("where", torch.as_tensor(where), persistent=False)
        self.register_buffer("block_of", torch.as_tensor(block_of), persistent=False)
        self.coding_blocks = Blocks.from_order(flat.astype(np.int64), sizes, self.stream_ids)

    @classmethod
    def from_layout(cls, layout: Any) -> BlockTensors:
        """The blocks of a :class:`relcode.format.Layout`, whose coded vector is the model's
        variable vector (coded tensors sorted by name, each flattened)."""
        members = [layout.block_elements(b).astype(np.int64) for b in range(layout.num_blocks)]
        ids = np.array([layout.stream_id(b) for b in range(layout.num_blocks)], dtype=np.uint64)
        return cls(layout.num_elements, members, ids)

    @classmethod
    def fixed(cls, n_vars: int, block_size: int, seed: int) -> BlockTensors:
        """MIRACLE's layout of one tensor of ``n_vars`` variables: a seeded permutation cut
        into blocks of ``block_size`` (the last one shorter)."""
        from ..format import Layout

        return cls.from_layout(Layout.fixed({"v": (n_vars,)}, block_size=block_size, seed=seed))

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Per-block sums of a per-variable vector."""
        out = torch.zeros(self.n_blocks, dtype=values.dtype, device=values.device)
        return out.index_add(0, self.block_of, values)

    def log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """log of the softmax of ``logits`` within each block, as a per-variable vector."""
        padded = torch.cat([logits, logits.new_full((1,), -torch.inf)])[self.index]
        return torch.log_softmax(padded, dim=1).reshape(-1)[self.where]

    def sizes_tensor(self, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.sizes, dtype=like.dtype, device=like.device)
