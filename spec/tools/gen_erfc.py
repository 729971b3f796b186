#!/usr/bin/env python3
"""Generate the polynomial coefficients of the encoder's complementary error function.

The rejection samplers (grs, agrs, gprs and its variants) need P- and Q-masses of
intervals, hence erfc, with full relative precision far into the tails. These are
*encoder-only* numbers (spec/channel.md section 6 is informative): a decoder never
evaluates them, so they are not part of any stream or message and may change freely.

Form: for z >= 0, t = 2 / (2 + z) in (0, 1] and y = (2 - z) / (2 + z) in (-1, 1],

    erfc(z) = t * exp(F(y) - z^2)

F is smooth on [-1, 1] (it tends to -ln(2 sqrt(pi)) as z -> infinity). [-1, 1] is cut
into 8 pieces of width 1/4; on piece i, with s = 8 (y - c_i) in [-1, 1] (c_i its centre),
F is a polynomial of degree 11 in s, evaluated by Horner's rule. The coefficients are the
power-basis form of the degree-11 Chebyshev interpolant (computed in 50-digit arithmetic),
which is well conditioned because F's Chebyshev coefficients decay geometrically.

The script prints the coefficients as Rust literals and the maximum relative error of
the float64 evaluation of erfc (emulated with numpy) against mpmath.

Usage: python spec/tools/gen_erfc.py   (needs numpy and mpmath)
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

mp.mp.dps = 50
PIECES = 8
DEGREE = 11


def f(y: mp.mpf) -> mp.mpf:
    t = (y + 1) / 2
    if t == 0:
        return -mp.log(2 * mp.sqrt(mp.pi))
    z = 2 / t - 2
    return mp.log(mp.erfc(z) / t) + z * z


def piece(i: int) -> list[mp.mpf]:
    """Power-basis coefficients (in s) of the Chebyshev interpolant on piece i."""
    c = -1 + (2 * mp.mpf(i) + 1) / PIECES
    n = DEGREE + 1
    xs = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    vals = [f(c + x / PIECES) for x in xs]
    a = mp.matrix([[x**j for j in range(n)] for x in xs])
    return list(mp.lu_solve(a, mp.matrix(vals)))


def erfc64(z: float, table: list[list[float]]) -> float:
    z = np.float64(z)
    t = np.float64(2.0) / (np.float64(2.0) + z)
    y = (np.float64(2.0) - z) / (np.float64(2.0) + z)
    i = min(int((y + np.float64(1.0)) * np.float64(PIECES / 2)), PIECES - 1)
    c = np.float64(-1.0) + np.float64((2 * i + 1) / PIECES)
    s = (y - c) * np.float64(PIECES)
    p = np.float64(table[i][DEGREE])
    for k in range(DEGREE - 1, -1, -1):
        p = p * s + np.float64(table[i][k])
    # z^2 split as zh^2 (exact: zh keeps 26 significant bits) plus a small correction
    zh = np.frombuffer((z.view(np.uint64) & np.uint64(0xFFFF_FFFF_F800_0000)).tobytes(), np.float64)[0]
    d = (z - zh) * (z + zh)
    return float(t * np.exp(-zh * zh + (p - d)))


def main() -> None:
    table = [piece(i) for i in range(PIECES)]
    print(f"const ERFC_POLY: [[f64; {DEGREE + 1}]; {PIECES}] = [")
    for row in table:
        print("    [" + ", ".join(repr(float(v)) for v in row) + "],")
    print("];")
    tf = [[float(v) for v in row] for row in table]
    worst = 0.0
    for z in np.concatenate([np.linspace(0, 1, 3001), np.linspace(1, 26.5, 8001)]):
        ref = mp.erfc(mp.mpf(float(z)))
        err = abs((mp.mpf(erfc64(float(z), tf)) - ref) / ref)
        worst = max(worst, float(err))
    print(f"// max relative error on [0, 26.5]: {worst:.2e}")


if __name__ == "__main__":
    main()
