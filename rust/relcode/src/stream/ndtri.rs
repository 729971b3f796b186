//! `ndtri`: the inverse of the standard normal CDF in float64, Wichura's AS241 (PPND16)
//! with our own log. The 1D samplers map P to its quantile domain, split intervals there
//! and come back through this function, so encoder and decoder must agree on its bits.
//! Maximum relative error against a 50-digit reference: see spec/stream.md ("ndtri").

use super::consts::*;
use super::math::logd;

#[inline(always)]
fn horner8(c: &[f64; 8], x: f64) -> f64 {
    let mut p = c[7];
    p = p * x + c[6];
    p = p * x + c[5];
    p = p * x + c[4];
    p = p * x + c[3];
    p = p * x + c[2];
    p = p * x + c[1];
    p * x + c[0]
}

/// Quantile of N(0, 1) at `p`, for 0 < p < 1. Returns NaN outside (callers validate).
#[inline]
pub fn ndtri(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    let q = p - 0.5;
    if q.abs() <= AS241_SPLIT1 {
        let r = AS241_CONST1 - q * q;
        return (q * horner8(&AS241_A, r)) / horner8(&AS241_B, r);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let mut r = (-logd(tail)).sqrt();
    let val = if r <= AS241_SPLIT2 {
        r -= AS241_CONST2;
        horner8(&AS241_C, r) / horner8(&AS241_D, r)
    } else {
        r -= AS241_SPLIT2;
        horner8(&AS241_E, r) / horner8(&AS241_F, r)
    };
    if q < 0.0 {
        -val
    } else {
        val
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_quantiles() {
        assert_eq!(ndtri(0.5), 0.0);
        assert!((ndtri(0.975) - 1.959_963_984_540_054).abs() < 1e-15);
        assert!((ndtri(0.025) + 1.959_963_984_540_054).abs() < 1e-15);
        assert!((ndtri(1e-300) + 37.047_096_299_361_2).abs() < 1e-12);
        assert!(ndtri(0.0).is_nan() && ndtri(1.0).is_nan() && ndtri(f64::NAN).is_nan());
    }

    #[test]
    fn antisymmetric_where_exact() {
        for &p in &[0.25, 0.375, 0.03125, 2f64.powi(-20), 2f64.powi(-40)] {
            assert_eq!(ndtri(p), -ndtri(1.0 - p));
        }
    }
}
