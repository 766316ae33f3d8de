//! Losslessness of whole strategies on an analytic target and drafter: exact speculative decoding
//! on chain, static and dynamic trees, SJD (every initialisation) and SCD (both couplings)
//! reproduce the target's joint distribution over
//! whole sequences (chi-square, fixed seeds); LANTERN with δ = 0 makes the same decisions as exact
//! SD; a large δ is detectably lossy (the test has power); greedy strategies equal greedy AR.
//!
//! Sequences are N = 5 tokens over V = 3 codes (243 outcomes), so the first round drafts three
//! levels deep (`max_depth = N − 2`): every level of a depth-3 chain, static tree and dynamic tree,
//! siblings of rank 0 and 1 at depth 2 and 3, and SJD's drafts carried into later rounds are
//! exercised under sampling. Power: 60 000 sequences per test; at α = 1e-4 a test detects (with
//! probability ½) any change of the joint whose chi-square distance Σ Δ²/p exceeds 1.4e-3 — a TVD
//! of 0.002 moved between two outcomes, or 0.02 spread in proportion over all of them. A bug
//! that hands depth 2 its parent's q, or an SJD draft the q of the row before, moves far more.
//! SCD's coupled drafts are also tested on N = 8 binary tokens with a 3-token window, where a draft
//! can be carried (and re-coupled) through several rounds before it is tested; GSD's grouping is
//! detectably lossy there. Fresh drafts recorded with a uniform proposal (SJD-PAC's convention)
//! are lossless when drawn uniformly, and detectably lossy when they are copies.

use crate::common::*;
use lantern_decoding::accept::{Relax, Residuals};
use lantern_decoding::embeddings::Tables;
use lantern_decoding::model::{ImageCondition, Models};
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::rng::Rng;
use lantern_decoding::sampling::{argmax, Sampling, WarpOrder};
use lantern_decoding::strategy::{
    generate, Coupling, DistanceThreshold, FreshProposal, Grouping, Jacobi, JacobiInit,
    JacobiMethod, Speculative, Strategy, TreeShape,
};

const V: usize = 3;
const N: usize = 5;
const TRIALS: u64 = 60_000;

fn sampling(top_k: usize) -> Sampling {
    Sampling {
        temperature: 1.0,
        top_k,
        top_p: 1.0,
        cfg_scale: 2.0,
        cfg_interval: None,
        warp_order: WarpOrder::TopKThenTopP,
        temperature_rule: Default::default(),
    }
}

fn table() -> NeighbourTable {
    let codebook = [0.0f32, 0.0, 1.0, 0.1, 3.0, 3.0];
    NeighbourTable::build(&codebook, V, 2, V - 1)
}

fn spec(tree: TreeShape, relax: Relax) -> Strategy {
    Strategy::Speculative(Speculative {
        tree,
        relax,
        residuals: Residuals::Principled,
    })
}

fn jacobi(window: usize, init: JacobiInit, method: JacobiMethod) -> Strategy {
    jacobi_q0(window, init, method, FreshProposal::OneHot)
}

fn jacobi_q0(
    window: usize,
    init: JacobiInit,
    method: JacobiMethod,
    fresh: FreshProposal,
) -> Strategy {
    Strategy::Jacobi(Jacobi {
        window,
        init,
        fresh,
        method,
        official_compat: false,
    })
}

const INITS: [JacobiInit; 3] = [
    JacobiInit::Horizontal,
    JacobiInit::Vertical,
    JacobiInit::Random,
];

/// The exact joint distribution of all V^N sequences.
fn joint(s: &Sampling) -> Vec<f64> {
    joint_of(V, N, s)
}

/// The exact joint distribution of all v^n sequences.
fn joint_of(v: usize, n: usize, s: &Sampling) -> Vec<f64> {
    let mut model = Analytic::new(v, n, false);
    model
        .begin(&ImageCondition::Class(1), s.uses_cfg())
        .unwrap();
    let mut out = vec![0.0; v.pow(n as u32)];
    for (code, p) in out.iter_mut().enumerate() {
        let seq: Vec<u32> = (0..n)
            .map(|i| ((code / v.pow(i as u32)) % v) as u32)
            .collect();
        *p = (0..n)
            .map(|t| model.target_probs(&seq[..t], s)[seq[t] as usize] as f64)
            .product();
    }
    out
}

