"""Progressive block coding: the one engine for models, images, audio and pretrained weights.

Relative entropy coding sends a *block* of variables as one message, whose sample is only
approximately a sample of the block's posterior. Coding therefore runs in *rounds*: each
round codes some blocks with one batched channel call per block size, fixes their
variables at the coded float32 samples (exactly what a decoder reconstructs), and lets the
caller fine-tune the variables still uncoded, which then compensate for the error of the
blocks coded before them (MIRACLE's "retrain the rest", COMBINER's and RECOMBINER's
progressive fine-tuning). The rule that turns messages into weights is the channel's, with
each block's own stream id, so messages never depend on how blocks were batched, ordered or
where the search ran (``device``: a GPU finds the same messages as the CPU).

This module is numpy-only. Its users (:mod:`relcode.torch` for any ``nn.Module``,
:mod:`relcode.inr` for images and audio) supply a :class:`Target`: the current posterior,
the per-block KL that orders the blocks, how to fix coded variables, and how to fine-tune.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from . import channel
from .errors import InputError
from .typing import Device, Float32Array

__all__ = [
    "Blocks",
    "CodedBlocks",
    "Coder",
    "Progress",
    "Target",
    "equal_rounds",
    "growing_rounds",
    "progressive",
]


@dataclass
class Blocks:
    """Blocks over a flat vector of ``num_elements`` values: block ``b`` has members
    ``members[offsets[b]:offsets[b+1]]`` (in coding order) and stream id ``ids[b]``."""

    members: np.ndarray
    offsets: np.ndarray
    ids: np.ndarray
    num_elements: int

    @classmethod
    def from_layout(cls, layout: Any) -> Blocks:
        """The blocks of a :class:`relcode.format.Layout` (its coded vector: the coded
        tensors in the layout's order, each flattened), with the ids the file assigns."""
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

    def block(self, b: int) -> np.ndarray:
        """Members of block ``b``, in coding order."""
        return self.members[self.offsets[b] : self.offsets[b + 1]]

    def block_of(self) -> np.ndarray:
        """(num_elements,) block index of every element."""
        out = np.full(self.num_elements, -1, dtype=np.int64)
        out[self.members] = np.repeat(np.arange(self.num_blocks), self.sizes)
        if (out < 0).any():
            raise InputError("the blocks do not cover every element")
        return out

    def by_size(self, blocks: np.ndarray | None = None) -> dict[int, np.ndarray]:
        """Blocks (all, or the given ones) grouped by size: size -> block indices, in
        increasing size. One channel call codes every block of one size."""
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


@dataclass
class CodedBlocks:
    """What one :meth:`Coder.encode` call produced, for the blocks ``blocks`` (in the order
    given): their messages, code lengths, KL at coding time and coded samples."""

    blocks: np.ndarray
    #: (n,) uint64, or (n, k) for methods whose messages have k fields.
    messages: np.ndarray
    #: (n,) int64 message lengths in bits.
    bits: np.ndarray
    #: (n,) KL(Q‖P) in bits of each block when it was coded.
    kl_bits: np.ndarray
    #: the coded float32 sample of each block, in its member order.
    samples: list[np.ndarray]
    #: the members of each block (indices into the coded vector).
    members: list[np.ndarray]

    def flat(self) -> tuple[np.ndarray, Float32Array]:
        """(members, values) of every coded variable, concatenated."""
        if not self.members:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.concatenate(self.members), np.concatenate(self.samples).astype(np.float32)


@dataclass(frozen=True)
class Coder:
    """How blocks are coded: a channel ``method`` with its ``options`` (for fixed-budget
    methods ``bits=C``: one C-bit index per block), the file's ``seed``, where the search
    runs (``device``: "cpu", "auto" or a CUDA device; the messages are the same) and the
    CPU threads."""

    method: str = "pfr"
    options: dict[str, Any] = field(default_factory=lambda: {"bits": 16})
    seed: int = 0
    device: Device = "cpu"
    threads: int | None = None

    def encode(
        self,
        blocks: Blocks,
        chosen: Sequence[int] | np.ndarray,
        q_mean: np.ndarray,
        q_std: np.ndarray,
        p_mean: np.ndarray,
        p_std: np.ndarray,
    ) -> CodedBlocks:
        """Codes blocks ``chosen`` of the flat posterior (float64) against the flat prior
        (float32), one channel call per block size."""
        chosen = np.asarray(chosen, dtype=np.int64).reshape(-1)
        qm, qs = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (q_mean, q_std))
        pm, ps = (np.asarray(a, dtype=np.float32).reshape(-1) for a in (p_mean, p_std))
        for name, a in (("q_mean", qm), ("q_std", qs), ("p_mean", pm), ("p_std", ps)):
            if a.size != blocks.num_elements:
                raise InputError(f"{name} has {a.size} values for {blocks.num_elements} coded variables")
        pos = {int(b): k for k, b in enumerate(chosen)}
        messages: list[Any] = [None] * chosen.size
        bits = np.zeros(chosen.size, dtype=np.int64)
        kl = np.zeros(chosen.size, dtype=np.float64)
        samples: list[Any] = [None] * chosen.size
        members: list[Any] = [None] * chosen.size
        for _, bs in blocks.by_size(chosen).items():
            mem = blocks.member_matrix(bs)
            code = channel.encode(
                qm[mem], qs[mem], pm[mem], ps[mem], method=self.method, seed=self.seed,
                ids=blocks.ids[bs], threads=self.threads, device=self.device, **self.options,
            )  # fmt: skip
            klb = channel.kl_bits(qm[mem], qs[mem], pm[mem], ps[mem]).sum(axis=1)
            for k, b in enumerate(bs):
                i = pos[int(b)]
                messages[i], bits[i], kl[i] = code.message[k], code.bits[k], klb[k]
                samples[i], members[i] = code.sample[k], mem[k]
        msg = np.asarray(messages, dtype=np.uint64) if chosen.size else np.zeros(0, np.uint64)
        return CodedBlocks(chosen, msg, bits, kl, samples, members)

    def decode(
        self, messages: np.ndarray, blocks: Blocks, p_mean: np.ndarray, p_std: np.ndarray
    ) -> Float32Array:
        """The flat coded vector (float32) from every block's message (by block index)."""
        msgs = np.asarray(messages, dtype=np.uint64)
        if msgs.shape[0] != blocks.num_blocks:
            raise InputError(f"expected {blocks.num_blocks} messages, got {msgs.shape[0]}")
        pm = np.ascontiguousarray(p_mean, dtype=np.float32).reshape(-1)
        ps = np.ascontiguousarray(p_std, dtype=np.float32).reshape(-1)
        out = np.zeros(blocks.num_elements, dtype=np.float32)
        for d, bs in blocks.by_size().items():
            mem = blocks.member_matrix(bs)
            x = channel.decode(
                msgs[bs], pm[mem], ps[mem], method=self.method, seed=self.seed, ids=blocks.ids[bs],
                dim=d, threads=self.threads, **self.options,
            )  # fmt: skip
            out[mem.reshape(-1)] = x.reshape(-1)
        return out


