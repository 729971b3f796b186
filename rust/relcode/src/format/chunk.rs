//! Chunk frames and the payloads of the chunk types of version 1.0 (spec/format.md,
//! sections 2, 5–8). Every multi-byte integer here is little-endian. Parsers check every
//! length against the payload before reading or allocating, and every reserved field.

use super::layout::{Group, Rule};
use super::{crc32c, FormatError, FRAME_LEN, MAX_BLOCK_DIM};
use crate::codes::{BitReader, BitWriter};

/// A chunk type: four ASCII uppercase letters or digits.
pub type ChunkType = [u8; 4];

/// The header chunk: exactly one, the first chunk of every file (spec/format.md, section 5).
pub const HEAD: ChunkType = *b"HEAD";
/// Raw tensor values or per-element prior parameters (spec/format.md, section 7).
pub const DATA: ChunkType = *b"DATA";
/// The blocks of one layout group (spec/format.md, section 6.1).
pub const LAYO: ChunkType = *b"LAYO";
/// The messages of one group (spec/format.md, section 8).
pub const MSGS: ChunkType = *b"MSGS";
/// The index and the digests: exactly one, the last chunk, just before the tail
/// (spec/format.md, section 4).
pub const INDX: ChunkType = *b"INDX";

/// Frame flag: readers that do not know the chunk type skip the chunk.
pub const FLAG_OPTIONAL: u16 = 1;

/// Whether `t` is one of the chunk types of version 1.0 (HEAD, DATA, LAYO, MSGS, INDX);
/// these must have all flags clear, while unknown types may carry [`FLAG_OPTIONAL`].
pub fn known(t: &ChunkType) -> bool {
    [HEAD, DATA, LAYO, MSGS, INDX].contains(t)
}

fn name(t: &ChunkType) -> String {
    String::from_utf8_lossy(t).into_owned()
}

/// The 16 frame bytes of a chunk with this payload.
pub fn frame(kind: ChunkType, flags: u16, payload: &[u8]) -> Result<[u8; FRAME_LEN], FormatError> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        FormatError::InvalidInput(format!(
            "a {} chunk would have {} bytes; the limit is 2^32 - 1",
            name(&kind),
            payload.len()
        ))
    })?;
    let mut f = [0u8; FRAME_LEN];
    f[0..4].copy_from_slice(&kind);
    f[4..6].copy_from_slice(&flags.to_le_bytes());
    f[8..12].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c(&[&f[0..12], payload]);
    f[12..16].copy_from_slice(&crc.to_le_bytes());
    Ok(f)
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The chunk type (frame bytes 0-3).
    pub kind: ChunkType,
    /// The flags (frame bytes 4-5): bit 0 is [`FLAG_OPTIONAL`], the other bits are reserved.
    pub flags: u16,
    /// Offset of the frame in the file.
    pub offset: u64,
    /// Payload length in bytes (at most 2^32 - 1).
    pub len: u32,
    /// The recorded CRC32C of frame bytes 0-11 followed by the payload; checked by
    /// [`Frame::check`].
    pub crc: u32,
}

impl Frame {
    /// Offset just past the payload.
    pub fn end(&self) -> u64 {
        self.offset + FRAME_LEN as u64 + self.len as u64
    }

    /// Parses and checks the frame fields (not the CRC, which needs the payload).
    pub fn parse(b: &[u8; FRAME_LEN], offset: u64) -> Result<Frame, FormatError> {
        let kind: ChunkType = b[0..4].try_into().unwrap();
        if !kind.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return Err(FormatError::Malformed(format!(
                "byte {offset}: {:02x?} is not a chunk type (four ASCII capitals or digits)",
                kind
            )));
        }
        let flags = u16::from_le_bytes([b[4], b[5]]);
        let reserved = u16::from_le_bytes([b[6], b[7]]);
        if reserved != 0 {
            return Err(FormatError::Reserved(format!(
                "frame bytes 6-7 of the {} chunk at byte {offset}",
                name(&kind)
            )));
        }
        let allowed = if known(&kind) { 0 } else { FLAG_OPTIONAL };
        if flags & !allowed != 0 {
            return Err(FormatError::Reserved(format!(
                "flags {flags:#06x} of the {} chunk at byte {offset}",
                name(&kind)
            )));
        }
        let len = u32::from_le_bytes(b[8..12].try_into().unwrap());
        let crc = u32::from_le_bytes(b[12..16].try_into().unwrap());
        Ok(Frame { kind, flags, offset, len, crc })
    }

    /// Checks the CRC32C over the frame fields and the payload.
    pub fn check(&self, head: &[u8; FRAME_LEN], payload: &[u8]) -> Result<(), FormatError> {
        if crc32c(&[&head[0..12], payload]) != self.crc {
            return Err(FormatError::Crc { chunk: self.kind, offset: self.offset });
        }
        Ok(())
    }
}

