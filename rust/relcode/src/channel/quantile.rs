//! P's quantile domain for the 1D samplers (normative: spec/channel.md section 5.1).
//!
//! Mapping P = N(0, 1) to Uniform(0, 1) turns "split an interval of P" into splitting an
//! interval of (0, 1), and "sample P restricted to an interval" into one uniform draw and
//! one `ndtri`. Float64 near 1 resolves only 1.1e-16, which would lose every interval
//! beyond about 8.2 standard deviations; so a point v is stored as a *tail coordinate*:
//! (c, lower) meaning v = c, or (c, upper) meaning v = 1 - c, with c <= 1/2. Both tails then
//! keep full relative precision (down to ~1e-308, about 37.5 standard deviations), and
//! dyadic endpoints k 2^-d are exact whenever k (or 2^d - k) has at most 53 significant
//! bits, which covers both tails at every depth a heap index allows.

use crate::stream::ndtri;

/// A point of the quantile domain: v = c (lower) or v = 1 - c (upper), 0 <= c <= 1/2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coord {
    /// The tail mass, in [0, 1/2]: the P-mass between the point and the end of its side.
    pub c: f64,
    /// The side: `false` for the lower tail (v = c), `true` for the upper tail (v = 1 - c).
    pub upper: bool,
}

impl Coord {
    /// The lower end, v = 0 (standard-normal value -infinity).
    pub const ZERO: Coord = Coord { c: 0.0, upper: false };
    /// The upper end, v = 1 (standard-normal value +infinity).
    pub const ONE: Coord = Coord { c: 0.0, upper: true };
    /// The median, v = 1/2 (standard-normal value 0), written on the lower side.
    pub const HALF: Coord = Coord { c: 0.5, upper: false };

    /// The standard-normal quantile of the point (±infinity at the ends).
    pub fn x(self) -> f64 {
        if self.c <= 0.0 {
            return if self.upper { f64::INFINITY } else { f64::NEG_INFINITY };
        }
        let q = ndtri(self.c);
        if self.upper {
            -q
        } else {
            q
        }
    }

    /// The decoded value: the quantile rounded to binary32 (then weighted as any sample).
    pub fn z(self) -> f32 {
        self.x() as f32
    }

    /// Total order along the real line.
    pub fn lt(self, o: Coord) -> bool {
        match (self.upper, o.upper) {
            (false, false) => self.c < o.c,
            (true, true) => self.c > o.c,
            (false, true) => !(self.c == 0.5 && o.c == 0.5),
            (true, false) => false,
        }
    }
}

/// An interval [lo, hi] of the quantile domain, lo before hi.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// The lower endpoint.
    pub lo: Coord,
    /// The upper endpoint (not before `lo`).
    pub hi: Coord,
}

/// The point a fraction `t` (in units of P-mass) past `a`, on the same side as the result.
fn advance(a: Coord, b: Coord, t: f64) -> Coord {
    match (a.upper, b.upper) {
        (false, false) => Coord { c: a.c + t, upper: false },
        (true, true) => Coord { c: a.c - t, upper: true },
        _ => {
            let left = 0.5 - a.c; // mass from a to the middle
            if t <= left {
                Coord { c: a.c + t, upper: false }
            } else {
                let mass = left + (0.5 - b.c);
                Coord { c: b.c + (mass - t), upper: true }
            }
        }
    }
}

impl Interval {
    /// The whole line: (0, 1).
    pub const FULL: Interval = Interval { lo: Coord::ZERO, hi: Coord::ONE };

    /// P-mass of the interval.
    pub fn mass(&self) -> f64 {
        match (self.lo.upper, self.hi.upper) {
            (false, false) => self.hi.c - self.lo.c,
            (true, true) => self.lo.c - self.hi.c,
            (false, true) => (0.5 - self.lo.c) + (0.5 - self.hi.c),
            (true, false) => 0.0,
        }
    }

    /// The point of P restricted to the interval selected by the uniform `u` in (0, 1):
    /// the point at P-mass u * mass() past `lo`, never exactly an infinite end.
    pub fn sample(&self, u: f64) -> Coord {
        let mut p = advance(self.lo, self.hi, u * self.mass());
        if p.c <= 0.0 {
            p.c = f64::from_bits(1); // the smallest positive double; ndtri stays finite
        }
        p
    }

    /// The two halves at `x` (which must lie inside): [lo, x] and [x, hi].
    pub fn split(&self, x: Coord) -> (Interval, Interval) {
        (Interval { lo: self.lo, hi: x }, Interval { lo: x, hi: self.hi })
    }

    /// The dyadic interval [k 2^-d, (k + 1) 2^-d] (d <= 127, k < 2^d); endpoints are the
    /// correctly rounded tail coordinates (exact when k or 2^d - k fits in 53 bits).
    pub fn dyadic(depth: u32, k: u64) -> Interval {
        Interval { lo: dyadic_point(depth, k as u128), hi: dyadic_point(depth, k as u128 + 1) }
    }

    /// Standard-normal endpoints (lo, hi) of the interval.
    pub fn xs(&self) -> (f64, f64) {
        (self.lo.x(), self.hi.x())
    }
}

/// The point j 2^-d as a tail coordinate, exactly.
fn dyadic_point(depth: u32, j: u128) -> Coord {
    // 2^-depth from its bits: exact without relying on the platform's exp2
    let scale = f64::from_bits((1023 - depth.min(1022) as u64) << 52);
    let half = if depth == 0 { 0 } else { 1u128 << (depth - 1).min(127) };
    if depth == 0 {
        return if j == 0 { Coord::ZERO } else { Coord::ONE };
    }
    if depth <= 127 && j <= half {
        Coord { c: j as f64 * scale, upper: false }
    } else {
        let full = 1u128 << depth.min(127);
        Coord { c: (full - j) as f64 * scale, upper: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_keep_precision() {
        // A dyadic interval 40 standard deviations... in the upper tail stays resolvable.
        let iv = Interval::dyadic(60, (1u64 << 60) - 1);
        assert!(iv.hi == Coord::ONE && iv.lo.upper && iv.lo.c == 2f64.powi(-60));
        let x = iv.sample(0.5).x();
        assert!(x > 6.0 && x.is_finite());
        let lo = Interval::dyadic(60, 0);
        assert_eq!(lo.sample(0.5).x(), -x);
    }

    #[test]
    fn straddling_intervals_sample_both_sides() {
        let iv = Interval { lo: Coord { c: 0.25, upper: false }, hi: Coord { c: 0.25, upper: true } };
        assert_eq!(iv.mass(), 0.5);
        let a = iv.sample(0.25);
        let b = iv.sample(0.75);
        assert!(!a.upper && (a.c - 0.375).abs() < 1e-15);
        assert!(b.upper && (b.c - 0.375).abs() < 1e-15);
        assert!(a.lt(b));
    }

    #[test]
    fn dyadic_halves_tile_the_parent() {
        for d in 1..20u32 {
            for k in [0u64, 1, (1 << d) / 2 - 1, (1 << d) / 2, (1 << d) - 1] {
                let p = Interval::dyadic(d - 1, k / 2);
                let c = Interval::dyadic(d, k);
                assert!((c.mass() - p.mass() / 2.0).abs() <= 1e-18);
            }
        }
    }
}
