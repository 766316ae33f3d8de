//! Speculative coupled decoding (SCD / MC-SJD, ICML 2026): SJD whose carried drafts are coupled
//! to the previous iteration's, so that a draft survives whenever the target barely moved, while
//! each draft's marginal stays the target distribution it is recorded with (lossless).

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// How a position's next draft is coupled to its previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Coupling {
    /// Maximal coupling: keep the stale draft `x ~ q` with probability `min(1, p(x)/q(x))`, else
    /// draw from `norm(max(0, p − q))`; the result is an exact sample of `p`.
    Maximal,
    /// Gumbel-max with noise keyed by (image, absolute position, token): the draft is
    /// `argmax_v log p(v) + g_v`, unchanged while the argmax is.
    Gumbel,
}

impl TryFrom<String> for Coupling {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl Coupling {
    /// Parses `maximal` or `gumbel`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "maximal" => Ok(Self::Maximal),
            "gumbel" => Ok(Self::Gumbel),
            other => Err(format!(
                "coupling '{other}' is not known; allowed: maximal, gumbel"
            )),
        }
    }

    /// The name as written in configs and records.
    pub fn name(self) -> &'static str {
        match self {
            Self::Maximal => "maximal",
            Self::Gumbel => "gumbel",
        }
    }
}

/// Maximal coupling of the stale draft `x` (drawn from `q`; `None` = one-hot at `x`) with `p`:
/// returns a token distributed exactly as `p` that equals `x` with probability `1 − TV(q, p)`.
pub fn maximal_couple(p: &[f32], q: Option<&[f32]>, x: u32, rng: &mut Rng) -> u32 {
    let xi = x as usize;
    let q_x = q.map_or(1.0, |q| q[xi]) as f64;
    if q_x > 0.0 && rng.uniform() < (p[xi] as f64 / q_x).min(1.0) {
        return x;
    }
    rng.categorical(&crate::accept::single_draft_residual(p, q, x)) as u32
}

/// Gumbel-max draw from `p` with the noise of one absolute position: `noise` is that position's
/// own stream (the same every time the position is drafted). Equivalent to
/// `argmin_v E_v / p(v)` with `E_v = −ln U_v` exponential.
pub fn gumbel_draw(p: &[f32], noise: &Rng) -> u32 {
    let mut rng = noise.clone();
    let mut best = (f64::INFINITY, 0u32);
    for (v, &pv) in p.iter().enumerate() {
        // One uniform per token, drawn for every token so that token v always gets the same one.
        let u = rng.uniform();
        if pv > 0.0 {
            let e = -(1.0 - u).ln() / pv as f64;
            if e < best.0 {
                best = (e, v as u32);
            }
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn freqs(n: usize, v: usize, mut f: impl FnMut(usize) -> u32) -> Vec<f64> {
        let mut c = vec![0.0; v];
        for i in 0..n {
            c[f(i) as usize] += 1.0 / n as f64;
        }
        c
    }

    #[test]
    fn maximal_coupling_keeps_p_and_the_draft_as_often_as_possible() {
        let q = [0.5f32, 0.3, 0.2, 0.0];
        let p = [0.2f32, 0.3, 0.1, 0.4];
        let mut rng = Rng::new(3);
        let n = 200_000;
        let mut kept = 0usize;
        let f = freqs(n, 4, |_| {
            let x = rng.categorical(&q) as u32;
            let y = maximal_couple(&p, Some(&q), x, &mut rng);
            kept += usize::from(x == y);
            y
        });
        for (a, b) in f.iter().zip(p) {
            assert!((a - b as f64).abs() < 0.005, "{f:?}");
        }
        // P(keep) = 1 − TV(q, p) = 1 − 0.4.
        assert!((kept as f64 / n as f64 - 0.6).abs() < 0.005);
    }

    #[test]
    fn gumbel_draws_follow_p_and_repeat_for_the_same_noise() {
        let p = [0.1f32, 0.0, 0.6, 0.3];
        let root = Rng::new(9);
        let f = freqs(100_000, 4, |i| gumbel_draw(&p, &root.fork(i as u64)));
        for (a, b) in f.iter().zip(p) {
            assert!((a - b as f64).abs() < 0.006, "{f:?}");
        }
        let noise = root.fork(7);
        assert_eq!(gumbel_draw(&p, &noise), gumbel_draw(&p, &noise));
        // A small move of p rarely changes the draw.
        let p2 = [0.12f32, 0.0, 0.58, 0.3];
        let same = (0..2000)
            .filter(|&i| gumbel_draw(&p, &root.fork(i)) == gumbel_draw(&p2, &root.fork(i)))
            .count();
        assert!(same > 1900, "{same}");
    }
}