fn counts(
    strategy: &Strategy,
    s: &Sampling,
    table: Option<&NeighbourTable>,
    seed: u64,
) -> Vec<u64> {
    counts_of(V, N, V, strategy, s, table, seed)
}

/// Sequence counts of `TRIALS` generations of v^n sequences on a `grid`-wide raster.
fn counts_of(
    v: usize,
    n: usize,
    grid: usize,
    strategy: &Strategy,
    s: &Sampling,
    table: Option<&NeighbourTable>,
    seed: u64,
) -> Vec<u64> {
    let mut model = Analytic::new(v, n, true);
    model.grid = grid;
    let mut c = vec![0u64; v.pow(n as u32)];
    for trial in 0..TRIALS {
        let g = generate(
            &mut model,
            strategy,
            s,
            &Tables::neighbours(table),
            &ImageCondition::Class(1),
            &Rng::new(seed).fork(trial),
        )
        .unwrap();
        assert_eq!(g.tokens.len(), n);
        let code: usize = g
            .tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| t as usize * v.pow(i as u32))
            .sum();
        c[code] += 1;
    }
    c
}

fn assert_follows_target(name: &str, strategy: &Strategy, s: &Sampling) {
    let (stat, dof) = chi_square(&counts(strategy, s, Some(&table()), 42), &joint(s));
    let crit = chi_square_critical(dof);
    assert!(
        stat < crit,
        "{name}: chi-square {stat:.1} ≥ {crit:.1} (dof {dof})"
    );
}

#[test]
fn ar_reproduces_the_target() {
    assert_follows_target("ar", &Strategy::Ar, &sampling(0));
}

#[test]
fn exact_sd_is_lossless_on_deep_chain_static_and_dynamic_trees() {
    for (name, tree) in [
        ("chain", TreeShape::chain(3)),
        (
            "static",
            TreeShape::Static {
                name: "deep".into(),
                choices: vec![
                    vec![0],
                    vec![1],
                    vec![0, 0],
                    vec![0, 1],
                    vec![1, 0],
                    vec![0, 0, 0],
                    vec![0, 0, 1],
                    vec![0, 1, 0],
                ],
            },
        ),
        (
            "dynamic",
            TreeShape::Dynamic {
                top_k: 2,
                depth: 2,
                total_tokens: 6,
            },
        ),
    ] {
        for top_k in [0, 2] {
            assert_follows_target(
                &format!("sd {name} top_k {top_k}"),
                &spec(tree.clone(), Relax::Exact),
                &sampling(top_k),
            );
        }
    }
}

#[test]
fn sjd_is_lossless_with_every_initialisation() {
    // counts() runs on a V-wide raster: vertical copies reach back a whole row.
    for init in INITS {
        assert_follows_target(
            &format!("sjd {init:?}"),
            &jacobi(3, init, JacobiMethod::Sjd),
            &sampling(0),
        );
    }
}

#[test]
fn jacobi_drafts_with_a_uniform_fresh_proposal_are_lossless() {
    // SJD-PAC's convention: uniformly drawn fresh drafts record q = 1/V (accepted with
    // min(1, V·p(x))); SJD and both SCD couplings stay exact.
    let methods = [
        JacobiMethod::Sjd,
        JacobiMethod::Scd(Coupling::Maximal),
        JacobiMethod::Scd(Coupling::Gumbel),
    ];
    for method in methods {
        assert_follows_target(
            &format!("{method:?}, uniform q0"),
            &jacobi_q0(3, JacobiInit::Random, method, FreshProposal::Uniform),
            &sampling(0),
        );
    }
}

#[test]
fn scd_is_lossless_with_both_couplings() {
    for coupling in [Coupling::Maximal, Coupling::Gumbel] {
        for init in INITS {
            assert_follows_target(
                &format!("scd {coupling:?} {init:?}"),
                &jacobi(3, init, JacobiMethod::Scd(coupling)),
                &sampling(0),
            );
        }
    }
}