/// A little-endian cursor over a payload; every read is bounds-checked.
pub(crate) struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cur<'a> {
    pub(crate) fn new(b: &'a [u8], what: &'static str) -> Cur<'a> {
        Cur { b, pos: 0, what }
    }
    fn short(&self) -> FormatError {
        FormatError::Malformed(format!("the {} payload is too short", self.what))
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| self.short())?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// A count of items of `size` bytes each, checked against the bytes that remain.
    /// The bytes not read yet (without consuming them).
    pub(crate) fn b_rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }
    pub(crate) fn take_n(&mut self, n: u64, size: usize) -> Result<&'a [u8], FormatError> {
        let bytes =
            n.checked_mul(size as u64).filter(|&b| b <= self.rest() as u64).ok_or_else(|| self.short())?;
        self.take(bytes as usize)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub(crate) fn zero(&mut self, n: usize, field: &str) -> Result<(), FormatError> {
        if self.take(n)?.iter().any(|&b| b != 0) {
            return Err(FormatError::Reserved(format!("{} of a {} chunk", field, self.what)));
        }
        Ok(())
    }
    pub(crate) fn rest(&self) -> usize {
        self.b.len() - self.pos
    }
    pub(crate) fn end(&self) -> Result<(), FormatError> {
        if self.rest() != 0 {
            return Err(FormatError::Malformed(format!(
                "{} bytes after the end of a {} payload",
                self.rest(),
                self.what
            )));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// DATA

/// What a DATA chunk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Values of a raw tensor.
    Raw = 0,
    /// Per-element prior means of a coded tensor.
    PriorMean = 1,
    /// Per-element prior stds of a coded tensor.
    PriorStd = 2,
}

impl Role {
    /// The role with byte value `id` (0 raw, 1 prior means, 2 prior stds); `None` for any
    /// other byte, which readers refuse as a `VersionError`.
    pub fn from_id(id: u8) -> Option<Role> {
        [Role::Raw, Role::PriorMean, Role::PriorStd].get(id as usize).copied()
    }
}

/// A DATA chunk: `count` values of tensor `tensor` from flat element `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Data<'a> {
    /// What the values are.
    pub role: Role,
    /// Index of the tensor in the header's tensor list.
    pub tensor: u32,
    /// Flat (row-major) index of the first element.
    pub start: u64,
    /// Number of elements (not yet checked against `values`: see [`Data::check_len`]).
    pub count: u64,
    /// Little-endian element bytes.
    pub values: &'a [u8],
}

/// Bytes of a DATA payload before its values (role, reserved, tensor, start, count).
pub const DATA_PREFIX: usize = 24;

/// The DATA payload for `count` elements of tensor `tensor` from flat element `start`:
/// the 24-byte prefix (reserved bytes zero) followed by `values`, the elements'
/// little-endian bytes. The caller keeps `values.len()` equal to `count` times the item size.
pub fn data_payload(role: Role, tensor: u32, start: u64, count: u64, values: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(DATA_PREFIX + values.len());
    p.push(role as u8);
    p.extend_from_slice(&[0, 0, 0]);
    p.extend_from_slice(&tensor.to_le_bytes());
    p.extend_from_slice(&start.to_le_bytes());
    p.extend_from_slice(&count.to_le_bytes());
    p.extend_from_slice(values);
    p
}

/// Parses a DATA payload; `itemsize` is looked up from the tensor by the caller, so this
/// returns the prefix and checks the value bytes afterwards with [`Data::check_len`].
pub fn parse_data(payload: &[u8]) -> Result<Data<'_>, FormatError> {
    let mut c = Cur::new(payload, "DATA");
    let role = c.u8()?;
    let role = Role::from_id(role)
        .ok_or_else(|| FormatError::Unsupported(format!("DATA role {role} is not known")))?;
    c.zero(3, "bytes 1-3")?;
    let tensor = c.u32()?;
    let start = c.u64()?;
    let count = c.u64()?;
    Ok(Data { role, tensor, start, count, values: &payload[DATA_PREFIX..] })
}

