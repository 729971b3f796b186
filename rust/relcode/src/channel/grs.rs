//! Greedy rejection sampling (Harsha et al. 2010), 1D Gaussian form with exact thresholds.
//!
//! Why it is exact. Step i proposes X_i ~ P (candidate i - 1, as for pfr) and accepts it
//! with probability clamp((r(X_i) - H_i) / g(H_i), 0, 1), where H_1 = 0,
//! H_{i+1} = H_i + g(H_i) and g(H) = E_P[(r - H)_+] is the target mass not accepted yet.
//! Step i is reached with probability g(H_i), so the accepted density at step i is
//! p(x) (min(r, H_{i+1}) - min(r, H_i)): the steps telescope to p min(r, r_max) = q.
//! The expected number of proposals is sum_i g(H_i) = r_max = exp(D_inf) (Flamich and
//! Theis 2023). The threshold recursion is the discrete-time form of GPRS's dh/dt = g(h).
//!
//! g is evaluated in the numerically stable form of `gaussian::Std1::remaining`, and H is
//! carried as its level ln(r_max / H) so that r(x) - H keeps its precision near the mode.
//! Message: the proposal index N (universal code); the decoder is pfr's.

use super::gaussian::Block;
use super::{ChannelError, Keys, Message, Method, Options};
use crate::stream::Stream;

pub(super) fn encode(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    let target = block.dims[0];
    let d_inf = target.d_inf();
    let cand = Stream::with_key(keys.cand, id);
    let noise = Stream::with_key(keys.noise, id);
    // threshold H as its level ln(r_max / H); +infinity is H = 0
    let mut level = f64::INFINITY;
    let mut n = 0u64;
    loop {
        n += 1;
        if n > opts.max_steps {
            return Err(ChannelError::IterationCap { method: Method::Grs, steps: opts.max_steps });
        }
        let x = cand.normal(n - 1) as f64;
        let gap = target.gap(x);
        let g = target.remaining(level);
        // r(x) - H, from the levels of x and H
        let excess = if level == f64::INFINITY {
            (d_inf - gap).exp()
        } else {
            (d_inf - level).exp() * (level - gap).exp_m1()
        };
        let u = noise.uniform_f64(n - 1);
        if u * g < excess {
            return Ok((Message::new(n), n));
        }
        // H <- H + g(H)
        level =
            if level == f64::INFINITY { d_inf - g.ln() } else { level - (g / (d_inf - level).exp()).ln_1p() };
    }
}
