"""KL-greedy grouping: which parameters are coded together, one 16-bit message per block.

Relative entropy coding sends a block of parameters for about KL(q || p) bits, and a fixed
budget of 2^16 candidates serves a block whose KL is at most about 16 bits. COMBINER
therefore packs parameters into blocks of at most 16 bits of KL (and at most 25 members)
*before* it sees the signal to code: it takes every parameter's KL averaged over the
training posteriors, walks the parameters in a seeded random order and starts a new block
whenever the next parameter would take the block over budget. At coding time a per-block
beta (:class:`~relcode.inr.train.BlockBetas`) pulls each block's actual KL to just under
the budget, so the file's size is ``16 bits x blocks`` plus a header, known in advance.

The grouping depends only on the codec (prior and training KL), the number of patches and
a rate scale, so a decoder recomputes it and no layout is transmitted. When a signal has
several patches the KL vector is the codec's, tiled once per patch, and the permutation
runs over all of it, so blocks mix parameters of different patches (RECOMBINER: budgets
shift between easy and hard patches, +0.5 to 1.5 dB).

:class:`Blocks` is the view the encoder and decoder need of a block layout: members of every
block as indices into the flat ``(patches x parameters)`` vector, and every block's stream
id. It is built from a :class:`relcode.format.Layout` (the file's layout), so that the ids
are those the file format assigns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["Blocks", "kl_greedy_sizes"]


def kl_greedy_sizes(kl_in_order: np.ndarray, budget: float = 16.0, max_size: int = 25) -> np.ndarray:
    """Block sizes of the greedy packing of KL values already in coding order: a block is
    closed when adding the next value would take its KL above ``budget`` or its size above
    ``max_size``; a value over budget on its own gets a block of its own. (The reference
    for the packing rule of ``relcode.format.Layout.kl``.)"""
    kl = np.asarray(kl_in_order, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(kl)) or (kl.size and kl.min() < 0):
        raise InputError("KL values must be finite and non-negative")
    sizes: list[int] = []
    cur, acc = 0, 0.0
    for k in kl.tolist():
        if cur and (acc + k > budget or cur == max_size):
            sizes.append(cur)
            cur, acc = 0, 0.0
        cur += 1
        acc += k
    if cur:
        sizes.append(cur)
    return np.asarray(sizes, dtype=np.int64)


@dataclass
class Blocks:
    """Blocks over a flat vector of ``num_elements`` values: block ``b`` has members
    ``members[offsets[b]:offsets[b+1]]`` (in coding order) and stream id ``ids[b]``."""

    members: np.ndarray
    offsets: np.ndarray
    ids: np.ndarray
    num_elements: int

    @classmethod
    def from_layout(cls, layout) -> Blocks:
        """The blocks of a :class:`relcode.format.Layout` (one coded tensor, or several
        concatenated in the layout's order)."""
        nb = layout.num_blocks
        sizes = np.asarray(layout.block_sizes, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        members = (
            np.concatenate([layout.block_elements(b) for b in range(nb)]) if nb else np.zeros(0, np.int64)
        )
        ids = np.asarray([layout.stream_id(b) for b in range(nb)], dtype=np.uint64)
        return cls(members.astype(np.int64), offsets, ids, int(layout.num_elements))

    @classmethod
    def from_order(cls, order: np.ndarray, sizes: np.ndarray, ids: np.ndarray | None = None) -> Blocks:
        """Blocks cut from a member order by sizes (ids default to block numbers)."""
        order = np.asarray(order, dtype=np.int64)
        sizes = np.asarray(sizes, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        ids = np.arange(sizes.size, dtype=np.uint64) if ids is None else np.asarray(ids, dtype=np.uint64)
        return cls(order, offsets, ids, int(order.size))

    def __post_init__(self) -> None:
        if self.offsets[-1] != self.members.size:
            raise InputError("block offsets do not match the members")
        if self.ids.size != self.num_blocks:
            raise InputError("one stream id per block")

    @property
    def num_blocks(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def block_of(self) -> np.ndarray:
        """(num_elements,) block index of every element."""
        out = np.full(self.num_elements, -1, dtype=np.int64)
        out[self.members] = np.repeat(np.arange(self.num_blocks), self.sizes)
        if (out < 0).any():
            raise InputError("the blocks do not cover every element")
        return out

    def by_size(self, blocks: np.ndarray | None = None) -> dict[int, np.ndarray]:
        """Blocks (all, or the given ones) grouped by size: size -> block indices. One
        channel call codes every block of one size."""
        b = np.arange(self.num_blocks) if blocks is None else np.asarray(blocks, dtype=np.int64)
        sz = self.sizes[b]
        return {int(d): b[sz == d] for d in np.unique(sz)}

    def member_matrix(self, blocks: np.ndarray) -> np.ndarray:
        """(len(blocks), d) members of blocks that all have size d."""
        blocks = np.asarray(blocks, dtype=np.int64)
        if blocks.size == 0:
            return np.zeros((0, 0), dtype=np.int64)
        d = int(self.sizes[blocks[0]])
        idx = self.offsets[blocks][:, None] + np.arange(d)[None, :]
        return self.members[idx]
