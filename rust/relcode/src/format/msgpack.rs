//! A small MessagePack reader and canonical writer for the header and chunk options.
//!
//! Why our own: the header is untrusted input, and a general-purpose decoder sizes its
//! vectors from the lengths the bytes claim. Here every claimed length is checked against
//! the bytes that remain before anything is allocated (each array element or map entry
//! takes at least one byte), nesting is bounded, and extension types are refused. The
//! writer always picks the shortest encoding and sorts map keys, so equal values give
//! equal bytes (spec/format.md, section 5).

use super::FormatError;

/// A decoded MessagePack value. Integers keep their sign; floats keep their width, so a
/// float32 prior parameter round-trips with its exact bits.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `nil` (`0xc0`).
    Nil,
    /// `false` or `true` (`0xc2`, `0xc3`).
    Bool(bool),
    /// Non-negative integers.
    UInt(u64),
    /// Negative integers.
    Int(i64),
    /// A float 32 (`0xca`), with its exact bits.
    F32(f32),
    /// A float 64 (`0xcb`), with its exact bits.
    F64(f64),
    /// A UTF-8 string (the reader refuses invalid UTF-8).
    Str(String),
    /// A byte string (bin 8, 16 or 32).
    Bin(Vec<u8>),
    /// An array of values.
    Array(Vec<Value>),
    /// Entries in the order read (the writer sorts them).
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// The string, if this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is a `UInt` (a non-negative integer); `None` for anything
    /// else, negative integers and floats included.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::UInt(v) => Some(*v),
            _ => None,
        }
    }

    /// The entries, in the order read, if this is a `Map`.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value of string key `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// A map with string keys (sorted by the writer).
    pub fn map<I: IntoIterator<Item = (&'static str, Value)>>(entries: I) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (Value::Str(k.to_string()), v)).collect())
    }
}

/// Limits of one decode.
#[derive(Clone, Copy, Debug)]
pub struct ReadLimits {
    /// Deepest nesting of arrays and maps.
    pub max_depth: usize,
}

/// Decodes exactly one value that fills `bytes`.
pub fn decode(bytes: &[u8], limits: ReadLimits) -> Result<Value, FormatError> {
    let mut r = Reader { bytes, pos: 0, limits };
    let v = r.value(0)?;
    if r.pos != bytes.len() {
        return Err(FormatError::Malformed(format!(
            "{} bytes after the end of a MessagePack value",
            bytes.len() - r.pos
        )));
    }
    Ok(v)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    limits: ReadLimits,
}

