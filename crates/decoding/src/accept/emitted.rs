//! The exact distribution of the token a verifier emits at one tree node: the draw of the drafts,
//! each candidate's acceptance test and the residual sample, summed over every path. For exact
//! speculative sampling it is the target p itself; for LANTERN it shows what δ really costs
//! (several siblings each get a δ budget, and with sampled drafts the relaxed target depends on
//! the draft, so the emitted distribution can move further than δ from p).

use super::{bounded_target, compat_zeroed, merged_mass, neighbours_of, Relax, Residuals};
use crate::neighbours::NeighbourTable;

/// p̃(x) and the merged-set length, in f64.
fn boost(p: &[f64], x: u32, nb: &[u32], relax: Relax) -> (f64, usize) {
    let px = p[x as usize];
    let (mass, merged) = merged_mass(px, |y| p[y as usize], nb, relax);
    (px + mass, merged)
}

/// Normalises in place; no mass left becomes uniform (as the acceptance code's `normalise`).
fn normalise(p: &mut [f64]) {
    let s: f64 = p.iter().map(|&v| v.max(0.0)).sum();
    if s > 0.0 {
        p.iter_mut().for_each(|v| *v = v.max(0.0) / s);
    } else {
        let u = 1.0 / p.len() as f64;
        p.iter_mut().for_each(|v| *v = u);
    }
}

fn to64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// The drafts at one node, as the verifier tries them.
#[derive(Clone, Copy, Debug)]
pub enum Drafts<'a> {
    /// Fixed candidates (top-k drafts, q = 1), tried in order.
    Deterministic(&'a [u32]),
    /// `count` candidates sampled without replacement from `q`, tried in draw order.
    Sampled {
        /// The drafter's distribution at the node.
        q: &'a [f32],
        /// Candidates drawn (fewer when q's support runs out).
        count: usize,
    },
}

/// The exact distribution (f64, summing to 1) of the token emitted at a node whose target
/// distribution is `p`, under the acceptance rule `relax` with `residuals`, mirroring
/// [`super::verify_deterministic`] and [`super::verify_sampled`] (computed in f64 from the f32
/// rows). Sampled drafts are summed over every draw: O(V) for one candidate, exponential in the
/// number of sampled candidates (fine for tests on small vocabularies; [`emitted_tvd`] computes
/// only what is cheap).
pub fn emitted_distribution(
    p: &[f32],
    drafts: Drafts,
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
    residuals: Residuals,
) -> Vec<f64> {
    if let Relax::Bounded { k, delta } = relax {
        let table = neighbours.expect("the bounded rule needs a neighbour table");
        let target = bounded_target(p, drafts, table, k, delta);
        return emitted_distribution(&target, drafts, None, Relax::Exact, Residuals::Principled);
    }
    let mut out = vec![0f64; p.len()];
    let p = to64(p);
    match drafts {
        Drafts::Deterministic(candidates) => {
            deterministic(&p, candidates, neighbours, relax, residuals, &mut out)
        }
        Drafts::Sampled { q, count } => {
            let mut q = to64(q);
            normalise(&mut q);
            if count == 1 {
                one_sampled(&p, &q, neighbours, relax, residuals, &mut out);
            } else {
                sampled(p, q, count, 1.0, neighbours, relax, residuals, &mut out);
            }
        }
    }
    out
}

fn deterministic(
    p: &[f64],
    candidates: &[u32],
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
    residuals: Residuals,
    out: &mut [f64],
) {
    let mut cur = p.to_vec();
    let mut reach = 1.0f64;
    for &x in candidates {
        let nb = neighbours_of(neighbours, x);
        let (p_tilde, merged) = boost(&cur, x, nb, relax);
        let a = p_tilde.min(1.0);
        out[x as usize] += reach * a;
        reach *= 1.0 - a;
        if reach <= 0.0 {
            return;
        }
        cur[x as usize] = 0.0;
        for &y in residuals.zeroed(nb, relax, merged) {
            cur[y as usize] = 0.0;
        }
        normalise(&mut cur);
    }
    for (o, &c) in out.iter_mut().zip(&cur) {
        *o += reach * c;
    }
}

