"""Type stub of the native module ``relcode._native`` (kept in step by tests/python/test_stub.py)."""

import os
from typing import Any

import numpy as np
import numpy.typing as npt

STREAM_VERSION: int
__version__: str

# stream
def philox4x32_10(
    counters: npt.NDArray[np.uint32], key: npt.NDArray[np.uint32]
) -> npt.NDArray[np.uint32]: ...
def derive_key(seed: int, purpose: int) -> tuple[int, int]: ...
def normals(
    seed: int,
    stream_id: int,
    start: int,
    count: int,
    backend_name: str = "auto",
    threads: int | None = None,
    purpose: int = ...,
) -> npt.NDArray[np.float32]: ...
def words(seed: int, purpose: int, stream_id: int, start: int, count: int) -> npt.NDArray[np.uint32]: ...
def uniforms(seed: int, purpose: int, stream_id: int, start: int, count: int) -> npt.NDArray[np.float64]: ...
def ndtri(u: npt.NDArray[np.float64], threads: int | None = None) -> npt.NDArray[np.float64]: ...
def backends() -> list[str]: ...

# channel
def channel_encode(
    method_name: str,
    d: int,
    q_mean: npt.NDArray[np.float64],
    q_std: npt.NDArray[np.float64],
    p_mean: npt.NDArray[np.float32],
    p_std: npt.NDArray[np.float32],
    ids: npt.NDArray[np.uint64],
    seed: int,
    threads: int | None = None,
    **kwargs: Any,
) -> tuple[
    npt.NDArray[np.float32],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint32],
    npt.NDArray[np.uint64],
]: ...
def channel_decode(
    method_name: str,
    d: int,
    index: npt.NDArray[np.uint64],
    aux: npt.NDArray[np.uint64],
    p_mean: npt.NDArray[np.float32],
    p_std: npt.NDArray[np.float32],
    ids: npt.NDArray[np.uint64],
    seed: int,
    threads: int | None = None,
    **kwargs: Any,
) -> npt.NDArray[np.float32]: ...
def channel_check_targets(
    method_name: str,
    d: int,
    q_mean: npt.NDArray[np.float64],
    q_std: npt.NDArray[np.float64],
    p_mean: npt.NDArray[np.float32],
    p_std: npt.NDArray[np.float32],
    **kwargs: object,
) -> None: ...
def channel_budget_bits(method_name: str, **kwargs: object) -> int | None: ...
def channel_kl_bits(
    q_mean: npt.NDArray[np.float64],
    q_std: npt.NDArray[np.float64],
    p_mean: npt.NDArray[np.float32],
    p_std: npt.NDArray[np.float32],
) -> npt.NDArray[np.float64]: ...
def channel_message_bits(
    method_name: str, index: npt.NDArray[np.uint64], aux: npt.NDArray[np.uint64], **kwargs: Any
) -> npt.NDArray[np.uint32]: ...
def channel_message_fields(method_name: str, **kwargs: Any) -> list[str]: ...
def channel_methods() -> list[dict[str, Any]]: ...
def channel_prepare_pool(seed: int, d: int, bits: int, threads: int | None = None) -> None: ...

# format (see python/relcode/format.py for the documented API built on these)
FORMAT_VERSION: tuple[int, int]

# (name, shape, q_mean, q_std, p_mean, p_std); a prior array of length 1 is a scalar prior
_CodedArg = tuple[
    str,
    list[int],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
]
# (name, shape, dtype name, little-endian bytes)
_RawArg = tuple[str, list[int], str, npt.NDArray[np.uint8]]
# (id, rule "fixed"/"sizes"/"explicit", seed, start, count, block size, sizes, members)
_GroupArg = tuple[int, str, int, int, int, int, npt.NDArray[np.uint16] | None, npt.NDArray[np.uint32] | None]
# (name, shape, dtype name, coded, scalar prior mean, scalar prior std); None: per-element
_TensorArg = tuple[str, list[int], str, bool, float | None, float | None]
# (group, method name, index, aux, options)
_MsgArg = tuple[int, str, npt.NDArray[np.uint64], npt.NDArray[np.uint64], dict[str, Any]]
# (tensor name, first element of the tensor in the group, count)
_SpanArg = tuple[str, int, int]
# float32 for coded tensors, little-endian bytes for raw ones
_Decoded = npt.NDArray[np.float32] | npt.NDArray[np.uint8]

