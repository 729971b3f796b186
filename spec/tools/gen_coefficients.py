#!/usr/bin/env python3
"""Generate the polynomial coefficients of spec/stream.md (section "Elementary functions").

The decoder-side elementary functions (single-precision log, sine and cosine for the
Box-Muller transform, double-precision log for ``ndtri``) are our own polynomials so that
every implementation computes them with the same basic IEEE operations in the same order.
This script derives near-minimax coefficients with Lawson's iteratively reweighted least
squares in 60-digit arithmetic, rounds them to the target precision and prints them as
hexadecimal float literals, followed by the measured maximum error of the evaluation
order the spec prescribes (emulated with numpy scalars of the target precision).

The committed constants in rust/relcode/src/stream/consts.rs, python/relcode/reference.py
and spec/stream.md are this script's output.  Changing any of them changes the bits of
every candidate: that is a new stream version.

Usage: python spec/tools/gen_coefficients.py   (needs numpy and mpmath)
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

mp.mp.dps = 60


def lawson(g, w, a, b, degree, nodes=600, iters=60):
    """Near-minimax polynomial p of the given degree for g on [a, b], weighted error w*(p-g)."""
    xs = [
        (mp.mpf(a) + mp.mpf(b)) / 2 + (mp.mpf(b) - mp.mpf(a)) / 2 * mp.cos(mp.pi * (2 * k + 1) / (2 * nodes))
        for k in range(nodes)
    ]
    gs = [g(x) for x in xs]
    ws = [w(x) for x in xs]
    v = [mp.mpf(1) / nodes] * nodes
    n = degree + 1
    coef = None
    for _ in range(iters):
        ata = mp.matrix(n, n)
        atb = mp.matrix(n, 1)
        for x, gx, wx, vx in zip(xs, gs, ws, v):
            row = [wx * x**j for j in range(n)]
            for i in range(n):
                atb[i] += vx * row[i] * wx * gx
                for j in range(n):
                    ata[i, j] += vx * row[i] * row[j]
        coef = mp.lu_solve(ata, atb)
        errs = []
        for x, gx, wx in zip(xs, gs, ws):
            px = mp.mpf(0)
            for j in reversed(range(n)):
                px = px * x + coef[j]
            errs.append(abs(wx * (px - gx)))
        total = sum(vx * ex for vx, ex in zip(v, errs))
        v = [vx * ex / total for vx, ex in zip(v, errs)]
    return [coef[j] for j in range(n)], max(errs)


def f32(x) -> np.float32:
    return np.float32(float(x))


def hex32(x: np.float32) -> str:
    return float(x).hex()


# ---------------------------------------------------------------- single-precision log
LOGF_A = mp.sqrt(mp.mpf(0.5)) - 1
LOGF_B = mp.sqrt(mp.mpf(2)) - 1


def logf_g(f):
    return (mp.log1p(f) - f + f * f / 2) / f**3


def logf_w(f):
    return abs(f**3 / mp.log1p(f))


def logf_eval(x: np.float32, c) -> np.float32:
    """Reference evaluation order of spec/stream.md, ln(x) for positive normal float32 x."""
    bits = np.array([x], dtype=np.float32).view(np.uint32)[0]
    e = int((bits >> 23) & 0xFF) - 127
    mbits = (bits & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000)
    if mbits > 0x3FB504F3:
        mbits = mbits - np.uint32(0x00800000)
        e += 1
    m = np.array([mbits], dtype=np.uint32).view(np.float32)[0]
    f = m - np.float32(1.0)
    z = f * f
    p = c[-1]
    for ck in reversed(c[:-1]):
        p = p * f + ck
    ef = np.float32(e)
    t = f * z
    t = t * p
    t = t + ef * LN2_LO_F
    t = t - np.float32(0.5) * z
    s = f + t
    return s + ef * LN2_HI_F


LN2_HI_F = np.float32(0.693359375)
LN2_LO_F = f32(mp.log(2) - mp.mpf("0.693359375"))

# ---------------------------------------------------------------- sine and cosine on [0, pi/4]
TRIG_B = (mp.pi / 4) ** 2


def sin_g(x):
    r = mp.sqrt(x)
    return (mp.sin(r) - r) / (x * r)


def sin_w(x):
    r = mp.sqrt(x)
    return abs(x * r / mp.sin(r))


def cos_g(x):
    return (mp.cos(mp.sqrt(x)) - 1 + x / 2) / (x * x)


def cos_w(x):
    return abs(x * x / mp.cos(mp.sqrt(x)))


def sincos_eval(alpha: np.float32, s, c):
    x = alpha * alpha
    p = s[-1]
    for sk in reversed(s[:-1]):
        p = p * x + sk
    t = alpha * x
    t = t * p
    sin = alpha + t
    q = c[-1]
    for ck in reversed(c[:-1]):
        q = q * x + ck
    u = x * x
    u = u * q
    v = np.float32(1.0) - np.float32(0.5) * x
    cos = v + u
    return sin, cos


# ---------------------------------------------------------------- double-precision log
S_MAX = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)


def logd_g(z):
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) - 2 * s) / (s * z)


def logd_w(z):
    return z


def logd_eval(x: float, c) -> float:
    x = np.float64(x)
    bits = np.array([x], dtype=np.float64).view(np.uint64)[0]
    e = int((bits >> np.uint64(52)) & np.uint64(0x7FF))
    if e == 0:  # subnormal: scale by 2^54 exactly
        x = x * np.float64(2.0**54)
        bits = np.array([x], dtype=np.float64).view(np.uint64)[0]
        e = int((bits >> np.uint64(52)) & np.uint64(0x7FF)) - 54
    e -= 1023
    mbits = (bits & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000)
    if mbits > np.uint64(0x3FF6A09E667F3BCC):
        mbits = mbits - np.uint64(0x0010000000000000)
        e += 1
    m = np.array([mbits], dtype=np.uint64).view(np.float64)[0]
    f = m - np.float64(1.0)
    s = f / (np.float64(2.0) + f)
    z = s * s
    r = c[-1]
    for ck in reversed(c[:-1]):
        r = r * z + ck
    r = r * z
    ef = np.float64(e)
    t = s * r
    t = t + ef * LN2_LO_D
    t = t + (s + s)
    return t + ef * LN2_HI_D


LN2_HI_D = np.float64(float.fromhex("0x1.62e42fee00000p-1"))
LN2_LO_D = np.float64(float(mp.log(2) - mp.mpf(float.fromhex("0x1.62e42fee00000p-1"))))


def main() -> None:
    rng = np.random.default_rng(1)

    cf, _ = lawson(logf_g, logf_w, LOGF_A, LOGF_B, degree=6)
    cf32 = [f32(x) for x in cf]
    print("# logf: ln(1+f) = f - f^2/2 + f^3 P(f), P coefficients c0..c6")
    for x in cf32:
        print("   ", hex32(x), repr(float(x)))
    print("    LN2_HI_F", hex32(LN2_HI_F), "LN2_LO_F", hex32(LN2_LO_F))
    xs = np.concatenate([rng.uniform(2.0**-34, 1.0, 200000), np.exp(rng.uniform(-24, 0, 100000))])
    xs = xs.astype(np.float32)
    err = 0.0
    for x in xs:
        got = float(logf_eval(np.float32(x), cf32))
        ref = float(mp.log(mp.mpf(float(x))))
        ulp = float(np.spacing(np.float32(abs(ref)))) if ref != 0 else 2.0**-149
        err = max(err, abs(got - ref) / ulp)
    print(f"    max error over {xs.size} samples: {err:.3f} ulp")

    cs, _ = lawson(sin_g, sin_w, mp.mpf(10) ** -30, TRIG_B, degree=2)
    cc, _ = lawson(cos_g, cos_w, mp.mpf(10) ** -30, TRIG_B, degree=2)
    cs32 = [f32(x) for x in cs]
    cc32 = [f32(x) for x in cc]
    print("# sin: sin a = a + a^3 S(a^2); cos: cos a = (1 - a^2/2) + a^4 C(a^2)")
    for x in cs32:
        print("    S", hex32(x), repr(float(x)))
    for x in cc32:
        print("    C", hex32(x), repr(float(x)))
    alphas = (rng.uniform(0, 1, 200000) * float(mp.pi / 4)).astype(np.float32)
    es = ec = 0.0
    for a in alphas:
        s, c = sincos_eval(np.float32(a), cs32, cc32)
        rs = mp.sin(mp.mpf(float(a)))
        rc = mp.cos(mp.mpf(float(a)))
        es = max(es, abs(float(s) - float(rs)) / float(np.spacing(np.float32(float(rs)))))
        ec = max(ec, abs(float(c) - float(rc)) / float(np.spacing(np.float32(float(rc)))))
    print(f"    max error: sin {es:.3f} ulp, cos {ec:.3f} ulp")

    cd, _ = lawson(logd_g, logd_w, mp.mpf(10) ** -40, S_MAX**2, degree=6)
    cd64 = [np.float64(float(x)) for x in cd]
    print("# logd: s = f/(2+f), z = s^2, ln(1+f) = 2s + s*z*R(z), R coefficients r0..r6")
    for x in cd64:
        print("   ", float(x).hex(), repr(float(x)))
    print("    LN2_HI_D", float(LN2_HI_D).hex(), "LN2_LO_D", float(LN2_LO_D).hex())
    xs = np.concatenate(
        [rng.uniform(0, 1, 100000), np.exp(rng.uniform(-745, 0, 100000)), 1 - rng.uniform(0, 1e-6, 20000)]
    )
    err = 0.0
    for x in xs:
        if x <= 0 or x >= 1:
            continue
        got = logd_eval(float(x), cd64)
        ref = mp.log(mp.mpf(float(x)))
        ulp = float(np.spacing(abs(float(ref))))
        err = max(err, float(abs(mp.mpf(float(got)) - ref)) / ulp)
    print(f"    max error over {xs.size} samples: {err:.3f} ulp")


if __name__ == "__main__":
    main()
