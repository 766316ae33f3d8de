//! Decoding strategies and their per-step logs.
//!
//! Each strategy generates one image's tokens through [`Models`] and reports, per target
//! forward after the prefill, what it drafted, what was accepted and where time went. Every
//! metric (τ, acceptance maps, latency) is computed from these logs.

mod ar;
mod drafting;
mod gsd;
mod jacobi;
mod scd;
mod sjd;
mod speculative;
mod zipar;

use serde::{Deserialize, Serialize};

use crate::accept::{Relax, Residuals};
use crate::embeddings::Tables;
use crate::model::{ImageCondition, ModelCallError, Models};
use crate::rng::Rng;
use crate::sampling::Sampling;

pub use crate::tree_shape::TreeShape;
pub use gsd::{DistanceThreshold, Grouping};
pub use jacobi::{Jacobi, JacobiMethod};
pub use scd::Coupling;
pub use sjd::{FreshProposal, JacobiInit};
pub use zipar::{zipar_forwards, zipar_forwards_hw};

/// Everything that can stop a generation.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A model call failed.
    #[error("model call failed: {0}")]
    Model(#[from] ModelCallError),
    /// The strategy needs something the models or tables do not provide.
    #[error("{0}")]
    Setup(String),
    /// The target produced logits that are not finite.
    #[error("the target's logits for image token {token_index} contain NaN or infinite values")]
    NonFinite {
        /// Image token the logits predict.
        token_index: usize,
    },
}

/// A speculative strategy: how to draft and how to accept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Speculative {
    /// Draft tree shape.
    pub tree: TreeShape,
    /// Acceptance relaxation (exact for `sd`).
    pub relax: Relax,
    /// Principled residuals, or the official code's quirks.
    pub residuals: Residuals,
}

/// A decoding strategy with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Strategy {
    /// Plain autoregressive decoding: one token per target forward.
    Ar,
    /// Drafter + tree verification (`sd`, `lantern`, `lantern++`).
    Speculative(Speculative),
    /// The SJD family (`sjd`, `scd`, `gsd`): training-free, no drafter.
    Jacobi(Jacobi),
    /// ZipAR: parallel rows, each opening `window` tokens behind the row above; no verification.
    ZipAr {
        /// Columns row r must hold before row r + 1 opens (1 ≤ window < grid; 8 officially).
        window: usize,
    },
}

impl Strategy {
    /// Columns of the neighbour table the strategy reads (0 when it needs none): k, or k + 1
    /// under the official quirks, which zero the first k + 1 neighbours on a rejection.
    pub fn neighbours_needed(&self) -> usize {
        match self {
            Self::Speculative(s) if s.relax.k() == 0 => 0,
            Self::Speculative(s) => match s.residuals {
                Residuals::Principled => s.relax.k(),
                Residuals::OfficialCompat | Residuals::OfficialCompatLumina => s.relax.k() + 1,
            },
            _ => 0,
        }
    }

    /// The strategy on a Lumina-mGPT target: the official quirks become LANTERN's Lumina ones
    /// (static trees zero the neighbours in p, not in q); everything else is unchanged.
    pub fn on_lumina(self) -> Self {
        match self {
            Self::Speculative(s) if s.residuals == Residuals::OfficialCompat => {
                Self::Speculative(Speculative {
                    residuals: Residuals::OfficialCompatLumina,
                    ..s
                })
            }
            other => other,
        }
    }

    /// Whether the strategy reads the target's token embeddings (GSD with a distance filter).
    pub fn needs_embeddings(&self) -> bool {
        match self {
            Self::Jacobi(Jacobi {
                method: JacobiMethod::Gsd(g),
                ..
            }) => g.d_thr(None).is_err(),
            _ => false,
        }
    }

    /// Draft nodes one verification may hold (root included).
    pub fn max_tree(&self) -> usize {
        match self {
            Self::Ar => 1,
            Self::Speculative(s) => s.tree.budget() + 1,
            Self::Jacobi(j) => j.window + 1,
            // Open rows plus a flush: at most grid / window + 2; room for grids up to 128 wide.
            Self::ZipAr { .. } => 130,
        }
    }

    /// Elements the drafter runs in one round besides the root (its cache room for drafts).
    pub fn max_drafted(&self) -> usize {
        match self {
            Self::Speculative(s) => s.tree.drafted_per_round(),
            _ => 0,
        }
    }
}

/// The random stream of one image: `seed` split by the condition (class or prompt id).
pub fn image_rng(seed: u64, condition_id: u64) -> Rng {
    Rng::new(seed).fork(condition_id)
}

/// What happened in one target forward after the prefill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// Draft tokens sent for verification (tree nodes besides the root).
    pub drafted: usize,
    /// Draft tokens accepted.
    pub accepted: usize,
    /// Accepted tree nodes, root first.
    pub path: Vec<usize>,
    /// For each accepted draft (`path[1..]`): its selection rank in a dynamic tree, else its rank
    /// among its siblings; what the tree cost model reads to replay the round on other trees.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_ranks: Vec<usize>,
    /// The token sampled after the accepted path (the next root).
    pub bonus: u32,
    /// Milliseconds spent drafting (drafter forwards and tree building).
    pub draft_ms: f64,
    /// Milliseconds spent verifying (target forward and acceptance).
    pub verify_ms: f64,
    /// Of `draft_ms + verify_ms`, the milliseconds inside model forwards (drafter and target,
    /// logit fetches included); the rest is host work: sampling, trees, acceptance, copies.
    #[serde(default)]
    pub forward_ms: f64,
    /// TVD between the distribution the acceptance rule emits at the round's first drafted
    /// position and the target there, computed exactly (not timed); `None` where that is not
    /// cheap (several sampled siblings), for greedy rounds and for strategies without drafts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tvd_emitted: Option<f64>,
    /// The target's distribution where the round sampled or drafted first (after CFG), and the
    /// drafter's single-draft acceptance there; computed after the image (not timed). AR and the
    /// drafted kinds record it; `None` elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regime: Option<crate::regime::Regime>,
}

