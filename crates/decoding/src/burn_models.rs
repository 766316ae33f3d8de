//! [`Models`] over the burn LlamaGen GPT and EAGLE drafter.
//!
//! The target runs `[cond; uncond]` as one batch under CFG and verifies a whole draft tree in one
//! forward (cache slots sequential, rotary positions by depth). After acceptance the drafter
//! catches up on the committed tokens paired with the target's post-norm features (element `j`:
//! feature at sequence position `j`, token at `j + 1`), then drafts children of tree nodes from
//! its own predicted features; drafted elements stay pending in its cache and are discarded.

use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::TensorData;
use lantern_models::gpt::repeated_tokens;
use lantern_models::{Condition, Drafter, Gpt, KvCache, Visibility};

use crate::model::{DraftInput, DraftParent, ImageCondition, Logits, ModelCallError, Models};
use crate::tree::DraftTree;

/// Target (and optional drafter) weights plus the per-image decoding state.
pub struct BurnModels<'a> {
    gpt: &'a Gpt,
    drafter: Option<&'a Drafter>,
    max_tree: usize,
    max_drafted: usize,
    state: Option<ImageState>,
}

/// Features the drafter has not consumed yet, and the tokens that follow each of them.
struct Pending {
    /// `[rows, k, dim]` chunks, in sequence order.
    features: Vec<Tensor<3>>,
    /// The token after each feature; the last one becomes known with the next root.
    next_tokens: Vec<u32>,
}

struct ImageState {
    rows: usize,
    cache: KvCache,
    committed: usize,
    last_tree: Option<(Vec<u32>, Tensor<3>)>,
    drafter_cache: Option<KvCache>,
    drafter_len: usize,
    pending: Pending,
    root_out: Option<Tensor<3>>,
    fed: Vec<Fed>,
}

/// A drafted element fed this round: its predicted feature `[rows, 1, dim]`, depth and parent.
struct Fed {
    out: Tensor<3>,
    depth: usize,
    parent: Option<usize>,
}

fn err(e: impl std::fmt::Display) -> ModelCallError {
    ModelCallError(e.to_string())
}

impl<'a> BurnModels<'a> {
    /// Wraps a target and, for speculative strategies, a drafter. `max_tree` bounds the nodes of
    /// one verified tree and `max_drafted` the elements the drafter runs per round (cache room);
    /// [`BurnModels::for_strategy`] takes both from a strategy.
    pub fn new(
        gpt: &'a Gpt,
        drafter: Option<&'a Drafter>,
        max_tree: usize,
        max_drafted: usize,
    ) -> Self {
        Self {
            gpt,
            drafter,
            max_tree: max_tree.max(1),
            max_drafted,
            state: None,
        }
    }

    /// Models sized for `strategy`; the drafter is attached only if the strategy drafts.
    pub fn for_strategy(
        gpt: &'a Gpt,
        drafter: Option<&'a Drafter>,
        strategy: &crate::strategy::Strategy,
    ) -> Self {
        let drafter =
            drafter.filter(|_| matches!(strategy, crate::strategy::Strategy::Speculative(_)));
        Self::new(gpt, drafter, strategy.max_tree(), strategy.max_drafted())
    }

    fn state(&mut self) -> &mut ImageState {
        self.state.as_mut().expect("begin() must be called first")
    }

    /// Host logits `[rows, n, V]` → [`Logits`] (row 0 cond, row 1 uncond).
    fn host_logits(logits: Tensor<3>) -> Logits {
        let [rows, n, v] = logits.dims();
        let all: Vec<f32> = logits.into_data().try_into_vec_as().expect("f32 logits");
        let per = n * v;
        Logits {
            vocab: v,
            cond: all[..per].to_vec(),
            uncond: (rows > 1).then(|| all[per..2 * per].to_vec()),
        }
    }

    fn condition(&self, cond: &ImageCondition) -> Result<Condition, ModelCallError> {
        Ok(match cond {
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
        })
    }
}

