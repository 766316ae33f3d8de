//! Acceptance rules over random distributions: the relaxed distribution never moves more than δ
//! of mass (TVD) and never exceeds λ·p(x); δ = 0 decides exactly like exact sampling; node-level
//! verification reproduces p (exact) or the relaxed distribution (one deterministic candidate).

use crate::common::{chi_square, chi_square_critical};
use lantern_decoding::accept::{
    boost, relaxed_distribution, verify_deterministic, verify_sampled, walk_tree, NodeOutcome,
    Relax, Residuals,
};
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::rng::Rng;
use lantern_decoding::tree::DraftTree;

/// A random distribution: flat, peaked or with exact zeros.
fn random_dist(rng: &mut Rng, v: usize) -> Vec<f32> {
    let style = rng.next_u64() % 3;
    let mut p: Vec<f64> = (0..v)
        .map(|_| {
            let u = rng.uniform();
            match style {
                0 => u,
                1 => u.powi(8),
                _ => {
                    if u < 0.3 {
                        0.0
                    } else {
                        u
                    }
                }
            }
        })
        .collect();
    if p.iter().all(|&x| x == 0.0) {
        p[0] = 1.0;
    }
    let s: f64 = p.iter().sum();
    p.iter().map(|&x| (x / s) as f32).collect()
}

fn random_table(rng: &mut Rng, v: usize) -> NeighbourTable {
    let cb: Vec<f32> = (0..v * 2).map(|_| rng.uniform() as f32).collect();
    NeighbourTable::build(&cb, v, 2, v - 1)
}

#[test]
fn relaxed_distribution_respects_tvd_and_ratio_bounds() {
    let mut rng = Rng::new(2024);
    for case in 0..100_000 {
        let v = 2 + (rng.next_u64() % 63) as usize;
        let p = random_dist(&mut rng, v);
        let table = if case % 100 == 0 || case < 10 {
            random_table(&mut rng, v)
        } else {
            // cheap random neighbour lists: a random permutation without x
            NeighbourTable::build(
                &(0..v)
                    .map(|i| ((i * 7919 + case) % 101) as f32)
                    .collect::<Vec<_>>(),
                v,
                1,
                v - 1,
            )
        };
        let x = (rng.next_u64() % v as u64) as u32;
        let nb = table.neighbours(x as usize);
        let k = 1 + (rng.next_u64() % (v as u64 - 1)) as usize;
        let delta = rng.uniform() as f32;
        let r = relaxed_distribution(&p, x, nb, Relax::Tvd { k, delta });
        let tvd: f64 = 0.5
            * p.iter()
                .zip(&r)
                .map(|(a, b)| (a - b).abs() as f64)
                .sum::<f64>();
        assert!(
            tvd <= delta as f64 + 1e-6,
            "case {case}: TVD {tvd} > δ {delta}"
        );
        let sum: f64 = r.iter().map(|&a| a as f64).sum();
        assert!((sum - 1.0).abs() < 1e-5, "case {case}: sums to {sum}");

        let lambda = 1.0 + 19.0 * rng.uniform() as f32;
        let b = boost(&p, x, nb, Relax::Ratio { k, lambda });
        assert!(
            b.p_tilde as f64 <= lambda as f64 * p[x as usize] as f64 + 1e-6,
            "case {case}: p̃ {} > λ·p(x) {}",
            b.p_tilde,
            lambda * p[x as usize]
        );
        assert!(b.p_tilde >= p[x as usize]);
    }
}

