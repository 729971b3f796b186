//! MSB-first bit packing. Writers pad the last byte with zero bits; readers never read past
//! the bit length they were given.

use super::CodeError;

/// Appends bit fields, most significant bit first.
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    nacc: u32,
    len: u64,
}

impl BitWriter {
    /// An empty writer (no bits, no bytes).
    pub fn new() -> BitWriter {
        BitWriter::default()
    }

    /// Number of bits written so far.
    pub fn bit_len(&self) -> u64 {
        self.len
    }

    /// Writes the low `n` bits of `v` (n <= 128).
    pub fn write(&mut self, v: u128, n: u32) {
        debug_assert!(n <= 128);
        let mut left = n;
        while left > 0 {
            let take = left.min(32);
            left -= take;
            let chunk = ((v >> left) as u64) & ((1u64 << take) - 1);
            self.acc = (self.acc << take) | chunk;
            self.nacc += take;
            self.len += take as u64;
            while self.nacc >= 8 {
                self.nacc -= 8;
                self.bytes.push((self.acc >> self.nacc) as u8);
            }
            self.acc &= (1u64 << self.nacc) - 1;
        }
    }

    /// The bytes, the last one padded with zeros.
    pub fn finish(mut self) -> Vec<u8> {
        if self.nacc > 0 {
            self.bytes.push((self.acc << (8 - self.nacc)) as u8);
        }
        self.bytes
    }
}

/// Reads bit fields from a byte slice, never beyond `len` bits.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: u64,
    len: u64,
}

impl<'a> BitReader<'a> {
    /// A reader of the first `len` bits of `bytes` (clamped to the slice).
    pub fn new(bytes: &'a [u8], len: u64) -> BitReader<'a> {
        BitReader { bytes, pos: 0, len: len.min(bytes.len() as u64 * 8) }
    }

    /// Bits read so far, from the start of the slice.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Bits left before the end of the readable length (`len` clamped to the slice).
    pub fn remaining(&self) -> u64 {
        self.len - self.pos
    }

    /// The `take` bits (1 ..= 56) at `pos`, MSB first, as the low bits of a word; bytes past
    /// the end of the slice read as zeros (callers stay within `len`).
    #[inline]
    fn peek(&self, pos: u64, take: u32) -> u64 {
        debug_assert!((1..=56).contains(&take));
        let byte = (pos >> 3) as usize;
        let mut buf = [0u8; 8];
        let avail = self.bytes.len().saturating_sub(byte).min(8);
        buf[..avail].copy_from_slice(&self.bytes[byte..byte + avail]);
        (u64::from_be_bytes(buf) << (pos & 7)) >> (64 - take)
    }

    /// Reads `n` bits (n <= 128), up to 56 at a time.
    pub fn read(&mut self, n: u32) -> Result<u128, CodeError> {
        if (n as u64) > self.remaining() {
            return Err(CodeError::Truncated);
        }
        let mut v = 0u128;
        let mut left = n;
        while left > 0 {
            let take = left.min(56);
            v = (v << take) | self.peek(self.pos, take) as u128;
            self.pos += take as u64;
            left -= take;
        }
        Ok(v)
    }

    /// A Rice code with parameter `k` (k <= 16; `q` zeros, a one, then k low bits): the value
    /// (q << k) | low with q <= `max_q`; errors as `count_zeros` then `read` would give them.
    #[inline]
    pub fn read_rice(&mut self, k: u32, max_q: u32) -> Result<u64, CodeError> {
        debug_assert!(k <= 16);
        if self.remaining() >= 56 {
            // the whole code usually lies in one 56-bit window
            let w = self.peek(self.pos, 56);
            let q = w.leading_zeros() - 8;
            if w != 0 && q <= max_q && q + 1 + k <= 56 {
                let low = (w >> (56 - q - 1 - k)) & ((1u64 << k) - 1);
                self.pos += (q + 1 + k) as u64;
                return Ok(((q as u64) << k) | low);
            }
        }
        let q = self.count_zeros(max_q)?;
        self.read(1)?;
        Ok(((q as u64) << k) | self.read(k)? as u64)
    }

    /// Counts zero bits up to the next one (not consumed), failing beyond `max` zeros (then
    /// the reader stands after zero max + 1) or at the end (then it stands at the end).
    pub fn count_zeros(&mut self, max: u32) -> Result<u32, CodeError> {
        let start = self.pos;
        loop {
            let avail = self.len - self.pos;
            if avail == 0 {
                return Err(CodeError::Truncated);
            }
            let take = avail.min(56) as u32;
            let w = self.peek(self.pos, take);
            let zeros = if w == 0 { take } else { w.leading_zeros() - (64 - take) };
            let n = self.pos - start + zeros as u64;
            if n > max as u64 {
                self.pos = start + max as u64 + 1;
                return Err(CodeError::Malformed("unary prefix too long"));
            }
            self.pos += zeros as u64;
            if zeros < take {
                return Ok(n as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit-at-a-time reader the word reads must agree with.
    struct Plain<'a> {
        bytes: &'a [u8],
        pos: u64,
        len: u64,
    }

    impl Plain<'_> {
        fn bit(&self, i: u64) -> u128 {
            ((self.bytes[(i >> 3) as usize] >> (7 - (i & 7))) & 1) as u128
        }

        fn read(&mut self, n: u32) -> Result<u128, CodeError> {
            if n as u64 > self.len - self.pos {
                return Err(CodeError::Truncated);
            }
            let mut v = 0u128;
            for i in 0..n as u64 {
                v = (v << 1) | self.bit(self.pos + i);
            }
            self.pos += n as u64;
            Ok(v)
        }

        fn count_zeros(&mut self, max: u32) -> Result<u32, CodeError> {
            let mut n = 0;
            loop {
                if self.pos >= self.len {
                    return Err(CodeError::Truncated);
                }
                if self.bit(self.pos) == 1 {
                    return Ok(n);
                }
                n += 1;
                self.pos += 1;
                if n > max {
                    return Err(CodeError::Malformed("unary prefix too long"));
                }
            }
        }
    }

    #[test]
    fn word_reads_equal_bit_reads() {
        // bit strings from sparse to dense (long and short zero runs), cut at every length
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut ops = 0;
        for density in [1u64, 4, 16, 64] {
            let bytes: Vec<u8> = (0..40)
                .map(|_| (0..8).fold(0u8, |b, i| b | (((next() % 64) < density) as u8) << i))
                .collect();
            for len in [0u64, 1, 7, 8, 9, 63, 64, 65, 200, 313, 320] {
                let (mut a, mut b) = (BitReader::new(&bytes, len), Plain { bytes: &bytes, pos: 0, len });
                for _ in 0..60 {
                    let op = next() % 3;
                    let (ra, rb) = if op == 2 {
                        let (k, max) = ((next() % 17) as u32, (next() % 70) as u32);
                        let rb = b.count_zeros(max).and_then(|q| {
                            b.read(1)?;
                            Ok(((q as u128) << k) | b.read(k)?)
                        });
                        (a.read_rice(k, max).map(u128::from), rb)
                    } else if op == 0 {
                        let n = (next() % 130) as u32 % 129;
                        (a.read(n), b.read(n))
                    } else {
                        let max = (next() % 80) as u32;
                        (a.count_zeros(max).map(u128::from), b.count_zeros(max).map(u128::from))
                    };
                    assert_eq!(format!("{ra:?}"), format!("{rb:?}"), "density {density} len {len}");
                    assert_eq!(a.position(), b.pos);
                    ops += 1;
                }
            }
        }
        assert_eq!(ops, 4 * 11 * 60);
    }
}
