//! Strategies on the tiny fixture model through both engines (burn and the host engine): greedy
//! speculative decoding, SJD and SCD give exactly the greedy AR tokens; exact SD and AR sample
//! the same distribution; ZipAR follows its schedule with causal upper rows.
//!
//! An untrained drafter is rarely accepted, which would leave KV compaction untested, so the
//! drafter here is *exact*: its logits for a draft path are the target's own full-forward logits
//! (computed without any cache). Every accepted path then exercises compaction, depth-based
//! positions and the CFG rows of the verify forward.

use std::path::PathBuf;

use crate::common::{chi_square, chi_square_critical};
use lantern_decoding::accept::{Relax, Residuals};
use lantern_decoding::embeddings::Tables;
use lantern_decoding::engine::{BurnModels, HostModels};
use lantern_decoding::model::{
    DraftInput, DraftParent, ImageCondition, Logits, ModelCallError, Models,
};
use lantern_decoding::rng::Rng;
use lantern_decoding::sampling::{Sampling, WarpOrder};
use lantern_decoding::strategy::{
    generate, image_rng, zipar_forwards, Coupling, Jacobi, JacobiInit, JacobiMethod, Speculative,
    Strategy, TreeShape,
};
use lantern_decoding::tree::DraftTree;
use lantern_models::cpu::{HostGpt, WeightDtype};
use lantern_models::gpt::repeated_tokens;
use lantern_models::{Condition, Gpt, GptConfig};

fn fixture(name: &str) -> PathBuf {
    lantern_models::fixtures::llamagen_tiny().join(name)
}

fn load() -> Gpt {
    let cfg = GptConfig::from_json_file(&fixture("gpt_c2i.json")).unwrap();
    Gpt::load(
        &cfg,
        &fixture("gpt_c2i.safetensors"),
        &lantern_models::backend::test_device(),
    )
    .unwrap()
}

/// The target on one engine: `host` picks the host engine, else burn.
fn target<'a>(gpt: &'a Gpt, host: Option<&'a HostGpt>, max_tree: usize) -> Box<dyn Models + 'a> {
    match host {
        Some(h) => Box::new(HostModels::new(h, None, max_tree, 0)),
        None => Box::new(BurnModels::new(gpt, None, max_tree, 0)),
    }
}

/// A prefix's conditional and unconditional logit rows.
type Rows = (Vec<f32>, Vec<f32>);

/// The target plus an exact drafter; optionally stops after `limit` tokens.
struct ExactDraft<'a> {
    inner: Box<dyn Models + 'a>,
    gpt: &'a Gpt,
    limit: usize,
    cond: Option<Condition>,
    /// The drafter's rows by (class, CFG, prefix): images share most short prefixes.
    memo: std::collections::HashMap<(usize, bool, Vec<u32>), Rows>,
    class: usize,
    committed: Vec<u32>,
    last_tree: Option<DraftTree>,
    root: u32,
    fed: Vec<(u32, Option<usize>)>,
}

impl<'a> ExactDraft<'a> {
    fn new(gpt: &'a Gpt, host: Option<&'a HostGpt>, limit: usize) -> Self {
        Self {
            inner: target(gpt, host, 64),
            gpt,
            limit,
            cond: None,
            memo: Default::default(),
            class: 0,
            committed: Vec::new(),
            last_tree: None,
            root: 0,
            fed: Vec::new(),
        }
    }

    /// Target logits after each prefix, from full causal forwards (memoised).
    fn exact(&mut self, prefixes: &[Vec<u32>]) -> Logits {
        let cond = self.cond.as_ref().expect("begin first");
        let rows = cond.batch();
        let v = self.gpt.config().vocab_size;
        let (mut c, mut u) = (Vec::new(), Vec::new());
        for p in prefixes {
            let key = (self.class, rows == 2, p.clone());
            let (pc, pu) = self.memo.entry(key).or_insert_with(|| {
                let out = self
                    .gpt
                    .forward_full(cond, repeated_tokens(p, rows, &self.gpt.device()))
                    .unwrap();
                let all: Vec<f32> = out.logits.into_data().try_into_vec_as().unwrap();
                let len = all.len() / rows;
                let u = if rows == 2 {
                    all[2 * len - v..].to_vec()
                } else {
                    Vec::new()
                };
                (all[len - v..len].to_vec(), u)
            });
            c.extend_from_slice(pc);
            u.extend_from_slice(pu);
        }
        Logits::new(v, c, (rows == 2).then_some(u))
    }
}

