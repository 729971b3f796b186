"""Type stub of the native module ``relcode._native`` (kept in step by tests/python/test_stub.py)."""

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
def channel_message_bits(
    method_name: str, index: npt.NDArray[np.uint64], aux: npt.NDArray[np.uint64], **kwargs: Any
) -> npt.NDArray[np.uint32]: ...
def channel_message_fields(method_name: str, **kwargs: Any) -> list[str]: ...
def channel_methods() -> list[dict[str, Any]]: ...

# format (see python/relcode/format.py for the documented API built on these)
FORMAT_VERSION: tuple[int, int]

def format_encode(*args: Any, **kwargs: Any) -> Any: ...
def format_encode_group(*args: Any, **kwargs: Any) -> Any: ...
def format_assemble(*args: Any, **kwargs: Any) -> Any: ...
def layout_permutation(seed: int, group: int, n: int) -> npt.NDArray[np.uint32]: ...
def layout_check(*args: Any, **kwargs: Any) -> Any: ...
def layout_kl_sizes(*args: Any, **kwargs: Any) -> Any: ...

class FormatReader:
    def __getattr__(self, name: str) -> Any: ...

class FormatStreamWriter:
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def __getattr__(self, name: str) -> Any: ...
