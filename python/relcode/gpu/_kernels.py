"""Triton kernels of the GPU encoder: the normative stream, the scores and the encoder noise.

Every function below transcribes spec/stream.md and spec/channel.md operation by operation;
the comments name the section. Why this is enough for bit identity with the CPU:

- Candidate generation uses only integer operations, conversions of integers below 2^24
  to binary32 (exact), binary32 +, -, x (correctly rounded on every IEEE device) and
  ``sqrt_rn`` (the correctly rounded square root; plain ``tl.sqrt`` is an approximation on
  NVIDIA GPUs). No division occurs in it, and no intermediate value is subnormal.
- Kernels are launched with floating-point contraction off (``enable_fp_fusion=False``:
  no fused multiply-add from LLVM, and ``--fmad=false`` for ptxas), so ``a * b + c`` is two
  roundings, as in the specification and the CPU code; ``enable_reflect_ftz=False`` keeps
  library calls from flushing subnormals.
- The scores, the encoder noise and the keys follow the CPU encoder
  (rust/relcode/src/channel/fixed.rs) in the same order, in the same precisions: the f64
  increments of ORC use the correctly rounded f64 division, and the prefix sums of the
  PFR/ORC arrival times use the same blocks of sixteen, the same Hillis-Steele tree inside
  a block and the same sequential carry across blocks (see ``_carry_kernel``).

Layout. One program scores ``G`` consecutive groups of sixteen candidates of ``B``
consecutive problems. Its tensors have shape [B, G, 4]: problem, group, and m, the Philox
block inside the group; the four words w of a block are four such tensors. Candidate
16 g + 4 m + w of a problem reads, in dimension j, word w of CAND block 4 g d + 4 j + m
(spec/channel.md section 2: positions 16 j + l of group g are dimension j of its candidates
l = 0 .. 15), and its noise is word w of NOIS block 4 g + m, so generation, scoring and
noise are element-wise and every Philox block feeds four candidates of one group. Only the
Hillis-Steele prefix of PFR/ORC crosses blocks: it runs on the sixteen (m, w) slices of a
group, split out once per tile. Large tensors also keep the interpreter (per-operation
overhead) fast enough for tests; on a GPU, B = 1 (B > 1 in pool mode shares each pool load
between problems).

This module is imported by :mod:`relcode.gpu` only, once compiled and once under Triton's
interpreter when asked, so ``import relcode`` never imports Triton.
"""

# Triton's front end builds tuples by concatenation; it has no starred expressions.
# ruff: noqa: RUF005

from __future__ import annotations

import struct

import triton
import triton.language as tl


def _f32(bits: int) -> float:
    """The binary32 value with these bits, as a Python float (exactly representable)."""
    return struct.unpack("<f", struct.pack("<I", bits))[0]


# Philox4x32-10 (spec/stream.md section 1).
PHILOX_M0 = tl.constexpr(0xD2511F53)
PHILOX_M1 = tl.constexpr(0xCD9E8D57)
PHILOX_W0 = tl.constexpr(0x9E3779B9)
PHILOX_W1 = tl.constexpr(0xBB67AE85)

# logf (section 4.1), sincos (section 4.2): exact binary32 constants.
LOGF_P0 = tl.constexpr(_f32(0x3EAAAB6C))
LOGF_P1 = tl.constexpr(_f32(0xBE8001C1))
LOGF_P2 = tl.constexpr(_f32(0x3E4C6BF8))
LOGF_P3 = tl.constexpr(_f32(0xBE29C126))
LOGF_P4 = tl.constexpr(_f32(0x3E18BA38))
LOGF_P5 = tl.constexpr(_f32(0xBE121955))
LOGF_P6 = tl.constexpr(_f32(0x3DB22EF1))
LN2_HI = tl.constexpr(_f32(0x3F318000))
LN2_LO = tl.constexpr(_f32(0xB95E8083))
SIN_S0 = tl.constexpr(_f32(0xBE2AAAA3))
SIN_S1 = tl.constexpr(_f32(0x3C08839D))
SIN_S2 = tl.constexpr(_f32(0xB94CA1F0))
COS_C0 = tl.constexpr(_f32(0x3D2AAAA5))
COS_C1 = tl.constexpr(_f32(0xBAB6061A))
COS_C2 = tl.constexpr(_f32(0x37CCF5CD))
PI_4 = tl.constexpr(_f32(0x3F490FDB))
TWO_M23 = tl.constexpr(2.0**-23)
TWO_M32 = tl.constexpr(2.0**-32)