def format_encode(
    coded: list[_CodedArg],
    raw: list[_RawArg],
    seed: int,
    method_name: str,
    bits_per_block: float,
    layout: str,
    block_size: int | None,
    max_block_size: int,
    chunk_size: int,
    digest: str,
    meta: Any = None,
    threads: int | None = None,
    max_excess: float | None = None,
    cancel: CancelFlag | None = None,
    **kwargs: Any,
) -> tuple[bytes, dict[str, Any]]: ...
def format_encode_group(
    g: int,
    seed: int,
    start: int,
    q_mean: npt.NDArray[np.float64],
    q_std: npt.NDArray[np.float64],
    p_mean: npt.NDArray[np.float32],
    p_std: npt.NDArray[np.float32],
    method_name: str,
    layout: str,
    size: int,
    bits_per_block: float,
    threads: int | None = None,
    tensors: list[_SpanArg] | None = None,
    max_excess: float | None = None,
    cancel: CancelFlag | None = None,
    **kwargs: Any,
) -> tuple[bytes, bytes, npt.NDArray[np.float32], dict[str, Any]]: ...  # (LAYO, MSGS, values, report)
def format_check_group(
    g: int,
    seed: int,
    start: int,
    q_mean: npt.NDArray[np.float64],
    q_std: npt.NDArray[np.float64],
    p_mean: npt.NDArray[np.float32],
    p_std: npt.NDArray[np.float32],
    method_name: str,
    layout: str,
    size: int,
    bits_per_block: float,
    max_excess: float | None,
    threads: int | None = None,
    tensors: list[_SpanArg] | None = None,
    **kwargs: Any,
) -> int | None: ...  # the budget in bits
def format_assemble(
    seed: int,
    tensors: list[_TensorArg],
    groups: list[_GroupArg],
    raw: list[tuple[int, npt.NDArray[np.uint8]]],  # (tensor, little-endian bytes)
    elems: list[tuple[int, int, npt.NDArray[np.float32]]],  # (tensor, role 1: means / 2: stds, values)
    messages: list[_MsgArg],
    has_messages: bool,
    digest: str,
    meta: Any = None,
    base: FormatReader | None = None,
    instances: int | None = None,
    threads: int | None = None,
) -> tuple[bytes, list[str], npt.NDArray[np.float32]]: ...  # (bytes, digests (hex), coded vector)
def layout_permutation(seed: int, group: int, n: int) -> npt.NDArray[np.uint32]: ...
def layout_check(
    groups: list[_GroupArg],
) -> list[tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]]: ...  # (member order, sizes) per group
def layout_kl_sizes(kl: npt.NDArray[np.float64], budget: float, max_size: int) -> npt.NDArray[np.uint16]: ...

class FormatReader:
    @staticmethod
    def open(
        path: str | os.PathLike[str] | None = None,
        data: bytes | None = None,
        eager: bool = True,
        max_elements: int | None = None,
    ) -> FormatReader: ...
    @staticmethod
    def open_with_base(
        base: FormatReader,
        path: str | os.PathLike[str] | None = None,
        data: bytes | None = None,
        max_elements: int | None = None,
    ) -> FormatReader: ...
    def info(self) -> dict[str, Any]: ...
    # (method, options, blocks, bits) per group
    def message_summary(self) -> list[tuple[str, dict[str, Any], int, int]]: ...
    # (method, options, index, aux)
    def messages(
        self, g: int
    ) -> tuple[str, dict[str, Any], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]: ...
    def file_sha256(self) -> str: ...
    def decoded_tensors(self) -> list[int]: ...
    def decode_all(self, threads: int | None = None) -> list[tuple[int, _Decoded]]: ...
    def decode_tensor(self, t: int, threads: int | None = None) -> _Decoded: ...
    def decode_range(self, e0: int, e1: int, threads: int | None = None) -> npt.NDArray[np.float32]: ...
    def prior_range(self, e0: int, e1: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
    def read_raw(self, t: int) -> npt.NDArray[np.uint8]: ...
    def check_chunks(self) -> None: ...
    def verify(self, threads: int | None = None) -> None: ...

class CancelFlag:
    def __init__(self) -> None: ...
    def set(self) -> None: ...
    def is_set(self) -> bool: ...

class FormatStreamWriter:
    def __init__(
        self,
        path: str | os.PathLike[str],
        seed: int,
        tensors: list[_TensorArg],
        groups: int,
        digest: str = "tensor",
        meta: Any = None,
    ) -> None: ...
    def write_raw(self, tensor: int, start: int, data: npt.NDArray[np.uint8]) -> None: ...
    # role 1: means, 2: stds
    def write_prior(self, tensor: int, role: int, start: int, values: npt.NDArray[np.float32]) -> None: ...
    def write_group(self, start: int, layo: bytes, msgs: bytes, values: npt.NDArray[np.float32]) -> None: ...
    def position(self) -> int: ...
    def finish(self) -> list[str]: ...  # digests (hex)
    def abort(self) -> None: ...
