//! The models behind the [`Models`] seam: an [`Engine`] is a target (and optional drafter) on
//! some device — burn tensors ([`BurnEngine`], any backend) or the host engine ([`HostEngine`],
//! the CPU fast path) — and [`EngineModels`] writes the decoding protocol once over any engine.
//!
//! The target runs `[cond; uncond]` as one batch under CFG and verifies a whole draft tree in one
//! forward (cache slots sequential, rotary positions by depth). After acceptance the drafter
//! catches up on the committed tokens paired with the target's post-norm features (element `j`:
//! feature at sequence position `j`, token at `j + 1`), then drafts children of tree nodes from
//! its own predicted features; drafted elements stay pending in its cache and are discarded.
//! Features stay on the engine's device; token ids go in and logit rows come out lazily.

mod burn;
mod chameleon;
mod chameleon_draft;
mod host;
mod set;

pub use self::burn::BurnEngine;
pub use self::chameleon::ChameleonModels;
pub use self::host::{HostEngine, HostFeatures};
pub use self::set::ModelSet;

use lantern_models::backend::EngineKind;
use lantern_models::Visibility;

use crate::model::{tick, DraftInput, DraftParent, ImageCondition, Logits, ModelCallError, Models};
use crate::strategy::Strategy;
use crate::tree::DraftTree;

/// A target and optional drafter on one device, as [`EngineModels`] drives them.
pub trait Engine {
    /// Per-position features `[rows, n, dim]`, kept where the engine runs.
    type Features: Clone;

    /// Vocabulary size.
    fn vocab(&self) -> usize;
    /// Image tokens per image.
    fn tokens_per_image(&self) -> usize;
    /// Conditioning positions before image token 0.
    fn cls_token_num(&self) -> usize;
    /// Whether a drafter is attached.
    fn has_drafter(&self) -> bool;
    /// Resets both caches and runs the condition (`[cond; uncond]` rows when `cfg`): features of
    /// every condition position and the logits of the last.
    fn begin(
        &mut self,
        cond: &ImageCondition,
        cfg: bool,
    ) -> Result<(Self::Features, Logits), ModelCallError>;
    /// Target forward over new tokens (the same in every row) after the committed ones.
    fn target_extend(
        &mut self,
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
    ) -> (Self::Features, Logits);
    /// Keeps the target's pending tokens at `keep`.
    fn target_commit(&mut self, keep: &[usize]);
    /// Drafter forward over new elements: `features` paired with `tokens`; returns its features.
    fn drafter_extend(
        &mut self,
        features: &Self::Features,
        tokens: &[u32],
        positions: &[usize],
        vis: &Visibility,
    ) -> Self::Features;
    /// Commits every pending drafter element.
    fn drafter_commit_all(&mut self);
    /// Drops every pending drafter element.
    fn drafter_discard(&mut self);
    /// The target head over drafter features.
    fn drafter_logits(&self, features: &Self::Features) -> Logits;
    /// Concatenates features along positions.
    fn cat(&self, parts: &[Self::Features]) -> Self::Features;
    /// The features at positions `idx`, in order.
    fn select(&self, features: &Self::Features, idx: &[usize]) -> Self::Features;
    /// Positions held.
    fn len(&self, features: &Self::Features) -> usize;
}

/// Features the drafter has not consumed yet, and the token after each of them.
struct Pending<F> {
    features: Vec<F>,
    /// The token after each feature; the last one becomes known with the next root.
    next_tokens: Vec<u32>,
    /// Positions in `features`.
    len: usize,
}

/// A drafted element fed this round: where its output sits in the round's features, its depth
/// and parent.
struct Fed {
    at: usize,
    depth: usize,
    parent: Option<usize>,
}

struct ImageState<F> {
    committed: usize,
    /// Image position of each committed image slot, in cache order (sequential except after
    /// [`Models::place`]).
    slot_positions: Vec<usize>,
    last_tree: Option<(Vec<u32>, F)>,
    drafter_len: usize,
    pending: Pending<F>,
    /// The drafter's outputs this round: the root's first, then every expansion's.
    round: Option<F>,
    fed: Vec<Fed>,
}

/// [`Models`] over any [`Engine`].
pub struct EngineModels<E: Engine> {
    engine: E,
    state: Option<ImageState<E::Features>>,
    /// Milliseconds inside engine forwards and lazy logit fetches.
    clock: std::rc::Rc<std::cell::Cell<f64>>,
}

/// [`Models`] over the burn modules (any burn backend).
pub type BurnModels<'a> = EngineModels<BurnEngine<'a>>;
/// [`Models`] over the host engine (the CPU fast path).
pub type HostModels<'a> = EngineModels<HostEngine<'a>>;

