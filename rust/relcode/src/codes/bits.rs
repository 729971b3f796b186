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

    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn remaining(&self) -> u64 {
        self.len - self.pos
    }

    #[inline]
    fn bit(&self, i: u64) -> u128 {
        ((self.bytes[(i >> 3) as usize] >> (7 - (i & 7))) & 1) as u128
    }

    /// Reads `n` bits (n <= 128).
    pub fn read(&mut self, n: u32) -> Result<u128, CodeError> {
        if (n as u64) > self.remaining() {
            return Err(CodeError::Truncated);
        }
        let mut v = 0u128;
        for i in 0..n as u64 {
            v = (v << 1) | self.bit(self.pos + i);
        }
        self.pos += n as u64;
        Ok(v)
    }

    /// Counts zero bits up to the next one (not consumed), failing beyond `max` zeros.
    pub fn count_zeros(&mut self, max: u32) -> Result<u32, CodeError> {
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
