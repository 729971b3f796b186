//! Integer codes for messages: fixed length, Elias-delta and Boldi–Vigna zeta codes, with
//! an MSB-first bit writer and a bounds-checked bit reader. The format layer stores
//! messages with these exact codes, so `code.bits` is exactly what a file spends.
//!
//! Why zeta codes: the index of PFR-like samplers has P(N = n) roughly proportional to
//! n^-(1 + 1/KL); the zeta_k code is the prefix code matched to n^-(1 + 1/k) (Boldi and
//! Vigna, "Codes for the World-Wide Web", 2005), so with k near the block KL in bits it
//! spends about KL + log2(KL + 1) + O(1) bits, against ~1 bit more for parameter-free
//! Elias-delta. The decoder must know k: files record it per chunk.
//!
//! # Examples
//!
//! ```
//! use relcode::codes::{BitReader, BitWriter, IndexCode};
//!
//! let mut w = BitWriter::new();
//! let mut bits = 0;
//! bits += IndexCode::Fixed(10).write(&mut w, 1000)?; // 10 bits
//! bits += IndexCode::EliasDelta.write(&mut w, 17)?; // 4 + 2 * 2 + 1 = 9 bits
//! bits += IndexCode::Zeta(3).write(&mut w, 5)?; // 4 bits
//! assert_eq!((bits, w.bit_len()), (23, 23));
//! let bytes = w.finish(); // 3 bytes, the last padded with zeros
//!
//! let mut r = BitReader::new(&bytes, 23);
//! assert_eq!(IndexCode::Fixed(10).read(&mut r)?, 1000);
//! assert_eq!(IndexCode::EliasDelta.read(&mut r)?, 17);
//! assert_eq!(IndexCode::Zeta(3).read(&mut r)?, 5);
//! assert_eq!(r.remaining(), 0);
//! // Universal codes start at 1.
//! assert!(IndexCode::EliasDelta.len(0).is_err());
//! # Ok::<(), relcode::codes::CodeError>(())
//! ```

mod bits;
pub use bits::{BitReader, BitWriter};

use std::fmt;

/// Errors of the code layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeError {
    /// The value cannot be represented by this code (0 for a universal code, or too wide).
    Unrepresentable {
        /// The value given.
        value: u64,
        /// The code that cannot write it.
        code: IndexCode,
    },
    /// The bit stream ended inside a code word.
    Truncated,
    /// A code word decodes to a value outside 1 ..= 2^64 - 1 or has an impossible prefix.
    Malformed(&'static str),
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeError::Unrepresentable { value, code } => {
                write!(f, "value {value} cannot be written with the {code} code")
            }
            CodeError::Truncated => write!(f, "the bit stream ends inside a code word"),
            CodeError::Malformed(why) => write!(f, "malformed code word: {why}"),
        }
    }
}

impl std::error::Error for CodeError {}

/// How an integer is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexCode {
    /// `bits` bits, most significant first; values 0 .. 2^bits (bits in 0 ..= 64).
    Fixed(u8),
    /// Elias-delta, values >= 1.
    EliasDelta,
    /// Boldi–Vigna zeta_k (k in 1 ..= 32), values >= 1. zeta_1 is Elias-gamma.
    Zeta(u8),
}

impl fmt::Display for IndexCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexCode::Fixed(b) => write!(f, "fixed {b}-bit"),
            IndexCode::EliasDelta => write!(f, "Elias-delta"),
            IndexCode::Zeta(k) => write!(f, "zeta_{k}"),
        }
    }
}

/// floor(log2 x) for x >= 1.
#[inline]
fn ilog2(x: u128) -> u32 {
    127 - x.leading_zeros()
}

/// Minimal binary code of z in [0, m): (value, length).
#[inline]
fn minimal_binary(z: u128, m: u128) -> (u128, u32) {
    debug_assert!(z < m);
    if m <= 1 {
        return (0, 0);
    }
    let s = ilog2(m - 1) + 1; // ceil(log2 m)
    let cut = (1u128 << s) - m;
    if z < cut {
        (z, s - 1)
    } else {
        (z + cut, s)
    }
}

impl IndexCode {
    /// Checks the parameters (fixed width at most 64, zeta k in 1..=32).
    pub fn validate(self) -> Result<IndexCode, String> {
        match self {
            IndexCode::Fixed(b) if b > 64 => Err(format!("fixed codes have at most 64 bits, got {b}")),
            IndexCode::Zeta(k) if !(1..=32).contains(&k) => Err(format!("zeta k must be in 1..=32, got {k}")),
            c => Ok(c),
        }
    }

    /// Code length of `value` in bits.
    pub fn len(self, value: u64) -> Result<u32, CodeError> {
        let bad = || CodeError::Unrepresentable { value, code: self };
        match self {
            IndexCode::Fixed(b) => {
                if b < 64 && value >> b != 0 {
                    return Err(bad());
                }
                Ok(b as u32)
            }
            IndexCode::EliasDelta => {
                if value == 0 {
                    return Err(bad());
                }
                let l = ilog2(value as u128) + 1;
                Ok((l - 1) + 2 * ilog2(l as u128) + 1)
            }
            IndexCode::Zeta(k) => {
                if value == 0 {
                    return Err(bad());
                }
                let k = k as u32;
                let h = ilog2(value as u128) / k;
                let lo = 1u128 << (h * k);
                let m = (1u128 << ((h + 1) * k)) - lo;
                let (_, nb) = minimal_binary(value as u128 - lo, m);
                Ok(h + 1 + nb)
            }
        }
    }