impl<E: Engine> EngineModels<E> {
    /// Wraps an engine.
    pub fn from_engine(engine: E) -> Self {
        Self {
            engine,
            state: None,
            clock: Default::default(),
        }
    }

    /// Runs `f` on the engine, adding its time to the forward clock.
    fn timed<T>(&mut self, f: impl FnOnce(&mut E) -> T) -> T {
        let t = std::time::Instant::now();
        let out = f(&mut self.engine);
        tick(&self.clock, t);
        out
    }

    /// The engine.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    fn state(&mut self) -> &mut ImageState<E::Features> {
        self.state.as_mut().expect("begin() must be called first")
    }
}

/// What a LlamaGen target says when handed a token prompt.
const PROMPT_NEEDS_CHAMELEON: &str =
    "a token prompt conditions a Chameleon-family target; this LlamaGen target takes a class or caption embeddings";

fn err(e: impl std::fmt::Display) -> ModelCallError {
    ModelCallError(e.to_string())
}

/// Models for `strategy` from a loaded model set: the drafter is attached only if the strategy
/// drafts.
pub fn models_for<'a>(set: &'a dyn ModelSet, strategy: &Strategy) -> Box<dyn Models + 'a> {
    let drafts = matches!(strategy, Strategy::Speculative(_));
    let mut models = set.models(drafts, strategy.max_tree(), strategy.max_drafted());
    if matches!(strategy, Strategy::Jacobi(j) if j.official_compat) {
        let applied = models.use_sjd_unconditional_prompt();
        // Runners refuse the option by key on targets without the convention.
        debug_assert!(applied, "SJD's official CFG on a target without it");
    }
    models
}

/// Models from a loaded model set with room for trees of `max_tree` nodes and `max_drafted`
/// drafter elements per round (the drafter attached when `drafts` and loaded).
pub fn models_sized<'a>(
    set: &'a dyn ModelSet,
    drafts: bool,
    max_tree: usize,
    max_drafted: usize,
) -> Box<dyn Models + 'a> {
    set.models(drafts, max_tree, max_drafted)
}

/// The engine a model set's models run on.
pub fn engine_of(set: &dyn ModelSet) -> EngineKind {
    set.engine()
}

impl<E: Engine> Models for EngineModels<E> {
    fn vocab(&self) -> usize {
        self.engine.vocab()
    }

    fn tokens_per_image(&self) -> usize {
        self.engine.tokens_per_image()
    }

    fn has_drafter(&self) -> bool {
        self.engine.has_drafter()
    }

    fn begin(&mut self, cond: &ImageCondition, cfg: bool) -> Result<Logits, ModelCallError> {
        let (features, logits) = self.timed(|e| e.begin(cond, cfg))?;
        let logits = logits.timed(&self.clock);
        let t = self.engine.cls_token_num();
        let len = self.engine.len(&features);
        self.state = Some(ImageState {
            committed: 0,
            slot_positions: Vec::new(),
            last_tree: None,
            drafter_len: 0,
            pending: Pending {
                features: vec![features],
                next_tokens: vec![0; t - 1],
                len,
            },
            round: None,
            fed: Vec::new(),
        });
        Ok(logits)
    }

    fn verify(&mut self, tree: &DraftTree) -> Result<Logits, ModelCallError> {
        let committed = self.state().committed;
        let t = self.engine.cls_token_num();
        let positions: Vec<usize> = tree.depths.iter().map(|d| t + committed + d).collect();
        let vis = Visibility::tree(&tree.parents);
        let (hidden, logits) = self.timed(|e| e.target_extend(&tree.tokens, &positions, &vis));
        self.state().last_tree = Some((tree.tokens.clone(), hidden));
        Ok(logits.timed(&self.clock))
    }

    fn accept(&mut self, path: &[usize]) {
        let has_drafter = self.engine.has_drafter();
        let t = std::time::Instant::now();
        let s = self.state.as_mut().expect("begin() must be called first");
        let (tokens, hidden) = s.last_tree.take().expect("verify() before accept()");
        self.engine.target_commit(path);
        tick(&self.clock, t);
        s.slot_positions
            .extend(s.committed..s.committed + path.len());
        s.committed += path.len();
        if has_drafter {
            let p = &mut s.pending;
            // The root of this tree is the token after the last pending feature.
            if p.next_tokens.len() < p.len {
                p.next_tokens.push(tokens[path[0]]);
            }
            p.features.push(self.engine.select(&hidden, path));
            p.len += path.len();
            p.next_tokens.extend(path[1..].iter().map(|&i| tokens[i]));
        }
    }