/// One generated image: tokens and the per-step log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Image tokens, row-major over the grid.
    pub tokens: Vec<u32>,
    /// One entry per target forward after the prefill.
    pub steps: Vec<StepLog>,
    /// Milliseconds of the prefill (condition through the first token).
    pub prefill_ms: f64,
    /// Milliseconds from the prefill through the last token.
    pub latency_ms: f64,
}

impl Generation {
    /// τ: mean tokens gained per target forward after the prefill (accepted drafts + the bonus); AR = 1.
    pub fn tau(&self) -> f64 {
        if self.steps.is_empty() {
            return 1.0;
        }
        self.steps
            .iter()
            .map(|s| s.accepted as f64 + 1.0)
            .sum::<f64>()
            / self.steps.len() as f64
    }

    /// Target forwards including the prefill.
    pub fn target_forwards(&self) -> usize {
        self.steps.len() + 1
    }

    /// Accepted draft tokens per step.
    pub fn accepted_per_step(&self) -> Vec<usize> {
        self.steps.iter().map(|s| s.accepted).collect()
    }

    /// Total drafting milliseconds.
    pub fn draft_ms(&self) -> f64 {
        self.steps.iter().map(|s| s.draft_ms).sum()
    }

    /// Total verification milliseconds (prefill excluded).
    pub fn verify_ms(&self) -> f64 {
        self.steps.iter().map(|s| s.verify_ms).sum()
    }

    /// Mean emitted-vs-target TVD over the rounds where it was computed.
    pub fn tvd_emitted(&self) -> Option<f64> {
        let v: Vec<f64> = self.steps.iter().filter_map(|s| s.tvd_emitted).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// Mean regime statistics over the rounds that recorded them.
    pub fn regime(&self) -> Option<crate::regime::Regime> {
        crate::regime::Regime::mean(self.steps.iter().filter_map(|s| s.regime.as_ref()))
    }

    /// Milliseconds inside model forwards after the prefill (drafter and target).
    pub fn forward_ms(&self) -> f64 {
        self.steps.iter().map(|s| s.forward_ms).sum()
    }

    /// For each image token, whether it was an accepted draft (true) or sampled by the target.
    pub fn accepted_mask(&self) -> Vec<bool> {
        let mut mask = vec![false]; // token 0 comes from the prefill
        for s in &self.steps {
            mask.extend(std::iter::repeat_n(true, s.accepted));
            mask.push(false);
        }
        mask.truncate(self.tokens.len());
        mask
    }
}

/// Generates one image with `strategy`, reading the side tables it needs from `tables`. `rng`
/// should be the image's own stream (same seed → same tokens, bit for bit, on the same backend).
pub fn generate(
    models: &mut dyn Models,
    strategy: &Strategy,
    sampling: &Sampling,
    tables: &Tables,
    cond: &ImageCondition,
    rng: &Rng,
) -> Result<Generation, DecodeError> {
    match strategy {
        Strategy::Ar => ar::generate(models, sampling, cond, rng),
        Strategy::Speculative(spec) => {
            speculative::generate(models, spec, sampling, tables.neighbours, cond, rng)
        }
        Strategy::Jacobi(spec) => jacobi::generate(models, spec, sampling, tables, cond, rng),
        Strategy::ZipAr { window } => zipar::generate(models, *window, sampling, cond, rng),
    }
}

/// Guided next-token distribution for logits row `row` predicting image token `token_index`:
/// the warped distribution, or under greedy settings the plain softmax of the guided logits.
pub(crate) fn target_dist(
    sampling: &Sampling,
    logits: &crate::model::Logits,
    row: usize,
    token_index: usize,
) -> Result<Vec<f32>, DecodeError> {
    let (cond, uncond) = logits.row(row);
    let finite = |r: &[f32]| r.iter().all(|x| x.is_finite());
    if !finite(cond) || !uncond.is_none_or(finite) {
        return Err(DecodeError::NonFinite { token_index });
    }
    Ok(sampling.dist(cond, uncond, token_index))
}

/// Samples (or, greedy, takes the argmax of) a token from a distribution.
pub(crate) fn pick(sampling: &Sampling, dist: &[f32], rng: &mut Rng) -> u32 {
    if sampling.is_greedy() {
        crate::sampling::argmax(dist) as u32
    } else {
        rng.categorical(dist) as u32
    }
}

/// Milliseconds since `t`.
pub(crate) fn ms_since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Random streams of one image.
pub(crate) struct Streams {
    /// Acceptance tests and bonus tokens.
    pub accept: Rng,
    /// Sampled drafts and Jacobi initialisation.
    pub draft: Rng,
}

impl Streams {
    pub(crate) fn new(rng: &Rng) -> Self {
        Self {
            accept: rng.fork(1),
            draft: rng.fork(2),
        }
    }
}
