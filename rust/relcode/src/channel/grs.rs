//! Greedy rejection sampling (Harsha et al. 2010), 1D Gaussian form.
//! (Being implemented; see spec/channel.md.)

use super::gaussian::Block;
use super::{ChannelError, Keys, Message, Options};

pub(super) fn encode(_: &Block, _: &Keys, _: u64, _: &Options) -> Result<(Message, u64), ChannelError> {
    Err(ChannelError::Unsupported("grs is not available in this build yet".into()))
}
