//! The streaming writer: preamble and header first, then chunks in whatever order the
//! caller produces them, then the index with the digests and the tail. It never seeks, so it
//! writes to pipes and sockets as well as files, and its memory is the index (16 bytes per
//! chunk) plus the digest reorder buffer.
//!
//! Digests are SHA-256 of the decoded tensors' little-endian bytes, which must be hashed in
//! element order; values that arrive early (groups finished out of order) wait in a reorder
//! buffer until the values before them have been hashed.

use super::chunk::{self, IndexEntry, Role, DATA, HEAD, INDX, LAYO};
use super::header::{DigestMode, Header, TensorInfo};
use super::layout::Group;
use super::{FormatError, END_MAGIC, MAGIC, VERSION_MAJOR, VERSION_MINOR};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;

struct Lane {
    hasher: Sha256,
    /// Bytes hashed so far, and bytes in all.
    next: u64,
    total: u64,
    pending: BTreeMap<u64, Vec<u8>>,
}

impl Lane {
    fn new(total: u64) -> Lane {
        Lane { hasher: Sha256::new(), next: 0, total, pending: BTreeMap::new() }
    }

    fn feed(&mut self, pos: u64, bytes: Vec<u8>) -> Result<(), FormatError> {
        let end = pos.checked_add(bytes.len() as u64).filter(|&e| e <= self.total);
        if end.is_none() || (pos < self.next && !bytes.is_empty()) {
            return Err(FormatError::InvalidInput("decoded values were given twice or out of range".into()));
        }
        if bytes.is_empty() {
            // An empty tensor starts where the next one does: nothing to hash, nothing to wait for.
            return Ok(());
        }
        if self.pending.contains_key(&pos) {
            return Err(FormatError::InvalidInput("decoded values were given twice or out of range".into()));
        }
        if pos != self.next {
            self.pending.insert(pos, bytes);
            return Ok(());
        }
        self.hasher.update(&bytes);
        self.next += bytes.len() as u64;
        while let Some(b) = self.pending.remove(&self.next) {
            self.hasher.update(&b);
            self.next += b.len() as u64;
        }
        Ok(())
    }
}

/// Hashes decoded tensors in element order from pieces given in any order.
pub struct DigestBuilder {
    mode: DigestMode,
    /// Per decoded tensor: (tensor index, coded-vector start or None, byte offset in the
    /// concatenation, byte length, elements per instance).
    items: Vec<(usize, Option<u64>, u64, u64, u64)>,
    /// Instances of the coded tensors (1 without instances) and the coded length of one.
    instances: u64,
    coded_len: u64,
    lanes: Vec<Lane>,
}

impl DigestBuilder {
    /// `tensors` are the file's (or its base's) tensors as stored; `messages` whether coded
    /// tensors are decoded; `instances` the stacked instances of a file with a base.
    pub fn new(
        mode: DigestMode,
        tensors: &[TensorInfo],
        messages: bool,
        instances: Option<u64>,
    ) -> DigestBuilder {
        let k = instances.unwrap_or(1);
        let mut items = Vec::new();
        let (mut coded, mut off) = (0u64, 0u64);
        for (i, t) in tensors.iter().enumerate() {
            let n = t.numel();
            let start = if t.coded() {
                coded += n;
                Some(coded - n)
            } else {
                None
            };
            if t.coded() && !messages {
                continue;
            }
            let bytes = if t.coded() { k * n * 4 } else { n * t.dtype.size() };
            items.push((i, start, off, bytes, n));
            off += bytes;
        }
        let lanes = match mode {
            DigestMode::Tensor => items.iter().map(|it| Lane::new(it.3)).collect(),
            DigestMode::All => vec![Lane::new(off)],
        };
        DigestBuilder { mode, items, instances: k, coded_len: coded, lanes }
    }

    fn lane(&mut self, k: usize, byte: u64, bytes: Vec<u8>) -> Result<(), FormatError> {
        match self.mode {
            DigestMode::Tensor => self.lanes[k].feed(byte, bytes),
            DigestMode::All => {
                let base = self.items[k].2;
                self.lanes[0].feed(base + byte, bytes)
            }
        }
    }

    /// Raw bytes of tensor `t` from element `start`.
    pub fn raw(&mut self, t: usize, start: u64, bytes: &[u8], itemsize: u64) -> Result<(), FormatError> {
        let k = self
            .items
            .iter()
            .position(|it| it.0 == t && it.1.is_none())
            .ok_or_else(|| FormatError::InvalidInput(format!("tensor {t} is not a raw tensor")))?;
        self.lane(k, start * itemsize, bytes.to_vec())
    }

    /// Decoded values of the coded vector from position `start` (instance-major: position
    /// `i · coded_len + e` is element e of instance i).
    pub fn coded(&mut self, start: u64, values: &[f32]) -> Result<(), FormatError> {
        let n = self.coded_len.max(1);
        let end = start + values.len() as u64;
        if end > self.instances * self.coded_len {
            return Err(FormatError::InvalidInput("decoded values past the coded vector".into()));
        }
        let mut pos = start;
        while pos < end {
            let inst = pos / n;
            let seg_end = end.min((inst + 1) * n);
            let (e0, e1) = (pos - inst * n, seg_end - inst * n);
            for k in 0..self.items.len() {
                let (_, s, _, _, numel) = self.items[k];
                let Some(s) = s else { continue };
                let (a, b) = (s.max(e0), (s + numel).min(e1));
                if a >= b {
                    continue;
                }
                let from = (a - e0 + pos - start) as usize;
                let mut h = Vec::with_capacity(((b - a) * 4) as usize);
                for v in &values[from..from + (b - a) as usize] {
                    h.extend_from_slice(&v.to_le_bytes());
                }
                self.lane(k, (inst * numel + (a - s)) * 4, h)?;
            }
            pos = seg_end;
        }
        Ok(())
    }