impl Models for ExactDraft<'_> {
    fn vocab(&self) -> usize {
        self.inner.vocab()
    }
    fn tokens_per_image(&self) -> usize {
        self.limit
    }
    fn grid(&self) -> usize {
        self.gpt.config().grid_size()
    }
    fn has_drafter(&self) -> bool {
        true
    }
    fn begin(&mut self, cond: &ImageCondition, cfg: bool) -> Result<Logits, ModelCallError> {
        let ImageCondition::Class(c) = cond else {
            unreachable!()
        };
        self.class = *c;
        let base = Condition::Classes(vec![*c]);
        self.cond = Some(if cfg {
            self.gpt.cfg_condition(&base).unwrap()
        } else {
            base
        });
        self.committed.clear();
        self.inner.begin(cond, cfg)
    }
    fn verify(&mut self, tree: &DraftTree) -> Result<Logits, ModelCallError> {
        self.last_tree = Some(tree.clone());
        self.inner.verify(tree)
    }
    fn accept(&mut self, path: &[usize]) {
        let t = self.last_tree.take().unwrap();
        self.committed.extend(path.iter().map(|&i| t.tokens[i]));
        self.inner.accept(path)
    }
    fn committed(&self) -> usize {
        self.inner.committed()
    }
    fn draft_root(&mut self, root: u32) -> Result<Logits, ModelCallError> {
        self.root = root;
        self.fed.clear();
        let mut p = self.committed.clone();
        p.push(root);
        Ok(self.exact(&[p]))
    }
    fn draft_expand(&mut self, inputs: &[DraftInput]) -> Result<Logits, ModelCallError> {
        let mut prefixes = Vec::new();
        for inp in inputs {
            let parent = match inp.parent {
                DraftParent::Root => None,
                DraftParent::Fed(i) => Some(i),
            };
            self.fed.push((inp.token, parent));
            let mut chain = Vec::new();
            let mut cur = Some(self.fed.len() - 1);
            while let Some(i) = cur {
                chain.push(self.fed[i].0);
                cur = self.fed[i].1;
            }
            chain.reverse();
            let mut p = self.committed.clone();
            p.push(self.root);
            p.extend(chain);
            prefixes.push(p);
        }
        Ok(self.exact(&prefixes))
    }
    fn draft_discard(&mut self) {
        self.fed.clear();
    }
}

fn sampling(temperature: f32, top_k: usize) -> Sampling {
    Sampling {
        temperature,
        top_k,
        top_p: 1.0,
        cfg_scale: 4.0,
        cfg_interval: None,
        warp_order: WarpOrder::TopKThenTopP,
        temperature_rule: Default::default(),
    }
}

fn spec(tree: TreeShape) -> Strategy {
    Strategy::Speculative(Speculative {
        tree,
        relax: Relax::Exact,
        residuals: Residuals::Principled,
    })
}

