//! Adaptive greedy rejection sampling (Flamich and Theis 2023), 1D Gaussian form.
//!
//! Why it is exact. AGRS is greedy rejection sampling whose proposal may change at every
//! step. After k - 1 rejections with threshold H_k, the target mass not yet accepted has
//! density p (r - H_k)_+, supported on the superlevel interval S_k = {r > H_k}; so step k
//! may propose from P restricted to any bound B_k containing S_k. With X ~ P|B_k accepted
//! with probability clamp((r(X) - H_k) P(B_k) / g(H_k), 0, 1) (g(H) = E_P[(r - H)_+], the
//! mass not yet accepted, which is also the probability of reaching step k), the accepted
//! density at step k is p (min(r, H_{k+1}) - min(r, H_k)) with
//! H_{k+1} = H_k + g(H_k) / P(B_k): the same telescoping as GRS, with steps 1/P(B_k)
//! times larger. Any bounds that contain S_k keep the output exactly Q; tight bounds make
//! the thresholds race to r_max in a few steps instead of GRS's exp(D_inf).
//!
//! The bounds. Bob must reproduce the accepted proposal X_K = B_K.sample(U_K) (P's
//! quantile domain, spec/channel.md section 5.1), so B_K is transmitted. The paper sends
//! it by dithered quantisation with bits-back ("BBQ"), which needs a shared entropy coder
//! state. relcode instead quantises bounds deterministically to *dyadic pairs*: the
//! quantile interval [j 2^-d, min(1, (j + 2) 2^-d)] at depth d <= 62, offset j < 2^d,
//! sent as the heap-style integer 2^d + j. The encoder takes, at each step, the deepest
//! pair that contains S_k (P(B_k) < 4 P(S_k), at most ~2 bits above the ideal bound; the
//! whole line at step 1, where S_1 is). Exactness does not depend on this choice.
//!
//! Message: the bound of the accepting step, then its index K (both universal codes).
//! Runtime: a few steps, growing slowly with KL and flat in D_inf (empirically, as the
//! paper conjectures); code length about KL + 2 log2(KL) + O(1) bits.

use super::gaussian::{quantile_of, Block};
use super::gprs::MAX_DEPTH;
use super::quantile::Interval;
use super::{ChannelError, Field, Keys, Message, Method, Options};
use crate::codes::IndexCode;
use crate::stream::{candidate_weight, Stream};

pub(super) fn message_codes(opts: &Options) -> Vec<(Field, IndexCode)> {
    vec![(Field::Aux, opts.index_code), (Field::Index, opts.index_code)]
}

/// The bound of heap-style code `b` = 2^d + j: [j 2^-d, min(1, (j + 2) 2^-d)].
pub(super) fn bound(b: u64) -> Result<Interval, ChannelError> {
    if b == 0 {
        return Err(ChannelError::InvalidMessage("agrs bound codes start at 1".into()));
    }
    let d = 63 - b.leading_zeros();
    if d > MAX_DEPTH {
        return Err(ChannelError::InvalidMessage(format!(
            "agrs bound {b} is deeper than the largest depth {MAX_DEPTH}"
        )));
    }
    let j = b - (1u64 << d);
    let lo = Interval::dyadic(d, j).lo;
    let hi = if j + 1 < (1u64 << d) { Interval::dyadic(d, j + 1).hi } else { Interval::dyadic(d, j).hi };
    Ok(Interval { lo, hi })
}

/// The deepest dyadic pair whose standard-normal endpoints enclose [a, b] (the code of
/// the whole line, 1, when nothing finer does); `None` when [a, b] is too narrow for a pair
/// of depth <= 62 to bound it within a factor 4.
fn cover(a: f64, b: f64) -> Option<u64> {
    let qa = quantile_of(a);
    let qb = quantile_of(b);
    let mass = Interval { lo: qa, hi: qb }.mass();
    let ideal = if mass > 0.0 { (-mass.log2()).floor() } else { f64::INFINITY };
    if ideal > MAX_DEPTH as f64 {
        return None;
    }
    for d in (1..=ideal.max(0.0) as u32).rev() {
        let full = 1u64 << d;
        let scaled = qa.c * (full as f64); // exact: a power-of-two scaling
        let j = if qa.upper { full - (scaled.ceil() as u64).min(full) } else { scaled.floor() as u64 };
        let code = full + j.min(full - 1);
        let iv = bound(code).expect("depth within range");
        let (lo, hi) = iv.xs();
        if lo <= a && hi >= b {
            return Some(code);
        }
    }
    Some(1)
}