#[test]
fn zero_delta_and_zero_k_decide_exactly_like_exact() {
    let mut rng = Rng::new(77);
    for case in 0..20_000u64 {
        let v = 2 + (rng.next_u64() % 30) as usize;
        let p = random_dist(&mut rng, v);
        let q = random_dist(&mut rng, v);
        let table = random_table(&mut rng, v);
        let mut cands: Vec<u32> = (0..v as u32).collect();
        cands.rotate_left((case % v as u64) as usize);
        cands.truncate(1 + (case % 4) as usize);
        for relax in [
            Relax::Tvd {
                k: v - 1,
                delta: 0.0,
            },
            Relax::Tvd { k: 0, delta: 0.5 },
            Relax::Ratio {
                k: v - 1,
                lambda: 1.0,
            },
        ] {
            let run = |relax: Relax, sampled: bool| {
                let mut r = Rng::new(case);
                let out = if sampled {
                    verify_sampled(
                        &p,
                        &q,
                        &cands,
                        Some(&table),
                        relax,
                        Residuals::Principled,
                        &mut r,
                    )
                } else {
                    verify_deterministic(
                        &p,
                        &cands,
                        Some(&table),
                        relax,
                        Residuals::Principled,
                        &mut r,
                    )
                };
                (out, r.next_u64())
            };
            for sampled in [false, true] {
                let (a, ra) = run(Relax::Exact, sampled);
                let (b, rb) = run(relax, sampled);
                match (&a, &b) {
                    (NodeOutcome::Accepted(i), NodeOutcome::Accepted(j)) => assert_eq!(i, j),
                    (NodeOutcome::Rejected(x), NodeOutcome::Rejected(y)) => {
                        assert!(
                            x.iter().zip(y).all(|(u, w)| (u - w).abs() < 1e-6),
                            "case {case}"
                        )
                    }
                    _ => panic!("case {case}: {a:?} vs {b:?} under {relax:?}"),
                }
                assert_eq!(ra, rb, "case {case}: same random draws consumed");
            }
        }
    }
}

/// Runs a node verification then samples the bonus from the residual: the emitted token.
fn emit(out: NodeOutcome, cands: &[u32], rng: &mut Rng) -> usize {
    match out {
        NodeOutcome::Accepted(i) => cands[i] as usize,
        NodeOutcome::Rejected(r) => rng.categorical(&r),
    }
}

fn check(name: &str, counts: &[u64], want: &[f32]) {
    let want: Vec<f64> = want.iter().map(|&x| x as f64).collect();
    let (stat, dof) = chi_square(counts, &want);
    assert!(
        stat < chi_square_critical(dof),
        "{name}: chi-square {stat:.1} (dof {dof})"
    );
}

#[test]
fn node_verification_reproduces_the_target() {
    let mut rng = Rng::new(5);
    let v = 6;
    let p = random_dist(&mut rng, v);
    let q = random_dist(&mut rng, v);
    let trials = 200_000;
    for n_cands in 1..=4 {
        let (mut det, mut smp) = (vec![0u64; v], vec![0u64; v]);
        for _ in 0..trials {
            let cands: Vec<u32> = (0..n_cands as u32)
                .map(|i| (i * 5 + 1) % v as u32)
                .collect();
            let out = verify_deterministic(
                &p,
                &cands,
                None,
                Relax::Exact,
                Residuals::Principled,
                &mut rng,
            );
            det[emit(out, &cands, &mut rng)] += 1;
            // candidates drawn without replacement from q
            let mut w = q.clone();
            let cands: Vec<u32> = (0..n_cands)
                .map(|_| {
                    let t = rng.categorical(&w);
                    w[t] = 0.0;
                    t as u32
                })
                .collect();
            let out = verify_sampled(
                &p,
                &q,
                &cands,
                None,
                Relax::Exact,
                Residuals::Principled,
                &mut rng,
            );
            smp[emit(out, &cands, &mut rng)] += 1;
        }
        check(&format!("deterministic × {n_cands}"), &det, &p);
        check(&format!("sampled × {n_cands}"), &smp, &p);
    }
}

#[test]
fn one_relaxed_candidate_follows_the_relaxed_distribution() {
    let mut rng = Rng::new(6);
    let v = 6;
    let p = random_dist(&mut rng, v);
    let table = random_table(&mut rng, v);
    let relax = Relax::Tvd { k: 3, delta: 0.3 };
    let want = relaxed_distribution(&p, 2, table.neighbours(2), relax);
    let mut c = vec![0u64; v];
    for _ in 0..200_000 {
        let out = verify_deterministic(
            &p,
            &[2],
            Some(&table),
            relax,
            Residuals::Principled,
            &mut rng,
        );
        c[emit(out, &[2], &mut rng)] += 1;
    }
    check("relaxed", &c, &want);
    // The test has power: the exact target is rejected when the relaxation moved mass.
    if want != p {
        let impossible = c.iter().zip(&p).any(|(&n, &q)| q == 0.0 && n > 0);
        let detected = impossible || {
            let (stat, dof) = chi_square(&c, &p.iter().map(|&x| x as f64).collect::<Vec<_>>());
            stat > chi_square_critical(dof)
        };
        assert!(
            detected,
            "the relaxation went unnoticed against the exact target"
        );
    }
}

