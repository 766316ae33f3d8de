//! The bounded relaxation (`relax = "bounded"`): one relaxed target per position, chosen from p,
//! the drafts' source and the latent-neighbour sets before any draft is drawn, that moves at most
//! δ of p's mass and only from a token to one of whose k nearest neighbours it is, towards where
//! the drafts come from (greedily raising Σ min(p̃, q), the exact acceptance rate). Exact
//! speculative sampling against it emits exactly that target, so the emitted distribution is
//! within δ of p by construction, on chains and trees alike.

use super::emitted::Drafts;
use crate::neighbours::NeighbourTable;

/// Sampled drafts: the receivers considered, largest `q` first (each costs a scan of up to `k`
/// neighbours; the drafter's favourites carry nearly all of q's mass, and the cap keeps a row's
/// relaxation far cheaper than its forward at k = 1000).
pub const MAX_RECEIVERS: usize = 64;

/// The bounded relaxed target: `TVD(p̃, p) ≤ δ`, mass moved only from a token's `k` nearest
/// neighbours onto it. Receivers are the tokens the drafts want more of than p gives them —
/// the [`MAX_RECEIVERS`] largest `q(y) > p(y)` for sampled drafts (largest first), the
/// candidates in order for fixed drafts — and sources give only what they hold beyond their own
/// draft weight. Any such choice keeps the bound; the greedy order only decides how much
/// acceptance it buys.
pub fn bounded_target(
    p: &[f32],
    drafts: Drafts,
    neighbours: &NeighbourTable,
    k: usize,
    delta: f32,
) -> Vec<f32> {
    let mut out: Vec<f64> = p.iter().map(|&x| x as f64).collect();
    let mut budget = delta as f64;
    // Draft weight w: q for sampled drafts, 1 on each fixed candidate.
    let (weight, receivers): (Vec<f64>, Vec<u32>) = match drafts {
        Drafts::Sampled { q, .. } => {
            let w: Vec<f64> = q.iter().map(|&x| x.max(0.0) as f64).collect();
            let mut r: Vec<u32> = (0..p.len() as u32)
                .filter(|&y| w[y as usize] > out[y as usize])
                .collect();
            let order = |a: &u32, b: &u32| w[*b as usize].total_cmp(&w[*a as usize]).then(a.cmp(b));
            if r.len() > MAX_RECEIVERS {
                r.select_nth_unstable_by(MAX_RECEIVERS, order);
                r.truncate(MAX_RECEIVERS);
            }
            r.sort_by(order);
            (w, r)
        }
        Drafts::Deterministic(c) => {
            let mut w = vec![0f64; p.len()];
            for &x in c {
                w[x as usize] = 1.0;
            }
            (w, c.to_vec())
        }
    };
    for y in receivers {
        if budget <= 0.0 {
            break;
        }
        let y = y as usize;
        let mut need = weight[y] - out[y];
        let nb = neighbours.neighbours(y);
        for &z in &nb[..k.min(nb.len())] {
            if need <= 0.0 || budget <= 0.0 {
                break;
            }
            let z = z as usize;
            let surplus = out[z] - weight[z];
            if surplus <= 0.0 {
                continue;
            }
            let m = need.min(surplus).min(budget);
            out[z] -= m;
            out[y] += m;
            need -= m;
            budget -= m;
        }
    }
    out.iter().map(|&x| x as f32).collect()
}