/// 8 binary tokens on a 4-wide raster, window 3: up to seven rounds, drafts carried through
/// several of them.
fn assert_long_jacobi(name: &str, strategy: &Strategy, lossless: bool) {
    let (v, n) = (2, 8);
    let s = sampling(0);
    let (stat, dof) = chi_square(
        &counts_of(v, n, 4, strategy, &s, None, 11),
        &joint_of(v, n, &s),
    );
    let crit = chi_square_critical(dof);
    if lossless {
        assert!(
            stat < crit,
            "{name}: chi-square {stat:.1} ≥ {crit:.1} (dof {dof})"
        );
    } else {
        assert!(
            stat > crit,
            "{name} should be detectably lossy (chi-square {stat:.1})"
        );
    }
}

#[test]
fn coupled_drafts_carried_through_several_rounds_stay_lossless() {
    for coupling in [Coupling::Maximal, Coupling::Gumbel] {
        assert_long_jacobi(
            &format!("scd {coupling:?}"),
            &jacobi(3, JacobiInit::Random, JacobiMethod::Scd(coupling)),
            true,
        );
    }
    assert_long_jacobi(
        "sjd",
        &jacobi(3, JacobiInit::Vertical, JacobiMethod::Sjd),
        true,
    );
    assert_long_jacobi(
        "sjd, uniform q0",
        &jacobi_q0(
            3,
            JacobiInit::Random,
            JacobiMethod::Sjd,
            FreshProposal::Uniform,
        ),
        true,
    );
    // A copied draft recorded as uniform is over-accepted, and the test sees it (why the spec
    // refuses `fresh_proposal = uniform` unless `init = random`).
    assert_long_jacobi(
        "sjd, copies recorded as uniform",
        &jacobi_q0(
            3,
            JacobiInit::Horizontal,
            JacobiMethod::Sjd,
            FreshProposal::Uniform,
        ),
        false,
    );
    // GSD with a group of every rank neighbour is lossy, and the test sees it.
    let grouping = Grouping {
        half_window: 1,
        p_thr: 1.0,
        d_thr: DistanceThreshold::Quantile(1.0),
    };
    assert_long_jacobi(
        "gsd",
        &jacobi(3, JacobiInit::Random, JacobiMethod::Gsd(grouping)),
        false,
    );
}

#[test]
fn lantern_with_zero_delta_makes_exact_sd_decisions() {
    let t = table();
    // top-k 2 leaves a zero-mass code, which a neighbour set may then hold: a zero budget still
    // merges such a neighbour (its mass 0 fits), the path these cases pin. (At top-k 0 every
    // mass is positive, nothing can be merged and the LANTERN path is the exact one: no case.)
    let zero_budget = [
        Relax::Tvd {
            k: V - 1,
            delta: 0.0,
        },
        Relax::Ratio {
            k: V - 1,
            lambda: 1.0,
        },
    ];
    for (tree, s, zero) in [
        (TreeShape::chain(3), sampling(2), zero_budget[0]),
        (TreeShape::chain(3), sampling(2), zero_budget[1]),
        (
            TreeShape::Dynamic {
                top_k: 2,
                depth: 2,
                total_tokens: 4,
            },
            sampling(2),
            zero_budget[0],
        ),
    ] {
        let exact = spec(tree.clone(), Relax::Exact);
        let zero = spec(tree.clone(), zero);
        let mut a = Analytic::new(V, N, true);
        let mut b = Analytic::new(V, N, true);
        for trial in 0..3000 {
            let rng = Rng::new(9).fork(trial);
            let ga = generate(
                &mut a,
                &exact,
                &s,
                &Tables::neighbours(Some(&t)),
                &ImageCondition::Class(0),
                &rng,
            )
            .unwrap();
            let gb = generate(
                &mut b,
                &zero,
                &s,
                &Tables::neighbours(Some(&t)),
                &ImageCondition::Class(0),
                &rng,
            )
            .unwrap();
            assert_eq!(ga.tokens, gb.tokens, "trial {trial}");
            assert_eq!(
                ga.accepted_per_step(),
                gb.accepted_per_step(),
                "trial {trial}"
            );
        }
    }
}

