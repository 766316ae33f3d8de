//! [`Engine`] over the host engine (the CPU fast path): features are host buffers; the target
//! head runs on every verified row for small trees and only on the rows a walk reads for large
//! ones.

use std::sync::Arc;

use lantern_models::cpu::matmul::matmul;
use lantern_models::cpu::{HostCondition, HostDrafter, HostGpt, HostKvCache, PackedMatrix};
use lantern_models::Visibility;

use super::{err, Engine, EngineModels, HostModels, PROMPT_NEEDS_CHAMELEON};
use crate::model::{ImageCondition, LogitRow, LogitSource, Logits, ModelCallError};

/// Trees of more nodes than this get their target logits a row at a time, when read (a walk
/// reads about τ of them); smaller ones in one product (measured on the embedded default: one
/// 2-row head product costs about as much as 5 rows of a batched one).
const LAZY_HEAD_MIN_NODES: usize = 9;

/// Features `[rows, n, dim]` on the host.
#[derive(Clone, Debug)]
pub struct HostFeatures {
    data: Vec<f32>,
    rows: usize,
    n: usize,
    dim: usize,
}

impl HostFeatures {
    fn new(data: Vec<f32>, rows: usize, dim: usize) -> Self {
        let n = data.len() / (rows * dim).max(1);
        Self { data, rows, n, dim }
    }

    fn row(&self, r: usize, i: usize) -> &[f32] {
        let o = (r * self.n + i) * self.dim;
        &self.data[o..o + self.dim]
    }
}

/// The host target, optional drafter and their caches.
pub struct HostEngine<'a> {
    gpt: &'a HostGpt,
    drafter: Option<&'a HostDrafter>,
    max_tree: usize,
    max_drafted: usize,
    cache: Option<HostKvCache>,
    drafter_cache: Option<HostKvCache>,
}

impl<'a> HostModels<'a> {
    /// Wraps a host target and, for speculative strategies, a host drafter (see
    /// [`super::BurnModels::new`] for `max_tree` and `max_drafted`).
    pub fn new(
        gpt: &'a HostGpt,
        drafter: Option<&'a HostDrafter>,
        max_tree: usize,
        max_drafted: usize,
    ) -> Self {
        EngineModels::from_engine(HostEngine {
            gpt,
            drafter,
            max_tree: max_tree.max(1),
            max_drafted,
            cache: None,
            drafter_cache: None,
        })
    }
}

/// Target rows whose head has not run yet: features of `[cond; uncond]` rows and the head.
struct HeadRows {
    features: HostFeatures,
    head: Arc<PackedMatrix>,
}

impl LogitSource for HeadRows {
    fn fetch(&self, rows: &[usize]) -> Vec<LogitRow> {
        let f = &self.features;
        let x: Vec<f32> = (0..f.rows)
            .flat_map(|r| rows.iter().flat_map(move |&i| f.row(r, i).iter().copied()))
            .collect();
        let (m, v) = (x.len() / f.dim, self.head.n());
        let mut out = vec![0f32; m * v];
        matmul(&x, m, &self.head, &mut out, false);
        let per = rows.len() * v;
        (0..rows.len())
            .map(|i| {
                let cond = out[i * v..(i + 1) * v].to_vec();
                let uncond = (f.rows > 1).then(|| out[per + i * v..per + (i + 1) * v].to_vec());
                (cond, uncond)
            })
            .collect()
    }
}

impl HostEngine<'_> {
    /// Logits of every position of `features` (one product).
    fn eager(&self, features: &HostFeatures) -> Logits {
        let logits = self.gpt.logits(&features.data);
        Logits::from_buffer(self.vocab(), features.n, logits, features.rows > 1)
    }
}

