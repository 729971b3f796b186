//! What a LAYO chunk records (spec/format.md, section 6): a group of the coded vector and the
//! rule that cuts it into blocks, with the structural checks a reader applies. Bytes only:
//! the seeded permutation the `fixed` and `sizes` rules take their members in is the coding
//! layer's ([`crate::coding::layout`]).

use super::{FormatError, Limits, MAX_BLOCK_DIM};

/// How a group is split into blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Permuted order cut into blocks of `size` (the last block takes the remainder).
    Fixed {
        /// Members per block, 1 to 65535.
        size: u32,
    },
    /// Permuted order cut into blocks of the listed sizes.
    Sizes {
        /// Members of each block, in block order; each at least 1, adding up to the group's
        /// count.
        sizes: Vec<u16>,
    },
    /// Blocks of the listed sizes taking `members` (offsets into the group) in order.
    Explicit {
        /// Members of each block, in block order; each at least 1, adding up to the group's
        /// count.
        sizes: Vec<u16>,
        /// Offsets into the group in block order: a permutation of `0 .. count`.
        members: Vec<u32>,
    },
}

impl Rule {
    /// The rule byte of the LAYO payload: 0 fixed, 1 sizes, 2 explicit.
    pub fn id(&self) -> u8 {
        match self {
            Rule::Fixed { .. } => 0,
            Rule::Sizes { .. } => 1,
            Rule::Explicit { .. } => 2,
        }
    }

    /// The rule's name: `"fixed"`, `"sizes"` or `"explicit"`.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Fixed { .. } => "fixed",
            Rule::Sizes { .. } => "sizes",
            Rule::Explicit { .. } => "explicit",
        }
    }
}

/// One layout group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Group id: its position among the groups, and the PERM stream id.
    pub id: u32,
    /// Root seed of the permutation.
    pub seed: u64,
    /// First element of the group in the coded vector.
    pub start: u64,
    /// Number of elements: at least 1, at most `Limits::max_group_elements` and 2^32 - 1.
    pub count: u64,
    /// How the group's elements are split into blocks.
    pub rule: Rule,
}

impl Group {
    /// Number of blocks.
    pub fn blocks(&self) -> u64 {
        match &self.rule {
            Rule::Fixed { size } => self.count.div_ceil(*size as u64),
            Rule::Sizes { sizes } | Rule::Explicit { sizes, .. } => sizes.len() as u64,
        }
    }

    /// Block sizes, in block order.
    pub fn sizes(&self) -> Vec<u32> {
        match &self.rule {
            Rule::Fixed { size } => {
                let b = self.blocks();
                (0..b)
                    .map(|j| if j + 1 < b { *size } else { (self.count - *size as u64 * (b - 1)) as u32 })
                    .collect()
            }
            Rule::Sizes { sizes } | Rule::Explicit { sizes, .. } => sizes.iter().map(|&s| s as u32).collect(),
        }
    }

    /// Checks the rule against the group's size and the limits.
    pub fn validate(&self, limits: &Limits) -> Result<(), FormatError> {
        let bad = |m: String| Err(FormatError::Malformed(format!("group {}: {m}", self.id)));
        if self.count == 0 {
            return bad("groups must have at least one element".into());
        }
        if self.count > limits.max_group_elements || self.count > u32::MAX as u64 {
            return Err(FormatError::Limit(format!(
                "group {} has {} elements, more than the limit of {} (max_group_elements)",
                self.id,
                self.count,
                limits.max_group_elements.min(u32::MAX as u64)
            )));
        }
        match &self.rule {
            Rule::Fixed { size } => {
                if *size == 0 || *size as usize > MAX_BLOCK_DIM {
                    return bad(format!("block size {size} is outside 1..={MAX_BLOCK_DIM}"));
                }
            }
            Rule::Sizes { sizes } | Rule::Explicit { sizes, .. } => {
                if sizes.contains(&0) {
                    return bad("block sizes must be positive".into());
                }
                let total: u64 = sizes.iter().map(|&s| s as u64).sum();
                if total != self.count {
                    return bad(format!("block sizes add up to {total}, not to the group's {}", self.count));
                }
            }
        }
        if let Rule::Explicit { members, .. } = &self.rule {
            if members.len() as u64 != self.count {
                return bad("explicit members must list every element once".into());
            }
            let mut seen = vec![false; members.len()];
            for &m in members {
                match seen.get_mut(m as usize) {
                    Some(s) if !*s => *s = true,
                    _ => return bad(format!("explicit member {m} is out of range or repeated")),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_sizes_take_the_remainder_last() {
        let g = Group { id: 0, seed: 0, start: 0, count: 10, rule: Rule::Fixed { size: 4 } };
        assert_eq!(g.blocks(), 3);
        assert_eq!(g.sizes(), vec![4, 4, 2]);
    }
}