#[test]
fn greedy_speculative_and_sjd_equal_greedy_ar() {
    let gpt = load();
    let host = HostGpt::from_burn(&gpt, WeightDtype::F32);
    let n = gpt.config().block_size;
    let s = sampling(0.0, 0);
    for (class, engine) in [(3, None), (5, None), (3, Some(&host)), (5, Some(&host))] {
        let cond = ImageCondition::Class(class);
        let mut ar_models = target(&gpt, engine, 1);
        let ar = generate(
            ar_models.as_mut(),
            &Strategy::Ar,
            &s,
            &Tables::NONE,
            &cond,
            &Rng::new(0),
        )
        .unwrap();
        for strategy in [
            spec(TreeShape::Dynamic {
                top_k: 2,
                depth: 3,
                total_tokens: 6,
            }),
            spec(TreeShape::static_preset("mc_sim_7b_63").unwrap()),
            spec(TreeShape::chain(4)),
        ] {
            let mut m = ExactDraft::new(&gpt, engine, n);
            let g = generate(&mut m, &strategy, &s, &Tables::NONE, &cond, &Rng::new(0)).unwrap();
            assert_eq!(g.tokens, ar.tokens, "class {class}: {strategy:?}");
            assert!(
                g.tau() > 2.0,
                "an exact drafter is accepted (τ = {})",
                g.tau()
            );
        }
        let mut m = target(&gpt, engine, 32);
        for (init, method) in [
            (JacobiInit::Horizontal, JacobiMethod::Sjd),
            (JacobiInit::Vertical, JacobiMethod::Scd(Coupling::Maximal)),
            (JacobiInit::Random, JacobiMethod::Scd(Coupling::Gumbel)),
        ] {
            let st = Strategy::Jacobi(Jacobi {
                window: 4,
                init,
                fresh: Default::default(),
                method,
                official_compat: false,
            });
            let g = generate(m.as_mut(), &st, &s, &Tables::NONE, &cond, &Rng::new(0)).unwrap();
            assert_eq!(g.tokens, ar.tokens, "class {class}: {st:?}");
        }
    }
}

#[test]
fn exact_drafts_are_accepted_in_sampling_mode() {
    // With q = p on a sampled chain every draft passes min(1, p/q): τ = depth + 1 per round
    // unless the image ends — only if the verify rows equal the full forward's.
    let gpt = load();
    let host = HostGpt::from_burn(&gpt, WeightDtype::F32);
    let n = gpt.config().block_size;
    let mut m = ExactDraft::new(&gpt, Some(&host), n);
    let g = generate(
        &mut m,
        &spec(TreeShape::chain(3)),
        &sampling(1.0, 0),
        &Tables::NONE,
        &ImageCondition::Class(3),
        &Rng::new(4),
    )
    .unwrap();
    let full_rounds = g.steps.iter().filter(|s| s.drafted == 3).count();
    let accepted_all = g
        .steps
        .iter()
        .filter(|s| s.drafted == 3 && s.accepted == 3)
        .count();
    assert!(full_rounds >= 3);
    assert!(
        accepted_all * 10 >= full_rounds * 9,
        "{accepted_all} of {full_rounds} full rounds accepted"
    );
}