impl Data<'_> {
    /// Checks that the value bytes hold exactly `count` items of `itemsize` bytes (the
    /// dtype's size for raw values, 4 for prior parameters); `Malformed` otherwise.
    pub fn check_len(&self, itemsize: u64) -> Result<(), FormatError> {
        if self.count.checked_mul(itemsize) != Some(self.values.len() as u64) {
            return Err(FormatError::Malformed(format!(
                "a DATA chunk of tensor {} claims {} elements but holds {} bytes",
                self.tensor,
                self.count,
                self.values.len()
            )));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// LAYO

/// The LAYO payload of group `g` (spec/format.md, section 6.1): the 40-byte fixed part,
/// then, for the sizes and explicit rules, the block sizes Rice-coded with the parameter
/// that takes the fewest bits, and for the explicit rule the u32 member offsets. The group
/// is not validated here ([`Group::validate`] does that).
pub fn layout_payload(g: &Group) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    p.extend_from_slice(&g.id.to_le_bytes());
    p.push(g.rule.id());
    p.extend_from_slice(&[0, 0, 0]);
    p.extend_from_slice(&g.seed.to_le_bytes());
    p.extend_from_slice(&g.start.to_le_bytes());
    p.extend_from_slice(&g.count.to_le_bytes());
    p.extend_from_slice(&(g.blocks() as u32).to_le_bytes());
    match &g.rule {
        Rule::Fixed { size } => p.extend_from_slice(&size.to_le_bytes()),
        Rule::Sizes { sizes } => {
            let k = rice_parameter(sizes);
            p.extend_from_slice(&k.to_le_bytes());
            p.extend_from_slice(&rice_sizes(sizes, k));
        }
        Rule::Explicit { sizes, members } => {
            let k = rice_parameter(sizes);
            p.extend_from_slice(&k.to_le_bytes());
            p.extend_from_slice(&rice_sizes(sizes, k));
            members.iter().for_each(|m| p.extend_from_slice(&m.to_le_bytes()));
        }
    }
    p
}

/// Largest Rice parameter of block sizes (sizes are 1 ..= 65535, so v = size - 1 < 2^16).
const MAX_RICE: u32 = 15;

/// The Rice parameter that codes `sizes` in the fewest bits (ties: the smaller).
fn rice_parameter(sizes: &[u16]) -> u32 {
    (0..=MAX_RICE)
        .min_by_key(|&k| sizes.iter().map(|&s| ((s as u64 - 1) >> k) + 1 + k as u64).sum::<u64>())
        .unwrap_or(0)
}

/// Block sizes as Rice codes with parameter k, MSB-first, zero-padded to a byte: for each
/// size, v = size - 1 gives q = v >> k zero bits, a one bit, then the k low bits of v.
fn rice_sizes(sizes: &[u16], k: u32) -> Vec<u8> {
    let mut w = BitWriter::new();
    for &s in sizes {
        let v = s as u128 - 1;
        w.write(0, (v >> k) as u32);
        w.write(1, 1);
        w.write(v & ((1 << k) - 1), k);
    }
    w.finish()
}

/// The error for a count whose items this machine cannot hold.
pub(crate) fn oom(what: &str, n: u32) -> FormatError {
    FormatError::Limit(format!("cannot allocate {n} {what}: not enough memory"))
}

/// Reads `blocks` Rice-coded sizes and their zero padding.
fn parse_rice_sizes(c: &mut Cur<'_>, blocks: u32, k: u32, id: u32) -> Result<Vec<u16>, FormatError> {
    // every size takes at least one bit: bound the count by the bytes left before allocating
    if blocks as u64 > 8 * c.rest() as u64 {
        return Err(FormatError::Truncated(format!(
            "the LAYO chunk of group {id} is too short for {blocks} sizes"
        )));
    }
    let bytes = c.b_rest();
    let mut r = BitReader::new(bytes, 8 * bytes.len() as u64);
    let short = |_| FormatError::Malformed(format!("group {id}: malformed block sizes"));
    let mut sizes = Vec::new();
    sizes.try_reserve_exact(blocks as usize).map_err(|_| oom("block sizes", blocks))?;
    for _ in 0..blocks {
        let v = r.read_rice(k, u16::MAX as u32 >> k).map_err(short)?;
        if v >= u16::MAX as u64 {
            return Err(FormatError::Malformed(format!("group {id}: a block size above 65535")));
        }
        sizes.push(v as u16 + 1);
    }
    let used = r.position().div_ceil(8) as usize;
    if r.read((8 * used as u64 - r.position()) as u32).map_err(short)? != 0 {
        return Err(FormatError::Reserved(format!("padding bits of the block sizes of group {id}")));
    }
    c.take(used)?;
    Ok(sizes)
}

/// Parses a LAYO payload (the group's consistency is checked by `Group::validate`).
pub fn parse_layout(payload: &[u8]) -> Result<Group, FormatError> {
    let mut c = Cur::new(payload, "LAYO");
    let id = c.u32()?;
    let rule = c.u8()?;
    c.zero(3, "bytes 5-7")?;
    let seed = c.u64()?;
    let start = c.u64()?;
    let count = c.u64()?;
    let blocks = c.u32()?;
    let param = c.u32()?;
    let rule = match rule {
        0 => {
            if param == 0 || param as usize > MAX_BLOCK_DIM {
                return Err(FormatError::Malformed(format!(
                    "group {id}: block size {param} is outside 1..=65535"
                )));
            }
            let want = count.div_ceil(param as u64);
            if want != blocks as u64 {
                return Err(FormatError::Malformed(format!(
                    "group {id}: {blocks} blocks recorded, but {count} elements in blocks of {param} make {want}"
                )));
            }
            Rule::Fixed { size: param }
        }
        1 | 2 => {
            if param > MAX_RICE {
                return Err(FormatError::Malformed(format!(
                    "group {id}: Rice parameter {param} of the block sizes is above {MAX_RICE}"
                )));
            }
            let s = parse_rice_sizes(&mut c, blocks, param, id)?;
            if rule == 1 {
                Rule::Sizes { sizes: s }
            } else {
                let m = c
                    .take_n(count, 4)?
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                    .collect();
                Rule::Explicit { sizes: s, members: m }
            }
        }
        r => return Err(FormatError::Unsupported(format!("layout rule {r} is not known"))),
    };
    c.end()?;
    Ok(Group { id, seed, start, count, rule })
}

// ---------------------------------------------------------------------------------------
// MSGS: the frame of a group's messages (the messages themselves are read and written with
// the method's codes by the coding layer, `crate::coding::messages`)

/// The fields of a MSGS payload before its bits: group id, method id, options map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgsHead<'a> {
    /// The group id.
    pub group: u32,
    /// The method id byte (spec/channel.md §1.1).
    pub method: u8,
    /// The options map, MessagePack bytes.
    pub options: &'a [u8],
    /// The rest of the payload: what [`parse_msgs_bits`] reads.
    pub rest: &'a [u8],
}

