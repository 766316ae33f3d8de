//! Acceptance rules as pure functions over probability rows: exact speculative sampling
//! (deterministic top-k drafts with q = 1, or drafts sampled without replacement from q),
//! greedy verification, LANTERN's latent-neighbour relaxation (TVD budget δ) and LANTERN++'s
//! ratio bound λ, and the walk over a verified draft tree.
//!
//! For a drafted token x with neighbours N[0..k] (closest first) and cumulative neighbour mass
//! c[m] = Σ_{t ≤ m} p(N[t]), the merged set is the longest prefix A = N[0..=m*] with
//! c[m*] ≤ δ (LANTERN) or c[m*] ≤ (λ − 1)·p(x) (LANTERN++), and p̃(x) = p(x) + c[m*]. The
//! relaxed distribution moves A's mass onto x, so its total variation distance from p is
//! c[m*] ≤ δ, and under the ratio rule p̃(x) ≤ λ·p(x). That bounds one candidate's relaxed
//! target, not what the verifier emits: [`emitted`] computes the emitted distribution exactly,
//! and [`bounded`] is a rule whose emitted distribution is provably within δ of p.

mod bounded;
pub mod emitted;

pub use bounded::bounded_target;
pub use emitted::{emitted_distribution, emitted_tvd, tvd, Drafts};

use serde::{Deserialize, Serialize};

use crate::neighbours::NeighbourTable;
use crate::rng::Rng;
use crate::sampling::argmax;
use crate::tree::DraftTree;

/// How a drafted token's acceptance probability may be relaxed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Relax {
    /// Exact (lossless) speculative sampling.
    Exact,
    /// LANTERN: merge the longest prefix of the k nearest neighbours whose p-mass is ≤ delta.
    Tvd {
        /// Neighbours considered.
        k: usize,
        /// Total-variation budget δ.
        delta: f32,
    },
    /// LANTERN++: merge the longest prefix whose mass is ≤ (lambda − 1)·p(x).
    Ratio {
        /// Neighbours considered.
        k: usize,
        /// Ratio bound λ ≥ 1.
        lambda: f32,
    },
    /// Exact speculative sampling against one relaxed target per position ([`bounded_target`]):
    /// at most δ of p's mass moved between latent neighbours before drafting, so the emitted
    /// distribution is within δ of p.
    Bounded {
        /// Neighbours considered.
        k: usize,
        /// Total-variation budget δ of the emitted distribution.
        delta: f32,
    },
}

impl Relax {
    /// Neighbours the rule reads (0 for exact).
    pub fn k(&self) -> usize {
        match self {
            Self::Exact => 0,
            Self::Tvd { k, .. } | Self::Ratio { k, .. } | Self::Bounded { k, .. } => *k,
        }
    }
}

/// The boost a drafted token gets: p̃(x) = p(x) + mass of the merged neighbours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Boost {
    /// p̃(x).
    pub p_tilde: f32,
    /// Number of neighbours merged (m* + 1, 0 if none).
    pub merged: usize,
}

/// Computes p̃(x) from `p` (already guided and warped) and x's neighbour list (first k used).
/// The bounded rule boosts nothing here: it relaxes p itself before the tests ([`walk_tree`]).
pub fn boost(p: &[f32], x: u32, neighbours: &[u32], relax: Relax) -> Boost {
    let px = p[x as usize] as f64;
    let (mass, merged) = merged_mass(px, |y| p[y as usize] as f64, neighbours, relax);
    Boost {
        p_tilde: (px + mass) as f32,
        merged,
    }
}

/// The mass of x's merged neighbour prefix and its length, given p(x) and each token's mass:
/// the one rule behind [`boost`] (f32 rows) and the f64 emitted-distribution code.
fn merged_mass(
    px: f64,
    mass_of: impl Fn(u32) -> f64,
    neighbours: &[u32],
    relax: Relax,
) -> (f64, usize) {
    let budget = match relax {
        Relax::Exact | Relax::Bounded { .. } => return (0.0, 0),
        Relax::Tvd { delta, .. } => delta as f64,
        Relax::Ratio { lambda, .. } => (lambda as f64 - 1.0) * px,
    };
    let k = relax.k().min(neighbours.len());
    let (mut cum, mut merged, mut mass) = (0.0f64, 0, 0.0f64);
    for (m, &y) in neighbours[..k].iter().enumerate() {
        cum += mass_of(y);
        if cum <= budget {
            merged = m + 1;
            mass = cum;
        } else {
            break; // c is non-decreasing: no longer prefix fits
        }
    }
    (mass, merged)
}

