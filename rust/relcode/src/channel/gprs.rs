//! Greedy Poisson rejection sampling: global, parallel, and branch-and-bound.
//! (Being implemented; see spec/channel.md.)

use super::gaussian::Block;
use super::{ChannelError, Keys, Message, Options};

fn todo<T>(what: &str) -> Result<T, ChannelError> {
    Err(ChannelError::Unsupported(format!("{what} is not available in this build yet")))
}

pub(super) fn encode_global(
    _: &Block,
    _: &Keys,
    _: u64,
    _: &Options,
) -> Result<(Message, u64), ChannelError> {
    todo("gprs")
}
pub(super) fn encode_parallel(
    _: &Block,
    _: &Keys,
    _: u64,
    _: &Options,
) -> Result<(Message, u64), ChannelError> {
    todo("gprs_parallel")
}
pub(super) fn encode_bnb(_: &Block, _: &Keys, _: u64, _: &Options) -> Result<(Message, u64), ChannelError> {
    todo("gprs_bnb")
}
pub(super) fn decode_parallel(
    _: &Message,
    _: &[f32],
    _: &[f32],
    _: &Keys,
    _: u64,
    _: &Options,
    _: &mut [f32],
) -> Result<(), ChannelError> {
    todo("gprs_parallel")
}
pub(super) fn decode_bnb(
    _: &Message,
    _: &[f32],
    _: &[f32],
    _: &Keys,
    _: u64,
    _: &Options,
    _: &mut [f32],
) -> Result<(), ChannelError> {
    todo("gprs_bnb")
}
