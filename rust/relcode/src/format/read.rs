//! The reader: validates a file's structure, then decodes groups in parallel.
//!
//! Opening reads the preamble, the tail, the index, the header and every frame; it checks
//! that the index lists exactly the chunks present, in order, that the layout groups tile
//! the coded vector and that DATA chunks tile their tensors, all before allocating anything
//! the file's bytes do not justify. Payloads are CRC-checked when they are read: all of them
//! at open in eager mode (the default for whole-file decodes), on first use in lazy mode (for
//! weight sets larger than memory). Every block decodes on its own (its stream id is a
//! function of its group and position), so the output never depends on the thread count.

use super::chunk::{self, Frame, IndexEntry, Role, DATA, DATA_PREFIX, HEAD, INDX, LAYO, MSGS};
use super::header::{DigestMode, Dtype, Header, Prior, PriorValue, TensorInfo};
use super::layout::Group;
use super::{
    hex, sha256_f32, try_zeroed, FormatError, Limits, END_MAGIC, FRAME_LEN, MAGIC, PREAMBLE_LEN, TAIL_LEN,
    VERSION_MAJOR,
};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::Arc;

/// Random-access bytes a reader decodes from.
pub trait Source: Send + Sync {
    /// Length of the source in bytes.
    fn len(&self) -> u64;
    /// Fills `buf` from `offset`; the reader never asks past `len()`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), FormatError>;
    /// The whole source, when it is in memory (lets the reader avoid copies).
    fn bytes(&self) -> Option<&[u8]> {
        None
    }
    /// Whether the source holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Source for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), FormatError> {
        buf.copy_from_slice(&self[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// A file on disk, read with positioned reads (safe from several threads at once).
pub struct FileSource {
    file: std::fs::File,
    len: u64,
    #[cfg(not(unix))]
    lock: std::sync::Mutex<()>,
}

impl FileSource {
    /// Opens the file at `path` for reading and records its length; `Io` if it cannot be
    /// opened or its length read.
    pub fn open(path: &std::path::Path) -> Result<FileSource, FormatError> {
        let file =
            std::fs::File::open(path).map_err(|e| FormatError::Io(format!("{}: {e}", path.display())))?;
        let len = file.metadata()?.len();
        Ok(FileSource {
            file,
            len,
            #[cfg(not(unix))]
            lock: std::sync::Mutex::new(()),
        })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    #[cfg(unix)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), FormatError> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset).map_err(FormatError::from)
    }
    #[cfg(not(unix))]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), FormatError> {
        use std::io::{Read, Seek, SeekFrom};
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut f = &self.file;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf).map_err(FormatError::from)
    }
}

/// A DATA chunk, located but not necessarily read.
#[derive(Clone, Copy, Debug)]
struct DataRef {
    frame: usize,
    role: Role,
    tensor: u32,
    start: u64,
    count: u64,
}

/// What the tensors, priors and layout come from: the file itself or its base.
struct Model {
    tensors: Vec<TensorInfo>,
    /// Per tensor: first element in the coded vector (coded tensors only).
    coded_start: Vec<Option<u64>>,
    coded_len: u64,
    groups: Vec<Group>,
    data: Vec<DataRef>,
}

/// An opened file: its structure checked at open ([`Reader::open`], [`Reader::from_bytes`]),
/// its tensors decoded on demand, group by group in parallel (the decoding methods, such
/// as `decode_all`, `decode_tensor` and `verify`, are the coding layer's:
/// `crate::coding::decode`).
///
/// # Examples
///
/// Open a file in memory, list its tensors and decode them:
///
/// ```
/// use relcode::channel::{Method, Options};
/// use relcode::coding::{self, EncodeInput, LayoutRule, PriorArg, TensorInput, TensorSource};
/// use relcode::format::{self, DigestMode, FormatError, Limits, Reader};
///
/// let q_mean = vec![0.02; 30];
/// let q_std = vec![0.05; 30];
/// let input = EncodeInput {
///     tensors: vec![TensorInput {
///         name: "w".into(),
///         shape: vec![5, 6],
///         source: TensorSource::Coded {
///             q_mean: &q_mean,
///             q_std: &q_std,
///             p_mean: PriorArg::Scalar(0.0),
///             p_std: PriorArg::Scalar(0.1),
///         },
///     }],
///     seed: 1,
///     method: Method::Pfr,
///     options: Options { bits: Some(10), ..Options::default() },
///     bits_per_block: 10.0,
///     layout: LayoutRule::Fixed { block_size: None },
///     chunk_size: 1 << 20,
///     digest: DigestMode::Tensor,
///     meta: None,
///     max_excess: None,
/// };
/// let (bytes, report) = coding::encode(Vec::new(), &input)?;
///
/// let file = Reader::from_bytes(bytes.clone(), Limits::default())?;
/// assert_eq!(file.version, (format::VERSION_MAJOR, format::VERSION_MINOR));
/// for t in file.tensors()? {
///     println!("{} {:?} {} coded={}", t.name, t.shape, t.dtype.name(), t.coded());
/// }
/// // Decode one tensor (its digest is checked) into little-endian float32 bytes...
/// let w = file.decode_tensor(0)?;
/// let values: Vec<f32> = w.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
/// assert_eq!(values, report.coded);
/// // ...or everything at once.
/// let all = file.decode_all()?;
/// assert_eq!(all.tensors, vec![(0, w)]);
///
/// // A damaged file is refused: a flipped bit in the header fails its chunk's CRC32C.
/// let mut bad = bytes;
/// bad[40] ^= 1;
/// let err = Reader::from_bytes(bad, Limits::default()).err().unwrap();
/// assert!(matches!(err, FormatError::Crc { chunk: format::chunk::HEAD, offset: 16 }));
/// # Ok::<(), FormatError>(())
/// ```
pub struct Reader {
    src: Box<dyn Source>,
    limits: Limits,
    /// The (major, minor) version of the preamble; the major is always [`VERSION_MAJOR`],
    /// the minor any value (readers accept every minor of their major).
    pub version: (u16, u16),
    /// The parsed and checked header.
    pub header: Header,
    frames: Vec<Frame>,
    digests: Vec<[u8; 32]>,
    /// Per group: the frame of its MSGS chunk (files with messages).
    msgs: Vec<usize>,
    own: Option<Arc<Model>>,
    base: Option<Arc<Reader>>,
    /// Instances of the coded tensors (1 unless the header says otherwise).
    instances: u64,
    /// The decoded tensors' descriptions: coded tensors stacked to (K, ...) with instances.
    stacked: Vec<TensorInfo>,
}

/// Everything a file decodes to.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The coded vector: coded tensors flattened, in header order.
    pub coded: Vec<f32>,
    /// Little-endian bytes of each decoded tensor, in header order (index into `tensors()`).
    pub tensors: Vec<(usize, Vec<u8>)>,
}