/// The relaxed distribution for drafted x: x gets p̃(x), merged neighbours get 0, others keep p.
pub fn relaxed_distribution(p: &[f32], x: u32, neighbours: &[u32], relax: Relax) -> Vec<f32> {
    let b = boost(p, x, neighbours, relax);
    let mut r = p.to_vec();
    for &y in &neighbours[..b.merged] {
        r[y as usize] = 0.0;
    }
    r[x as usize] = b.p_tilde;
    r
}

/// Official-code quirks; `Principled` is the default everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Residuals {
    /// Residuals of the relaxed distribution the acceptance test used.
    Principled,
    /// LANTERN's code: on rejection zero the first k + 1 neighbours whenever any were merged;
    /// static trees zero them in q (not renormalised) and subtract from the un-boosted p.
    OfficialCompat,
    /// LANTERN's Lumina-mGPT code: as [`Residuals::OfficialCompat`], except that static trees
    /// zero the neighbours in the un-boosted p (not in q) before subtracting q.
    OfficialCompatLumina,
}

impl Residuals {
    /// The tokens zeroed after rejecting a candidate with neighbours `nb`, `merged` of them
    /// merged: the merged set (principled) or the official code's first k + 1.
    fn zeroed(self, nb: &[u32], relax: Relax, merged: usize) -> &[u32] {
        match self {
            Residuals::Principled => &nb[..merged],
            Residuals::OfficialCompat | Residuals::OfficialCompatLumina => {
                compat_zeroed(nb, relax, merged)
            }
        }
    }
}

/// Result of verifying the candidate children of one tree node.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeOutcome {
    /// The candidate at this index was accepted.
    Accepted(usize),
    /// All rejected: sample the bonus token from this residual distribution.
    Rejected(Vec<f32>),
}

/// Renormalises in place; a distribution with no mass left becomes uniform (as the official code).
fn normalise(p: &mut [f32]) {
    let s: f64 = p.iter().map(|&v| v.max(0.0) as f64).sum();
    if s > 0.0 {
        for v in p.iter_mut() {
            *v = (v.max(0.0) as f64 / s) as f32;
        }
    } else {
        let u = 1.0 / p.len() as f32;
        p.iter_mut().for_each(|v| *v = u);
    }
}

fn neighbours_of(table: Option<&NeighbourTable>, x: u32) -> &[u32] {
    table.map_or(&[], |t| t.neighbours(x as usize))
}

/// The neighbours the official code zeroes after rejecting x: the first k + 1, if any merged.
fn compat_zeroed(nb: &[u32], relax: Relax, merged: usize) -> &[u32] {
    if merged == 0 {
        &[]
    } else {
        &nb[..(relax.k() + 1).min(nb.len())]
    }
}

/// Candidates drafted deterministically (top-k, q = 1), tried in order: accept x with
/// probability min(1, p̃(x)); on rejection remove x and its merged set (principled) from p and
/// renormalise; the next candidate is tested against that residual.
pub fn verify_deterministic(
    p: &[f32],
    candidates: &[u32],
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
    residuals: Residuals,
    rng: &mut Rng,
) -> NodeOutcome {
    let mut p = p.to_vec();
    for (i, &x) in candidates.iter().enumerate() {
        let nb = neighbours_of(neighbours, x);
        let b = boost(&p, x, nb, relax);
        if rng.uniform() < b.p_tilde as f64 {
            return NodeOutcome::Accepted(i);
        }
        p[x as usize] = 0.0;
        for &y in residuals.zeroed(nb, relax, b.merged) {
            p[y as usize] = 0.0;
        }
        normalise(&mut p);
    }
    NodeOutcome::Rejected(p)
}