/// The general sampled case: every ordered draw of up to `count` distinct candidates.
#[allow(clippy::too_many_arguments)]
fn sampled(
    p: Vec<f64>,
    q: Vec<f64>,
    count: usize,
    reach: f64,
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
    residuals: Residuals,
    out: &mut [f64],
) {
    if count == 0 {
        for (o, &c) in out.iter_mut().zip(&p) {
            *o += reach * c;
        }
        return;
    }
    for x in 0..q.len() {
        let qx = q[x];
        if qx <= 0.0 {
            continue;
        }
        let drawn = reach * qx;
        let nb = neighbours_of(neighbours, x as u32);
        let (p_tilde, merged) = boost(&p, x as u32, nb, relax);
        let a = (p_tilde / qx).min(1.0);
        out[x] += drawn * a;
        if a >= 1.0 {
            continue;
        }
        let mut rest: Vec<f64> = match residuals {
            Residuals::Principled => {
                // The relaxed target for x: x gets p̃(x), its merged neighbours 0.
                let mut r = p.clone();
                for &y in &nb[..merged] {
                    r[y as usize] = 0.0;
                }
                r[x] = p_tilde;
                r.iter().zip(&q).map(|(a, b)| (a - b).max(0.0)).collect()
            }
            Residuals::OfficialCompat => {
                let mut qz = q.clone();
                for &y in compat_zeroed(nb, relax, merged) {
                    qz[y as usize] = 0.0;
                }
                p.iter().zip(&qz).map(|(a, b)| (a - b).max(0.0)).collect()
            }
            Residuals::OfficialCompatLumina => {
                let mut pz = p.clone();
                for &y in compat_zeroed(nb, relax, merged) {
                    pz[y as usize] = 0.0;
                }
                pz.iter().zip(&q).map(|(a, b)| (a - b).max(0.0)).collect()
            }
        };
        normalise(&mut rest);
        let mut q2 = q.clone();
        q2[x] = 0.0;
        let left = if q2.iter().any(|&v| v > 0.0) {
            normalise(&mut q2);
            count - 1
        } else {
            0
        };
        sampled(
            rest,
            q2,
            left,
            drawn * (1.0 - a),
            neighbours,
            relax,
            residuals,
            out,
        );
    }
}

/// One sampled candidate in O(V + Σ merged-set sizes): every candidate's residual is the shared
/// `r = max(p − q, 0)` except on the candidate and the tokens its rule zeroes, so the residual
/// parts add up as `r(y)·(C − D(y)) + corrections` with `C = Σ_x c_x` and `D(y)` the `c_x` of the
/// candidates whose zeroed set holds y (`c_x` = draw × rejection / residual mass).
fn one_sampled(
    p: &[f64],
    q: &[f64],
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
    residuals: Residuals,
    out: &mut [f64],
) {
    let v = p.len();
    let r: Vec<f64> = p.iter().zip(q).map(|(&a, &b)| (a - b).max(0.0)).collect();
    let total: f64 = r.iter().sum();
    let mut c_sum = 0.0f64;
    let mut d = vec![0f64; v];
    // Each rejected candidate's own correction: the residual it puts on itself (principled)
    // or on its zeroed set (official), less the shared r there; and uniform residuals.
    let mut own = vec![0f64; v];
    let mut uniform = 0.0f64;
    for x in 0..v {
        let qx = q[x];
        if qx <= 0.0 {
            continue;
        }
        let nb = neighbours_of(neighbours, x as u32);
        let (p_tilde, merged) = boost(p, x as u32, nb, relax);
        let a = (p_tilde / qx).min(1.0);
        out[x] += qx * a;
        if a >= 1.0 {
            continue;
        }
        let rejected = qx * (1.0 - a);
        // The candidate's residual numerator differs from r on its zeroed set (and, principled,
        // on x itself).
        let zeroed = residuals.zeroed(nb, relax, merged);
        let at_x = (residuals == Residuals::Principled).then(|| (p_tilde - qx).max(0.0));
        let value = |y: usize| match residuals {
            // Principled and Lumina: the zeroed tokens hold 0 in the target, so max(0 − q, 0) = 0.
            Residuals::Principled | Residuals::OfficialCompatLumina => 0.0,
            // Official: q is zeroed there, so the residual keeps p.
            Residuals::OfficialCompat => p[y],
        };
        let mut z = total;
        for &y in zeroed {
            z += value(y as usize) - r[y as usize];
        }
        if let Some(vx) = at_x {
            z += vx - r[x];
        }
        if z < 1e-9 * total {
            // Cancellation (the residual sits almost all on the zeroed set): sum the
            // candidate's own residual directly, O(V), so an empty one is exactly 0.
            let mut own_r = r.clone();
            for &y in zeroed {
                own_r[y as usize] = value(y as usize);
            }
            if let Some(vx) = at_x {
                own_r[x] = vx;
            }
            z = own_r.iter().sum();
        }
        if z <= 0.0 {
            // `normalise` of an empty residual: uniform.
            uniform += rejected;
            continue;
        }
        let c = rejected / z;
        c_sum += c;
        for &y in zeroed {
            d[y as usize] += c;
            own[y as usize] += c * value(y as usize);
        }
        if let Some(vx) = at_x {
            d[x] += c;
            own[x] += c * vx;
        }
    }
    let u = uniform / v as f64;
    for y in 0..v {
        out[y] += r[y] * (c_sum - d[y]) + own[y] + u;
    }
}

