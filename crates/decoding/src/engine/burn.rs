//! [`Engine`] over the burn modules: features stay on the burn device, logit rows are copied to
//! the host when first read.

use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;
use lantern_models::gpt::repeated_tokens;
use lantern_models::{Condition, Drafter, Gpt, KvCache, Visibility};

use super::{err, BurnModels, Engine, EngineModels, PROMPT_NEEDS_CHAMELEON};
use crate::model::{ImageCondition, LogitRow, LogitSource, Logits, ModelCallError};

/// The burn target, optional drafter and their caches.
pub struct BurnEngine<'a> {
    gpt: &'a Gpt,
    drafter: Option<&'a Drafter>,
    max_tree: usize,
    max_drafted: usize,
    cache: Option<KvCache>,
    drafter_cache: Option<KvCache>,
}

impl<'a> BurnModels<'a> {
    /// Wraps a target and, for speculative strategies, a drafter. `max_tree` bounds the nodes of
    /// one verified tree and `max_drafted` the elements the drafter runs per round (cache room).
    pub fn new(
        gpt: &'a Gpt,
        drafter: Option<&'a Drafter>,
        max_tree: usize,
        max_drafted: usize,
    ) -> Self {
        EngineModels::from_engine(BurnEngine {
            gpt,
            drafter,
            max_tree: max_tree.max(1),
            max_drafted,
            cache: None,
            drafter_cache: None,
        })
    }
}

/// Logit rows `[rows, n, V]` on the device, copied to the host per requested row.
struct DeviceRows(Tensor<3>);

impl LogitSource for DeviceRows {
    fn fetch(&self, rows: &[usize]) -> Vec<LogitRow> {
        let [b, _, v] = self.0.dims();
        let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), &self.0.device());
        let host: Vec<f32> = self
            .0
            .clone()
            .select(1, idx)
            .into_data()
            .try_into_vec_as()
            .expect("f32 logits");
        let per = rows.len() * v;
        (0..rows.len())
            .map(|i| {
                let cond = host[i * v..(i + 1) * v].to_vec();
                let uncond = (b > 1).then(|| host[per + i * v..per + (i + 1) * v].to_vec());
                (cond, uncond)
            })
            .collect()
    }
}

fn lazy(logits: Tensor<3>) -> Logits {
    let [_, n, v] = logits.dims();
    Logits::lazy(v, n, Box::new(DeviceRows(logits)))
}

impl Engine for BurnEngine<'_> {
    type Features = Tensor<3>;

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
    ) -> Result<(Tensor<3>, Logits), ModelCallError> {
        let cond = match cond {
            ImageCondition::Class(c) => Condition::Classes(vec![*c]),
            ImageCondition::Caption {
                embeddings,
                tokens,
                dim,
                valid,
            } => Condition::Captions {
                embeddings: Tensor::from_data(
                    TensorData::new(embeddings.clone(), [1, *tokens, *dim]),
                    &self.gpt.device(),
                ),
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
        self.drafter_cache = self
            .drafter
            .map(|d| d.new_cache(rows, c.cls_token_num + c.block_size + self.max_drafted + 1));
        Ok((out.hidden, lazy(out.logits)))
    }

    fn target_extend(
        &mut self,
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
    ) -> (Tensor<3>, Logits) {
        let cache = self.cache.as_mut().expect("begin() first");
        let out = self.gpt.extend(
            repeated_tokens(tokens, cache.batch(), &self.gpt.device()),
            positions,
            vis,
            cache,
        );
        (out.hidden, lazy(out.logits))
    }

    fn target_commit(&mut self, keep: &[usize]) {
        self.cache.as_mut().expect("begin() first").commit(keep);
    }

    fn drafter_extend(
        &mut self,
        features: &Tensor<3>,
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
    ) -> Tensor<3> {
        let drafter = self.drafter.expect("a drafter");
        let cache = self.drafter_cache.as_mut().expect("drafter cache");
        drafter.extend(
            features.clone(),
            repeated_tokens(tokens, cache.batch(), &self.gpt.device()),
            positions,
            vis,
            cache,
        )
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

    fn drafter_logits(&self, features: &Tensor<3>) -> Logits {
        lazy(self.gpt.head().forward(features.clone()))
    }

    fn cat(&self, parts: &[Tensor<3>]) -> Tensor<3> {
        match parts {
            [one] => one.clone(),
            _ => Tensor::cat(parts.to_vec(), 1),
        }
    }

    fn select(&self, features: &Tensor<3>, idx: &[usize]) -> Tensor<3> {
        let [rows, n, d] = features.dims();
        if idx.len() == 1 {
            let i = idx[0];
            return features.clone().slice([0..rows, i..i + 1, 0..d]);
        }
        if idx.iter().enumerate().all(|(j, &i)| i == j) && idx.len() == n {
            return features.clone();
        }
        let ids: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
        let ids =
            Tensor::<1, Int>::from_data(TensorData::new(ids, [idx.len()]), &features.device());
        features.clone().select(1, ids)
    }

    fn len(&self, features: &Tensor<3>) -> usize {
        features.dims()[1]
    }
}
