//! Decoding: a group's messages back to its values (the channel's decoders over the
//! layout's blocks), and the decoding methods of [`Reader`], which the container reads
//! and checks and this layer decodes.

use super::layout::{block_id, try_order};
use super::messages::{options_value, parse_messages, Messages};
use crate::channel::{self, ChannelError, Keys};
use crate::format::header::DigestMode;
use crate::format::layout::Group;
use crate::format::msgpack::Value;
use crate::format::{try_zeroed, Decoded, FormatError, Reader};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// Writes the little-endian bytes of `v` into `out` (`4 · v.len()` bytes).
fn f32_bytes_into(v: &[f32], out: &mut [u8]) {
    for (o, x) in out.chunks_exact_mut(4).zip(v) {
        o.copy_from_slice(&x.to_le_bytes());
    }
}

/// The little-endian bytes of the coded-vector ranges, allocated fallibly.
fn ranges_bytes(coded: &[f32], ranges: &[(u64, u64)]) -> Result<Vec<u8>, FormatError> {
    let n: u64 = ranges.iter().map(|(a, b)| b - a).sum();
    let mut out = try_zeroed::<u8>(4 * n, "a decoded tensor")?;
    let mut at = 0usize;
    for &(a, b) in ranges {
        let v = &coded[a as usize..b as usize];
        f32_bytes_into(v, &mut out[at..at + 4 * v.len()]);
        at += 4 * v.len();
    }
    Ok(out)
}

/// A group's coding distribution: one (mean, std) for all its elements (per-layer priors),
/// or one per element, in coded-vector order.
#[derive(Clone, Copy, Debug)]
pub enum GroupPrior<'a> {
    /// One (mean, std) for every element of the group.
    Constant(f32, f32),
    /// (means, stds), one of each per element of the group, in coded-vector order.
    PerElement(&'a [f32], &'a [f32]),
}

impl<'a> GroupPrior<'a> {
    /// Per-element values as a group prior: `Constant` when every element has the same one.
    pub fn from_elements(pm: &'a [f32], ps: &'a [f32]) -> GroupPrior<'a> {
        let same = |v: &[f32]| v.iter().fold(true, |same, x| same & (x.to_bits() == v[0].to_bits()));
        match (pm.first(), ps.first()) {
            (Some(&m), Some(&s)) if same(pm) && same(ps) => GroupPrior::Constant(m, s),
            _ => GroupPrior::PerElement(pm, ps),
        }
    }
}

/// Decodes the blocks of one group into `out` (the group's elements in coded-vector order);
/// `gid` is the stream group id (`msgs.group`).
pub fn decode_group(
    g: &Group,
    gid: u32,
    msgs: &Messages,
    prior: GroupPrior<'_>,
    seed: u64,
    out: &mut [f32],
) -> Result<(), FormatError> {
    if msgs.messages.len() as u64 != g.blocks() {
        return Err(FormatError::Malformed(format!(
            "group {gid} has {} blocks but its MSGS chunk holds {} messages",
            g.blocks(),
            msgs.messages.len()
        )));
    }
    let sizes = g.sizes();
    let dmax = sizes.iter().copied().max().unwrap_or(1) as usize;
    channel::validate(msgs.method, &msgs.options, dmax)
        .map_err(|e| FormatError::Malformed(format!("group {gid}: {e}")))?;
    // the group's memory is allocated fallibly: its size comes from the file
    let order = try_order(g)?;
    let keys = Keys::new(seed);
    let mut vals = try_zeroed::<f32>(order.len() as u64, "a group")?;
    // priors in block order, then fixed chunks of blocks decoded together (SIMD across blocks)
    let (mut bm, mut bs) = (
        try_zeroed::<f32>(order.len() as u64, "a group")?,
        try_zeroed::<f32>(order.len() as u64, "a group")?,
    );
    match prior {
        GroupPrior::Constant(m, s) => {
            bm.fill(m);
            bs.fill(s);
        }
        GroupPrior::PerElement(pm, ps) => {
            for ((k, a), b) in order.iter().zip(bm.iter_mut()).zip(bs.iter_mut()) {
                *a = pm[*k as usize];
                *b = ps[*k as usize];
            }
        }
    }
    // Jobs of at most BLOCKS blocks and (beyond their first block) ELEMENTS elements: the
    // scratch memory of a job stays small however large the blocks. Which blocks share a
    // job never changes a value (every block decodes on its own).
    const BLOCKS: usize = 512;
    const ELEMENTS: usize = 1 << 17;
    let mut chunks: Vec<(usize, usize, usize, &mut [f32])> = Vec::new();
    let mut rest: &mut [f32] = &mut vals;
    let (mut off, mut j0) = (0usize, 0usize);
    while j0 < sizes.len() {
        let (mut j1, mut n) = (j0, 0usize);
        while j1 < sizes.len() && j1 - j0 < BLOCKS && (j1 == j0 || n + sizes[j1] as usize <= ELEMENTS) {
            n += sizes[j1] as usize;
            j1 += 1;
        }
        let (a, b) = std::mem::take(&mut rest).split_at_mut(n);
        chunks.push((j0, j1 - j0, off, a));
        rest = b;
        off += n;
        j0 = j1;
    }
    chunks.into_par_iter().try_for_each(|(j0, nb, off, o)| {
        let ids: Vec<u64> = (j0..j0 + nb).map(|j| block_id(gid, j as u32)).collect();
        let n = o.len();
        channel::decode_many(
            msgs.method,
            &msgs.options,
            &keys,
            &ids,
            &msgs.messages[j0..j0 + nb],
            &sizes[j0..j0 + nb],
            &bm[off..off + n],
            &bs[off..off + n],
            o,
        )
        .map_err(|(i, e)| {
            let block = (j0 + i) as u64;
            match e {
                ChannelError::InvalidMessage(why) => FormatError::Message { group: gid, block, why },
                ChannelError::Unsupported(why) => FormatError::Unsupported(why),
                e => FormatError::Message { group: gid, block, why: e.to_string() },
            }
        })
    })?;
    for (v, &k) in vals.iter().zip(&order) {
        out[k as usize] = *v;
    }
    Ok(())
}

