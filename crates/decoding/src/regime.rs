//! How ambiguous the target is where it samples: statistics of one next-token distribution p
//! (after CFG and temperature) and, where a drafter proposed at that position, the single-draft
//! acceptance probability 1 − TV(p, q) = Σᵢ min(pᵢ, qᵢ) of exact speculative sampling.

use serde::{Deserialize, Serialize};

/// Statistics of the target's distribution at one position.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Regime {
    /// Entropy of p (nats).
    pub entropy: f64,
    /// Largest probability of p.
    pub max_p: f64,
    /// Mass of p's ten most likely tokens.
    pub top10: f64,
    /// 1 − TV(p, q) against the drafter's q at the same position, where a q was drawn from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept1: Option<f64>,
}

impl Regime {
    /// The statistics of `p` (and of `p` against `q`).
    pub fn of(p: &[f32], q: Option<&[f32]>) -> Self {
        let entropy = -p
            .iter()
            .filter(|&&x| x > 0.0)
            .map(|&x| x as f64 * (x as f64).ln())
            .sum::<f64>();
        let max_p = p.iter().copied().fold(0f32, f32::max) as f64;
        let top10 = top_mass(p, 10);
        let accept1 = q.map(|q| p.iter().zip(q).map(|(&a, &b)| a.min(b) as f64).sum::<f64>());
        Self {
            entropy,
            max_p,
            top10,
            accept1,
        }
    }

    /// The mean of `items` field by field (`accept1` over the items that have one).
    pub fn mean<'a>(items: impl IntoIterator<Item = &'a Regime>) -> Option<Self> {
        let (mut n, mut acc) = (0usize, Self::of(&[], None));
        let (mut n_accept, mut accept) = (0usize, 0.0);
        for r in items {
            n += 1;
            acc.entropy += r.entropy;
            acc.max_p += r.max_p;
            acc.top10 += r.top10;
            if let Some(a) = r.accept1 {
                n_accept += 1;
                accept += a;
            }
        }
        (n > 0).then(|| Self {
            entropy: acc.entropy / n as f64,
            max_p: acc.max_p / n as f64,
            top10: acc.top10 / n as f64,
            accept1: (n_accept > 0).then(|| accept / n_accept as f64),
        })
    }
}

/// Probability mass of the `k` largest entries of `p`.
pub fn top_mass(p: &[f32], k: usize) -> f64 {
    let mut v = p.to_vec();
    let k = k.min(v.len());
    if k > 0 {
        v.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    }
    v[..k].iter().map(|&x| x as f64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_and_point_masses() {
        let u = vec![0.05f32; 20];
        let r = Regime::of(&u, None);
        assert!((r.entropy - 20f64.ln()).abs() < 1e-6);
        assert!((r.max_p - 0.05).abs() < 1e-7);
        assert!((r.top10 - 0.5).abs() < 1e-6);
        assert_eq!(r.accept1, None);
        let mut point = vec![0f32; 20];
        point[3] = 1.0;
        let r = Regime::of(&point, Some(&u));
        assert_eq!((r.entropy, r.max_p, r.top10), (0.0, 1.0, 1.0));
        // Σ min(p, q) = q[3] = 0.05: a draft from q is accepted with probability 0.05.
        assert!((r.accept1.unwrap() - 0.05).abs() < 1e-7);
    }

    #[test]
    fn mean_counts_accept1_only_where_present() {
        let a = Regime::of(&[0.5, 0.5], Some(&[1.0, 0.0]));
        let b = Regime::of(&[1.0, 0.0], None);
        let m = Regime::mean([&a, &b]).unwrap();
        assert!((m.max_p - 0.75).abs() < 1e-12);
        assert!((m.entropy - 2f64.ln() / 2.0).abs() < 1e-9);
        assert_eq!(m.accept1, Some(0.5));
        assert_eq!(Regime::mean([]), None);
    }
}
