//! Every constant of the normative stream (spec/stream.md), as exact bit patterns.
//!
//! The polynomial coefficients come from `spec/tools/gen_coefficients.py`; the AS241
//! coefficients are Wichura's published decimals rounded to the nearest double.
//! Changing any value here changes decoded bits and therefore needs a new stream version.

/// Philox4x32 multiplier M0, applied to counter word 0 (Random123; spec/stream.md section 1).
pub const PHILOX_M0: u32 = 0xD251_1F53;
/// Philox4x32 multiplier M1, applied to counter word 2 (Random123).
pub const PHILOX_M1: u32 = 0xCD9E_8D57;
/// Weyl increment W0, added to key word 0 (mod 2^32) before every round after the first.
pub const PHILOX_W0: u32 = 0x9E37_79B9;
/// Weyl increment W1, added to key word 1 (mod 2^32) before every round after the first.
pub const PHILOX_W1: u32 = 0xBB67_AE85;

/// Counter word 1 of the key-derivation call: the ASCII bytes "relc", little-endian.
pub const KDF_TAG: u32 = u32::from_le_bytes(*b"relc");

const fn f(bits: u32) -> f32 {
    f32::from_bits(bits)
}
const fn d(bits: u64) -> f64 {
    f64::from_bits(bits)
}

// ------------------------------------------------------------------ single precision log
/// Coefficients P0 .. P6 of `logf` (spec/stream.md section 4.1): ln(1+f) = f - f^2/2 + f^3 P(f)
/// with P(f) = `LOGF_P[0] + LOGF_P[1] f + ... + LOGF_P[6] f^6`, for f in
/// [sqrt(2)/2 - 1, sqrt(2) - 1].
pub const LOGF_P: [f32; 7] = [
    f(0x3eaa_ab6c),
    f(0xbe80_01c1),
    f(0x3e4c_6bf8),
    f(0xbe29_c126),
    f(0x3e18_ba38),
    f(0xbe12_1955),
    f(0x3db2_2ef1),
];
/// High part of ln 2 in float32 (0x1.63p-1, nine significant bits), so that `e * LN2_HI_F`
/// is exact for every float32 exponent `e`.
pub const LN2_HI_F: f32 = f(0x3f31_8000);
/// Low part of ln 2 in float32: ln 2 - `LN2_HI_F`, rounded (-0x1.bd0106p-13).
pub const LN2_LO_F: f32 = f(0xb95e_8083);
/// Bit pattern of sqrt(2) in float32: `logf` halves its reduced argument 1.m (and adds one
/// to the exponent) when the pattern of 1.m is above this one.
pub const SQRT2_MANT_F: u32 = 0x3fb5_04f3;

// ------------------------------------------------------------------ sine and cosine
/// sin a = a + a^3 * S(a^2) on [0, pi/4].
pub const SIN_S: [f32; 3] = [f(0xbe2a_aaa3), f(0x3c08_839d), f(0xb94c_a1f0)];
/// cos a = (1 - a^2/2) + a^4 * C(a^2) on [0, pi/4].
pub const COS_C: [f32; 3] = [f(0x3d2a_aaa5), f(0xbab6_061a), f(0x37cc_f5cd)];
/// pi/4 rounded to float32.
pub const PI_4_F: f32 = f(0x3f49_0fdb);

// ------------------------------------------------------------------ double precision log
/// Coefficients R0 .. R6 of `logd` (spec/stream.md section 4.3): ln(1+f) = 2s + s (z R(z))
/// with s = f/(2+f), z = s^2 and R(z) = `LOGD_R[0] + LOGD_R[1] z + ... + LOGD_R[6] z^6`.
pub const LOGD_R: [f64; 7] = [
    d(0x3fe5_5555_5555_5592),
    d(0x3fd9_9999_9997_fdb6),
    d(0x3fd2_4924_941f_135a),
    d(0x3fcc_71c5_2095_1610),
    d(0x3fc7_4663_eea9_1664),
    d(0x3fc3_9a1b_a854_059f),
    d(0x3fc2_f056_555d_502b),
];
/// High part of ln 2 in float64 (0x1.62e42feep-1, its low 21 mantissa bits zero), so that
/// `e * LN2_HI_D` is exact for every float64 exponent `e`, subnormals included.
pub const LN2_HI_D: f64 = d(0x3fe6_2e42_fee0_0000);
/// Low part of ln 2 in float64: ln 2 - `LN2_HI_D`, rounded (0x1.a39ef35793c76p-33).
pub const LN2_LO_D: f64 = d(0x3dea_39ef_3579_3c76);
/// Bit pattern of the largest float64 below sqrt(2): `logd` halves its reduced argument 1.m
/// (and adds one to the exponent) when the pattern of 1.m is above this one.
pub const SQRT2_MANT_D: u64 = 0x3ff6_a09e_667f_3bcc;
/// 2^54: `logd` multiplies a subnormal argument by it (exactly) before reading its exponent.
pub const TWO_POW_54: f64 = d(0x4350_0000_0000_0000);