fn itemsize(t: &TensorInfo, role: Role) -> u64 {
    match role {
        Role::Raw => t.dtype.size(),
        _ => 4,
    }
}

impl Reader {
    /// Opens a file. `eager` reads and CRC-checks every chunk now; otherwise payloads are
    /// checked when first read.
    pub fn open(src: Box<dyn Source>, limits: Limits, eager: bool) -> Result<Reader, FormatError> {
        let len = src.len();
        // Preamble.
        let mut pre = [0u8; PREAMBLE_LEN];
        let n = len.min(PREAMBLE_LEN as u64) as usize;
        src.read_at(0, &mut pre[..n])?;
        let m = n.min(8);
        if pre[..m] != MAGIC[..m] {
            return Err(FormatError::NotRelcode);
        }
        if len < (PREAMBLE_LEN + FRAME_LEN + FRAME_LEN + TAIL_LEN) as u64 {
            return Err(FormatError::Truncated(format!("{len} bytes cannot hold a relcode file")));
        }
        let major = u16::from_le_bytes([pre[8], pre[9]]);
        let minor = u16::from_le_bytes([pre[10], pre[11]]);
        if major != VERSION_MAJOR {
            return Err(FormatError::UnsupportedVersion { major, minor });
        }
        if pre[12..16] != [0, 0, 0, 0] {
            return Err(FormatError::Reserved("preamble bytes 12-15".into()));
        }
        // Tail.
        let mut tail = [0u8; TAIL_LEN];
        src.read_at(len - TAIL_LEN as u64, &mut tail)?;
        if tail[8..16] != END_MAGIC {
            return Err(FormatError::BadEndMagic);
        }
        let index_at = u64::from_le_bytes(tail[0..8].try_into().unwrap());
        let index_end = len - TAIL_LEN as u64;
        if index_at < PREAMBLE_LEN as u64 || index_at > index_end - FRAME_LEN as u64 {
            return Err(FormatError::Malformed(format!("the index offset {index_at} is outside the file")));
        }
        let mut reader = Reader {
            src,
            limits,
            version: (major, minor),
            header: Header::new(0),
            frames: Vec::new(),
            digests: Vec::new(),
            msgs: Vec::new(),
            own: None,
            base: None,
            instances: 1,
            stacked: Vec::new(),
        };
        let index = reader.frame_at(index_at)?;
        if index.kind != INDX || index.end() != index_end {
            return Err(FormatError::Malformed(
                "the tail does not point at an index that ends the file".into(),
            ));
        }
        let payload = reader.load(&index)?;
        let (entries, digests) = chunk::parse_index(&payload)?;
        drop(payload);
        reader.digests = digests;
        reader.frames = reader.walk(&entries, index_at)?;
        reader.read_header()?;
        reader.instances = reader.header.instances.unwrap_or(1);
        // What the file may decode to is bounded by its length (decoder policy, see
        // `Limits::max_elements_per_byte`) before anything is allocated for its tensors.
        let total: u64 = reader.header.tensors.iter().map(|t| t.numel()).sum();
        reader.limits.check_elements(total, len)?;
        if eager {
            for i in 0..reader.frames.len() {
                let f = reader.frames[i];
                reader.load(&f)?;
            }
        }
        if reader.header.base.is_none() {
            let model = reader.build_model()?;
            reader.own = Some(Arc::new(model));
        } else {
            reader.check_base_file()?;
        }
        reader.check_messages()?;
        reader.finish_open()?;
        Ok(reader)
    }