/// Candidates sampled without replacement from the drafter distribution `q`, tried in order
/// (EAGLE-1 / SpecInfer): candidate i is tested against q_i (q without earlier candidates,
/// renormalised): accept with min(1, p̃(x)/q_i(x)); on rejection the next target is
/// norm(max(p̃ − q_i, 0)) with p̃ the relaxed distribution for x (principled).
pub fn verify_sampled(
    p: &[f32],
    q: &[f32],
    candidates: &[u32],
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
    residuals: Residuals,
    rng: &mut Rng,
) -> NodeOutcome {
    let mut p = p.to_vec();
    let mut q = q.to_vec();
    normalise(&mut q);
    for (i, &x) in candidates.iter().enumerate() {
        let qx = q[x as usize];
        if qx <= 0.0 {
            continue; // cannot have been drafted from q; the official code skips it too
        }
        let nb = neighbours_of(neighbours, x);
        let b = boost(&p, x, nb, relax);
        if rng.uniform() < (b.p_tilde as f64 / qx as f64).min(1.0) {
            return NodeOutcome::Accepted(i);
        }
        p = match residuals {
            Residuals::Principled => {
                let r = relaxed_distribution(&p, x, nb, relax);
                r.iter().zip(&q).map(|(a, b)| (a - b).max(0.0)).collect()
            }
            Residuals::OfficialCompat => {
                let mut qz = q.clone();
                for &y in compat_zeroed(nb, relax, b.merged) {
                    qz[y as usize] = 0.0;
                }
                p.iter().zip(&qz).map(|(a, b)| (a - b).max(0.0)).collect()
            }
            Residuals::OfficialCompatLumina => {
                for &y in compat_zeroed(nb, relax, b.merged) {
                    p[y as usize] = 0.0;
                }
                p.iter().zip(&q).map(|(a, b)| (a - b).max(0.0)).collect()
            }
        };
        normalise(&mut p);
        q[x as usize] = 0.0;
        if q.iter().any(|&v| v > 0.0) {
            normalise(&mut q);
        }
    }
    NodeOutcome::Rejected(p)
}

/// The residual weights `max(p − q, 0)` after a rejected single draft `x` (drawn from `q`;
/// `None` = one-hot at `x`: p without x), or p itself when nothing is left (p = q, where the draft
/// is always kept): what the Jacobi family resamples from.
pub fn single_draft_residual(p: &[f32], q: Option<&[f32]>, x: u32) -> Vec<f32> {
    let r: Vec<f32> = match q {
        Some(q) => p.iter().zip(q).map(|(a, b)| (a - b).max(0.0)).collect(),
        None => {
            let mut r = p.to_vec();
            r[x as usize] = 0.0;
            r
        }
    };
    if r.iter().any(|&v| v > 0.0) {
        r
    } else {
        p.to_vec()
    }
}

/// Whether x is the first argmax of `p` once p(x) is raised to p̃(x).
fn is_boosted_argmax(p: &[f32], x: u32, p_tilde: f32) -> bool {
    let x = x as usize;
    p.iter()
        .enumerate()
        .all(|(y, &py)| y == x || (y < x && py < p_tilde) || (y > x && py <= p_tilde))
}

/// Greedy verification at one node: the first candidate x that is the argmax of `p` with p(x)
/// raised to p̃(x) (neighbours are not zeroed); `None` if no candidate passes.
pub fn verify_greedy(
    p: &[f32],
    candidates: &[u32],
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
) -> Option<usize> {
    candidates.iter().position(|&x| {
        let b = boost(p, x, neighbours_of(neighbours, x), relax);
        is_boosted_argmax(p, x, b.p_tilde)
    })
}

/// What the target decided for one draft tree.
#[derive(Clone, Debug, PartialEq)]
pub struct WalkOutcome {
    /// Accepted node indices, root (0) first.
    pub path: Vec<usize>,
    /// The token sampled after the last accepted node.
    pub bonus: u32,
}