pub(super) fn encode(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    let target = block.dims[0];
    let d_inf = target.d_inf();
    let node = Stream::with_key(keys.node, id);
    let noise = Stream::with_key(keys.noise, id);
    // threshold H as its level ln(r_max / H); +infinity is H = 0
    let mut level = f64::INFINITY;
    let mut k = 0u64;
    loop {
        k += 1;
        if k > opts.max_steps {
            return Err(ChannelError::IterationCap { method: Method::Agrs, steps: opts.max_steps });
        }
        let code = if level == f64::INFINITY {
            1
        } else {
            // S_k, widened by a relative 1e-9 against rounding in the quantile transform
            let r = target.radius(level) * (1.0 + 1e-9) + 1e-300;
            // a bound deeper than the largest depth would have to be loose by more than
            // a factor 4 per level: refuse rather than crawl
            cover(target.nu() - r, target.nu() + r)
                .ok_or(ChannelError::DepthLimit { method: Method::Agrs, depth: super::gprs::MAX_DEPTH })?
        };
        let iv = bound(code)?;
        let p_b = iv.mass();
        let x = iv.sample(node.uniform_f64(k)).x();
        let gap = target.gap(x);
        let g = target.remaining(level);
        let excess = if level == f64::INFINITY {
            (d_inf - gap).exp()
        } else {
            (d_inf - level).exp() * (level - gap).exp_m1()
        };
        let u = noise.uniform_f64(k);
        if u * g < excess * p_b {
            return Ok((Message { index: k, aux: code }, k));
        }
        // H <- H + g(H) / P(B)
        let step = g / p_b;
        level = if level == f64::INFINITY {
            d_inf - step.ln()
        } else {
            level - (step / (d_inf - level).exp()).ln_1p()
        };
    }
}

/// The accepted proposal: step K's uniform of the node stream, in the transmitted bound.
pub(super) fn decode(
    message: &Message,
    p_mean: &[f32],
    p_std: &[f32],
    keys: &Keys,
    id: u64,
    _: &Options,
    out: &mut [f32],
) -> Result<(), ChannelError> {
    if message.index == 0 {
        return Err(ChannelError::InvalidMessage("agrs step indices start at 1".into()));
    }
    let iv = bound(message.aux)?;
    let node = Stream::with_key(keys.node, id);
    let z = iv.sample(node.uniform_f64(message.index)).z();
    out[0] = candidate_weight(p_mean[0], p_std[0], z);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_dyadic_pairs() {
        assert_eq!(bound(1).unwrap(), Interval::FULL);
        assert_eq!(bound(2).unwrap(), Interval::FULL); // depth 1, j = 0: both halves
        let b = bound(5).unwrap(); // depth 2, j = 1: [1/4, 3/4]
        assert_eq!(b.mass(), 0.5);
        let last = bound(7).unwrap(); // depth 2, j = 3: the last cell alone
        assert_eq!(last.mass(), 0.25);
        assert!(bound(0).is_err() && bound(1 << 63).is_err());
        assert!(cover(10.0, 10.0 + 1e-12).is_none());
    }

    #[test]
    fn covers_enclose_and_are_tight() {
        for (a, b) in [
            (-0.1, 0.2),
            (1.0, 1.3),
            (-3.0, -2.99),
            (4.0, 4.5),
            (6.0, 6.000_001),
            (-7.5, -7.4),
            (-1e-3, 40.0),
        ] {
            let code = cover(a, b).unwrap();
            let iv = bound(code).unwrap();
            let (lo, hi) = iv.xs();
            assert!(lo <= a && hi >= b, "[{a}, {b}] not in {:?}", (lo, hi));
            let s = Interval { lo: quantile_of(a), hi: quantile_of(b) }.mass();
            if s > 1e-18 {
                assert!(iv.mass() < 4.0 * s + 1e-300, "[{a}, {b}]: bound {} for {}", iv.mass(), s);
            }
        }
    }
}