/// Total variation distance between an emitted distribution and the target.
pub fn tvd(emitted: &[f64], p: &[f32]) -> f64 {
    0.5 * emitted
        .iter()
        .zip(p)
        .map(|(e, &q)| (e - q as f64).abs())
        .sum::<f64>()
}

/// TVD between the emitted and the target distribution at one node, where it is cheap to compute
/// exactly: fixed candidates, one sampled candidate, or the bounded rule (whose emitted
/// distribution is its relaxed target); `None` for several sampled candidates (exponential).
pub fn emitted_tvd(
    p: &[f32],
    drafts: Drafts,
    neighbours: Option<&NeighbourTable>,
    relax: Relax,
    residuals: Residuals,
) -> Option<f64> {
    match (drafts, relax) {
        (_, Relax::Bounded { k, delta }) => {
            let table = neighbours?;
            let target = bounded_target(p, drafts, table, k, delta);
            Some(
                0.5 * target
                    .iter()
                    .zip(p)
                    .map(|(a, b)| (*a as f64 - *b as f64).abs())
                    .sum::<f64>(),
            )
        }
        (Drafts::Sampled { count, .. }, _) if count > 1 => None,
        _ => Some(tvd(
            &emitted_distribution(p, drafts, neighbours, relax, residuals),
            p,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn the_one_candidate_shortcut_equals_the_general_sum() {
        let mut rng = Rng::new(3);
        for case in 0..500 {
            let v = 7;
            let mut dist = |zeros: bool| {
                let mut w: Vec<f64> = (0..v)
                    .map(|_| {
                        let u = rng.uniform();
                        if zeros && u < 0.25 {
                            0.0
                        } else {
                            u * u
                        }
                    })
                    .collect();
                w[case % v] += 0.01;
                let s: f64 = w.iter().sum();
                w.iter().map(|x| x / s).collect::<Vec<f64>>()
            };
            let (p, q) = (dist(true), dist(true));
            let codebook: Vec<f32> = (0..v).map(|i| ((i * 37 + case) % 11) as f32).collect();
            let t = NeighbourTable::build(&codebook, v, 1, v - 1);
            for relax in [
                Relax::Tvd { k: 3, delta: 0.2 },
                Relax::Ratio { k: 4, lambda: 2.5 },
                Relax::Exact,
            ] {
                for residuals in [
                    Residuals::Principled,
                    Residuals::OfficialCompat,
                    Residuals::OfficialCompatLumina,
                ] {
                    let mut fast = vec![0f64; v];
                    one_sampled(&p, &q, Some(&t), relax, residuals, &mut fast);
                    let mut full = vec![0f64; v];
                    sampled(
                        p.clone(),
                        q.clone(),
                        1,
                        1.0,
                        Some(&t),
                        relax,
                        residuals,
                        &mut full,
                    );
                    for (a, b) in fast.iter().zip(&full) {
                        assert!((a - b).abs() < 1e-12, "case {case} {relax:?} {residuals:?}");
                    }
                    assert!((fast.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                }
            }
        }
    }
}