# Selection rules, as in fixed.rs.
MRC = tl.constexpr(0)
ORC = tl.constexpr(1)
PFR = tl.constexpr(2)

#: Index stored for "no candidate" (every key NaN or -inf); the host maps it to 0.
NO_INDEX = tl.constexpr(0x7FFFFFFFFFFFFFFF)


# ------------------------------------------------------------------ the stream (spec/stream.md)
@triton.jit
def _round_keys(k0, k1):
    """The Philox key of every round: (k0 + r W0, k1 + r W1) mod 2^32, r = 0 .. 9."""
    rk = ()
    for r in tl.static_range(10):
        rk = rk + (k0 + ((r * PHILOX_W0) & 0xFFFFFFFF), k1 + ((r * PHILOX_W1) & 0xFFFFFFFF))
    return rk


@triton.jit
def _philox(c0, c1, c2, c3, rk):
    """Philox4x32-10 of counter (c0, c1, c2, c3) under round keys ``rk`` (section 1)."""
    for r in tl.static_range(10):
        lo0 = c0 * PHILOX_M0
        hi0 = tl.umulhi(c0, PHILOX_M0)
        lo1 = c2 * PHILOX_M1
        hi1 = tl.umulhi(c2, PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ rk[2 * r], lo1, hi0 ^ c3 ^ rk[2 * r + 1], lo0
    return c0, c1, c2, c3


@triton.jit
def _block(q, idlo, idhi, rk):
    """Block ``q`` (int64 or uint64 >= 0) of the stream with id (idlo, idhi) (section 2)."""
    return _philox(q.to(tl.uint32), (q >> 32).to(tl.uint32), idlo, idhi, rk)


@triton.jit
def _logf(x):
    """logf of section 4.1, binary32, in the specified order."""
    bits = x.to(tl.uint32, bitcast=True)
    mb = (bits & 0x007FFFFF) | 0x3F800000
    big = mb > 0x3FB504F3
    mb = tl.where(big, mb - 0x00800000, mb)
    e = ((bits >> 23) & 0xFF).to(tl.int32) - 127 + big.to(tl.int32)
    f = mb.to(tl.float32, bitcast=True) - 1.0
    z = f * f
    p = f * LOGF_P6 + LOGF_P5
    p = p * f + LOGF_P4
    p = p * f + LOGF_P3
    p = p * f + LOGF_P2
    p = p * f + LOGF_P1
    p = p * f + LOGF_P0
    ef = e.to(tl.float32)
    t = f * z
    t = t * p
    t = t + ef * LN2_LO
    t = t - 0.5 * z
    s = f + t
    return s + ef * LN2_HI


@triton.jit
def _sincos(a):
    """(sin a, cos a) of section 4.2 for a in (0, pi/4)."""
    x = a * a
    p = x * SIN_S2 + SIN_S1
    p = p * x + SIN_S0
    t = a * x
    t = t * p
    s = a + t
    q = x * COS_C2 + COS_C1
    q = q * x + COS_C0
    u = x * x
    u = u * q
    v = 1.0 - 0.5 * x
    return s, v + u


@triton.jit
def _fine_uniform(a):
    """The Box-Muller radius uniform of a word (section 5), in [2^-33, 1 - 2^-24]."""
    # (j + 1/2) 2^-23 with j = a >> 9, or ((a & 0x1FF) + 1/2) 2^-32 when j = 0 (then a < 2^9):
    # the operands are selected first, so each branch runs the same two roundings as specified
    j = a >> 9
    hi = j != 0
    v = tl.where(hi, j, a)
    return (v.to(tl.float32) + 0.5) * tl.where(hi, TWO_M23, TWO_M32)


@triton.jit
def _box_muller(a, b):
    """boxmuller(a, b) of section 5: two binary32 normals."""
    r = tl.math.sqrt_rn(_logf(_fine_uniform(a)) * -2.0)
    o = b >> 29
    t = (b >> 6) & 0x7FFFFF
    t = tl.where((o & 1) == 1, t ^ 0x7FFFFF, t)
    alpha = ((t.to(tl.float32) + 0.5) * TWO_M23) * PI_4
    s, c = _sincos(alpha)
    swap = (((o + 1) >> 1) & 1) == 1
    cs = tl.where(swap, s, c)
    sn = tl.where(swap, c, s)
    # s and c are never zero here, so 0 - x is the exact negation
    cs = tl.where((((o + 2) >> 2) & 1) == 1, -cs, cs)
    sn = tl.where(((o >> 2) & 1) == 1, -sn, sn)
    return r * cs, r * sn


@triton.jit
def _block_normals(q, idlo, idhi, rk):
    """The four normals of Philox block ``q``: boxmuller(w0, w1), then boxmuller(w2, w3)."""
    w0, w1, w2, w3 = _block(q, idlo, idhi, rk)
    z0, z1 = _box_muller(w0, w1)
    z2, z3 = _box_muller(w2, w3)
    return z0, z1, z2, z3


@triton.jit
def _load_key(keys_ptr, i):
    """Round keys of key ``i`` of the per-call key table (int32 storage, uint32 values)."""
    k0 = tl.load(keys_ptr + 2 * i).to(tl.uint32, bitcast=True)
    k1 = tl.load(keys_ptr + 2 * i + 1).to(tl.uint32, bitcast=True)
    return _round_keys(k0, k1)


@triton.jit
def _load_id(ids_ptr, row):
    """The 64-bit stream id of problem ``row`` (int64 storage) as (low, high) uint32 words."""
    v = tl.load(ids_ptr + row).to(tl.uint64, bitcast=True)
    return v.to(tl.uint32), (v >> 32).to(tl.uint32)


# ------------------------------------------------------------------ layout helpers
# Only builtins and the functions of this module are called: the ``triton.language`` helpers
# written in Triton itself (tl.max, tl.zeros, ...) cannot run in the interpreter copy.
@triton.jit
def _max2(a, b):
    return tl.maximum(a, b)


@triton.jit
def _min2(a, b):
    return tl.minimum(a, b)


@triton.jit
def _split4(x):
    """The four m-slices [B, G] of a [B, G, 4] tensor."""
    even, odd = tl.split(tl.reshape(x, (x.shape[0], x.shape[1], 2, 2)))
    x0, x2 = tl.split(even)
    x1, x3 = tl.split(odd)
    return x0, x1, x2, x3


@triton.jit
def _join4(x0, x1, x2, x3):
    """The [B, G, 4] tensor of four m-slices [B, G] (inverse of ``_split4``)."""
    return tl.reshape(tl.join(tl.join(x0, x2), tl.join(x1, x3)), (x0.shape[0], x0.shape[1], 4))


@triton.jit
def _to_lanes(w0, w1, w2, w3):
    """Sixteen [B, G] tensors, candidate l = 4 m + w of each group, from four words [B, G, 4]."""
    a0, a1, a2, a3 = _split4(w0)
    b0, b1, b2, b3 = _split4(w1)
    c0, c1, c2, c3 = _split4(w2)
    d0, d1, d2, d3 = _split4(w3)
    return (a0, b0, c0, d0, a1, b1, c1, d1, a2, b2, c2, d2, a3, b3, c3, d3)


@triton.jit
def _from_lanes(x):
    """Inverse of ``_to_lanes``: four words [B, G, 4] from sixteen candidates [B, G]."""
    w0 = _join4(x[0], x[4], x[8], x[12])
    w1 = _join4(x[1], x[5], x[9], x[13])
    w2 = _join4(x[2], x[6], x[10], x[14])
    w3 = _join4(x[3], x[7], x[11], x[15])
    return w0, w1, w2, w3


# ------------------------------------------------------------------ encoder noise (channel.md s. 6)
@triton.jit
def _exponentials(nblk, idlo, idhi, rk):
    """E = -logf(fine uniform) of the four words of NOIS blocks ``nblk`` (= 4 g + m)."""
    w0, w1, w2, w3 = _block(nblk, idlo, idhi, rk)
    # logf < 0 on [2^-33, 1 - 2^-24], so 0 - logf is the exact negation
    e0 = -_logf(_fine_uniform(w0))
    e1 = -_logf(_fine_uniform(w1))
    e2 = -_logf(_fine_uniform(w2))
    e3 = -_logf(_fine_uniform(w3))
    return e0, e1, e2, e3


@triton.jit
def _hillis_steele(x):
    """Inclusive prefix sums of a 16-tuple, steps 1, 2, 4, 8, each from the previous step's
    values: exactly fixed.rs ``prefix`` without the carry."""
    for s in tl.static_range(4):
        y = ()
        for lane in tl.static_range(16):
            if lane >= (1 << s):
                y = y + (x[lane] + x[lane - (1 << s)],)
            else:
                y = y + (x[lane],)
        x = y
    return x


@triton.jit
def _local_arrivals(gidx, n_cand, idlo, idhi, rk, RULE: tl.constexpr):
    """In-group prefix sums (binary64, sixteen [B, G] tensors) of the arrival increments of
    each group ``gidx`` [1, G]: E_k (PFR) or E_k / max(N - k, 1) (ORC, correctly rounded
    binary64 division), E_k in binary32 widened exactly."""
    m = tl.arange(0, 4)[None, None, :]
    e0, e1, e2, e3 = _exponentials(gidx[:, :, None] * 4 + m, idlo, idhi, rk)
    e = _to_lanes(e0, e1, e2, e3)
    nf = n_cand.to(tl.float64)
    inc = ()
    for lane in tl.static_range(16):
        v = e[lane].to(tl.float64)
        if RULE == ORC:
            k = (gidx * 16 + lane).to(tl.float64)
            v = v / tl.maximum(nf - k, 1.0)
        inc = inc + (v,)
    return _hillis_steele(inc)


# ------------------------------------------------------------------ kernels
@triton.jit
def _normals_kernel(out_ptr, keys_ptr, ids_ptr, start_ptr, nblocks, BLOCK: tl.constexpr):
    """Normals of Philox blocks start .. start + nblocks - 1 of one stream, in stream order
    (the pool of the pool mode; the twin of relcode.stream.normals)."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < nblocks
    rk = _load_key(keys_ptr, 0)
    idlo, idhi = _load_id(ids_ptr, 0)
    q = tl.load(start_ptr).to(tl.uint64, bitcast=True) + i.to(tl.uint64)
    z0, z1, z2, z3 = _block_normals(q, idlo, idhi, rk)
    tl.store(out_ptr + 4 * i, z0, mask=mask)
    tl.store(out_ptr + 4 * i + 1, z1, mask=mask)
    tl.store(out_ptr + 4 * i + 2, z2, mask=mask)
    tl.store(out_ptr + 4 * i + 3, z3, mask=mask)


@triton.jit
def _tile(tiles, nbc, gc, B: tl.constexpr, G: tl.constexpr):
    """This program's problems (rows [B, 1]) and groups (local [1, G] and global offsets)."""
    pid = tl.program_id(0)
    rb = pid // tiles
    t = pid - rb * tiles
    rows = rb * B + tl.arange(0, B)[:, None]
    gl = t * G + tl.arange(0, G)[None, :]
    return pid, rows, rows < nbc, gl, gl < gc


@triton.jit
def _totals_kernel(
    ids_ptr,
    keys_ptr,
    totals_ptr,
    n_cand,
    g0,
    gc,
    nbc,
    tiles,
    RULE: tl.constexpr,
    B: tl.constexpr,
    G: tl.constexpr,
):
    """Group totals of the arrival increments: totals[g - g0, b] is the Hillis-Steele sum of
    the sixteen increments of group g of problem b (what the carry grows by per group)."""
    _pid, rows, rmask, gl, gmask = _tile(tiles, nbc, gc, B, G)
    gidx = g0 + gl.to(tl.int64)
    idlo, idhi = _load_id(ids_ptr, tl.where(rmask, rows, 0))
    rk = _load_key(keys_ptr, 1)
    x = _local_arrivals(gidx, n_cand.to(tl.int64), idlo[:, :, None], idhi[:, :, None], rk, RULE)
    tl.store(totals_ptr + gl.to(tl.int64) * nbc + rows, x[15], mask=rmask & gmask)


@triton.jit
def _carry_kernel(totals_ptr, carry_ptr, carry_in_ptr, gc, nbc, B: tl.constexpr, U: tl.constexpr):
    """The carries of fixed.rs, in its order: carry_g = carry_(g-1) + total_(g-1), one
    binary64 addition after the other (a tree or parallel scan would round differently).
    One lane per problem; ``U`` loads are issued before their additions to hide latency."""
    b = tl.program_id(0) * B + tl.arange(0, B)
    bmask = b < nbc
    c = tl.load(carry_in_ptr + b, mask=bmask, other=0.0)
    for g0 in range(0, gc, U):
        s = ()
        for u in tl.static_range(U):
            g = tl.full([B], g0 + u, tl.int64)
            s = s + (tl.load(totals_ptr + g * nbc + b, mask=bmask & (g < gc), other=0.0),)
        for u in tl.static_range(U):
            g = tl.full([B], g0 + u, tl.int64)
            tl.store(carry_ptr + g * nbc + b, c, mask=bmask & (g < gc))
            # masked totals are +0.0, and c + 0.0 == c exactly (c >= 0)
            c = c + s[u]
    tl.store(carry_in_ptr + b, c, mask=bmask)


@triton.jit
def _fixed_kernel(
    coef_a_ptr,
    coef_b_ptr,
    ids_ptr,
    keys_ptr,
    pool_ptr,
    carry_ptr,
    best_val_ptr,
    best_idx_ptr,
    dump_z_ptr,
    dump_key_ptr,
    d,
    n_cand,
    g0,
    gc,
    nbc,
    tiles,
    RULE: tl.constexpr,
    POOL: tl.constexpr,
    DUMP: tl.constexpr,
    B: tl.constexpr,
    G: tl.constexpr,
):
    """Scores ``G`` groups of candidates of ``B`` problems, adds the encoder noise of the rule
    and writes, per problem, the tile's best key and its smallest index (fixed.rs
    ``select_body``; best_val/best_idx[tile, row]).

    Candidates come from each problem's CAND stream, generated in registers, or (``POOL``)
    from the shared pool table with coefficients already moved through the block transform.
    ``DUMP`` also writes every scored candidate value and every key (tests only).
    """
    pid, rows, rmask, gl, gmask = _tile(tiles, nbc, gc, B, G)
    t = pid - (pid // tiles) * tiles
    rows3 = rows[:, :, None]
    rmask3 = rmask[:, :, None]
    m = tl.arange(0, 4)[None, None, :]
    gidx = g0 + gl.to(tl.int64)
    gidx3 = gidx[:, :, None]
    gmask3 = gmask[:, :, None]
    n_cand = n_cand.to(tl.int64)
    safe_rows = tl.where(rmask, rows, 0).to(tl.int64)
    idlo, idhi = _load_id(ids_ptr, safe_rows)
    idlo = idlo[:, :, None]
    idhi = idhi[:, :, None]
    rkc = _load_key(keys_ptr, 0)
    d64 = d.to(tl.int64)
    # candidate index 16 g + 4 m + w of word w
    kw = gidx3 * 16 + m * 4
    acc0 = tl.full([B, G, 4], 0.0, tl.float32)
    acc1 = acc0
    acc2 = acc0
    acc3 = acc0
    for j in range(d):
        aj = tl.load(coef_a_ptr + safe_rows * d + j)[:, :, None]
        bj = tl.load(coef_b_ptr + safe_rows * d + j)[:, :, None]
        if POOL:
            base = pool_ptr + gidx3 * (16 * d64) + 16 * j + m * 4
            z0 = tl.load(base, mask=gmask3, other=0.0)
            z1 = tl.load(base + 1, mask=gmask3, other=0.0)
            z2 = tl.load(base + 2, mask=gmask3, other=0.0)
            z3 = tl.load(base + 3, mask=gmask3, other=0.0)
        else:
            z0, z1, z2, z3 = _block_normals(gidx3 * (4 * d64) + 4 * j + m, idlo, idhi, rkc)
        # (a_j z + b_j) z, summed in dimension order, no fused multiply-add
        acc0 = acc0 + (aj * z0 + bj) * z0
        acc1 = acc1 + (aj * z1 + bj) * z1
        acc2 = acc2 + (aj * z2 + bj) * z2
        acc3 = acc3 + (aj * z3 + bj) * z3
        if DUMP:
            zmask = rmask3 & gmask3
            off = (rows3.to(tl.int64) * gc * 16 + gl[:, :, None] * 16 + m * 4) * d64 + j
            tl.store(dump_z_ptr + off, tl.broadcast_to(z0, [B, G, 4]), mask=zmask)
            tl.store(dump_z_ptr + off + d64, tl.broadcast_to(z1, [B, G, 4]), mask=zmask)
            tl.store(dump_z_ptr + off + 2 * d64, tl.broadcast_to(z2, [B, G, 4]), mask=zmask)
            tl.store(dump_z_ptr + off + 3 * d64, tl.broadcast_to(z3, [B, G, 4]), mask=zmask)

    rkn = _load_key(keys_ptr, 1)
    if RULE == MRC:
        e0, e1, e2, e3 = _exponentials(gidx3 * 4 + m, idlo, idhi, rkn)
        key0 = acc0 - _logf(e0)
        key1 = acc1 - _logf(e1)
        key2 = acc2 - _logf(e2)
        key3 = acc3 - _logf(e3)
    else:
        x = _local_arrivals(gidx, n_cand, idlo, idhi, rkn, RULE)
        x0, x1, x2, x3 = _from_lanes(x)
        carry = tl.load(carry_ptr + gl.to(tl.int64) * nbc + safe_rows, mask=rmask & gmask, other=0.0)
        carry = carry[:, :, None]
        key0 = acc0 - _logf((carry + x0).to(tl.float32))
        key1 = acc1 - _logf((carry + x1).to(tl.float32))
        key2 = acc2 - _logf((carry + x2).to(tl.float32))
        key3 = acc3 - _logf((carry + x3).to(tl.float32))

    if DUMP:
        kmask = rmask3 & gmask3
        off = rows3.to(tl.int64) * gc * 16 + gl[:, :, None] * 16 + m * 4
        tl.store(dump_key_ptr + off, key0, mask=kmask)
        tl.store(dump_key_ptr + off + 1, key1, mask=kmask)
        tl.store(dump_key_ptr + off + 2, key2, mask=kmask)
        tl.store(dump_key_ptr + off + 3, key3, mask=kmask)

    # NaN keys never win, nor candidates beyond the budget (fixed.rs ``Best``)
    ok = gmask3 & (kw < n_cand)
    key0 = tl.where(ok & (key0 == key0), key0, float("-inf"))
    key1 = tl.where(ok & (kw + 1 < n_cand) & (key1 == key1), key1, float("-inf"))
    key2 = tl.where(ok & (kw + 2 < n_cand) & (key2 == key2), key2, float("-inf"))
    key3 = tl.where(ok & (kw + 3 < n_cand) & (key3 == key3), key3, float("-inf"))
    best = tl.maximum(tl.maximum(key0, key1), tl.maximum(key2, key3))
    vmax = tl.reduce(tl.reduce(best, 2, _max2), 1, _max2)
    vb = vmax[:, None, None]
    first = tl.where(key0 == vb, kw, NO_INDEX)
    first = tl.minimum(first, tl.where(key1 == vb, kw + 1, NO_INDEX))
    first = tl.minimum(first, tl.where(key2 == vb, kw + 2, NO_INDEX))
    first = tl.minimum(first, tl.where(key3 == vb, kw + 3, NO_INDEX))
    idx = tl.reduce(tl.reduce(first, 2, _min2), 1, _min2)
    idx = tl.where(vmax > float("-inf"), idx, NO_INDEX)
    rows1 = tl.reshape(rows, (B,))
    out = t.to(tl.int64) * nbc + rows1
    tl.store(best_val_ptr + out, vmax, mask=rows1 < nbc)
    tl.store(best_idx_ptr + out, idx, mask=rows1 < nbc)
