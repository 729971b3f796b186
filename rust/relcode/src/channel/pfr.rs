//! Poisson functional representation (Li and El Gamal 2018), exact and untruncated.
//!
//! Candidates X_n ~ P arrive at the times T_n of a unit Poisson process; the message is the
//! n minimising T_n / r(X_n). The search stops at the first n with
//! T_n / r_max >= the best ratio so far: no later arrival can win. Expected proposals:
//! exp(D_inf) + 1. Candidates are those of the fixed-budget methods (arrival n is
//! candidate n - 1), and so are the encoder's exponentials, so PFR truncated at 2^bits
//! picks the same index whenever the exact PFR index is within the budget.

use super::candidates::{self, GROUP};
use super::fixed::{coefficients, exponentials, prefix, score_group};
use super::gaussian::Block;
use super::{ChannelError, Keys, Message, Method, Options};
use crate::stream::{Stream, Supported};

pub(super) fn encode(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
    simd: Supported,
) -> Result<(Message, u64), ChannelError> {
    let d = block.dims.len();
    let (a, b) = coefficients(block);
    let offset = block.log_r_offset();
    let log_r_max = block.d_inf();
    let cand = Stream::with_key(keys.cand, id);
    let noise = Stream::with_key(keys.noise, id);
    let mut z = vec![0f32; GROUP * d];
    let mut w = [0u32; GROUP];
    let mut best = f64::INFINITY; // min over n of ln T_n - ln r(X_n)
    let mut best_n = 0u64;
    let mut carry = 0f64;
    let mut g = 0u64;
    loop {
        cand.fill_normals_with(g * (GROUP * d) as u64, &mut z, simd);
        noise.fill_words_with(g * GROUP as u64, &mut w, simd);
        let score = score_group(&z, &a, &b);
        let e = exponentials(&w);
        let t = prefix(&e.map(|x| x as f64), carry);
        carry = t[GROUP - 1];
        for l in 0..GROUP {
            let n = g * GROUP as u64 + l as u64 + 1;
            let ln_t = t[l].ln();
            if ln_t - log_r_max >= best {
                return Ok((Message::new(best_n), n));
            }
            if n > opts.max_steps {
                return Err(ChannelError::IterationCap { method: Method::Pfr, steps: opts.max_steps });
            }
            let v = ln_t - (score[l] as f64 + offset);
            if v < best {
                best = v;
                best_n = n;
            }
        }
        g += 1;
    }
}

/// Decoder of every method whose message is an arrival index n >= 1 of the candidate
/// stream (pfr, astar, grs, gprs): the weights of candidate n - 1.
pub(super) fn decode(
    message: &Message,
    p_mean: &[f32],
    p_std: &[f32],
    keys: &Keys,
    id: u64,
    out: &mut [f32],
) -> Result<(), ChannelError> {
    if message.index == 0 {
        return Err(ChannelError::InvalidMessage("arrival indices start at 1".into()));
    }
    candidates::weights(&Stream::with_key(keys.cand, id), message.index - 1, p_mean, p_std, out)
}