fn truncated() -> FormatError {
    FormatError::Malformed("a MessagePack value is truncated".into())
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(truncated)?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, FormatError> {
        Ok(self.take(n)?.iter().fold(0u64, |a, &b| (a << 8) | b as u64))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// A claimed count of items, each at least `min_bytes` long, checked against what remains.
    fn count(&mut self, n: u64, min_bytes: usize) -> Result<usize, FormatError> {
        if n.saturating_mul(min_bytes as u64) > self.remaining() as u64 {
            return Err(FormatError::Malformed(format!(
                "a MessagePack container claims {n} items but only {} bytes remain",
                self.remaining()
            )));
        }
        Ok(n as usize)
    }

    fn str(&mut self, n: u64) -> Result<Value, FormatError> {
        let n = self.count(n, 1)?;
        let s = self.take(n)?;
        let s = std::str::from_utf8(s)
            .map_err(|_| FormatError::Malformed("a MessagePack string is not valid UTF-8".into()))?;
        Ok(Value::Str(s.to_string()))
    }

    fn bin(&mut self, n: u64) -> Result<Value, FormatError> {
        let n = self.count(n, 1)?;
        Ok(Value::Bin(self.take(n)?.to_vec()))
    }

    fn array(&mut self, n: u64, depth: usize) -> Result<Value, FormatError> {
        let n = self.count(n, 1)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(v))
    }

    fn map(&mut self, n: u64, depth: usize) -> Result<Value, FormatError> {
        let n = self.count(n, 2)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let x = self.value(depth + 1)?;
            v.push((k, x));
        }
        // Repeated keys are ambiguous: refuse them (sorting keeps this O(n log n)).
        let mut keys: Vec<Vec<u8>> = v.iter().map(|(k, _)| encode(k)).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(FormatError::Malformed("a MessagePack map repeats a key".into()));
        }
        Ok(Value::Map(v))
    }

    fn value(&mut self, depth: usize) -> Result<Value, FormatError> {
        if depth > self.limits.max_depth {
            return Err(FormatError::Limit(format!(
                "MessagePack nesting deeper than {} levels",
                self.limits.max_depth
            )));
        }
        let t = self.take(1)?[0];
        Ok(match t {
            0x00..=0x7f => Value::UInt(t as u64),
            0x80..=0x8f => self.map((t & 0x0f) as u64, depth)?,
            0x90..=0x9f => self.array((t & 0x0f) as u64, depth)?,
            0xa0..=0xbf => self.str((t & 0x1f) as u64)?,
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let n = self.be(1)?;
                self.bin(n)?
            }
            0xc5 => {
                let n = self.be(2)?;
                self.bin(n)?
            }
            0xc6 => {
                let n = self.be(4)?;
                self.bin(n)?
            }
            0xca => Value::F32(f32::from_bits(self.be(4)? as u32)),
            0xcb => Value::F64(f64::from_bits(self.be(8)?)),
            0xcc => Value::UInt(self.be(1)?),
            0xcd => Value::UInt(self.be(2)?),
            0xce => Value::UInt(self.be(4)?),
            0xcf => Value::UInt(self.be(8)?),
            0xd0 => int(self.be(1)? as u8 as i8 as i64),
            0xd1 => int(self.be(2)? as u16 as i16 as i64),
            0xd2 => int(self.be(4)? as u32 as i32 as i64),
            0xd3 => int(self.be(8)? as i64),
            0xd9 => {
                let n = self.be(1)?;
                self.str(n)?
            }
            0xda => {
                let n = self.be(2)?;
                self.str(n)?
            }
            0xdb => {
                let n = self.be(4)?;
                self.str(n)?
            }
            0xdc => {
                let n = self.be(2)?;
                self.array(n, depth)?
            }
            0xdd => {
                let n = self.be(4)?;
                self.array(n, depth)?
            }
            0xde => {
                let n = self.be(2)?;
                self.map(n, depth)?
            }
            0xdf => {
                let n = self.be(4)?;
                self.map(n, depth)?
            }
            0xe0..=0xff => int((t as i8) as i64),
            0xc1 => return Err(FormatError::Malformed("MessagePack byte 0xc1 is never used".into())),
            0xc7..=0xc9 | 0xd4..=0xd8 => {
                return Err(FormatError::Malformed("MessagePack extension types are not allowed".into()))
            }
        })
    }
}

fn int(v: i64) -> Value {
    if v >= 0 {
        Value::UInt(v as u64)
    } else {
        Value::Int(v)
    }
}

/// Canonical encoding: shortest forms, map entries sorted by their encoded keys.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

