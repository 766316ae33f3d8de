//! The exact emitted distribution: it equals p for exact speculative sampling, reproduces the
//! hand-worked LANTERN examples (several siblings; a sampled draft), matches a simulation of the
//! real acceptance code, and the bounded rule never emits further than δ from p.

use lantern_decoding::accept::{
    bounded_target, emitted_distribution, tvd, verify_deterministic, verify_sampled, Drafts,
    NodeOutcome, Relax, Residuals,
};
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::rng::Rng;

/// A random distribution over `v` tokens with some zeros.
fn dist(rng: &mut Rng, v: usize, zeros: bool) -> Vec<f32> {
    let mut w: Vec<f32> = (0..v)
        .map(|_| {
            let u = rng.uniform() as f32;
            if zeros && u < 0.2 {
                0.0
            } else {
                u * u
            }
        })
        .collect();
    if w.iter().all(|&x| x == 0.0) {
        w[0] = 1.0;
    }
    let s: f32 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= s);
    w
}

/// A table from a random 2-D codebook.
fn table(rng: &mut Rng, v: usize) -> NeighbourTable {
    let codebook: Vec<f32> = (0..2 * v).map(|_| rng.uniform() as f32).collect();
    NeighbourTable::build(&codebook, v, 2, v - 1)
}

fn rules(k: usize, delta: f32) -> [(Relax, Residuals); 4] {
    [
        (Relax::Tvd { k, delta }, Residuals::Principled),
        (Relax::Tvd { k, delta }, Residuals::OfficialCompat),
        (Relax::Ratio { k, lambda: 3.0 }, Residuals::Principled),
        (Relax::Bounded { k, delta }, Residuals::Principled),
    ]
}

/// A random distribution of multiples of 2⁻¹⁰: exact in f32 and summing to exactly 1, so that
/// a comparison at 1e-9 tests the rule, not the rounding of its inputs.
fn dyadic(rng: &mut Rng, v: usize) -> Vec<f32> {
    let w: Vec<u64> = (0..v).map(|_| rng.next_u64() % 8).collect();
    let mut counts: Vec<u64> = w.iter().map(|&x| x * x).collect();
    if counts.iter().all(|&c| c == 0) {
        counts[0] = 1;
    }
    let total: u64 = counts.iter().sum();
    let mut units: Vec<u64> = counts.iter().map(|&c| c * 1024 / total).collect();
    let short = 1024 - units.iter().sum::<u64>();
    let top = (0..v).max_by_key(|&i| counts[i]).unwrap();
    units[top] += short;
    units.iter().map(|&u| u as f32 / 1024.0).collect()
}

/// Largest difference from `p`.
fn off_target(e: &[f64], p: &[f32]) -> f64 {
    e.iter()
        .zip(p)
        .map(|(a, &b)| (a - b as f64).abs())
        .fold(0.0, f64::max)
}

#[test]
fn exact_speculative_sampling_emits_the_target() {
    let mut rng = Rng::new(1);
    for _ in 0..200 {
        let v = 6;
        let p = dyadic(&mut rng, v);
        let q = dyadic(&mut rng, v);
        let t = table(&mut rng, v);
        for residuals in [Residuals::Principled, Residuals::OfficialCompat] {
            for count in 1..=3 {
                let e = emitted_distribution(
                    &p,
                    Drafts::Sampled { q: &q, count },
                    Some(&t),
                    Relax::Exact,
                    residuals,
                );
                assert!(
                    off_target(&e, &p) < 1e-9,
                    "sampled ×{count}: {e:?} vs {p:?}"
                );
            }
            let cands = [2u32, 0, 5];
            for n in 1..=3 {
                let e = emitted_distribution(
                    &p,
                    Drafts::Deterministic(&cands[..n]),
                    Some(&t),
                    Relax::Exact,
                    residuals,
                );
                assert!(off_target(&e, &p) < 1e-9, "fixed ×{n}");
            }
        }
    }
}

#[test]
fn the_hand_worked_lantern_examples() {
    // Two siblings each get a δ budget: p = (.1, .1, .2, .08, .52), candidates 0 (nearest
    // neighbour 1) and 2 (nearest neighbour 3), k = 1, δ = 0.1 → (.2, 0, .28, 0, .52), TVD .18.
    let t = NeighbourTable::build(&[0.0, 0.1, 5.0, 5.1, 20.0], 5, 1, 4);
    assert_eq!((t.neighbours(0)[0], t.neighbours(2)[0]), (1, 3));
    let p = [0.1f32, 0.1, 0.2, 0.08, 0.52];
    let rule = Relax::Tvd { k: 1, delta: 0.1 };
    let e = emitted_distribution(
        &p,
        Drafts::Deterministic(&[0, 2]),
        Some(&t),
        rule,
        Residuals::Principled,
    );
    for (got, want) in e.iter().zip([0.2, 0.0, 0.28, 0.0, 0.52]) {
        assert!((got - want).abs() < 1e-6, "{e:?}");
    }
    assert!((tvd(&e, &p) - 0.18).abs() < 1e-6);
    // A sampled draft: the relaxed target depends on the draft. p = (.8, .1, .1), q = (0, .5, .5),
    // N(1) = [2], N(2) = [1], k = 1, δ = 0.1 → (.6, .2, .2), TVD 0.2 = 2δ.
    let t = NeighbourTable::build(&[100.0, 0.0, 0.1], 3, 1, 2);
    assert_eq!((t.neighbours(1)[0], t.neighbours(2)[0]), (2, 1));
    let p = [0.8f32, 0.1, 0.1];
    let q = [0.0f32, 0.5, 0.5];
    let e = emitted_distribution(
        &p,
        Drafts::Sampled { q: &q, count: 1 },
        Some(&t),
        rule,
        Residuals::Principled,
    );
    for (got, want) in e.iter().zip([0.6, 0.2, 0.2]) {
        assert!((got - want).abs() < 1e-6, "{e:?}");
    }
    assert!((tvd(&e, &p) - 0.2).abs() < 1e-6);
    // The bounded rule on the same case stays within δ.
    let b = emitted_distribution(
        &p,
        Drafts::Sampled { q: &q, count: 1 },
        Some(&t),
        Relax::Bounded { k: 1, delta: 0.1 },
        Residuals::Principled,
    );
    assert!(tvd(&b, &p) <= 0.1 + 1e-6, "{b:?}");
}

