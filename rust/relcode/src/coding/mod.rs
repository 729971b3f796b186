//! The coding layer: what a file's layouts and messages mean. It sits on both the samplers
//! ([`crate::channel`], with the streams and codes below them) and the container
//! ([`crate::format`]), which never call into it.
//!
//! - [`layout`]: which elements each block of a group takes (the seeded permutation,
//!   KL-greedy packing) and the stream id of each block;
//! - [`messages`]: the MSGS options map and the messages, read and written with each
//!   method's codes;
//! - [`encode`](mod@encode): the in-memory encoder behind `relcode.encode` and the assembler of files
//!   coded block by block elsewhere;
//! - [`decode`]: a group's messages back to its values, and the decoding methods of
//!   [`Reader`](crate::format::Reader) (`decode_all`, `decode_tensor`, `verify`, ...).

pub mod decode;
pub mod encode;
pub mod layout;
pub mod messages;

pub use decode::{decode_group, GroupPrior};
pub use encode::{
    assemble, encode, Assembly, EncodeInput, EncodeReport, GroupCoded, LayoutRule, PriorArg, Span,
    TensorInput, TensorRate, TensorSource,
};
pub use layout::{block_id, permutation};
pub use messages::Messages;