impl Reader {
    /// The MSGS chunk of group `g`, parsed.
    pub fn messages(&self, g: usize) -> Result<Messages, FormatError> {
        let m = parse_messages(&self.msgs_payload(g)?, self.limits().max_depth as usize)?;
        if m.group as usize != g {
            return Err(FormatError::Malformed(format!(
                "the MSGS chunk of group {g} names group {}",
                m.group
            )));
        }
        Ok(m)
    }

    /// The method name, options map, block count and message bits of group `g`, without
    /// reading the messages.
    pub fn messages_summary(&self, g: usize) -> Result<(String, Value, u32, u64), FormatError> {
        let m = self.messages(g)?;
        let bits: u64 = m
            .messages
            .iter()
            .map(|x| channel::message_bits(m.method, &m.options, x).unwrap_or(0) as u64)
            .sum();
        Ok((m.method.name().to_string(), options_value(m.method, &m.options), m.messages.len() as u32, bits))
    }

    // -----------------------------------------------------------------------------------
    // Decoding

    /// Decodes MSGS group `g` (instance `g / G`, layout group `g mod G`) into `out` (its
    /// elements, in coded-vector order).
    pub fn decode_group(&self, g: usize, out: &mut [f32]) -> Result<(), FormatError> {
        let ng = self.groups()?.len().max(1);
        let msgs = self.messages(g % ng)?;
        self.decode_group_with(g, msgs, out)
    }

    /// `decode_group` with the MSGS chunk of layout group `g mod G` already parsed.
    fn decode_group_with(&self, g: usize, mut msgs: Messages, out: &mut [f32]) -> Result<(), FormatError> {
        let groups = self.groups()?;
        if !self.header.messages {
            return Err(FormatError::InvalidInput("this file holds no messages (it is a base file)".into()));
        }
        let ng = groups.len().max(1);
        let group = &groups[g % ng];
        if out.len() as u64 != group.count {
            return Err(FormatError::InvalidInput("output buffer has the wrong size".into()));
        }
        let b = group.blocks();
        if msgs.messages.len() as u64 != b * self.instances() {
            return Err(FormatError::Malformed(format!(
                "group {} has {} blocks in each of {} instances but its MSGS chunk holds {} messages",
                g % ng,
                b,
                self.instances(),
                msgs.messages.len()
            )));
        }
        if self.instances() > 1 {
            let i = (g / ng) as u64;
            msgs.messages = msgs.messages[(i * b) as usize..((i + 1) * b) as usize].to_vec();
        }
        let (e0, e1) = (group.start, group.start + group.count);
        let owned;
        let prior = match self.constant_prior(e0, e1)? {
            Some((m, s)) => GroupPrior::Constant(m, s),
            None => {
                owned = self.prior_range(e0, e1)?;
                GroupPrior::from_elements(&owned.0, &owned.1)
            }
        };
        decode_group(group, g as u32, &msgs, prior, self.header.seed, out)
    }

