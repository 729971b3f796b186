//! Closed forms for a diagonal Gaussian target Q and coding distribution P.
//!
//! Everything is standardised per dimension: with P = N(m, sp^2) and Q = N(mq, sq^2),
//! x' = (x - m)/sp turns P into N(0, 1) and Q into N(mu, s^2), mu = (mq - m)/sp, s = sq/sp.
//! The density ratio r = dQ/dP is invariant, so every sampler works in these coordinates
//! and only the final weight goes back through `prior_std * z + prior_mean`.

/// One standardised dimension: Q = N(mu, s^2) against P = N(0, 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Std1 {
    pub mu: f64,
    pub s: f64,
}

impl Std1 {
    /// Standardises Q = N(q_mean, q_std^2) against P = N(p_mean, p_std^2).
    pub fn new(q_mean: f64, q_std: f64, p_mean: f32, p_std: f32) -> Std1 {
        let pm = p_mean as f64;
        let ps = p_std as f64;
        Std1 { mu: (q_mean - pm) / ps, s: q_std / ps }
    }

    /// KL(Q || P) in nats: (s^2 + mu^2 - 1 - ln s^2) / 2.
    pub fn kl(&self) -> f64 {
        0.5 * (self.s * self.s + self.mu * self.mu - 1.0) - self.s.ln()
    }

    /// Whether the density ratio is bounded (s < 1): the exact samplers need this.
    pub fn bounded(&self) -> bool {
        self.s < 1.0
    }

    /// Mode of r: nu = mu / (1 - s^2) (not mu). Only for s < 1.
    pub fn nu(&self) -> f64 {
        self.mu / (1.0 - self.s * self.s)
    }

    /// kappa = s^2 / (1 - s^2): log r = log r_max - (x - nu)^2 / (2 kappa). Only for s < 1.
    pub fn kappa(&self) -> f64 {
        self.s * self.s / (1.0 - self.s * self.s)
    }

    /// D_inf = log r_max = -ln s + mu^2 / (2 (1 - s^2)) nats; infinite when s >= 1.
    pub fn d_inf(&self) -> f64 {
        if !self.bounded() {
            return f64::INFINITY;
        }
        -self.s.ln() + self.mu * self.mu / (2.0 * (1.0 - self.s * self.s))
    }

    /// log r(x) = -ln s - (x - mu)^2 / (2 s^2) + x^2 / 2.
    pub fn log_r(&self, x: f64) -> f64 {
        let t = (x - self.mu) / self.s;
        -self.s.ln() - 0.5 * t * t + 0.5 * x * x
    }

    /// Quadratic score coefficients (a, b) with log r(x) = a x^2 + b x + c.
    pub fn quad(&self) -> (f64, f64, f64) {
        let inv = 1.0 / (self.s * self.s);
        let a = 0.5 * (1.0 - inv);
        let b = self.mu * inv;
        let c = -self.s.ln() - 0.5 * self.mu * self.mu * inv;
        (a, b, c)
    }
}

/// A standardised block: per-dimension targets, with block totals.
#[derive(Clone, Debug)]
pub struct Block {
    pub dims: Vec<Std1>,
}

impl Block {
    pub fn new(q_mean: &[f64], q_std: &[f64], p_mean: &[f32], p_std: &[f32]) -> Block {
        let dims = (0..q_mean.len()).map(|i| Std1::new(q_mean[i], q_std[i], p_mean[i], p_std[i])).collect();
        Block { dims }
    }

    pub fn kl(&self) -> f64 {
        self.dims.iter().map(Std1::kl).sum()
    }

    pub fn d_inf(&self) -> f64 {
        self.dims.iter().map(Std1::d_inf).sum()
    }

    pub fn bounded(&self) -> bool {
        self.dims.iter().all(Std1::bounded)
    }

    /// Constant c of log r(z) = sum_i (a_i z_i + b_i) z_i + c.
    pub fn log_r_offset(&self) -> f64 {
        self.dims.iter().map(|d| d.quad().2).sum()
    }

    /// log r(z) at a standard-normal-domain point.
    pub fn log_r(&self, z: &[f32]) -> f64 {
        self.dims.iter().zip(z).map(|(d, &x)| d.log_r(x as f64)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        // Q = N(1, 0.25^2): KL 2.045 bits, D_inf 2.769 bits, r_max 6.818 (samplers.md, sec. 7)
        let q = Std1 { mu: 1.0, s: 0.25 };
        let ln2 = std::f64::consts::LN_2;
        assert!((q.kl() / ln2 - 2.045).abs() < 1e-3);
        assert!((q.d_inf() / ln2 - 2.769).abs() < 1e-3);
        assert!((q.d_inf().exp() - 6.818).abs() < 1e-3);
        // the maximum of log r is at nu, and equals D_inf
        assert!((q.log_r(q.nu()) - q.d_inf()).abs() < 1e-12);
        let (a, b, c) = q.quad();
        for x in [-2.0, 0.3, 1.7] {
            assert!((a * x * x + b * x + c - q.log_r(x)).abs() < 1e-12);
        }
    }

    #[test]
    fn unbounded_when_wider_than_prior() {
        assert_eq!(Std1 { mu: 0.5, s: 1.0 }.d_inf(), f64::INFINITY);
        assert!(!Std1 { mu: 0.0, s: 1.2 }.bounded());
    }
}
