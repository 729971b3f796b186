"""The decoder path in plain numpy: Philox4x32-10, the normal transform, ``ndtri`` and
candidate weights, written from spec/stream.md without any native code, and the KL-greedy
packing rule of spec/format.md.

It exists to prove the specification is complete and the Rust code follows it: tests
compare every function here with its native twin bit for bit. It is slow by design
(clarity over speed) and never used by the encoder or decoder.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "candidate",
    "candidate_position",
    "derive_key",
    "kl_greedy_sizes",
    "ndtri",
    "normals",
    "philox4x32_10",
    "uniforms",
]

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_KDF_TAG = int.from_bytes(b"relc", "little")
_PURPOSE_CAND = int.from_bytes(b"CAND", "little")


def philox4x32_10(counters: Any, key: Any) -> np.ndarray:
    """Philox4x32-10 of each row of ``counters`` (n, 4) under ``key`` (2,)."""
    c = np.asarray(counters, dtype=np.uint64).reshape(-1, 4)
    c0, c1, c2, c3 = (c[:, i].copy() for i in range(4))
    k0, k1 = (int(x) for x in np.asarray(key, dtype=np.uint64).reshape(2))
    for r in range(10):
        if r:
            k0 = (k0 + _W0) & 0xFFFFFFFF
            k1 = (k1 + _W1) & 0xFFFFFFFF
        p0 = _M0 * c0
        p1 = _M1 * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & _MASK32
        hi1, lo1 = p1 >> np.uint64(32), p1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


def derive_key(seed: int, purpose: int) -> np.ndarray:
    """Key of (seed, purpose): words 0 and 1 of Philox([purpose, 'relc', 0, 0], seed)."""
    out = philox4x32_10([[purpose, _KDF_TAG, 0, 0]], [seed & 0xFFFFFFFF, seed >> 32])
    return out[0, :2].copy()


# ------------------------------------------------------------------ float32 elementary functions
def _f32(bits: int) -> np.float32:
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


_LOGF_P = [
    _f32(b) for b in (0x3EAAAB6C, 0xBE8001C1, 0x3E4C6BF8, 0xBE29C126, 0x3E18BA38, 0xBE121955, 0x3DB22EF1)
]
_LN2_HI_F = _f32(0x3F318000)
_LN2_LO_F = _f32(0xB95E8083)
_SIN_S = [_f32(b) for b in (0xBE2AAAA3, 0x3C08839D, 0xB94CA1F0)]
_COS_C = [_f32(b) for b in (0x3D2AAAA5, 0xBAB6061A, 0x37CCF5CD)]
_PI_4_F = _f32(0x3F490FDB)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_TWO_M23 = np.float32(2.0**-23)
_TWO_M32 = np.float32(2.0**-32)


def _logf(x: np.ndarray) -> np.ndarray:
    bits = x.view(np.uint32)
    e = ((bits >> np.uint32(23)) & np.uint32(0xFF)).astype(np.int32) - np.int32(127)
    mbits = (bits & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000)
    big = mbits > np.uint32(0x3FB504F3)
    mbits = np.where(big, mbits - np.uint32(0x00800000), mbits).astype(np.uint32)
    e = e + big.astype(np.int32)
    f = mbits.view(np.float32) - _ONE
    z = f * f
    p = _LOGF_P[6]
    for c in reversed(_LOGF_P[:6]):
        p = p * f + c
    ef = e.astype(np.float32)
    t = f * z
    t = t * p
    t = t + ef * _LN2_LO_F
    t = t - _HALF * z
    s = f + t
    return s + ef * _LN2_HI_F


def _sincos_octant(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = a * a
    p = _SIN_S[2]
    p = p * x + _SIN_S[1]
    p = p * x + _SIN_S[0]
    t = a * x
    t = t * p
    s = a + t
    q = _COS_C[2]
    q = q * x + _COS_C[1]
    q = q * x + _COS_C[0]
    u = x * x
    u = u * q
    v = _ONE - _HALF * x
    return s, v + u


def _box_muller(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    j = a >> np.uint32(9)
    xm = (j.astype(np.float32) + _HALF) * _TWO_M23
    xt = ((a & np.uint32(0x1FF)).astype(np.float32) + _HALF) * _TWO_M32
    x = np.where(j != 0, xm, xt).astype(np.float32)
    r = np.sqrt(_logf(x) * np.float32(-2.0))
    o = b >> np.uint32(29)
    t = (b >> np.uint32(6)) & np.uint32(0x007FFFFF)
    t = np.where((o & np.uint32(1)) == 1, t ^ np.uint32(0x007FFFFF), t).astype(np.uint32)
    alpha = ((t.astype(np.float32) + _HALF) * _TWO_M23) * _PI_4_F
    s, c = _sincos_octant(alpha)
    swap = (((o + np.uint32(1)) >> np.uint32(1)) & np.uint32(1)) == 1
    cs = np.where(swap, s, c).astype(np.float32)
    sn = np.where(swap, c, s).astype(np.float32)
    cs = np.where((((o + np.uint32(2)) >> np.uint32(2)) & np.uint32(1)) == 1, -cs, cs).astype(np.float32)
    sn = np.where(((o >> np.uint32(2)) & np.uint32(1)) == 1, -sn, sn).astype(np.float32)
    return r * cs, r * sn


def normals(seed: int, stream: int, start: int, count: int, purpose: int = _PURPOSE_CAND) -> np.ndarray:
    """Normals ``start .. start + count - 1`` of stream (seed, purpose, stream), float32."""
    if count == 0:
        return np.zeros(0, dtype=np.float32)
    b0, b1 = start >> 2, (start + count - 1) >> 2
    w = _blocks(seed, purpose, stream, b0, b1)
    z0, z1 = _box_muller(w[:, 0], w[:, 1])
    z2, z3 = _box_muller(w[:, 2], w[:, 3])
    z = np.stack([z0, z1, z2, z3], axis=1).reshape(-1)
    off = start - 4 * b0
    return z[off : off + count].astype(np.float32)


def _blocks(seed: int, purpose: int, stream: int, first: int, last: int) -> np.ndarray:
    key = derive_key(seed, purpose)
    blocks = np.arange(first, last + 1, dtype=np.uint64)
    ctr = np.stack(
        [
            blocks & _MASK32,
            blocks >> np.uint64(32),
            np.full_like(blocks, stream & 0xFFFFFFFF),
            np.full_like(blocks, stream >> 32),
        ],
        axis=1,
    )
    return philox4x32_10(ctr, key)


def uniforms(seed: int, purpose: int, stream: int, start: int, count: int) -> np.ndarray:
    """Uniforms ``start .. start + count - 1`` (u52 of spec/stream.md section 3), float64."""
    if count == 0:
        return np.zeros(0, dtype=np.float64)
    b0, b1 = start >> 1, (start + count - 1) >> 1
    w = _blocks(seed, purpose, stream, b0, b1).astype(np.uint64)
    hi = np.stack([w[:, 0], w[:, 2]], axis=1).reshape(-1)
    lo = np.stack([w[:, 1], w[:, 3]], axis=1).reshape(-1)
    k = (hi << np.uint64(20)) | (lo >> np.uint64(12))
    u = (k.astype(np.float64) + np.float64(0.5)) * np.float64(2.0**-52)
    off = start - 2 * b0
    return u[off : off + count]


def candidate_position(index: int, j: int, d: int) -> int:
    """Stream position of normal ``j`` of candidate ``index`` of a ``d``-dimensional block:
    the group-interleaved layout ``floor(k / 16) 16 d + 16 j + (k mod 16)`` (spec/stream.md
    section 5, spec/channel.md section 2)."""
    return (index // 16) * 16 * d + 16 * j + index % 16


def candidate(seed: int, stream: int, index: int, prior_mean: Any, prior_std: Any) -> np.ndarray:
    """Candidate ``index`` of a block with stream id ``stream``: float32 mean + std * z, with
    normal j at ``candidate_position(index, j, d)`` of stream (seed, ``CAND``, stream)."""
    pm = np.asarray(prior_mean, dtype=np.float32).reshape(-1)
    ps = np.asarray(prior_std, dtype=np.float32).reshape(-1)
    d = pm.size
    # normals j = 0 .. d-1 lie 16 positions apart
    z = normals(seed, stream, candidate_position(index, 0, d), 16 * (d - 1) + 1)[::16]
    return ps * z + pm


# ------------------------------------------------------------------ float64 log and ndtri
def _f64(bits: int) -> np.float64:
    return np.array([bits], dtype=np.uint64).view(np.float64)[0]


_LOGD_R = [
    _f64(b)
    for b in (
        0x3FE5555555555592,
        0x3FD999999997FDB6,
        0x3FD24924941F135A,
        0x3FCC71C520951610,
        0x3FC74663EEA91664,
        0x3FC39A1BA854059F,
        0x3FC2F056555D502B,
    )
]
_LN2_HI_D = _f64(0x3FE62E42FEE00000)
_LN2_LO_D = _f64(0x3DEA39EF35793C76)
_AS241 = {
    name: [_f64(b) for b in bits]
    for name, bits in {
        "A": (0x400B18D91E9EEF75, 0x4060A4888B1A436E, 0x409ECE5D2213C0CC, 0x40CAD1D8CD4EE71D,
              0x40E66C3E869B752A, 0x40F06C1C55B78F20, 0x40E052D26B2E45E4, 0x40A39A296F7D925E),
        "B": (0x3FF0000000000000, 0x4045281B386E1AB5, 0x4085797EFDC8B3F7, 0x40B512322E75C89F,
              0x40D4B772D5D65266, 0x40E3317CAA64F4BE, 0x40DC0E457CB1AE76, 0x40B46A7ECA984B69),
        "C": (0x3FF6C665FDE9526A, 0x4012857748CAB19B, 0x401713F71462256A, 0x400D2ECB1A3D02C4,
              0x3FF453CC085375B2, 0x3FCEF2ABB9B85C37, 0x3F9744EB6C45EC67, 0x3F49615AC0B7ACE9),
        "D": (0x3FF0000000000000, 0x40006CEFBB46A449, 0x3FFAD278E6526633, 0x3FE61292F23385C9,
              0x3FC2F5123394F040, 0x3F8F207A7EAB17BF, 0x3F41F18CBFDF2728, 0x3E120D3F686439E4),
        "E": (0x401AA1B1C13EE526, 0x4015DAEA6E875003, 0x3FFC8EA6461FA445, 0x3FD2FAD9315255CF,
              0x3F9B2B41193B4EE7, 0x3F545C1908425345, 0x3EFC6EC6CC59E02A, 0x3E8AFB74D693BF93),
        "F": (0x3FF0000000000000, 0x3FE331D34FC7D77F, 0x3FC186EB183443FB, 0x3F8E76F93215462A,
              0x3F49C8BC979DC5D7, 0x3EF35C2C496374BF, 0x3E831446F740B9E0, 0x3CE269BFF1F8C190),
    }.items()
}  # fmt: skip
_CONST1 = _f64(0x3FC71EB851EB851F)  # 0.425 ** 2
_SPLIT1 = _f64(0x3FDB333333333333)  # 0.425
_CONST2 = _f64(0x3FF999999999999A)  # 1.6
_SPLIT2 = np.float64(5.0)


def _logd(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).copy()
    bits = x.view(np.uint64)
    e = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    sub = e == 0
    if sub.any():
        x[sub] = x[sub] * np.float64(2.0**54)
        bits = x.view(np.uint64)
        e = np.where(sub, ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 54, e)
    e = e - 1023
    mbits = (bits & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000)
    big = mbits > np.uint64(0x3FF6A09E667F3BCC)
    mbits = np.where(big, mbits - np.uint64(0x0010000000000000), mbits).astype(np.uint64)
    e = e + big.astype(np.int64)
    f = mbits.view(np.float64) - np.float64(1.0)
    s = f / (np.float64(2.0) + f)
    z = s * s
    r = _LOGD_R[6]
    for c in reversed(_LOGD_R[:6]):
        r = r * z + c
    r = r * z
    ef = e.astype(np.float64)
    t = s * r
    t = t + ef * _LN2_LO_D
    t = t + (s + s)
    return t + ef * _LN2_HI_D


def _horner8(c: list[np.float64], x: np.ndarray) -> np.ndarray:
    p = c[7]
    for ck in reversed(c[:7]):
        p = p * x + ck
    return p


def ndtri(u: Any) -> np.ndarray:
    """Inverse standard normal CDF (AS241 with our own log), float64, for 0 < u < 1."""
    p = np.asarray(u, dtype=np.float64)
    shape = p.shape
    p = p.reshape(-1)
    if not np.all((p > 0) & (p < 1)):
        raise ValueError("ndtri needs values strictly inside (0, 1)")
    out = np.empty_like(p)
    q = p - np.float64(0.5)
    central = np.abs(q) <= _SPLIT1
    if central.any():
        qc = q[central]
        r = _CONST1 - qc * qc
        out[central] = (qc * _horner8(_AS241["A"], r)) / _horner8(_AS241["B"], r)
    tail = ~central
    if tail.any():
        qt = q[tail]
        t = np.where(qt < 0, p[tail], np.float64(1.0) - p[tail])
        r = np.sqrt(-_logd(t))
        val = np.empty_like(r)
        mid = r <= _SPLIT2
        rm = r[mid] - _CONST2
        val[mid] = _horner8(_AS241["C"], rm) / _horner8(_AS241["D"], rm)
        rf = r[~mid] - _SPLIT2
        val[~mid] = _horner8(_AS241["E"], rf) / _horner8(_AS241["F"], rf)
        out[tail] = np.where(qt < 0, -val, val)
    return out.reshape(shape)


def kl_greedy_sizes(kl_in_order: Any, budget: float = 16.0, max_size: int = 25) -> np.ndarray:
    """Block sizes of the KL-greedy packing (spec/format.md, layout rule ``kl``) of KL values
    already in coding order: a block is closed when adding the next value would take its KL
    above ``budget`` or its size above ``max_size``; a value over budget on its own gets a
    block of its own."""
    kl = np.asarray(kl_in_order, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(kl)) or (kl.size and kl.min() < 0):
        raise ValueError("KL values must be finite and non-negative")
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