    /// Appends the code word of `value`.
    pub fn write(self, w: &mut BitWriter, value: u64) -> Result<u32, CodeError> {
        let n = self.len(value)?;
        match self {
            IndexCode::Fixed(b) => w.write(value as u128, b as u32),
            IndexCode::EliasDelta => {
                let l = ilog2(value as u128) + 1;
                let ll = ilog2(l as u128);
                w.write(0, ll);
                w.write(l as u128, ll + 1);
                w.write(value as u128 & ((1u128 << (l - 1)) - 1), l - 1);
            }
            IndexCode::Zeta(k) => {
                let k = k as u32;
                let h = ilog2(value as u128) / k;
                w.write(0, h);
                w.write(1, 1);
                let lo = 1u128 << (h * k);
                let m = (1u128 << ((h + 1) * k)) - lo;
                let (v, nb) = minimal_binary(value as u128 - lo, m);
                w.write(v, nb);
            }
        }
        Ok(n)
    }

    /// Reads one code word.
    pub fn read(self, r: &mut BitReader<'_>) -> Result<u64, CodeError> {
        match self {
            IndexCode::Fixed(b) => Ok(r.read(b as u32)? as u64),
            IndexCode::EliasDelta => {
                let ll = r.count_zeros(6)?;
                r.read(1)?; // the leading one of l
                            // value has at most 64 bits, so its length l <= 64 and floor(log2 l) <= 6
                let l = (1u128 << ll) | r.read(ll)?;
                if l > 64 {
                    return Err(CodeError::Malformed("Elias-delta length above 64 bits"));
                }
                let l = l as u32;
                let low = r.read(l - 1)?;
                Ok(((1u128 << (l - 1)) | low) as u64)
            }
            IndexCode::Zeta(k) => {
                let k = k as u32;
                let h = r.count_zeros(64 / k + 1)?;
                r.read(1)?; // the terminating one
                if h * k > 63 {
                    return Err(CodeError::Malformed("zeta prefix beyond 64-bit values"));
                }
                let lo = 1u128 << (h * k);
                let m = (1u128 << ((h + 1) * k)) - lo;
                let z = if m <= 1 {
                    0
                } else {
                    let s = ilog2(m - 1) + 1;
                    let cut = (1u128 << s) - m;
                    let y = r.read(s - 1)?;
                    if y < cut {
                        y
                    } else {
                        2 * y + r.read(1)? - cut
                    }
                };
                let v = lo + z;
                if v > u64::MAX as u128 {
                    return Err(CodeError::Malformed("zeta value above 2^64 - 1"));
                }
                Ok(v as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(code: IndexCode, values: &[u64]) {
        let mut w = BitWriter::new();
        let mut total = 0u64;
        for &v in values {
            total += code.write(&mut w, v).unwrap() as u64;
        }
        assert_eq!(w.bit_len(), total);
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes, total);
        for &v in values {
            assert_eq!(code.read(&mut r).unwrap(), v, "{code}");
        }
        assert_eq!(r.position(), total);
    }

    fn values() -> Vec<u64> {
        let mut v: Vec<u64> = (1..300).collect();
        for s in 0..64 {
            let p = 1u64 << s;
            v.extend([p, (p - 1) | 1, p + 1, p.wrapping_mul(3) | 1]);
        }
        v.push(u64::MAX);
        v.retain(|&x| x >= 1);
        v
    }

    #[test]
    fn universal_codes_roundtrip() {
        roundtrip(IndexCode::EliasDelta, &values());
        for k in [1, 2, 3, 5, 8, 13, 16, 32] {
            roundtrip(IndexCode::Zeta(k), &values());
        }
    }

    #[test]
    fn fixed_codes_roundtrip_and_reject_wide_values() {
        roundtrip(IndexCode::Fixed(16), &[0, 1, 65535, 12345]);
        roundtrip(IndexCode::Fixed(64), &[0, u64::MAX, 1 << 63]);
        roundtrip(IndexCode::Fixed(0), &[0, 0, 0]);
        assert!(IndexCode::Fixed(16).len(65536).is_err());
    }

    #[test]
    fn known_lengths() {
        // Elias-delta: floor(log2 n) + 2 floor(log2(floor(log2 n) + 1)) + 1
        for n in 1u64..5000 {
            let l = 63 - n.leading_zeros();
            let want = l + 2 * (31 - (l + 1).leading_zeros()) + 1;
            assert_eq!(IndexCode::EliasDelta.len(n).unwrap(), want);
        }
        // zeta_1 is Elias-gamma: 2 floor(log2 n) + 1
        for n in 1u64..5000 {
            assert_eq!(IndexCode::Zeta(1).len(n).unwrap(), 2 * (63 - n.leading_zeros()) + 1);
        }
        // zeta_3 of 1..7: h = 0, minimal binary over [0, 7): 2 or 3 bits after the "1"
        let z3: Vec<u32> = (1..8).map(|n| IndexCode::Zeta(3).len(n).unwrap()).collect();
        assert_eq!(z3, vec![3, 4, 4, 4, 4, 4, 4]);
    }

    #[test]
    fn zero_is_not_universal() {
        assert!(IndexCode::EliasDelta.len(0).is_err());
        assert!(IndexCode::Zeta(4).len(0).is_err());
    }

    #[test]
    fn hostile_bits_never_panic() {
        for bytes in [vec![0u8; 32], vec![0xFF; 32], vec![0x00, 0x01], vec![]] {
            let n = bytes.len() as u64 * 8;
            for code in [IndexCode::EliasDelta, IndexCode::Zeta(1), IndexCode::Zeta(7), IndexCode::Fixed(33)]
            {
                let mut r = BitReader::new(&bytes, n);
                for _ in 0..100 {
                    if code.read(&mut r).is_err() {
                        break;
                    }
                }
            }
        }
    }
}