#[test]
fn wrong_residual_is_detected() {
    // Sanity of the test itself: using p instead of max(p − q, 0) after a rejection is biased.
    let mut rng = Rng::new(8);
    let v = 5;
    let p = random_dist(&mut rng, v);
    let q = random_dist(&mut rng, v);
    let mut c = vec![0u64; v];
    for _ in 0..200_000 {
        let x = rng.categorical(&q);
        let tok = if rng.uniform() < (p[x] / q[x]).min(1.0) as f64 {
            x
        } else {
            rng.categorical(&p)
        };
        c[tok] += 1;
    }
    let (stat, dof) = chi_square(&c, &p.iter().map(|&x| x as f64).collect::<Vec<_>>());
    assert!(
        stat > chi_square_critical(dof),
        "the wrong residual went unnoticed ({stat:.1})"
    );
}

#[test]
fn two_level_tree_walk_is_lossless() {
    // Root → children {1, 2}; child 1 → children {0, 3}. Target rows depend on the node.
    let mut rng = Rng::new(10);
    let v = 4;
    let rows: Vec<Vec<f32>> = (0..5).map(|_| random_dist(&mut rng, v)).collect();
    let mut tree = DraftTree::root(0);
    let a = tree.push(0, 1);
    tree.push(0, 2);
    tree.push(a, 0);
    tree.push(a, 3);
    // Joint of the first two emitted tokens: p0(t1) · p(t2 | t1), where p(·|t1) is the row of the
    // node holding t1 if it is in the tree, else a fresh row for that token (row 4 for all).
    let node_of = |t: usize| match t {
        1 => Some(1),
        2 => Some(2),
        _ => None,
    };
    let row_after = |t: usize| node_of(t).map_or(&rows[4], |n| &rows[n]);
    let mut want = vec![0.0f64; v * v];
    for t1 in 0..v {
        for t2 in 0..v {
            want[t1 * v + t2] = rows[0][t1] as f64 * row_after(t1)[t2] as f64;
        }
    }
    let mut c = vec![0u64; v * v];
    for _ in 0..200_000 {
        let mut target = |n: usize| rows[n].clone();
        let out = walk_tree(
            &tree,
            &mut target,
            false,
            None,
            Relax::Exact,
            Residuals::Principled,
            &mut rng,
        );
        let mut emitted: Vec<usize> = out.path[1..]
            .iter()
            .map(|&n| tree.tokens[n] as usize)
            .collect();
        emitted.push(out.bonus as usize);
        if emitted.len() == 1 {
            let row = row_after(emitted[0]);
            emitted.push(rng.categorical(row));
        }
        c[emitted[0] * v + emitted[1]] += 1;
    }
    let (stat, dof) = chi_square(&c, &want);
    assert!(
        stat < chi_square_critical(dof),
        "chi-square {stat:.1} (dof {dof})"
    );
}

#[test]
fn greedy_walk_takes_the_longest_passing_chain() {
    // Rows: argmax after root is 2, after node 2 (token 2) is 3.
    let rows = [
        vec![0.1, 0.2, 0.6, 0.1],
        vec![0.25; 4],
        vec![0.1, 0.1, 0.1, 0.7],
        vec![0.7, 0.1, 0.1, 0.1],
    ];
    let mut tree = DraftTree::root(0);
    tree.push(0, 1); // node 1: fails
    let b = tree.push(0, 2); // node 2: passes
    tree.push(b, 3); // node 3: passes
    let mut target = |n: usize| rows[n].clone();
    let out = walk_tree(
        &tree,
        &mut target,
        true,
        None,
        Relax::Exact,
        Residuals::Principled,
        &mut Rng::new(0),
    );
    assert_eq!(out.path, vec![0, 2, 3]);
    assert_eq!(out.bonus, 0);
}