/// Walks `tree` from the root. `target(node)` is the target's distribution predicting the
/// token after `node` (warped; under greedy settings the softmax of the guided logits).
///
/// Sampling: at each node its children are verified in node order (`verify_sampled` with
/// `child_dists` when the tree was sampled, else `verify_deterministic`); the walk descends into
/// the accepted child, and the bonus comes from the residual (all rejected) or from the target
/// row of the last accepted node. Greedy: the longest root-to-node chain whose every node passes
/// [`verify_greedy`] against its parent's row (ties: first in node order; under the bounded rule
/// the row relaxed towards the node's drafts); the bonus is the argmax of that node's row as the
/// target gives it (greedy AR's token, never the relaxed row's).
pub fn walk_tree(
    tree: &DraftTree,
    target: &mut dyn FnMut(usize) -> Vec<f32>,
    greedy: bool,
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
    residuals: Residuals,
    rng: &mut Rng,
) -> WalkOutcome {
    if greedy {
        return walk_greedy(tree, target, neighbours, relax);
    }
    let mut target = |node: usize| bounded_row(tree, node, target(node), neighbours, relax);
    let relax = tested_relax(relax);
    let mut node = 0;
    let mut path = vec![0];
    loop {
        let p = target(node);
        let kids = tree.children(node);
        if kids.is_empty() {
            return WalkOutcome {
                path,
                bonus: rng.categorical(&p) as u32,
            };
        }
        let tokens: Vec<u32> = kids.iter().map(|&k| tree.tokens[k]).collect();
        let outcome = match (&tree.child_dists[node], tree.sampled) {
            (Some(q), true) => verify_sampled(&p, q, &tokens, neighbours, relax, residuals, rng),
            _ => verify_deterministic(&p, &tokens, neighbours, relax, residuals, rng),
        };
        match outcome {
            NodeOutcome::Accepted(i) => {
                node = kids[i];
                path.push(node);
            }
            NodeOutcome::Rejected(r) => {
                return WalkOutcome {
                    path,
                    bonus: rng.categorical(&r) as u32,
                }
            }
        }
    }
}

/// The drafts under `node` of a verified tree, as the acceptance tests see them.
pub fn node_drafts(tree: &DraftTree, node: usize) -> Option<(Vec<u32>, Option<&[f32]>)> {
    let kids = tree.children(node);
    if kids.is_empty() {
        return None;
    }
    let tokens = kids.iter().map(|&k| tree.tokens[k]).collect();
    let q = match (&tree.child_dists[node], tree.sampled) {
        (Some(q), true) => Some(q.as_slice()),
        _ => None,
    };
    Some((tokens, q))
}

/// Under the bounded rule, the node's target relaxed towards its drafts; else `p` unchanged.
fn bounded_row(
    tree: &DraftTree,
    node: usize,
    p: Vec<f32>,
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
) -> Vec<f32> {
    let (Relax::Bounded { k, delta }, Some(table)) = (relax, neighbours) else {
        return p;
    };
    match node_drafts(tree, node) {
        Some((tokens, Some(q))) => bounded_target(
            &p,
            Drafts::Sampled {
                q,
                count: tokens.len(),
            },
            table,
            k,
            delta,
        ),
        Some((tokens, None)) => bounded_target(&p, Drafts::Deterministic(&tokens), table, k, delta),
        None => p,
    }
}

/// The rule the per-node tests apply: the bounded rule has already relaxed the rows
/// ([`bounded_row`]), so its tests are exact ones; the other rules boost per candidate.
fn tested_relax(relax: Relax) -> Relax {
    match relax {
        Relax::Bounded { .. } => Relax::Exact,
        other => other,
    }
}