/// The bounded rule through whole generations. Greedy: every token the target chose (not an
/// accepted draft) is greedy AR's for its prefix, and an accepted draft is at most 2δ below the
/// row's maximum (p̃ moves at most δ). Sampled: every round's exact emitted TVD is at most δ.
#[test]
fn bounded_generations_keep_greedy_tokens_and_their_bound() {
    let t = table();
    let mut greedy = sampling(0);
    greedy.temperature = 0.0;
    let (mut chosen, mut drafted) = (0, 0);
    for delta in [0.1, 0.2, 0.3] {
        // A chain drafts one candidate per position, so a rejection leaves two non-candidates
        // whose order the relaxation can swap (where the bonus must still follow p).
        let bounded = spec(TreeShape::chain(3), Relax::Bounded { k: V - 1, delta });
        for n in 4..=8 {
            let mut m = Analytic::new(V, n, true);
            for class in 0..12 {
                let cond = ImageCondition::Class(class);
                let tables = Tables::neighbours(Some(&t));
                let g = generate(&mut m, &bounded, &greedy, &tables, &cond, &Rng::new(3)).unwrap();
                assert_eq!(g.tokens.len(), n);
                for (i, accepted) in g.accepted_mask().into_iter().enumerate() {
                    // The row greedy verification reads: the softmax of the guided logits (what
                    // T = 1 with no top-k or top-p gives), whose argmax is greedy AR's token.
                    let p = m.target_probs(&g.tokens[..i], &sampling(0));
                    let (x, best) = (g.tokens[i] as usize, argmax(&p));
                    let at = format!("δ {delta} n {n} class {class} token {i}");
                    if accepted {
                        assert!(p[x] >= p[best] - 2.0 * delta - 1e-6, "{at}");
                        drafted += 1;
                    } else {
                        assert_eq!(x, best, "{at}: not greedy AR's token");
                        chosen += 1;
                    }
                }
            }
        }
    }
    assert!(
        chosen > 0 && drafted > 0,
        "{chosen} chosen, {drafted} drafted"
    );
    let delta = 0.25;
    let bounded = spec(TreeShape::chain(3), Relax::Bounded { k: V - 1, delta });
    let s = sampling(0);
    let mut m = Analytic::new(V, N, true);
    let mut rounds = 0;
    for trial in 0..200 {
        let tables = Tables::neighbours(Some(&t));
        let rng = Rng::new(5).fork(trial);
        let g = generate(
            &mut m,
            &bounded,
            &s,
            &tables,
            &ImageCondition::Class(1),
            &rng,
        )
        .unwrap();
        assert_eq!(g.tokens.len(), N);
        for tvd in g.steps.iter().filter_map(|st| st.tvd_emitted) {
            assert!(
                tvd <= delta as f64 + 1e-6,
                "trial {trial}: emitted TVD {tvd} > δ"
            );
            rounds += 1;
        }
    }
    assert!(rounds > 0);
}

#[test]
fn large_delta_is_detectably_lossy() {
    let s = sampling(0);
    let lossy = spec(
        TreeShape::chain(3),
        Relax::Tvd {
            k: V - 1,
            delta: 0.6,
        },
    );
    let (stat, dof) = chi_square(&counts(&lossy, &s, Some(&table()), 7), &joint(&s));
    assert!(
        stat > chi_square_critical(dof),
        "δ = 0.6 should change the distribution (chi-square {stat:.1})"
    );
}

#[test]
fn greedy_strategies_equal_greedy_ar() {
    let mut s = sampling(0);
    s.temperature = 0.0;
    let strategies = [
        spec(TreeShape::chain(2), Relax::Exact),
        spec(
            TreeShape::Dynamic {
                top_k: 3,
                depth: 2,
                total_tokens: 6,
            },
            Relax::Exact,
        ),
        spec(
            TreeShape::static_preset("mc_sim_7b_63").unwrap(),
            Relax::Exact,
        ),
        jacobi(3, JacobiInit::Horizontal, JacobiMethod::Sjd),
        jacobi(
            3,
            JacobiInit::Vertical,
            JacobiMethod::Scd(Coupling::Maximal),
        ),
        jacobi(3, JacobiInit::Random, JacobiMethod::Scd(Coupling::Gumbel)),
    ];
    for class in 0..5 {
        let cond = ImageCondition::Class(class);
        let mut m = Analytic::new(V, 6, true);
        let ar = generate(
            &mut m,
            &Strategy::Ar,
            &s,
            &Tables::NONE,
            &cond,
            &Rng::new(1),
        )
        .unwrap();
        let t = table();
        for st in &strategies {
            let g = generate(
                &mut m,
                st,
                &s,
                &Tables::neighbours(Some(&t)),
                &cond,
                &Rng::new(1),
            )
            .unwrap();
            assert_eq!(g.tokens, ar.tokens, "{st:?}");
        }
    }
}