// ------------------------------------------------------------------ AS241 (PPND16)
// Each of A .. F is a degree-7 polynomial, element i the coefficient of power i, evaluated
// by Horner's rule from the highest coefficient (spec/stream.md section 6).

/// `ndtri` central region (|q| <= 0.425, q = p - 1/2): numerator A(r), r = 0.180625 - q^2.
pub const AS241_A: [f64; 8] = [
    d(0x400b_18d9_1e9e_ef75),
    d(0x4060_a488_8b1a_436e),
    d(0x409e_ce5d_2213_c0cc),
    d(0x40ca_d1d8_cd4e_e71d),
    d(0x40e6_6c3e_869b_752a),
    d(0x40f0_6c1c_55b7_8f20),
    d(0x40e0_52d2_6b2e_45e4),
    d(0x40a3_9a29_6f7d_925e),
];
/// `ndtri` central region: denominator B(r) (constant term 1).
pub const AS241_B: [f64; 8] = [
    d(0x3ff0_0000_0000_0000),
    d(0x4045_281b_386e_1ab5),
    d(0x4085_797e_fdc8_b3f7),
    d(0x40b5_1232_2e75_c89f),
    d(0x40d4_b772_d5d6_5266),
    d(0x40e3_317c_aa64_f4be),
    d(0x40dc_0e45_7cb1_ae76),
    d(0x40b4_6a7e_ca98_4b69),
];
/// `ndtri` intermediate tail (r = sqrt(-ln t) <= 5, t the smaller tail mass): numerator
/// C(r - 1.6).
pub const AS241_C: [f64; 8] = [
    d(0x3ff6_c665_fde9_526a),
    d(0x4012_8577_48ca_b19b),
    d(0x4017_13f7_1462_256a),
    d(0x400d_2ecb_1a3d_02c4),
    d(0x3ff4_53cc_0853_75b2),
    d(0x3fce_f2ab_b9b8_5c37),
    d(0x3f97_44eb_6c45_ec67),
    d(0x3f49_615a_c0b7_ace9),
];
/// `ndtri` intermediate tail: denominator D(r - 1.6) (constant term 1).
pub const AS241_D: [f64; 8] = [
    d(0x3ff0_0000_0000_0000),
    d(0x4000_6cef_bb46_a449),
    d(0x3ffa_d278_e652_6633),
    d(0x3fe6_1292_f233_85c9),
    d(0x3fc2_f512_3394_f040),
    d(0x3f8f_207a_7eab_17bf),
    d(0x3f41_f18c_bfdf_2728),
    d(0x3e12_0d3f_6864_39e4),
];
/// `ndtri` far tail (r = sqrt(-ln t) > 5): numerator E(r - 5).
pub const AS241_E: [f64; 8] = [
    d(0x401a_a1b1_c13e_e526),
    d(0x4015_daea_6e87_5003),
    d(0x3ffc_8ea6_461f_a445),
    d(0x3fd2_fad9_3152_55cf),
    d(0x3f9b_2b41_193b_4ee7),
    d(0x3f54_5c19_0842_5345),
    d(0x3efc_6ec6_cc59_e02a),
    d(0x3e8a_fb74_d693_bf93),
];
/// `ndtri` far tail: denominator F(r - 5) (constant term 1).
pub const AS241_F: [f64; 8] = [
    d(0x3ff0_0000_0000_0000),
    d(0x3fe3_31d3_4fc7_d77f),
    d(0x3fc1_86eb_1834_43fb),
    d(0x3f8e_76f9_3215_462a),
    d(0x3f49_c8bc_979d_c5d7),
    d(0x3ef3_5c2c_4963_74bf),
    d(0x3e83_1446_f740_b9e0),
    d(0x3ce2_69bf_f1f8_c190),
];
/// 0.180625 = 0.425^2 (the nearest double): the central region's r is this minus q^2.
pub const AS241_CONST1: f64 = d(0x3fc7_1eb8_51eb_851f);
/// 0.425 (the nearest double): `ndtri` uses the central region when |p - 1/2| <= this.
pub const AS241_SPLIT1: f64 = d(0x3fdb_3333_3333_3333);
/// 1.6 (the nearest double): the shift of r in the intermediate tail.
pub const AS241_CONST2: f64 = d(0x3ff9_9999_9999_999a);
/// 5.0: where the intermediate tail (r <= 5) ends, and the shift of r in the far tail.
pub const AS241_SPLIT2: f64 = 5.0;