/// Two-sample homogeneity test on (token 1, token 2) with a top-8 target: AR on burn against
/// exact SD (dynamic tree, an exact drafter) on the host engine, over many seeds. Power: with
/// 6000 images a side, at α = 1e-4 it detects (with probability ½) a difference whose
/// chi-square distance Σ Δ²/p exceeds about 0.014 — a TVD of 0.012 moved between two outcomes,
/// or 0.06 spread in proportion over all of them. The analytic tests in `lossless.rs` see
/// 0.002–0.02 on whole sequences; this one checks the engines and the real model's rows.
#[test]
fn exact_sd_and_ar_sample_the_same_distribution() {
    let gpt = load();
    let s = sampling(1.0, 8);
    // On a GPU backend (LANTERN_TEST_BACKEND) the test is a smoke check of the device path:
    // 400 images a side detect a TVD of about 0.2 (lavapipe is too slow for 6000 in CI).
    let trials = if lantern_models::backend::test_backend() == "cpu" {
        6000u64
    } else {
        400
    };
    // Six tokens and a depth-3 tree: the first round emits at most tokens 1..=4, so tokens 4 and
    // 5 (the cells compared) follow a round's cache compaction and further sampled forwards.
    let limit = 6;
    let v = gpt.config().vocab_size;
    let code = |t: &[u32]| t[limit - 2] as usize * v + t[limit - 1] as usize;
    let mut ar_counts = std::collections::HashMap::<usize, u64>::new();
    let mut sd_counts = std::collections::HashMap::<usize, u64>::new();
    let host = HostGpt::from_burn(&gpt, WeightDtype::F32);
    let mut ar_models = ExactDraft::new(&gpt, None, limit);
    let mut sd_models = ExactDraft::new(&gpt, Some(&host), limit);
    let sd = spec(TreeShape::Dynamic {
        top_k: 3,
        depth: 3,
        total_tokens: 6,
    });
    let cond = ImageCondition::Class(3);
    // Images whose first round accepted a depth-3 path and which went on to another round.
    let mut deep = 0;
    for seed in 0..trials {
        let a = generate(
            &mut ar_models,
            &Strategy::Ar,
            &s,
            &Tables::NONE,
            &cond,
            &image_rng(seed, 1),
        )
        .unwrap();
        let b = generate(
            &mut sd_models,
            &sd,
            &s,
            &Tables::NONE,
            &cond,
            &image_rng(seed, 2),
        )
        .unwrap();
        assert_eq!((a.tokens.len(), b.tokens.len()), (limit, limit));
        deep += usize::from(b.steps.len() >= 2 && b.steps[0].accepted == 3);
        *ar_counts.entry(code(&a.tokens)).or_default() += 1;
        *sd_counts.entry(code(&b.tokens)).or_default() += 1;
    }
    assert!(
        deep > 0,
        "no image accepted a depth-3 path before another round"
    );
    // Homogeneity: expected cell probabilities from the pooled sample.
    let mut keys: Vec<usize> = ar_counts.keys().chain(sd_counts.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    let pooled: Vec<f64> = keys
        .iter()
        .map(|k| {
            (ar_counts.get(k).copied().unwrap_or(0) + sd_counts.get(k).copied().unwrap_or(0)) as f64
                / (2 * trials) as f64
        })
        .collect();
    let sd: Vec<u64> = keys
        .iter()
        .map(|k| sd_counts.get(k).copied().unwrap_or(0))
        .collect();
    let ar: Vec<u64> = keys
        .iter()
        .map(|k| ar_counts.get(k).copied().unwrap_or(0))
        .collect();
    let (s1, d) = chi_square(&sd, &pooled);
    let (s2, _) = chi_square(&ar, &pooled);
    // Both halves against the pooled estimate: the sum is the homogeneity statistic (dof = cells − 1).
    assert!(
        s1 + s2 < chi_square_critical(d),
        "homogeneity chi-square {:.1} (dof {d})",
        s1 + s2
    );
}

/// ZipAR on both engines: the forward count follows the official schedule's formula for every
/// window; greedy rows 0 and 1 equal greedy AR's (row 1 is decoded while lower rows exist, so an
/// upper row that could see the rows below it would change); both engines give the same tokens; a
/// window as wide as a row is raster order, and gives greedy AR's image.
#[test]
fn zipar_follows_the_schedule_and_keeps_upper_rows_causal() {
    let gpt = load();
    let host = HostGpt::from_burn(&gpt, WeightDtype::F32);
    let n = gpt.config().block_size;
    let grid = (n as f64).sqrt().round() as usize;
    assert!(
        grid >= 3,
        "the fixture's grid is too small for parallel rows"
    );
    let s = sampling(0.0, 0);
    for class in [3, 5] {
        let cond = ImageCondition::Class(class);
        let mut ar_models = target(&gpt, None, 1);
        let ar = generate(
            ar_models.as_mut(),
            &Strategy::Ar,
            &s,
            &Tables::NONE,
            &cond,
            &Rng::new(0),
        )
        .unwrap();
        for window in 1..grid {
            let st = Strategy::ZipAr { window };
            let mut on_burn = target(&gpt, None, st.max_tree());
            let mut on_host = target(&gpt, Some(&host), st.max_tree());
            let a = generate(
                on_burn.as_mut(),
                &st,
                &s,
                &Tables::NONE,
                &cond,
                &Rng::new(0),
            )
            .unwrap();
            let b = generate(
                on_host.as_mut(),
                &st,
                &s,
                &Tables::NONE,
                &cond,
                &Rng::new(0),
            )
            .unwrap();
            assert_eq!(a.tokens.len(), n);
            assert_eq!(
                a.target_forwards(),
                zipar_forwards(grid, window),
                "w = {window}"
            );
            assert_eq!(
                a.tokens[..2 * grid],
                ar.tokens[..2 * grid],
                "class {class}, w = {window}: rows 0 and 1 must be AR's"
            );
            assert_eq!(
                a.tokens, b.tokens,
                "class {class}, w = {window}: engines differ"
            );
        }
        // A window as wide as a row opens each row as the one above completes: raster order
        // through `place`, greedy AR's tokens on both engines, AR's forward count.
        let raster = Strategy::ZipAr { window: grid };
        for engine in [None, Some(&host)] {
            let mut m = target(&gpt, engine, raster.max_tree());
            let g = generate(m.as_mut(), &raster, &s, &Tables::NONE, &cond, &Rng::new(0)).unwrap();
            assert_eq!(
                g.tokens, ar.tokens,
                "class {class}: raster-order ZipAR is AR"
            );
            assert_eq!(g.target_forwards(), n);
        }
        let bad = Strategy::ZipAr { window: 0 };
        let mut m = target(&gpt, None, bad.max_tree());
        let e = generate(m.as_mut(), &bad, &s, &Tables::NONE, &cond, &Rng::new(0)).unwrap_err();
        assert!(e.to_string().contains("ZipAR window"), "{e}");
    }
}

/// `Models::place` (ZipAR's forward) on both engines: a token placed at position i sees exactly
/// the tokens below i. Its logits equal the ordinary verify path's for the same prefix, are
/// unchanged by a committed token placed further down the raster, and do change when a token is
/// placed just above it (the control: the comparison can see one key).
#[test]
fn placed_tokens_see_exactly_the_positions_below_them() {
    let gpt = load();
    let host = HostGpt::from_burn(&gpt, WeightDtype::F32);
    let cond = ImageCondition::Class(3);
    let prefix = [11u32, 7, 9];
    for engine in [None, Some(&host)] {
        // extra: tokens placed (and kept) before the probe; probe: token 5 at position 3.
        let run = |extra: &[(u32, usize)], via_verify: bool| -> Vec<f32> {
            let mut m = target(&gpt, engine, 8);
            m.begin(&cond, true).unwrap();
            for &t in &prefix {
                m.verify(&DraftTree::root(t)).unwrap();
                m.accept(&[0]);
            }
            for &(t, p) in extra {
                m.place(&[t], &[p], &[true]).unwrap();
            }
            let logits = if via_verify {
                m.verify(&DraftTree::root(5)).unwrap()
            } else {
                m.place(&[5], &[3], &[true]).unwrap()
            };
            let (c, u) = logits.row(0);
            c.iter().chain(u.unwrap()).copied().collect()
        };
        let max_diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        let base = run(&[], false);
        assert!(max_diff(&base, &run(&[], true)) < 1e-5, "place ≠ verify");
        let below = run(&[(42, 9), (43, 14)], false);
        assert!(
            max_diff(&base, &below) < 1e-5,
            "a token further down was seen"
        );
        // Control: token 42 at position 2 replaces nothing (position 2 holds 9 already), so
        // the probe sees one more key there.
        let above = run(&[(42, 2)], false);
        assert!(
            max_diff(&base, &above) > 1e-3,
            "the comparison cannot see one key"
        );
    }
}

/// Timing is honest on any backend (run with `LANTERN_TEST_BACKEND=wgpu` on a GPU or lavapipe):
/// the forward clock of a verify whose logits are then read covers the device's work, not only
/// the launch — at least half the wall time around it, and more than a trivial duration.
#[test]
fn timed_forwards_include_the_device_work() {
    let gpt = load();
    let n = gpt.config().block_size;
    let mut m = target(&gpt, None, n);
    m.begin(&ImageCondition::Class(3), true).unwrap();
    let mut tree = DraftTree::root(1);
    for i in 0..n / 2 {
        tree.push(i, (i % 7) as u32);
    }
    let (mut wall, mut clocked) = (0.0, 0.0);
    for _ in 0..3 {
        let f0 = m.forward_ms();
        let t = std::time::Instant::now();
        let logits = m.verify(&tree).unwrap();
        let last = logits.row(tree.len() - 1).0.iter().sum::<f32>();
        assert!(last.is_finite());
        wall += t.elapsed().as_secs_f64() * 1e3;
        clocked += m.forward_ms() - f0;
        m.accept(&[0]);
    }
    assert!(clocked > 0.01, "a forward took {clocked} ms");
    assert!(
        clocked >= 0.5 * wall,
        "the forward clock ({clocked:.3} ms) misses the device work ({wall:.3} ms wall)"
    );
}
