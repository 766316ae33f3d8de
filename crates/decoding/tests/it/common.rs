//! An analytic target and drafter (no network) implementing `Models`, and a chi-square helper.
#![allow(dead_code)]

use lantern_decoding::model::{
    DraftInput, DraftParent, ImageCondition, Logits, ModelCallError, Models,
};
use lantern_decoding::tree::DraftTree;

/// A smooth pseudo-random logit for (prefix, next token), different per `salt`.
fn logit(prefix: &[u32], x: u32, salt: f32) -> f32 {
    let mut h = salt;
    for (i, &t) in prefix.iter().enumerate() {
        h += (t as f32 + 1.3) * (i as f32 + 0.7) * 0.917;
    }
    2.0 * (h * 1.37 + x as f32 * 2.11 + (x as f32 * h).sin()).sin()
}

/// Target and drafter logits are closed-form functions of the prefix; the drafter is a
/// deliberately different (imperfect) function, and under CFG the uncond half differs too.
pub struct Analytic {
    pub vocab: usize,
    pub n: usize,
    pub drafter: bool,
    /// Raster width (default: the whole sequence is one row).
    pub grid: usize,
    committed: Vec<u32>,
    last_tree: Option<DraftTree>,
    root: Option<u32>,
    fed: Vec<(u32, Option<usize>)>,
    class: f32,
    cfg_on: bool,
}

impl Analytic {
    pub fn new(vocab: usize, n: usize, drafter: bool) -> Self {
        Self {
            vocab,
            n,
            drafter,
            grid: n,
            committed: Vec::new(),
            last_tree: None,
            root: None,
            fed: Vec::new(),
            class: 0.0,
            cfg_on: false,
        }
    }

    fn rows(&self, prefixes: &[Vec<u32>], salt: f32, cfg: bool) -> Logits {
        let row = |p: &Vec<u32>, s: f32| {
            (0..self.vocab as u32)
                .map(|x| logit(p, x, s + self.class))
                .collect::<Vec<f32>>()
        };
        Logits::new(
            self.vocab,
            prefixes.iter().flat_map(|p| row(p, salt)).collect(),
            cfg.then(|| prefixes.iter().flat_map(|p| row(p, salt + 5.0)).collect()),
        )
    }

    /// The exact target distribution of the next token after `prefix` under `sampling`.
    pub fn target_probs(
        &self,
        prefix: &[u32],
        sampling: &lantern_decoding::sampling::Sampling,
    ) -> Vec<f32> {
        let l = self.rows(&[prefix.to_vec()], 0.0, sampling.uses_cfg());
        let (c, u) = l.row(0);
        sampling.probs(&sampling.guide(c, u, prefix.len()))
    }
}

impl Models for Analytic {
    fn vocab(&self) -> usize {
        self.vocab
    }
    fn tokens_per_image(&self) -> usize {
        self.n
    }
    fn grid(&self) -> usize {
        self.grid
    }
    fn has_drafter(&self) -> bool {
        self.drafter
    }
    fn begin(&mut self, cond: &ImageCondition, cfg: bool) -> Result<Logits, ModelCallError> {
        self.committed.clear();
        self.class = match cond {
            ImageCondition::Class(c) => *c as f32 * 0.37,
            _ => 0.0,
        };
        self.cfg_on = cfg;
        Ok(self.rows(&[vec![]], 0.0, cfg))
    }
    fn verify(&mut self, tree: &DraftTree) -> Result<Logits, ModelCallError> {
        let prefixes: Vec<Vec<u32>> = (0..tree.len())
            .map(|i| {
                let mut p = self.committed.clone();
                p.extend(tree.path_to(i).iter().map(|&j| tree.tokens[j]));
                p
            })
            .collect();
        self.last_tree = Some(tree.clone());
        Ok(self.rows(&prefixes, 0.0, self.cfg_on))
    }
    fn accept(&mut self, path: &[usize]) {
        let tree = self.last_tree.take().expect("verify first");
        self.committed.extend(path.iter().map(|&i| tree.tokens[i]));
    }
    fn committed(&self) -> usize {
        self.committed.len()
    }
    fn draft_root(&mut self, root: u32) -> Result<Logits, ModelCallError> {
        self.root = Some(root);
        self.fed.clear();
        let mut p = self.committed.clone();
        p.push(root);
        Ok(self.rows(&[p], 11.0, self.cfg_on))
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
            p.push(self.root.expect("draft_root first"));
            p.extend(chain);
            prefixes.push(p);
        }
        Ok(self.rows(&prefixes, 11.0, self.cfg_on))
    }
    fn draft_discard(&mut self) {
        self.fed.clear();
    }
}

/// Pearson chi-square statistic of observed counts against expected probabilities, and its
/// degrees of freedom. Cells expected to hold fewer than 5 counts are pooled into one (where the
/// chi-square approximation would otherwise be heavy-tailed); zero-probability cells must be empty.
pub fn chi_square(counts: &[u64], probs: &[f64]) -> (f64, usize) {
    let total: u64 = counts.iter().sum();
    let mut stat = 0.0;
    let mut cells = 0usize;
    let (mut pooled_obs, mut pooled_exp) = (0u64, 0.0f64);
    for (&c, &p) in counts.iter().zip(probs) {
        let e = p * total as f64;
        if e < 1e-9 {
            assert_eq!(c, 0, "a zero-probability outcome was produced");
        } else if e < 5.0 {
            pooled_obs += c;
            pooled_exp += e;
        } else {
            stat += (c as f64 - e).powi(2) / e;
            cells += 1;
        }
    }
    if pooled_exp > 0.0 {
        stat += (pooled_obs as f64 - pooled_exp).powi(2) / pooled_exp;
        cells += 1;
    }
    (stat, cells.saturating_sub(1))
}

/// Upper critical value of chi-square with `dof` degrees of freedom at significance 1e-4
/// (Wilson–Hilferty approximation; z = 3.719).
pub fn chi_square_critical(dof: usize) -> f64 {
    let k = dof as f64;
    let z = 3.719;
    k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
}
