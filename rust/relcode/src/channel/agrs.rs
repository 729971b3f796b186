//! Adaptive greedy rejection sampling (Flamich and Theis 2023), 1D Gaussian form.
//! (Being implemented; see spec/channel.md.)

use super::gaussian::Block;
use super::{ChannelError, Field, Keys, Message, Options};
use crate::codes::IndexCode;

pub(super) fn message_codes(opts: &Options) -> Vec<(Field, IndexCode)> {
    vec![(Field::Index, opts.index_code)]
}

pub(super) fn encode(_: &Block, _: &Keys, _: u64, _: &Options) -> Result<(Message, u64), ChannelError> {
    Err(ChannelError::Unsupported("agrs is not available in this build yet".into()))
}

pub(super) fn decode(
    _: &Message,
    _: &[f32],
    _: &[f32],
    _: &Keys,
    _: u64,
    _: &Options,
    _: &mut [f32],
) -> Result<(), ChannelError> {
    Err(ChannelError::Unsupported("agrs is not available in this build yet".into()))
}