    /// Opens bytes in memory (eagerly checked).
    pub fn from_bytes(bytes: Vec<u8>, limits: Limits) -> Result<Reader, FormatError> {
        Reader::open(Box::new(bytes), limits, true)
    }

    /// The limits the file was opened with (and that its decodes allocate under).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn frame_at(&self, offset: u64) -> Result<Frame, FormatError> {
        if offset.checked_add(FRAME_LEN as u64).is_none_or(|e| e > self.src.len()) {
            return Err(FormatError::Truncated(format!("a chunk frame at byte {offset} runs past the end")));
        }
        let mut b = [0u8; FRAME_LEN];
        self.src.read_at(offset, &mut b)?;
        let f = Frame::parse(&b, offset)?;
        if f.end() > self.src.len() - TAIL_LEN as u64 {
            return Err(FormatError::Truncated(format!(
                "the {} chunk at byte {offset} claims {} bytes, past the end of the file",
                String::from_utf8_lossy(&f.kind),
                f.len
            )));
        }
        Ok(f)
    }

    /// Reads a chunk's payload and checks its CRC.
    fn load(&self, f: &Frame) -> Result<Cow<'_, [u8]>, FormatError> {
        let mut head = [0u8; FRAME_LEN];
        self.src.read_at(f.offset, &mut head)?;
        let start = f.offset + FRAME_LEN as u64;
        let payload: Cow<'_, [u8]> = match self.src.bytes() {
            Some(b) => Cow::Borrowed(&b[start as usize..f.end() as usize]),
            None => {
                let mut v = try_zeroed::<u8>(f.len as u64, "a chunk")?;
                self.src.read_at(start, &mut v)?;
                Cow::Owned(v)
            }
        };
        f.check(&head, &payload)?;
        Ok(payload)
    }

    /// The first `n` bytes of a payload, not yet CRC-checked.
    fn prefix(&self, f: &Frame, n: usize) -> Result<Vec<u8>, FormatError> {
        if (f.len as usize) < n {
            return Err(FormatError::Malformed(format!(
                "the {} chunk at byte {} is too short",
                String::from_utf8_lossy(&f.kind),
                f.offset
            )));
        }
        let mut v = vec![0u8; n];
        self.src.read_at(f.offset + FRAME_LEN as u64, &mut v)?;
        Ok(v)
    }

    /// Follows the chunks from the preamble to the index and checks that the index lists
    /// exactly them.
    fn walk(&self, entries: &[IndexEntry], index_at: u64) -> Result<Vec<Frame>, FormatError> {
        let mut frames = Vec::with_capacity(entries.len());
        let mut at = PREAMBLE_LEN as u64;
        for (i, e) in entries.iter().enumerate() {
            if e.offset != at {
                return Err(FormatError::Malformed(format!(
                    "index entry {i} points at byte {}, but the chunk there starts at byte {at}",
                    e.offset
                )));
            }
            let f = self.frame_at(at)?;
            if f.kind != e.kind || f.flags != e.flags {
                return Err(FormatError::Malformed(format!("index entry {i} does not match its chunk")));
            }
            if i == 0 && f.kind != HEAD {
                return Err(FormatError::Malformed("the first chunk must be HEAD".into()));
            }
            if i > 0 && (f.kind == HEAD || f.kind == INDX) {
                return Err(FormatError::Malformed(format!(
                    "a second {} chunk at byte {at}",
                    String::from_utf8_lossy(&f.kind)
                )));
            }
            if !chunk::known(&f.kind) && f.flags & chunk::FLAG_OPTIONAL == 0 {
                return Err(FormatError::UnknownChunk(f.kind));
            }
            at = f.end();
            frames.push(f);
        }
        if frames.is_empty() {
            return Err(FormatError::Malformed("the file has no HEAD chunk".into()));
        }
        if at != index_at {
            return Err(FormatError::Malformed(format!(
                "bytes {at}..{index_at} before the index are not listed in it"
            )));
        }
        Ok(frames)
    }

    fn read_header(&mut self) -> Result<(), FormatError> {
        let f = self.frames[0];
        if f.len as u64 > self.limits.max_header_bytes {
            return Err(FormatError::Limit(format!(
                "the header has {} bytes, more than the limit of {}",
                f.len, self.limits.max_header_bytes
            )));
        }
        let payload = self.load(&f)?.into_owned();
        self.header = Header::parse(&payload, &self.limits)?;
        Ok(())
    }

    fn frames_of(&self, kind: chunk::ChunkType) -> impl Iterator<Item = (usize, &Frame)> {
        self.frames.iter().enumerate().filter(move |(_, f)| f.kind == kind)
    }

    /// Builds and checks the tensors, groups and DATA tiling of a file without a base.
    fn build_model(&self) -> Result<Model, FormatError> {
        let h = &self.header;
        let tensors = h.tensors.clone();
        let mut coded_start = Vec::with_capacity(tensors.len());
        let mut coded_len = 0u64;
        for t in &tensors {
            if t.coded() {
                coded_start.push(Some(coded_len));
                coded_len += t.numel();
            } else {
                coded_start.push(None);
            }
        }
        // Groups.
        let nlayo = self.frames_of(LAYO).count() as u64;
        if nlayo != h.groups {
            return Err(FormatError::Malformed(format!(
                "the header declares {} groups, the file has {nlayo} LAYO chunks",
                h.groups
            )));
        }
        let mut groups: Vec<Option<Group>> = vec![None; h.groups as usize];
        for (_, f) in self.frames_of(LAYO) {
            let g = chunk::parse_layout(&self.load(f)?)?;
            g.validate(&self.limits)?;
            match groups.get_mut(g.id as usize) {
                Some(slot @ None) => *slot = Some(g),
                _ => {
                    return Err(FormatError::Malformed(format!(
                        "group id {} is repeated or out of range",
                        g.id
                    )))
                }
            }
        }
        let groups: Vec<Group> = groups.into_iter().map(|g| g.unwrap()).collect();
        let mut at = 0u64;
        for g in &groups {
            if g.start != at {
                return Err(FormatError::Malformed(format!(
                    "group {} starts at element {}, expected {at}",
                    g.id, g.start
                )));
            }
            at += g.count;
        }
        if at != coded_len {
            return Err(FormatError::Malformed(format!(
                "the groups cover {at} elements, the coded tensors have {coded_len}"
            )));
        }
        // DATA chunks tile each (tensor, role) they belong to.
        let mut data = Vec::new();
        for (i, f) in self.frames_of(DATA) {
            let p = self.prefix(f, DATA_PREFIX)?;
            let d = chunk::parse_data(&p)?;
            let t = tensors.get(d.tensor as usize).ok_or_else(|| {
                FormatError::Malformed(format!(
                    "a DATA chunk names tensor {}, the file has {}",
                    d.tensor,
                    tensors.len()
                ))
            })?;
            let want = match d.role {
                Role::Raw => !t.coded(),
                Role::PriorMean => matches!(t.prior.map(|p| p.mean), Some(PriorValue::Elements)),
                Role::PriorStd => matches!(t.prior.map(|p| p.std), Some(PriorValue::Elements)),
            };
            if !want {
                return Err(FormatError::Malformed(format!(
                    "a DATA chunk of {:?} has a role it does not take",
                    t.name
                )));
            }
            let body = f.len as u64 - DATA_PREFIX as u64;
            if d.count.checked_mul(itemsize(t, d.role)) != Some(body) {
                return Err(FormatError::Malformed(format!(
                    "a DATA chunk of {:?} claims {} elements but holds {body} bytes",
                    t.name, d.count
                )));
            }
            data.push(DataRef { frame: i, role: d.role, tensor: d.tensor, start: d.start, count: d.count });
        }
        let mut sorted = data.clone();
        sorted.sort_by_key(|d| (d.tensor, d.role, d.start));
        let mut need: Vec<(u32, Role)> = Vec::new();
        for (i, t) in tensors.iter().enumerate() {
            match t.prior {
                None => need.push((i as u32, Role::Raw)),
                Some(p) => {
                    if p.mean == PriorValue::Elements {
                        need.push((i as u32, Role::PriorMean));
                    }
                    if p.std == PriorValue::Elements {
                        need.push((i as u32, Role::PriorStd));
                    }
                }
            }
        }
        let mut k = 0;
        for (ti, role) in need {
            let n = tensors[ti as usize].numel();
            let mut at = 0u64;
            while k < sorted.len() && sorted[k].tensor == ti && sorted[k].role == role {
                if sorted[k].start != at {
                    return Err(FormatError::Malformed(format!(
                        "the DATA chunks of {:?} overlap or leave a gap at element {at}",
                        tensors[ti as usize].name
                    )));
                }
                at += sorted[k].count;
                k += 1;
            }
            if at != n {
                return Err(FormatError::Malformed(format!(
                    "the DATA chunks of {:?} cover {at} of {n} elements",
                    tensors[ti as usize].name
                )));
            }
        }
        // Zero-element DATA chunks would break the tiling argument above only by repetition,
        // which the start check already refuses; nothing may remain.
        if k != sorted.len() {
            return Err(FormatError::Malformed("DATA chunks left over after tiling".into()));
        }
        Ok(Model { tensors, coded_start, coded_len, groups, data })
    }

    fn check_base_file(&self) -> Result<(), FormatError> {
        if self.frames_of(DATA).next().is_some() || self.frames_of(LAYO).next().is_some() {
            return Err(FormatError::Malformed(
                "a file with a base holds only messages (no DATA or LAYO chunks)".into(),
            ));
        }
        Ok(())
    }

    /// Locates the MSGS chunk of every group (files with messages) or checks there are none.
    fn check_messages(&mut self) -> Result<(), FormatError> {
        let n = self.frames_of(MSGS).count();
        if !self.header.messages {
            if n != 0 {
                return Err(FormatError::Malformed("a file without messages holds MSGS chunks".into()));
            }
            return Ok(());
        }
        let groups = match self.model() {
            Some(m) => m.groups.len(),
            None => n, // checked when the base is attached
        };
        if n != groups {
            return Err(FormatError::Malformed(format!("{n} MSGS chunks for {groups} groups")));
        }
        let mut msgs = vec![usize::MAX; n];
        let found: Vec<(usize, Frame)> = self.frames_of(MSGS).map(|(i, f)| (i, *f)).collect();
        for (i, f) in found {
            let p = self.prefix(&f, 4)?;
            let g = u32::from_le_bytes(p[0..4].try_into().unwrap()) as usize;
            match msgs.get_mut(g) {
                Some(s) if *s == usize::MAX => *s = i,
                _ => {
                    return Err(FormatError::Malformed(format!(
                        "MSGS chunk for group {g} is repeated or out of range"
                    )))
                }
            }
        }
        self.msgs = msgs;
        Ok(())
    }

    /// Attaches the base file named by the header (checked by its SHA-256).
    pub fn attach_base(&mut self, base: Arc<Reader>) -> Result<(), FormatError> {
        let Some(want) = self.header.base else {
            return Err(FormatError::InvalidInput("this file has no base".into()));
        };
        let got = base.file_sha256()?;
        if got != want {
            return Err(FormatError::BaseMismatch { want: hex(&want), got: hex(&got) });
        }
        if base.header.base.is_some() || base.header.messages {
            return Err(FormatError::Malformed("a base file must hold no messages and have no base".into()));
        }
        let (groups, coded) = base.model().map(|m| (m.groups.len() as u64, m.coded_len)).unwrap_or((0, 0));
        let k = self.instances;
        if self.msgs.len() as u64 != groups {
            return Err(FormatError::Malformed(format!(
                "{} MSGS chunks for the base's {groups} groups",
                self.msgs.len()
            )));
        }
        if k.checked_mul(groups).is_none_or(|m| m > 1 << 32) {
            return Err(FormatError::Limit(format!(
                "{k} instances of {groups} groups exceed 2^32 stream groups"
            )));
        }
        let total: u64 = base.model().map(|m| m.tensors.iter().map(|t| t.numel()).sum()).unwrap_or(0);
        match k.checked_mul(coded).and_then(|c| c.checked_add(total)) {
            Some(t) => self.limits.check_elements(t, self.len().saturating_add(base.len()))?,
            None => {
                return Err(FormatError::Limit(format!(
                    "{k} instances exceed {} elements in all (max_elements)",
                    self.limits.max_elements
                )))
            }
        }
        if self.header.instances.is_some() {
            self.stacked = base
                .model()
                .map(|m| {
                    m.tensors
                        .iter()
                        .map(|t| {
                            let mut t = t.clone();
                            if t.coded() {
                                t.shape.insert(0, k);
                            }
                            t
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        self.base = Some(base);
        self.check_digest_count()?;
        Ok(())
    }

    fn model(&self) -> Option<&Model> {
        match (&self.own, &self.base) {
            (Some(m), _) => Some(m),
            (None, Some(b)) => b.model(),
            _ => None,
        }
    }

    fn need_model(&self) -> Result<&Model, FormatError> {
        self.model().ok_or_else(|| {
            FormatError::BaseMissing(format!(
                "this file references base file {}; pass it (or a directory holding it) to decode",
                hex(&self.header.base.unwrap_or_default())
            ))
        })
    }

    fn check_digest_count(&self) -> Result<(), FormatError> {
        let n = self.decoded_tensors()?.len();
        let want = match self.header.digest {
            DigestMode::Tensor => n,
            DigestMode::All => 1,
        };
        if self.digests.len() != want {
            return Err(FormatError::Malformed(format!(
                "the index holds {} digests, the file decodes {n} tensors ({} mode)",
                self.digests.len(),
                self.header.digest.name()
            )));
        }
        Ok(())
    }

    /// SHA-256 of the whole file (what files that use it as a base record).
    pub fn file_sha256(&self) -> Result<[u8; 32], FormatError> {
        let mut h = Sha256::new();
        if let Some(b) = self.src.bytes() {
            h.update(b);
        } else {
            let mut buf = vec![0u8; 1 << 20];
            let mut at = 0u64;
            while at < self.src.len() {
                let n = (self.src.len() - at).min(buf.len() as u64) as usize;
                self.src.read_at(at, &mut buf[..n])?;
                h.update(&buf[..n]);
                at += n as u64;
            }
        }
        Ok(h.finalize().into())
    }

    // -----------------------------------------------------------------------------------
    // What the file holds

    /// The tensors the file describes, as they decode: the base's when the file has one,
    /// coded tensors stacked to shape (K, ...) when the file holds K instances.
    pub fn tensors(&self) -> Result<&[TensorInfo], FormatError> {
        let m = self.need_model()?;
        Ok(if self.header.instances.is_some() { &self.stacked } else { &m.tensors })
    }

    /// Instances of the coded tensors (1 unless the header records `instances`).
    pub fn instances(&self) -> u64 {
        self.instances
    }

    /// The layout groups, in id order, tiling the coded vector of one instance: the
    /// base's when the file has one (`BaseMissing` before it is attached).
    pub fn groups(&self) -> Result<&[Group], FormatError> {
        Ok(&self.need_model()?.groups)
    }

    /// The attached base file ([`Reader::attach_base`]); `None` for a file without a base
    /// or before it is attached.
    pub fn base(&self) -> Option<&Arc<Reader>> {
        self.base.as_ref()
    }

    /// The frames of every chunk the index lists, in file order: HEAD first, the INDX
    /// chunk not included.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// The SHA-256 digests the index records: one per entry of
    /// [`decoded_tensors`](Reader::decoded_tensors) in `tensor` mode, one in all in `all` mode.
    pub fn digests(&self) -> &[[u8; 32]] {
        &self.digests
    }

    /// Length of the file in bytes (its base not included).
    pub fn len(&self) -> u64 {
        self.src.len()
    }

    /// Always `false`: an opened file holds at least a preamble, two chunks and a tail.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Length of the coded vector (all instances: instance i's element e is at
    /// `i · N + e`, N the length of one instance).
    pub fn coded_len(&self) -> Result<u64, FormatError> {
        Ok(self.need_model()?.coded_len * self.instances)
    }

    /// The coded-vector ranges of tensor `t`, one per instance (empty for raw tensors).
    pub fn coded_ranges(&self, t: usize) -> Result<Vec<(u64, u64)>, FormatError> {
        let m = self.need_model()?;
        Ok(match m.coded_start[t] {
            None => Vec::new(),
            Some(s) => (0..self.instances)
                .map(|i| (i * m.coded_len + s, i * m.coded_len + s + m.tensors[t].numel()))
                .collect(),
        })
    }

    /// Indices of the tensors the file decodes to: all of them when it holds messages, the
    /// raw ones otherwise.
    pub fn decoded_tensors(&self) -> Result<Vec<usize>, FormatError> {
        let m = self.need_model()?;
        Ok((0..m.tensors.len()).filter(|&i| self.header.messages || !m.tensors[i].coded()).collect())
    }

    /// The payload of group `g`'s MSGS chunk, CRC-checked: the coding layer reads the
    /// messages from it (`crate::coding::messages`).
    pub fn msgs_payload(&self, g: usize) -> Result<Cow<'_, [u8]>, FormatError> {
        let i = *self
            .msgs
            .get(g)
            .ok_or_else(|| FormatError::InvalidInput(format!("no messages for group {g}")))?;
        self.load(&self.frames[i])
    }

    /// Length of the coded vector of one instance (`coded_len()` without instances).
    pub fn instance_len(&self) -> Result<u64, FormatError> {
        Ok(self.need_model()?.coded_len)
    }

    /// Reads DATA chunks of (tensor, role) overlapping elements [e0, e1) into `out`
    /// (`itemsize` bytes per element).
    fn read_data(
        &self,
        m: &Model,
        t: usize,
        role: Role,
        e0: u64,
        e1: u64,
        out: &mut [u8],
    ) -> Result<(), FormatError> {
        let size = itemsize(&m.tensors[t], role);
        let src = match (&self.own, &self.base) {
            (Some(_), _) => self,
            (None, Some(b)) => b.as_ref(),
            _ => unreachable!(),
        };
        for d in m.data.iter().filter(|d| d.tensor as usize == t && d.role == role) {
            let (a, b) = (d.start.max(e0), (d.start + d.count).min(e1));
            if a >= b {
                continue;
            }
            let f = src.frames[d.frame];
            let p = src.load(&f)?;
            let vals = &p[DATA_PREFIX..];
            let from = ((a - d.start) * size) as usize;
            let to = ((b - d.start) * size) as usize;
            out[((a - e0) * size) as usize..((b - e0) * size) as usize].copy_from_slice(&vals[from..to]);
        }
        Ok(())
    }

    /// The prior of the coded-vector range [e0, e1) when one valid (mean, std) covers all of
    /// it (tensors with equal per-layer priors); `None` otherwise, `prior_range` then applies.
    pub fn constant_prior(&self, e0: u64, e1: u64) -> Result<Option<(f32, f32)>, FormatError> {
        let m = self.need_model()?;
        let (mut found, mut covered) = (None::<(f32, f32)>, 0u64);
        for (t, info) in m.tensors.iter().enumerate() {
            let Some(s) = m.coded_start[t] else { continue };
            let (a, b) = (s.max(e0), (s + info.numel()).min(e1));
            if a >= b {
                continue;
            }
            let Some(Prior { mean: PriorValue::Scalar(pm), std: PriorValue::Scalar(ps) }) = info.prior else {
                return Ok(None);
            };
            match found {
                Some((fm, fs)) if fm.to_bits() != pm.to_bits() || fs.to_bits() != ps.to_bits() => {
                    return Ok(None)
                }
                _ => found = Some((pm, ps)),
            }
            covered += b - a;
        }
        Ok(found.filter(|&(pm, ps)| covered == e1 - e0 && pm.is_finite() && ps.is_finite() && ps > 0.0))
    }

    /// The per-element prior of the coded-vector range [e0, e1) (float32 means and stds).
    pub fn prior_range(&self, e0: u64, e1: u64) -> Result<(Vec<f32>, Vec<f32>), FormatError> {
        let m = self.need_model()?;
        let mut pm = try_zeroed::<f32>(e1 - e0, "prior means")?;
        let mut ps = try_zeroed::<f32>(e1 - e0, "prior stds")?;
        for (t, info) in m.tensors.iter().enumerate() {
            let (Some(s), Some(p)) = (m.coded_start[t], info.prior) else { continue };
            let (a, b) = (s.max(e0), (s + info.numel()).min(e1));
            if a >= b {
                continue;
            }
            let span = (a - e0) as usize..(b - e0) as usize;
            for (val, role, out) in [(p.mean, Role::PriorMean, &mut pm), (p.std, Role::PriorStd, &mut ps)] {
                match val {
                    PriorValue::Scalar(x) => out[span.clone()].fill(x),
                    PriorValue::Elements => {
                        let mut bytes = try_zeroed::<u8>(span.len() as u64 * 4, "prior values")?;
                        self.read_data(m, t, role, a - s, b - s, &mut bytes)?;
                        for (o, c) in out[span.clone()].iter_mut().zip(bytes.chunks_exact(4)) {
                            *o = f32::from_le_bytes(c.try_into().unwrap());
                        }
                    }
                }
            }
        }
        // one pass without early exit (it vectorises); the offending element only on failure
        let bad = |(&m, &s): (&f32, &f32)| !(m.is_finite() && s.is_finite() && s > 0.0);
        if !pm.iter().zip(&ps).fold(true, |ok, e| ok & !bad(e)) {
            let i = pm.iter().zip(&ps).position(bad).unwrap_or(0);
            return Err(FormatError::Malformed(format!(
                "coded element {}: prior ({}, {}) needs a finite mean and a positive finite std",
                e0 + i as u64,
                pm[i],
                ps[i]
            )));
        }
        Ok((pm, ps))
    }

    /// The raw bytes (little-endian) of raw tensor `t`.
    pub fn read_raw(&self, t: usize, out: &mut [u8]) -> Result<(), FormatError> {
        let m = self.need_model()?;
        let info = &m.tensors[t];
        if info.coded() {
            return Err(FormatError::InvalidInput(format!("{:?} is a coded tensor", info.name)));
        }
        let n = info.numel();
        if out.len() as u64 != n * info.dtype.size() {
            return Err(FormatError::InvalidInput("output buffer has the wrong size".into()));
        }
        self.read_data(m, t, Role::Raw, 0, n, out)?;
        if info.dtype == Dtype::Bool && out.iter().any(|&b| b > 1) {
            return Err(FormatError::Malformed(format!(
                "bool tensor {:?} holds a byte other than 0 or 1",
                info.name
            )));
        }
        Ok(())
    }

    /// Checks the digests of the decoded tensors (`Digest` on a mismatch): `coded` is the
    /// decoded coded vector (all instances, length `coded_len()`) and supplies the coded
    /// tensors; `raw[t]` holds the little-endian bytes of raw tensor `t` (indexed like
    /// `tensors()`, `None` for coded tensors).
    pub fn check_digests(&self, coded: &[f32], raw: &[Option<&[u8]>]) -> Result<(), FormatError> {
        let m = self.need_model()?;
        let list = self.decoded_tensors()?;
        let mut all = Sha256::new();
        for (k, &t) in list.iter().enumerate() {
            let mut h = Sha256::new();
            let target = if self.header.digest == DigestMode::All { &mut all } else { &mut h };
            match m.coded_start[t] {
                Some(_) => {
                    for (a, b) in self.coded_ranges(t)? {
                        sha256_f32(target, &coded[a as usize..b as usize]);
                    }
                }
                None => target
                    .update(raw[t].ok_or_else(|| FormatError::InvalidInput("missing raw bytes".into()))?),
            }
            if self.header.digest == DigestMode::Tensor {
                let got: [u8; 32] = h.finalize().into();
                if got != self.digests[k] {
                    return Err(FormatError::Digest { what: format!("tensor {:?}", m.tensors[t].name) });
                }
            }
        }
        if self.header.digest == DigestMode::All {
            let got: [u8; 32] = all.finalize().into();
            if got != self.digests[0] {
                return Err(FormatError::Digest { what: "the file's tensors".into() });
            }
        }
        Ok(())
    }

    /// Reads every chunk (unknown optional chunks and the base's included) one at a time
    /// and checks its CRC, without decoding: with a lazy open, the first half of a
    /// bounded-memory verify.
    pub fn check_chunks(&self) -> Result<(), FormatError> {
        for f in &self.frames {
            self.load(f)?;
        }
        if let Some(b) = &self.base {
            for f in &b.frames {
                b.load(f)?;
            }
        }
        Ok(())
    }
}

impl Reader {
    /// Called by `open` for files without a base: the digest count is known at once.
    pub(crate) fn finish_open(&self) -> Result<(), FormatError> {
        if self.header.base.is_none() {
            self.check_digest_count()?;
        }
        Ok(())
    }
}