/// The greedy walk of [`walk_tree`]: candidates tested against their parent's row (relaxed under
/// the bounded rule), the bonus the argmax of the target's own row.
fn walk_greedy(
    tree: &DraftTree,
    target: &mut dyn FnMut(usize) -> Vec<f32>,
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
) -> WalkOutcome {
    let n = tree.len();
    // Each accepted parent's row, relaxed towards its drafts under the bounded rule.
    let mut tested: Vec<Option<Vec<f32>>> = vec![None; n];
    let mut ok = vec![false; n];
    ok[0] = true;
    let mut best = 0;
    for i in 1..n {
        let parent = tree.parents[i].expect("drafted nodes have parents");
        if !ok[parent] {
            continue;
        }
        let p = tested[parent]
            .get_or_insert_with(|| bounded_row(tree, parent, target(parent), neighbours, relax));
        ok[i] = verify_greedy(p, &[tree.tokens[i]], neighbours, tested_relax(relax)).is_some();
        if ok[i] && tree.depths[i] > tree.depths[best] {
            best = i;
        }
    }
    // The bonus follows the target itself: a tested row is p only where no rule relaxed it.
    let p = match (tested[best].take(), relax) {
        (Some(p), r) if !matches!(r, Relax::Bounded { .. }) => p,
        _ => target(best),
    };
    WalkOutcome {
        path: tree.path_to(best),
        bonus: argmax(&p) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boost_takes_the_longest_fitting_prefix() {
        let p = [0.1, 0.2, 0.05, 0.3, 0.35];
        let nb = [2u32, 1, 3, 4];
        assert_eq!(boost(&p, 0, &nb, Relax::Tvd { k: 4, delta: 0.3 }).merged, 2);
        let b = boost(&p, 0, &nb, Relax::Tvd { k: 4, delta: 0.3 });
        assert!((b.p_tilde - 0.35).abs() < 1e-6);
        assert_eq!(boost(&p, 0, &nb, Relax::Tvd { k: 1, delta: 0.3 }).merged, 1);
        assert_eq!(
            boost(&p, 0, &nb, Relax::Tvd { k: 4, delta: 0.01 }).merged,
            0
        );
        // Ratio λ = 2: budget = p(x) = 0.1 → only N[0] (0.05) fits.
        let b = boost(&p, 0, &nb, Relax::Ratio { k: 4, lambda: 2.0 });
        assert_eq!(b.merged, 1);
        assert!((b.p_tilde - 0.15).abs() < 1e-6);
        assert_eq!(
            boost(&p, 0, &nb, Relax::Exact),
            Boost {
                p_tilde: 0.1,
                merged: 0
            }
        );
        let r = relaxed_distribution(&p, 0, &nb, Relax::Tvd { k: 4, delta: 0.3 });
        assert_eq!(r, vec![0.35, 0.0, 0.0, 0.3, 0.35]);
    }

    #[test]
    fn greedy_boost_can_make_a_non_argmax_candidate_pass() {
        let p = [0.3, 0.25, 0.2, 0.25];
        let t = NeighbourTable::build(&[0.0, 5.0, 1.0, 9.0], 4, 1, 3);
        assert_eq!(verify_greedy(&p, &[2], Some(&t), Relax::Exact), None);
        assert_eq!(verify_greedy(&p, &[1, 0], Some(&t), Relax::Exact), Some(1));
        // Token 2's nearest neighbour is 0 (distance 1); merging it gives 0.5 > every other.
        assert_eq!(t.neighbours(2)[0], 0);
        assert_eq!(
            verify_greedy(&p, &[2], Some(&t), Relax::Tvd { k: 1, delta: 0.3 }),
            Some(0)
        );
        // Ties: the first maximum wins, so a later index must strictly exceed earlier ones.
        assert_eq!(verify_greedy(&[0.5, 0.5], &[1], None, Relax::Exact), None);
    }

    #[test]
    fn bounded_greedy_bonus_is_the_argmax_of_p_not_of_the_relaxed_row() {
        // Token 2's nearest neighbour is token 1; k = 1, δ = 0.1 moves 0.1 from 1 to 2:
        // p̃ = (0.36, 0.30, 0.34). The candidate fails (0 is p̃'s argmax) and the bonus is
        // greedy AR's token, p's argmax 1, not p̃'s 0.
        let t = NeighbourTable::build(&[0.0, 5.0, 6.0], 3, 1, 2);
        assert_eq!(t.neighbours(2)[0], 1);
        let p = vec![0.36, 0.40, 0.24];
        let mut tree = DraftTree::root(0);
        tree.push(0, 2);
        let relax = Relax::Bounded { k: 1, delta: 0.1 };
        let relaxed = bounded_row(&tree, 0, p.clone(), Some(&t), relax);
        for (a, b) in relaxed.iter().zip([0.36, 0.30, 0.34]) {
            assert!((a - b).abs() < 1e-6, "{relaxed:?}");
        }
        // The greedy walk of `tree` whose node rows are `rows[node]`.
        let walk = |tree: &DraftTree, rows: &[Vec<f32>]| {
            let mut row = |node: usize| rows[node.min(rows.len() - 1)].clone();
            let rng = &mut crate::rng::Rng::new(0);
            walk_tree(
                tree,
                &mut row,
                true,
                Some(&t),
                relax,
                Residuals::Principled,
                rng,
            )
        };
        let out = walk(&tree, std::slice::from_ref(&p));
        assert_eq!(
            out,
            WalkOutcome {
                path: vec![0],
                bonus: 1
            }
        );
        // Below an accepted candidate the same: the root's row (0.1, 0.6, 0.3) passes token 1,
        // whose own row is the p above with the same failing child.
        let mut tree = DraftTree::root(0);
        let c = tree.push(0, 1);
        tree.push(c, 2);
        let out = walk(&tree, &[vec![0.1, 0.6, 0.3], p]);
        assert_eq!(
            out,
            WalkOutcome {
                path: vec![0, 1],
                bonus: 1
            }
        );
    }
}