/// The message count and bits of a MSGS payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgsBits<'a> {
    /// The number of messages.
    pub blocks: u32,
    /// The number of message bits (the last byte's unused low bits are zero).
    pub nbits: u64,
    /// The message bits, `ceil(nbits / 8)` bytes, MSB first.
    pub bits: &'a [u8],
}

/// A MSGS payload from its fields: `options` is the MessagePack options map, `bits` the
/// `nbits` message bits (MSB first, padded with zeros to whole bytes).
pub fn msgs_payload(group: u32, method: u8, options: &[u8], blocks: u32, nbits: u64, bits: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + options.len() + 12 + bits.len());
    p.extend_from_slice(&group.to_le_bytes());
    p.push(method);
    p.push(0);
    p.extend_from_slice(&(options.len() as u16).to_le_bytes());
    p.extend_from_slice(options);
    p.extend_from_slice(&blocks.to_le_bytes());
    p.extend_from_slice(&nbits.to_le_bytes());
    p.extend_from_slice(bits);
    p
}

/// Reads the group id, method id, reserved byte and options map of a MSGS payload.
pub fn parse_msgs_head(payload: &[u8]) -> Result<MsgsHead<'_>, FormatError> {
    let mut c = Cur::new(payload, "MSGS");
    let group = c.u32()?;
    let method = c.u8()?;
    c.zero(1, "byte 5")?;
    let optlen = c.u16()?;
    let options = c.take(optlen as usize)?;
    Ok(MsgsHead { group, method, options, rest: c.b_rest() })
}

/// Reads the message count and bits after a MSGS head and checks that the bits fill the
/// payload exactly and that the padding bits are zero.
pub fn parse_msgs_bits<'a>(head: &MsgsHead<'a>) -> Result<MsgsBits<'a>, FormatError> {
    let group = head.group;
    let mut c = Cur::new(head.rest, "MSGS");
    let blocks = c.u32()?;
    let nbits = c.u64()?;
    let nbytes = nbits.div_ceil(8);
    if nbytes != c.rest() as u64 {
        return Err(FormatError::Malformed(format!(
            "group {group}: {nbits} message bits need {nbytes} bytes, the chunk has {}",
            c.rest()
        )));
    }
    let bits = c.take(nbytes as usize)?;
    if nbits % 8 != 0 && bits[bits.len() - 1] & ((1u8 << (8 - nbits % 8)) - 1) != 0 {
        return Err(FormatError::Reserved(format!("padding bits after the messages of group {group}")));
    }
    Ok(MsgsBits { blocks, nbits, bits })
}

