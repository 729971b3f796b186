//! Elementary functions of the normative stream, built from IEEE-754 basic operations.
//!
//! Why our own: libm implementations differ between platforms and versions in the last
//! bit, and a decoder that regenerates candidates must reproduce the encoder's bits
//! exactly. Each function below is a fixed sequence of +, -, *, /, sqrt, integer and
//! bit operations, evaluated in exactly the order spec/stream.md prescribes. Rust never
//! contracts `a * b + c` into a fused multiply-add, so the order written is the order run.

use super::consts::*;

/// Natural log of a positive, normal float32 (the stream only calls it on [2^-33, 1)).
/// Maximum error 1.14 ulp (measured by spec/tools/gen_coefficients.py).
#[inline(always)]
pub fn logf(x: f32) -> f32 {
    let bits = x.to_bits();
    let mbits = (bits & 0x007F_FFFF) | 0x3F80_0000;
    // branch-free, so that loops over lanes vectorise: big = 1 when the mantissa > sqrt 2
    let big = (mbits > SQRT2_MANT_F) as u32;
    let mbits = mbits - (big << 23);
    let e = ((bits >> 23) & 0xFF) as i32 - 127 + big as i32;
    let f = f32::from_bits(mbits) - 1.0;
    let z = f * f;
    let mut p = LOGF_P[6];
    p = p * f + LOGF_P[5];
    p = p * f + LOGF_P[4];
    p = p * f + LOGF_P[3];
    p = p * f + LOGF_P[2];
    p = p * f + LOGF_P[1];
    p = p * f + LOGF_P[0];
    let ef = e as f32;
    let mut t = f * z;
    t *= p;
    t += ef * LN2_LO_F;
    t -= 0.5 * z;
    let s = f + t;
    s + ef * LN2_HI_F
}

/// (sin a, cos a) for a in [0, pi/4]. Maximum error 0.75 ulp (sin) and 1.23 ulp (cos).
#[inline(always)]
pub fn sincos_octant(a: f32) -> (f32, f32) {
    let x = a * a;
    let mut p = SIN_S[2];
    p = p * x + SIN_S[1];
    p = p * x + SIN_S[0];
    let mut t = a * x;
    t *= p;
    let s = a + t;
    let mut q = COS_C[2];
    q = q * x + COS_C[1];
    q = q * x + COS_C[0];
    let mut u = x * x;
    u *= q;
    let v = 1.0 - 0.5 * x;
    (s, v + u)
}

/// Natural log of a positive, finite float64 (subnormals included).
/// Maximum error 1.53 ulp (measured by spec/tools/gen_coefficients.py).
#[inline]
pub fn logd(x: f64) -> f64 {
    let mut x = x;
    let mut bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7FF) as i64;
    if e == 0 {
        x *= TWO_POW_54;
        bits = x.to_bits();
        e = ((bits >> 52) & 0x7FF) as i64 - 54;
    }
    e -= 1023;
    let mut mbits = (bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000;
    if mbits > SQRT2_MANT_D {
        mbits -= 0x0010_0000_0000_0000;
        e += 1;
    }
    let f = f64::from_bits(mbits) - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let mut r = LOGD_R[6];
    r = r * z + LOGD_R[5];
    r = r * z + LOGD_R[4];
    r = r * z + LOGD_R[3];
    r = r * z + LOGD_R[2];
    r = r * z + LOGD_R[1];
    r = r * z + LOGD_R[0];
    r *= z;
    let ef = e as f64;
    let mut t = s * r;
    t += ef * LN2_LO_D;
    t += s + s;
    t + ef * LN2_HI_D
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logf_matches_std_closely() {
        let mut worst = 0.0f64;
        for k in (1u32..(1 << 31)).step_by(9973) {
            let x = (k as f64 * 2f64.powi(-31)) as f32;
            let got = logf(x) as f64;
            let want = (x as f64).ln();
            let ulp = f32::EPSILON as f64 * want.abs();
            worst = worst.max((got - want).abs() / ulp);
        }
        assert!(worst < 2.0, "logf error {worst} ulp");
    }

    #[test]
    fn logd_matches_std_closely() {
        for &x in &[1e-300, 5e-324, 1e-10, 0.1, 0.5, 0.7, 0.999_999, 1.0 - 1e-16, 1.0, 3.0, 1e300] {
            let got = logd(x);
            let want = f64::ln(x);
            assert!((got - want).abs() <= 4.0 * f64::EPSILON * want.abs().max(1e-300), "{x}: {got} {want}");
        }
    }

    #[test]
    fn sincos_matches_std_closely() {
        for i in 0..=1000 {
            let a = (i as f32) * (PI_4_F / 1000.0);
            let (s, c) = sincos_octant(a);
            assert!((s as f64 - (a as f64).sin()).abs() < 2e-7);
            assert!((c as f64 - (a as f64).cos()).abs() < 2e-7);
        }
    }
}