    fn committed(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.committed)
    }

    fn place(
        &mut self,
        tokens: &[u32],
        positions: &[usize],
        keep: &[bool],
    ) -> Result<Logits, ModelCallError> {
        let n = tokens.len();
        assert!(
            positions.len() == n && keep.len() == n,
            "one position and keep flag per token"
        );
        let t = self.engine.cls_token_num();
        let s = self.state.as_ref().expect("begin() must be called first");
        if s.last_tree.is_some() {
            return Err(err("place() after an uncommitted verify()"));
        }
        let mut vis = Visibility::hidden(n, n);
        for i in 0..n {
            vis.set(i, i);
            for j in 0..n {
                if keep[j] && positions[j] < positions[i] {
                    vis.set(i, j);
                }
            }
        }
        let slot_positions = &s.slot_positions;
        vis.hide_committed(t + slot_positions.len(), |i, slot| {
            slot >= t && slot_positions[slot - t] >= positions[i]
        });
        let abs: Vec<usize> = positions.iter().map(|p| t + p).collect();
        let (_, logits) = self.timed(|e| e.target_extend(tokens, &abs, &vis));
        let logits = logits.timed(&self.clock);
        // Every row is read; fetch them before the cache moves on.
        logits.prefetch(&(0..n).collect::<Vec<_>>());
        let kept: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
        self.timed(|e| e.target_commit(&kept));
        let s = self.state();
        s.slot_positions.extend(kept.iter().map(|&i| positions[i]));
        s.committed += kept.len();
        Ok(logits)
    }

    fn draft_root(&mut self, root: u32) -> Result<Logits, ModelCallError> {
        if !self.engine.has_drafter() {
            return Err(err("no drafter loaded"));
        }
        let t = std::time::Instant::now();
        self.engine.drafter_discard();
        let s = self.state.as_mut().expect("begin() must be called first");
        s.fed.clear();
        let features = self.engine.cat(&std::mem::take(&mut s.pending.features));
        s.pending.len = 0;
        let mut tokens = std::mem::take(&mut s.pending.next_tokens);
        tokens.push(root);
        let k = tokens.len();
        let positions: Vec<usize> = (s.drafter_len..s.drafter_len + k).collect();
        let out =
            self.engine
                .drafter_extend(&features, &tokens, &positions, &Visibility::causal(k));
        self.engine.drafter_commit_all();
        s.drafter_len += k;
        let last = self.engine.select(&out, &[k - 1]);
        let logits = self.engine.drafter_logits(&last);
        s.round = Some(last);
        tick(&self.clock, t);
        Ok(logits.timed(&self.clock))
    }

    fn draft_expand(&mut self, inputs: &[DraftInput]) -> Result<Logits, ModelCallError> {
        if !self.engine.has_drafter() {
            return Err(err("no drafter loaded"));
        }
        let s = self.state.as_mut().expect("begin() must be called first");
        let round = s
            .round
            .take()
            .ok_or_else(|| err("draft_root() before draft_expand()"))?;
        let pending = s.fed.len();
        let mut at = Vec::with_capacity(inputs.len());
        let mut positions = Vec::with_capacity(inputs.len());
        let mut ancestors = Vec::with_capacity(inputs.len());
        let mut links = Vec::with_capacity(inputs.len());
        for input in inputs {
            let parent = match input.parent {
                DraftParent::Root => None,
                DraftParent::Fed(i) if i < s.fed.len() => Some(i),
                DraftParent::Fed(i) => {
                    s.round = Some(round);
                    return Err(err(format!("draft parent {i} was not fed")));
                }
            };
            let (source, depth) = match parent {
                None => (0, 1),
                Some(i) => (s.fed[i].at, s.fed[i].depth + 1),
            };
            let mut anc = Vec::new();
            let mut cursor = parent;
            while let Some(i) = cursor {
                anc.push(i);
                cursor = s.fed[i].parent;
            }
            at.push(source);
            positions.push(s.drafter_len + depth - 1);
            ancestors.push(anc);
            links.push((depth, parent));
        }
        let tokens: Vec<u32> = inputs.iter().map(|i| i.token).collect();
        let vis = Visibility::tree_after(pending, &ancestors, &vec![None; inputs.len()]);
        let t = std::time::Instant::now();
        let features = self.engine.select(&round, &at);
        let out = self
            .engine
            .drafter_extend(&features, &tokens, &positions, &vis);
        let base = self.engine.len(&round);
        for (i, (depth, parent)) in links.into_iter().enumerate() {
            s.fed.push(Fed {
                at: base + i,
                depth,
                parent,
            });
        }
        let logits = self.engine.drafter_logits(&out);
        s.round = Some(self.engine.cat(&[round, out]));
        tick(&self.clock, t);
        Ok(logits.timed(&self.clock))
    }

    fn draft_discard(&mut self) {
        self.engine.drafter_discard();
        if let Some(s) = self.state.as_mut() {
            s.fed.clear();
        }
    }

    fn forward_ms(&self) -> f64 {
        self.clock.get()
    }
}