impl Engine for HostEngine<'_> {
    type Features = HostFeatures;

    fn vocab(&self) -> usize {
        self.gpt.config().vocab_size
    }

    fn tokens_per_image(&self) -> usize {
        self.gpt.config().block_size
    }

    fn cls_token_num(&self) -> usize {
        self.gpt.config().cls_token_num
    }

    fn has_drafter(&self) -> bool {
        self.drafter.is_some()
    }

    fn begin(
        &mut self,
        cond: &ImageCondition,
        cfg: bool,
    ) -> Result<(HostFeatures, Logits), ModelCallError> {
        let cond = match cond {
            ImageCondition::Class(c) => HostCondition::Classes(vec![*c]),
            ImageCondition::Caption {
                embeddings,
                tokens,
                dim,
                valid,
            } => HostCondition::Captions {
                embeddings: embeddings.clone(),
                tokens: *tokens,
                dim: *dim,
                valid: valid.clone().map(|v| vec![v]),
            },
            ImageCondition::Prompt(_) => return Err(err(PROMPT_NEEDS_CHAMELEON)),
        };
        let cond = if cfg {
            self.gpt.cfg_condition(&cond).map_err(err)?
        } else {
            cond
        };
        let rows = cond.batch();
        let mut cache = match self.cache.take() {
            Some(mut c) if c.batch() == rows => {
                c.reset();
                c
            }
            _ => self.gpt.new_cache(rows, self.max_tree),
        };
        let out = self.gpt.prefill(&cond, &mut cache).map_err(err)?;
        self.cache = Some(cache);
        let c = self.gpt.config();
        let room = c.cls_token_num + c.block_size + self.max_drafted + 1;
        self.drafter_cache = match (self.drafter, self.drafter_cache.take()) {
            (Some(_), Some(mut dc)) if dc.batch() == rows && dc.capacity() >= room => {
                dc.reset();
                Some(dc)
            }
            (Some(d), _) => Some(d.new_cache(rows, room)),
            (None, _) => None,
        };
        let v = self.vocab();
        Ok((
            HostFeatures::new(out.hidden, rows, c.dim),
            Logits::from_buffer(v, 1, out.logits, rows > 1),
        ))
    }

    fn target_extend(
        &mut self,
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
    ) -> (HostFeatures, Logits) {
        let cache = self.cache.as_mut().expect("begin() first");
        let rows = cache.batch();
        let hidden = self.gpt.extend_hidden(tokens, positions, vis, cache);
        let features = HostFeatures::new(hidden, rows, self.gpt.config().dim);
        let logits = if tokens.len() < LAZY_HEAD_MIN_NODES {
            self.eager(&features)
        } else {
            Logits::lazy(
                self.vocab(),
                tokens.len(),
                Box::new(HeadRows {
                    features: features.clone(),
                    head: Arc::clone(self.gpt.head()),
                }),
            )
        };
        (features, logits)
    }

    fn target_commit(&mut self, keep: &[usize]) {
        self.cache.as_mut().expect("begin() first").commit(keep);
    }

    fn drafter_extend(
        &mut self,
        features: &HostFeatures,
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
    ) -> HostFeatures {
        let drafter = self.drafter.expect("a drafter");
        let cache = self.drafter_cache.as_mut().expect("drafter cache");
        let out = drafter.extend(&features.data, tokens, positions, vis, cache);
        HostFeatures::new(out, features.rows, drafter.config().hidden_size)
    }

    fn drafter_commit_all(&mut self) {
        if let Some(c) = self.drafter_cache.as_mut() {
            c.commit_all();
        }
    }

    fn drafter_discard(&mut self) {
        if let Some(c) = self.drafter_cache.as_mut() {
            c.discard();
        }
    }

    fn drafter_logits(&self, features: &HostFeatures) -> Logits {
        self.eager(features)
    }

    fn cat(&self, parts: &[HostFeatures]) -> HostFeatures {
        if let [one] = parts {
            return one.clone();
        }
        let (rows, dim) = (parts[0].rows, parts[0].dim);
        let data = (0..rows)
            .flat_map(|r| {
                parts
                    .iter()
                    .flat_map(move |p| p.data[r * p.n * dim..(r + 1) * p.n * dim].iter().copied())
            })
            .collect();
        HostFeatures::new(data, rows, dim)
    }

    fn select(&self, features: &HostFeatures, idx: &[usize]) -> HostFeatures {
        let data = (0..features.rows)
            .flat_map(|r| {
                idx.iter()
                    .flat_map(move |&i| features.row(r, i).iter().copied())
            })
            .collect();
        HostFeatures {
            data,
            rows: features.rows,
            n: idx.len(),
            dim: features.dim,
        }
    }

    fn len(&self, features: &HostFeatures) -> usize {
        features.n
    }
}