fn head(out: &mut Vec<u8>, fix: Option<(u8, u64)>, tags: [u8; 3], n: u64) {
    match fix {
        Some((base, max)) if n <= max => out.push(base | n as u8),
        _ if n < 1 << 8 && tags[0] != 0 => {
            out.push(tags[0]);
            out.push(n as u8);
        }
        _ if n < 1 << 16 => {
            out.push(tags[1]);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(tags[2]);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::UInt(x) => {
            let x = *x;
            if x < 0x80 {
                out.push(x as u8);
            } else if x < 1 << 8 {
                out.extend_from_slice(&[0xcc, x as u8]);
            } else if x < 1 << 16 {
                out.push(0xcd);
                out.extend_from_slice(&(x as u16).to_be_bytes());
            } else if x < 1 << 32 {
                out.push(0xce);
                out.extend_from_slice(&(x as u32).to_be_bytes());
            } else {
                out.push(0xcf);
                out.extend_from_slice(&x.to_be_bytes());
            }
        }
        Value::Int(x) => {
            let x = *x;
            if x >= 0 {
                write(&Value::UInt(x as u64), out);
            } else if x >= -32 {
                out.push(x as i8 as u8);
            } else if x >= i8::MIN as i64 {
                out.extend_from_slice(&[0xd0, x as i8 as u8]);
            } else if x >= i16::MIN as i64 {
                out.push(0xd1);
                out.extend_from_slice(&(x as i16).to_be_bytes());
            } else if x >= i32::MIN as i64 {
                out.push(0xd2);
                out.extend_from_slice(&(x as i32).to_be_bytes());
            } else {
                out.push(0xd3);
                out.extend_from_slice(&x.to_be_bytes());
            }
        }
        Value::F32(x) => {
            out.push(0xca);
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        Value::F64(x) => {
            out.push(0xcb);
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        Value::Str(s) => {
            head(out, Some((0xa0, 31)), [0xd9, 0xda, 0xdb], s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bin(b) => {
            head(out, None, [0xc4, 0xc5, 0xc6], b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Array(a) => {
            head(out, Some((0x90, 15)), [0, 0xdc, 0xdd], a.len() as u64);
            for x in a {
                write(x, out);
            }
        }
        Value::Map(m) => {
            head(out, Some((0x80, 15)), [0, 0xde, 0xdf], m.len() as u64);
            let mut entries: Vec<(Vec<u8>, &Value)> = m.iter().map(|(k, x)| (encode(k), x)).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, x) in entries {
                out.extend_from_slice(&k);
                write(x, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: ReadLimits = ReadLimits { max_depth: 8 };

    #[test]
    fn roundtrip_and_shortest_forms() {
        let v = Value::map([
            (
                "b",
                Value::Array(vec![
                    Value::UInt(0),
                    Value::UInt(200),
                    Value::UInt(70000),
                    Value::UInt(u64::MAX),
                ]),
            ),
            ("a", Value::Int(-5)),
            ("c", Value::F32(0.1)),
            ("d", Value::Str("x".repeat(40))),
            ("e", Value::Bin(vec![1, 2, 3])),
            ("f", Value::Int(i64::MIN)),
            ("g", Value::Nil),
            ("h", Value::Bool(true)),
            ("i", Value::F64(-2.5)),
        ]);
        let bytes = encode(&v);
        let back = decode(&bytes, L).unwrap();
        // keys come back sorted
        assert_eq!(back.get("a"), Some(&Value::Int(-5)));
        assert_eq!(back.get("c"), Some(&Value::F32(0.1)));
        assert_eq!(encode(&back), bytes);
        assert_eq!(encode(&Value::UInt(127)), vec![0x7f]);
        assert_eq!(encode(&Value::UInt(128)), vec![0xcc, 0x80]);
        assert_eq!(encode(&Value::Int(-32)), vec![0xe0]);
    }

    #[test]
    fn hostile_lengths_fail_before_allocating() {
        // array of 2^32 - 1 elements in 5 bytes
        assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff], L).is_err());
        assert!(decode(&[0xdf, 0xff, 0xff, 0xff, 0xff], L).is_err());
        assert!(decode(&[0xdb, 0xff, 0xff, 0xff, 0xff], L).is_err());
        assert!(decode(&[0xc6, 0xff, 0xff, 0xff, 0xff], L).is_err());
        // deep nesting
        let deep = vec![0x91; 100];
        assert!(matches!(decode(&deep, L), Err(FormatError::Limit(_))));
        // extension, reserved byte, trailing bytes, repeated keys
        assert!(decode(&[0xd4, 0, 0], L).is_err());
        assert!(decode(&[0xc1], L).is_err());
        assert!(decode(&[0x01, 0x02], L).is_err());
        assert!(decode(&[0x82, 0xa1, b'a', 1, 0xa1, b'a', 2], L).is_err());
        assert!(decode(&[0xa2, 0xff, 0xfe], L).is_err());
    }
}