    /// The digests; fails if any decoded value was not given.
    pub fn finish(self) -> Result<Vec<[u8; 32]>, FormatError> {
        let mut out = Vec::with_capacity(self.lanes.len());
        for l in self.lanes {
            if l.next != l.total {
                return Err(FormatError::InvalidInput(format!(
                    "the values of some tensors are missing: {} of {} bytes given in order",
                    l.next, l.total
                )));
            }
            out.push(l.hasher.finalize().into());
        }
        Ok(out)
    }
}

/// Writes a file as a stream of chunks.
pub struct Writer<W: Write> {
    out: W,
    pos: u64,
    entries: Vec<IndexEntry>,
    digests: DigestBuilder,
    tensors: Vec<TensorInfo>,
}

impl<W: Write> Writer<W> {
    /// Writes the preamble and the HEAD chunk. `tensors` are the tensors the file decodes
    /// to (the header's, or its base's).
    pub fn new(out: W, header: &Header, tensors: &[TensorInfo]) -> Result<Writer<W>, FormatError> {
        let mut w = Writer {
            out,
            pos: 0,
            entries: Vec::new(),
            digests: DigestBuilder::new(header.digest, tensors, header.messages, header.instances),
            tensors: tensors.to_vec(),
        };
        let mut pre = [0u8; 16];
        pre[0..8].copy_from_slice(&MAGIC);
        pre[8..10].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        pre[10..12].copy_from_slice(&VERSION_MINOR.to_le_bytes());
        w.put(&pre)?;
        w.chunk(HEAD, 0, &header.to_bytes())?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<(), FormatError> {
        self.out.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Writes one chunk of any type (unknown types need `chunk::FLAG_OPTIONAL` to be skippable).
    pub fn chunk(&mut self, kind: chunk::ChunkType, flags: u16, payload: &[u8]) -> Result<(), FormatError> {
        if kind == INDX || (kind == HEAD && !self.entries.is_empty()) {
            return Err(FormatError::InvalidInput("HEAD and INDX chunks are written by the writer".into()));
        }
        let f = chunk::frame(kind, flags, payload)?;
        self.entries.push(IndexEntry { kind, flags, offset: self.pos });
        self.put(&f)?;
        self.put(payload)
    }

    /// A DATA chunk: values of a raw tensor, or per-element prior parameters.
    pub fn data(&mut self, role: Role, tensor: usize, start: u64, values: &[u8]) -> Result<(), FormatError> {
        let t = self
            .tensors
            .get(tensor)
            .ok_or_else(|| FormatError::InvalidInput(format!("no tensor {tensor}")))?;
        let size = if role == Role::Raw { t.dtype.size() } else { 4 };
        if !(values.len() as u64).is_multiple_of(size) {
            return Err(FormatError::InvalidInput("DATA values are not a whole number of elements".into()));
        }
        let count = values.len() as u64 / size;
        if role == Role::Raw {
            self.digests.raw(tensor, start, values, size)?;
        }
        self.chunk(DATA, 0, &chunk::data_payload(role, tensor as u32, start, count, values))
    }

    /// Hashes raw tensor values that the file does not hold itself (they live in its base).
    pub fn hash_raw(&mut self, tensor: usize, start: u64, values: &[u8]) -> Result<(), FormatError> {
        let t = self
            .tensors
            .get(tensor)
            .ok_or_else(|| FormatError::InvalidInput(format!("no tensor {tensor}")))?;
        let size = t.dtype.size();
        self.digests.raw(tensor, start, values, size)
    }

    /// The LAYO chunk of group `g` (the group is written as given; readers validate it).
    pub fn layout(&mut self, g: &Group) -> Result<(), FormatError> {
        self.chunk(LAYO, 0, &chunk::layout_payload(g))
    }

    /// Feeds decoded coded values to the digests without writing a chunk (a MSGS chunk
    /// whose values are not contiguous: the instances of a file with a base).
    pub fn hash_coded(&mut self, start: u64, values: &[f32]) -> Result<(), FormatError> {
        self.digests.coded(start, values)
    }

    /// Writes the index and the tail and flushes the sink; returns the sink, the file length
    /// in bytes and the digests written. Fails with `InvalidInput` if some decoded value was
    /// never given to the digests.
    pub fn finish(mut self) -> Result<(W, u64, Vec<[u8; 32]>), FormatError> {
        let digests =
            std::mem::replace(&mut self.digests, DigestBuilder::new(DigestMode::All, &[], false, None))
                .finish()?;
        let payload = chunk::index_payload(&self.entries, &digests);
        let at = self.pos;
        let f = chunk::frame(INDX, 0, &payload)?;
        self.put(&f)?;
        self.put(&payload)?;
        self.put(&at.to_le_bytes())?;
        self.put(&END_MAGIC)?;
        self.out.flush()?;
        Ok((self.out, self.pos, digests))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_pieces_do_not_collide_with_the_next_tensor() {
        // An empty tensor and the tensor after it start at the same byte of the "all" digest.
        let mut lane = Lane::new(8);
        lane.feed(4, vec![]).unwrap();
        lane.feed(4, vec![1, 2, 3, 4]).unwrap();
        lane.feed(0, vec![5, 6, 7, 8]).unwrap();
        assert_eq!(lane.next, 8);
        assert!(lane.feed(4, vec![9]).is_err());
    }
}