// ---------------------------------------------------------------------------------------
// INDX

/// An index entry: a chunk's type, flags and offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The chunk's type.
    pub kind: ChunkType,
    /// The chunk's flags, equal to its frame's.
    pub flags: u16,
    /// Byte offset of the chunk's frame in the file.
    pub offset: u64,
}

/// The INDX payload (spec/format.md, section 4): the entry and digest counts (u32 each),
/// the 16-byte entries (reserved bytes zero), then the 32-byte digests.
pub fn index_payload(entries: &[IndexEntry], digests: &[[u8; 32]]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + 16 * entries.len() + 32 * digests.len());
    p.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    p.extend_from_slice(&(digests.len() as u32).to_le_bytes());
    for e in entries {
        p.extend_from_slice(&e.kind);
        p.extend_from_slice(&e.flags.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&e.offset.to_le_bytes());
    }
    for d in digests {
        p.extend_from_slice(d);
    }
    p
}

/// Parses an INDX payload into its entries and digests. The counts are checked against
/// the payload length before anything is allocated (`Malformed` when they do not fill it
/// exactly), and a non-zero reserved entry byte is `Reserved`. Whether the entries match the
/// chunks present is checked by the reader.
pub fn parse_index(payload: &[u8]) -> Result<(Vec<IndexEntry>, Vec<[u8; 32]>), FormatError> {
    let mut c = Cur::new(payload, "INDX");
    let n = c.u32()? as u64;
    let nd = c.u32()? as u64;
    let eb = c.take_n(n, 16)?;
    let db = c.take_n(nd, 32)?;
    c.end()?;
    let mut entries = Vec::with_capacity(n as usize);
    for e in eb.chunks_exact(16) {
        if e[6] != 0 || e[7] != 0 {
            return Err(FormatError::Reserved("bytes 6-7 of an index entry".into()));
        }
        entries.push(IndexEntry {
            kind: e[0..4].try_into().unwrap(),
            flags: u16::from_le_bytes([e[4], e[5]]),
            offset: u64::from_le_bytes(e[8..16].try_into().unwrap()),
        });
    }
    let digests = db.chunks_exact(32).map(|d| d.try_into().unwrap()).collect();
    Ok((entries, digests))
}

#[cfg(test)]
mod rice_tests {
    use super::*;

    #[test]
    fn rice_sizes_round_trip_for_every_parameter() {
        let sizes: Vec<u16> =
            (0..500u32).map(|i| (1 + (i * 7919) % 40) as u16).chain([1, 65535, 2]).collect();
        for k in 0..=MAX_RICE {
            let bytes = rice_sizes(&sizes, k);
            let mut c = Cur::new(&bytes, "LAYO");
            assert_eq!(parse_rice_sizes(&mut c, sizes.len() as u32, k, 0).unwrap(), sizes, "k = {k}");
            assert!(c.end().is_ok());
        }
        // typical KL-greedy sizes: the chosen k is the shortest, far below 16 bits a size
        let typical = &sizes[..500];
        let k = rice_parameter(typical);
        let len = |k: u32| rice_sizes(typical, k).len();
        assert!((0..=MAX_RICE).all(|j| len(k) <= len(j) + 1), "k = {k} is not the shortest");
        assert!(len(k) * 8 < typical.len() * 8, "Rice codes must beat 8 bits a size here");
    }

    #[test]
    fn malformed_rice_sizes_are_refused() {
        // a non-zero padding bit
        let mut bytes = rice_sizes(&[3, 3, 3], 1);
        *bytes.last_mut().unwrap() |= 1;
        assert!(matches!(
            parse_rice_sizes(&mut Cur::new(&bytes, "LAYO"), 3, 1, 0),
            Err(FormatError::Reserved(_))
        ));
        // a size above 65535: 2^16 zero bits before the one (k = 0) cannot be a size
        let long = vec![0u8; 8193];
        assert!(parse_rice_sizes(&mut Cur::new(&long, "LAYO"), 1, 0, 0).is_err());
        // more sizes than bits
        assert!(matches!(
            parse_rice_sizes(&mut Cur::new(&[0xFF], "LAYO"), 9, 0, 0),
            Err(FormatError::Truncated(_))
        ));
    }
}