    /// Decodes the coded-vector range [e0, e1) into `out`, group by group in parallel.
    pub fn decode_range(&self, e0: u64, e1: u64, out: &mut [f32]) -> Result<(), FormatError> {
        let (groups, len1) = (self.groups()?, self.instance_len()?);
        if e0 > e1 || e1 > len1 * self.instances() || out.len() as u64 != e1 - e0 {
            return Err(FormatError::InvalidInput("bad range or output size".into()));
        }
        // Groups overlapping the range, each with the part of `out` it fills.
        let mut jobs: Vec<(usize, u64, &mut [f32])> = Vec::new();
        let mut rest: &mut [f32] = out;
        let ng = groups.len();
        for i in 0..self.instances() {
            for g in groups {
                let s = i * len1 + g.start;
                let (a, b) = (s.max(e0), (s + g.count).min(e1));
                if a >= b {
                    continue;
                }
                let (head, tail) = std::mem::take(&mut rest).split_at_mut((b - a) as usize);
                jobs.push((i as usize * ng + g.id as usize, s, head));
                rest = tail;
            }
        }
        // With instances, every instance of a group shares one MSGS chunk: parse it once.
        let mut parsed: std::collections::BTreeMap<usize, Messages> = std::collections::BTreeMap::new();
        if self.instances() > 1 {
            for (g, _, _) in &jobs {
                if let std::collections::btree_map::Entry::Vacant(e) = parsed.entry(g % ng) {
                    e.insert(self.messages(g % ng)?);
                }
            }
        }
        let msgs_of = |g: usize| -> Result<Messages, FormatError> {
            match parsed.get(&(g % ng)) {
                Some(m) => Ok(m.clone()),
                None => self.messages(g % ng),
            }
        };
        jobs.into_par_iter().with_max_len(1).try_for_each(|(g, s, o)| {
            let group = &groups[g % ng];
            let (a, b) = (s.max(e0), (s + group.count).min(e1));
            if a == s && b == s + group.count {
                self.decode_group_with(g, msgs_of(g)?, o)
            } else {
                let mut tmp = try_zeroed::<f32>(group.count, "a group")?;
                self.decode_group_with(g, msgs_of(g)?, &mut tmp)?;
                o.copy_from_slice(&tmp[(a - s) as usize..(b - s) as usize]);
                Ok(())
            }
        })
    }

    /// Decodes tensor `t` into its little-endian bytes and, in `tensor` digest mode, checks
    /// its SHA-256.
    pub fn decode_tensor(&self, t: usize) -> Result<Vec<u8>, FormatError> {
        let info = &self.tensors()?[t];
        let ranges = self.coded_ranges(t)?;
        let bytes = match info.coded() {
            true => {
                if !self.header.messages {
                    return Err(FormatError::InvalidInput(format!(
                        "{:?} has no messages in a base file",
                        info.name
                    )));
                }
                let n: u64 = ranges.iter().map(|(a, b)| b - a).sum();
                let mut out = try_zeroed::<u8>(4 * n, "a decoded tensor")?;
                let mut at = 0usize;
                for (a, b) in ranges {
                    let mut v = try_zeroed::<f32>(b - a, "a decoded tensor")?;
                    self.decode_range(a, b, &mut v)?;
                    f32_bytes_into(&v, &mut out[at..at + 4 * v.len()]);
                    at += 4 * v.len();
                }
                out
            }
            false => {
                let mut v = try_zeroed::<u8>(info.numel() * info.dtype.size(), "a raw tensor")?;
                self.read_raw(t, &mut v)?;
                v
            }
        };
        if self.header.digest == DigestMode::Tensor {
            let pos = self.decoded_tensors()?.iter().position(|&i| i == t).unwrap();
            let got: [u8; 32] = Sha256::digest(&bytes).into();
            if got != self.digests()[pos] {
                return Err(FormatError::Digest { what: format!("tensor {:?}", info.name) });
            }
        }
        Ok(bytes)
    }

    /// Decodes the whole coded vector into `out` (length `coded_len()`).
    pub fn decode_coded(&self, out: &mut [f32]) -> Result<(), FormatError> {
        let n = self.coded_len()?;
        if n > 0 && !self.header.messages {
            return Err(FormatError::InvalidInput("this file holds no messages (it is a base file)".into()));
        }
        self.decode_range(0, n, out)
    }

    /// Decodes everything and checks every digest.
    pub fn decode_all(&self) -> Result<Decoded, FormatError> {
        let infos = self.tensors()?;
        let n = if self.header.messages { self.coded_len()? } else { 0 };
        let mut coded = try_zeroed::<f32>(n, "the coded vector")?;
        if n > 0 {
            self.decode_coded(&mut coded)?;
        }
        let mut raw: Vec<Option<Vec<u8>>> = vec![None; infos.len()];
        for t in self.decoded_tensors()? {
            let info = &infos[t];
            if !info.coded() {
                let mut v = try_zeroed::<u8>(info.numel() * info.dtype.size(), "a raw tensor")?;
                self.read_raw(t, &mut v)?;
                raw[t] = Some(v);
            }
        }
        let views: Vec<Option<&[u8]>> = raw.iter().map(|r| r.as_deref()).collect();
        self.check_digests(&coded, &views)?;
        let mut tensors = Vec::new();
        for t in self.decoded_tensors()? {
            let bytes = match raw[t].take() {
                None => ranges_bytes(&coded, &self.coded_ranges(t)?)?,
                Some(b) => b,
            };
            tensors.push((t, bytes));
        }
        Ok(Decoded { coded, tensors })
    }

    /// Checks every CRC (unknown optional chunks included), decodes everything and checks
    /// the digests.
    pub fn verify(&self) -> Result<(), FormatError> {
        self.check_chunks()?;
        self.decode_all().map(|_| ())
    }
}
