//! A* coding: global bound, AS* (sample splitting), AD* (dyadic) and DAD* (depth-limited).
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
    todo("astar")
}
pub(super) fn encode_as(_: &Block, _: &Keys, _: u64, _: &Options) -> Result<(Message, u64), ChannelError> {
    todo("as_star")
}
pub(super) fn encode_ad(_: &Block, _: &Keys, _: u64, _: &Options) -> Result<(Message, u64), ChannelError> {
    todo("ad_star")
}
pub(super) fn encode_dad(_: &Block, _: &Keys, _: u64, _: &Options) -> Result<(Message, u64), ChannelError> {
    todo("dad_star")
}
pub(super) fn decode_as(
    _: &Message,
    _: &[f32],
    _: &[f32],
    _: &Keys,
    _: u64,
    _: &Options,
    _: &mut [f32],
) -> Result<(), ChannelError> {
    todo("as_star")
}
pub(super) fn decode_ad(
    _: &Message,
    _: &[f32],
    _: &[f32],
    _: &Keys,
    _: u64,
    _: &Options,
    _: &mut [f32],
) -> Result<(), ChannelError> {
    todo("ad_star")
}