#[test]
fn official_compat_zeroes_the_first_k_plus_one_neighbours() {
    use lantern_decoding::accept::{emitted_distribution, Drafts};
    use lantern_decoding::strategy::{Speculative, Strategy, TreeShape};
    // Hand-worked from LANTERN's evaluate_posterior (reference/lantern.md §1.3): p = (.1, .05,
    // .05, .3, .5), candidate 0 with neighbours [1, 2, 3, 4], k = 2, δ = 0.2. Both neighbours
    // merge (c = .05, .10), so p̃(0) = .2. On rejection the official code zeroes p at 0 and at
    // nearest[0, 0:k+1] = [1, 2, 3], leaving (0, 0, 0, 0, 1); the principled rule zeroes only the
    // merged [1, 2], leaving (0, 0, 0, .3, .5) / .8.
    let relax = Relax::Tvd { k: 2, delta: 0.2 };
    let strategy = |residuals| {
        Strategy::Speculative(Speculative {
            tree: TreeShape::chain(1),
            relax,
            residuals,
        })
    };
    // The table must hold k + 1 columns for the official quirk (k for the principled rule).
    assert_eq!(strategy(Residuals::OfficialCompat).neighbours_needed(), 3);
    assert_eq!(strategy(Residuals::Principled).neighbours_needed(), 2);
    let codebook = [0.0f32, 0.1, 0.2, 0.3, 0.4];
    let p = [0.1f32, 0.05, 0.05, 0.3, 0.5];
    for (residuals, want) in [
        (Residuals::OfficialCompat, [0.2, 0.0, 0.0, 0.0, 0.8]),
        (Residuals::Principled, [0.2, 0.0, 0.0, 0.3, 0.5]),
    ] {
        let k = strategy(residuals).neighbours_needed();
        let t = NeighbourTable::build(&codebook, 5, 1, k);
        assert_eq!(t.neighbours(0), &[1, 2, 3][..k]);
        let e = emitted_distribution(&p, Drafts::Deterministic(&[0]), Some(&t), relax, residuals);
        for (got, w) in e.iter().zip(want) {
            assert!((got - w).abs() < 1e-6, "{residuals:?}: {e:?}");
        }
    }
}

#[test]
fn official_compat_on_lumina_zeroes_the_neighbours_in_p_on_static_trees() {
    use lantern_decoding::strategy::{Speculative, Strategy, TreeShape};
    // Hand-worked from LANTERN's Lumina-mGPT evaluate_posterior (eagle_version 1, reference/
    // lantern.md §1.4): p = (.1, .05, .05, .3, .5), q = (.6, .1, .1, .1, .1), candidate 0 sampled
    // from q with neighbours [1, 2, 3], k = 2, δ = 0.2: p̃(0) = .2, accepted with .2/.6. After a
    // rejection Lumina zeroes p at nearest[0, 0:k+1] and subtracts q: (0, 0, 0, 0, .4) → e_4;
    // LlamaGen/Anole zero q there instead: (0, .05, .05, .3, .4)/.8; the principled rule takes
    // max(relaxed − q, 0) = (0, 0, 0, .2, .4)/.6.
    let relax = Relax::Tvd { k: 2, delta: 0.2 };
    let t = NeighbourTable::build(&[0.0f32, 0.1, 0.2, 0.3, 0.4], 5, 1, 3);
    let p = [0.1f32, 0.05, 0.05, 0.3, 0.5];
    let q = [0.6f32, 0.1, 0.1, 0.1, 0.1];
    for (residuals, want) in [
        (Residuals::OfficialCompatLumina, [0.0, 0.0, 0.0, 0.0, 1.0]),
        (Residuals::OfficialCompat, [0.0, 0.0625, 0.0625, 0.375, 0.5]),
        (Residuals::Principled, [0.0, 0.0, 0.0, 1.0 / 3.0, 2.0 / 3.0]),
    ] {
        let rejected = (0..64)
            .find_map(|seed| {
                match verify_sampled(
                    &p,
                    &q,
                    &[0],
                    Some(&t),
                    relax,
                    residuals,
                    &mut Rng::new(seed),
                ) {
                    NodeOutcome::Rejected(r) => Some(r),
                    NodeOutcome::Accepted(_) => None,
                }
            })
            .expect("a rejection within 64 draws at acceptance 1/3");
        for (got, w) in rejected.iter().zip(want) {
            assert!((got - w).abs() < 1e-6, "{residuals:?}: {rejected:?}");
        }
    }
    // A Lumina-mGPT target turns the official quirks into Lumina's, and nothing else.
    let on = |residuals| {
        Strategy::Speculative(Speculative {
            tree: TreeShape::chain(2),
            relax,
            residuals,
        })
        .on_lumina()
    };
    assert_eq!(
        on(Residuals::OfficialCompat),
        on(Residuals::OfficialCompatLumina)
    );
    assert_ne!(
        on(Residuals::Principled),
        on(Residuals::OfficialCompatLumina)
    );
    assert_eq!(Strategy::Ar.on_lumina(), Strategy::Ar);
}