impl Models for BurnModels<'_> {
    fn vocab(&self) -> usize {
        self.gpt.config().vocab_size
    }

    fn tokens_per_image(&self) -> usize {
        self.gpt.config().block_size
    }

    fn has_drafter(&self) -> bool {
        self.drafter.is_some()
    }

    fn begin(&mut self, cond: &ImageCondition, cfg: bool) -> Result<Logits, ModelCallError> {
        let cond = self.condition(cond)?;
        let cond = if cfg {
            self.gpt.cfg_condition(&cond).map_err(err)?
        } else {
            cond
        };
        let rows = cond.batch();
        let mut cache = match self.state.take() {
            Some(s) if s.rows == rows => {
                let mut c = s.cache;
                c.reset();
                c
            }
            _ => self.gpt.new_cache(rows, self.max_tree),
        };
        let out = self.gpt.prefill(&cond, &mut cache).map_err(err)?;
        let t = self.gpt.config().cls_token_num;
        let drafter_cache = self.drafter.map(|d| {
            d.new_cache(
                rows,
                t + self.gpt.config().block_size + self.max_drafted + 1,
            )
        });
        self.state = Some(ImageState {
            rows,
            cache,
            committed: 0,
            last_tree: None,
            drafter_cache,
            drafter_len: 0,
            pending: Pending {
                features: vec![out.hidden],
                next_tokens: vec![0; t - 1],
            },
            root_out: None,
            fed: Vec::new(),
        });
        Ok(Self::host_logits(out.logits))
    }

    fn verify(&mut self, tree: &DraftTree) -> Result<Logits, ModelCallError> {
        let gpt = self.gpt;
        let s = self.state();
        let positions: Vec<usize> = tree
            .depths
            .iter()
            .map(|d| gpt.position_of_token(s.committed + d))
            .collect();
        let out = gpt.extend(
            repeated_tokens(&tree.tokens, s.rows, &gpt.device()),
            &positions,
            &Visibility::tree(&tree.parents),
            &mut s.cache,
        );
        s.last_tree = Some((tree.tokens.clone(), out.hidden));
        Ok(Self::host_logits(out.logits))
    }

    fn accept(&mut self, path: &[usize]) {
        let has_drafter = self.drafter.is_some();
        let s = self.state();
        let (tokens, hidden) = s.last_tree.take().expect("verify() before accept()");
        s.cache.commit(path);
        s.committed += path.len();
        if has_drafter {
            // The root of this tree is the token after the last pending feature.
            if s.pending.next_tokens.len() < pending_len(&s.pending) {
                s.pending.next_tokens.push(tokens[path[0]]);
            }
            let idx: Vec<i64> = path.iter().map(|&i| i as i64).collect();
            let idx =
                Tensor::<1, Int>::from_data(TensorData::new(idx, [path.len()]), &hidden.device());
            s.pending.features.push(hidden.select(1, idx));
            s.pending
                .next_tokens
                .extend(path[1..].iter().map(|&i| tokens[i]));
        }
    }

    fn committed(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.committed)
    }

    fn draft_root(&mut self, root: u32) -> Result<Logits, ModelCallError> {
        let (gpt, drafter) = (
            self.gpt,
            self.drafter.ok_or_else(|| err("no drafter loaded"))?,
        );
        let s = self.state();
        let cache = s.drafter_cache.as_mut().expect("drafter cache");
        cache.discard();
        s.fed.clear();
        let features = Tensor::cat(std::mem::take(&mut s.pending.features), 1);
        let mut tokens = std::mem::take(&mut s.pending.next_tokens);
        tokens.push(root);
        let k = tokens.len();
        let positions: Vec<usize> = (s.drafter_len..s.drafter_len + k).collect();
        let out = drafter.extend(
            features,
            repeated_tokens(&tokens, s.rows, &gpt.device()),
            &positions,
            &Visibility::causal(k),
            cache,
        );
        cache.commit_all();
        s.drafter_len += k;
        let [rows, _, d] = out.dims();
        let last = out.slice([0..rows, k - 1..k, 0..d]);
        s.root_out = Some(last.clone());
        Ok(Self::host_logits(gpt.head().forward(last)))
    }

    fn draft_expand(&mut self, inputs: &[DraftInput]) -> Result<Logits, ModelCallError> {
        let (gpt, drafter) = (
            self.gpt,
            self.drafter.ok_or_else(|| err("no drafter loaded"))?,
        );
        let s = self.state();
        let root_out = s
            .root_out
            .clone()
            .ok_or_else(|| err("draft_root() before draft_expand()"))?;
        let pending = s.fed.len();
        let mut features = Vec::with_capacity(inputs.len());
        let mut positions = Vec::with_capacity(inputs.len());
        let mut ancestors = Vec::with_capacity(inputs.len());
        let mut depths = Vec::with_capacity(inputs.len());
        for input in inputs {
            let parent = match input.parent {
                DraftParent::Root => None,
                DraftParent::Fed(i) if i < s.fed.len() => Some(i),
                DraftParent::Fed(i) => return Err(err(format!("draft parent {i} was not fed"))),
            };
            let (feature, depth) = match parent {
                None => (root_out.clone(), 1),
                Some(i) => (s.fed[i].out.clone(), s.fed[i].depth + 1),
            };
            let mut anc = Vec::new();
            let mut cursor = parent;
            while let Some(i) = cursor {
                anc.push(i);
                cursor = s.fed[i].parent;
            }
            features.push(feature);
            positions.push(s.drafter_len + depth - 1);
            ancestors.push(anc);
            depths.push((depth, parent));
        }
        let tokens: Vec<u32> = inputs.iter().map(|i| i.token).collect();
        let vis = Visibility::tree_after(pending, &ancestors, &vec![None; inputs.len()]);
        let cache = s.drafter_cache.as_mut().expect("drafter cache");
        let out = drafter.extend(
            Tensor::cat(features, 1),
            repeated_tokens(&tokens, s.rows, &gpt.device()),
            &positions,
            &vis,
            cache,
        );
        let [rows, n, d] = out.dims();
        for (i, &(depth, parent)) in depths.iter().enumerate() {
            s.fed.push(Fed {
                out: out.clone().slice([0..rows, i..i + 1, 0..d]),
                depth,
                parent,
            });
        }
        debug_assert_eq!(n, inputs.len());
        Ok(Self::host_logits(gpt.head().forward(out)))
    }

    fn draft_discard(&mut self) {
        if let Some(s) = self.state.as_mut() {
            if let Some(c) = s.drafter_cache.as_mut() {
                c.discard();
            }
            s.fed.clear();
        }
    }
}

/// Features waiting in `pending` (sum of chunk lengths).
fn pending_len(p: &Pending) -> usize {
    p.features.iter().map(|f| f.dims()[1]).sum()
}