/// Draws `count` candidates without replacement from `q` (as the drafting code does).
fn draw(q: &[f32], count: usize, rng: &mut Rng) -> Vec<u32> {
    let mut w = q.to_vec();
    let mut out = Vec::new();
    while out.len() < count && w.iter().any(|&x| x > 0.0) {
        let t = rng.categorical(&w);
        w[t] = 0.0;
        out.push(t as u32);
    }
    out
}

#[test]
fn the_exact_distribution_matches_a_simulation_of_the_acceptance_code() {
    let trials = 1_000_000;
    let mut rng = Rng::new(5);
    let v = 6;
    let p = dist(&mut rng, v, false);
    let q = dist(&mut rng, v, false);
    let t = table(&mut rng, v);
    for (relax, residuals) in rules(3, 0.3) {
        for count in [1usize, 2] {
            for fixed in [false, true] {
                let cands: Vec<u32> = vec![4, 1][..count].to_vec();
                let drafts = if fixed {
                    Drafts::Deterministic(&cands)
                } else {
                    Drafts::Sampled { q: &q, count }
                };
                let exact = emitted_distribution(&p, drafts, Some(&t), relax, residuals);
                // The acceptance code tests against the bounded target when the rule is bounded.
                let (target, rule) = match relax {
                    Relax::Bounded { k, delta } => {
                        (bounded_target(&p, drafts, &t, k, delta), Relax::Exact)
                    }
                    other => (p.clone(), other),
                };
                let mut counts = vec![0u64; v];
                let mut sim = Rng::new(99);
                for _ in 0..trials {
                    let outcome = if fixed {
                        verify_deterministic(&target, &cands, Some(&t), rule, residuals, &mut sim)
                    } else {
                        let c = draw(&q, count, &mut sim);
                        let o =
                            verify_sampled(&target, &q, &c, Some(&t), rule, residuals, &mut sim);
                        match o {
                            NodeOutcome::Accepted(i) => {
                                counts[c[i] as usize] += 1;
                                continue;
                            }
                            r => r,
                        }
                    };
                    let token = match outcome {
                        NodeOutcome::Accepted(i) => cands[i] as usize,
                        NodeOutcome::Rejected(r) => sim.categorical(&r),
                    };
                    counts[token] += 1;
                }
                for (y, &c) in counts.iter().enumerate() {
                    let f = c as f64 / trials as f64;
                    let sd = (exact[y] * (1.0 - exact[y]) / trials as f64).sqrt();
                    assert!(
                        (f - exact[y]).abs() <= 5.0 * sd + 1e-9,
                        "{relax:?} {residuals:?} fixed {fixed} ×{count}: token {y}: simulated {f:.5}, exact {:.5}",
                        exact[y]
                    );
                }
            }
        }
    }
}

#[test]
fn the_bounded_rule_never_emits_further_than_delta_from_p() {
    let mut rng = Rng::new(11);
    let mut worst = 0.0f64;
    for case in 0..100_000 {
        let v = 8;
        let p = dist(&mut rng, v, true);
        let q = dist(&mut rng, v, true);
        let t = table(&mut rng, v);
        let k = 1 + (rng.next_u64() % (v as u64 - 1)) as usize;
        let delta = rng.uniform() as f32 * 0.6;
        let count = 1 + (case % 3);
        let cands: Vec<u32> = (0..count as u32)
            .map(|i| (i * 3 + case as u32) % v as u32)
            .collect();
        for drafts in [
            Drafts::Sampled { q: &q, count: 1 },
            Drafts::Deterministic(&cands),
        ] {
            let target = bounded_target(&p, drafts, &t, k, delta);
            let moved = tvd(&target.iter().map(|&x| x as f64).collect::<Vec<_>>(), &p);
            worst = worst.max(moved - delta as f64);
            assert!(
                moved <= delta as f64 + 1e-6,
                "case {case}: moved {moved} > δ {delta}"
            );
            // Mass arrives only on tokens one of whose k nearest neighbours gave some.
            for y in 0..v {
                if target[y] > p[y] + 1e-7 {
                    let nb = &t.neighbours(y)[..k];
                    assert!(
                        nb.iter().any(|&z| target[z as usize] < p[z as usize]),
                        "case {case}"
                    );
                }
            }
            if let Drafts::Sampled { .. } = drafts {
                let e = emitted_distribution(
                    &p,
                    drafts,
                    Some(&t),
                    Relax::Bounded { k, delta },
                    Residuals::Principled,
                );
                assert!(tvd(&e, &p) <= delta as f64 + 1e-6, "case {case}");
                let acc = |d: &[f32]| d.iter().zip(&q).map(|(a, b)| a.min(*b) as f64).sum::<f64>();
                assert!(
                    acc(&target) >= acc(&p) - 1e-7,
                    "the relaxation raises acceptance"
                );
            }
        }
    }
    assert!(worst <= 1e-6, "largest excess over δ: {worst}");
}