class Target(Protocol):
    """What :func:`progressive` codes: a posterior over the flat coded vector that the
    caller can fix variable by variable and fine-tune."""

    def posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The current (q_mean, q_std, p_mean, p_std) per coded variable."""
        ...

    def block_kl(self) -> np.ndarray:
        """The current KL of every block (any unit): it orders ``order="largest_kl"``."""
        ...

    def fix(self, coded: CodedBlocks) -> None:
        """Freezes the coded blocks at their samples."""
        ...

    def finetune(self, round: int, steps: int, remaining: np.ndarray) -> None:
        """Runs ``steps`` fine-tuning steps; ``remaining`` are the blocks still uncoded."""
        ...


@dataclass
class Progress:
    """What :func:`progressive` produced: every block's message (by block index), its code
    length and KL at coding time, the order blocks were coded in, one record per round and
    the seconds spent coding and fine-tuning."""

    messages: np.ndarray
    bits: np.ndarray
    kl_bits: np.ndarray
    order: list[int]
    rounds: list[dict[str, float]]
    seconds: dict[str, float]

    @property
    def total_bits(self) -> int:
        return int(self.bits.sum())


def equal_rounds(n_blocks: int, rounds: int) -> list[int]:
    """Blocks per round: ``rounds`` rounds as equal as possible (MIRACLE)."""
    if n_blocks == 0:
        return []
    rounds = max(1, min(int(rounds), n_blocks))
    base, extra = divmod(n_blocks, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


def growing_rounds(n_blocks: int, rounds: int, growth: float = 4.0) -> list[int]:
    """Blocks per round growing geometrically by ``growth`` from the first round to the last,
    so the first rounds (when fine-tuning helps most) code few blocks (COMBINER)."""
    if n_blocks == 0:
        return []
    rounds = max(1, min(int(rounds), n_blocks))
    w = np.geomspace(1.0, float(growth), rounds)
    sizes = np.maximum(1, np.floor(w / w.sum() * n_blocks)).astype(int)
    i = 0
    while sizes.sum() < n_blocks:
        sizes[-1 - (i % rounds)] += 1
        i += 1
    while sizes.sum() > n_blocks:
        sizes[int(np.argmax(sizes))] -= 1
    return [int(s) for s in sizes if s > 0]


def progressive(
    target: Target,
    blocks: Blocks,
    coder: Coder,
    schedule: Sequence[int],
    *,
    order: str | Sequence[int] = "largest_kl",
    steps: Callable[[int], int] | Sequence[int] | int = 0,
    remaining: Sequence[int] | None = None,
    on_round: Callable[[int, dict[str, float]], None] | None = None,
) -> Progress:
    """Codes the blocks ``remaining`` (default: all) of ``target`` in rounds of
    ``schedule[r]`` blocks, fine-tuning ``steps(r)`` steps after each round while blocks
    remain. ``order``: ``"largest_kl"`` (the uncoded blocks of largest current KL first,
    ties by index; RECOMBINER), ``"index"``, or an explicit sequence of block indices (a
    seeded permutation for MIRACLE's random order). ``on_round(r, record)`` runs after each
    round's fine-tuning."""
    todo = list(range(blocks.num_blocks)) if remaining is None else [int(b) for b in remaining]
    if sum(schedule) != len(todo):
        raise InputError(f"the schedule codes {sum(schedule)} blocks, {len(todo)} remain")
    if isinstance(order, str):
        if order not in ("largest_kl", "index"):
            raise InputError(f"order must be 'largest_kl', 'index' or a sequence, got {order!r}")
    else:
        seq = [int(b) for b in order]
        if sorted(seq) != sorted(todo):
            raise InputError("an explicit order must list every remaining block once")
        todo = seq
    step_of = steps if callable(steps) else (
        (lambda r, s=list(steps): int(s[r])) if isinstance(steps, Sequence) else (lambda _r, n=int(steps): n)
    )  # fmt: skip
    nb = blocks.num_blocks
    fields = len(channel.message_fields(coder.method, **coder.options))
    messages = np.zeros((nb, fields) if fields > 1 else nb, dtype=np.uint64)
    bits = np.zeros(nb, dtype=np.int64)
    kl_bits = np.full(nb, np.nan)
    done: list[int] = []
    history: list[dict[str, float]] = []
    t_code = t_tune = 0.0
    for r, count in enumerate(schedule):
        if order == "largest_kl":
            kl = np.asarray(target.block_kl(), dtype=np.float64)
            pick = sorted(todo, key=lambda b: (-kl[b], b))[:count]
        else:
            pick = todo[:count]
        picked = set(pick)
        todo = [b for b in todo if b not in picked]
        t0 = time.perf_counter()
        q_mean, q_std, p_mean, p_std = target.posterior()
        coded = coder.encode(blocks, pick, q_mean, q_std, p_mean, p_std)
        t_code += time.perf_counter() - t0
        messages[coded.blocks] = coded.messages
        bits[coded.blocks] = coded.bits
        kl_bits[coded.blocks] = coded.kl_bits
        done.extend(int(b) for b in coded.blocks)
        target.fix(coded)
        k = int(step_of(r)) if todo else 0
        if k > 0:
            t0 = time.perf_counter()
            target.finetune(r, k, np.asarray(todo, dtype=np.int64))
            t_tune += time.perf_counter() - t0
        rec = {
            "round": r,
            "coded_blocks": len(done),
            "kl_coded_bits": float(coded.kl_bits.sum()),
            "kl_max_bits": float(coded.kl_bits.max()) if coded.kl_bits.size else 0.0,
            "finetune_steps": k,
        }
        history.append(rec)
        if on_round is not None:
            on_round(r, rec)
    return Progress(messages, bits, kl_bits, done, history, {"coding": t_code, "fine_tuning": t_tune})
