//! Plain autoregressive decoding: one target forward per token (τ = 1).

use std::time::Instant;

use super::{ms_since, pick, target_dist, DecodeError, Generation, StepLog, Streams};
use crate::model::{ImageCondition, Models};
use crate::regime::Regime;
use crate::rng::Rng;
use crate::sampling::Sampling;
use crate::tree::DraftTree;

/// Generates one image token by token.
pub(super) fn generate(
    models: &mut dyn Models,
    sampling: &Sampling,
    cond: &ImageCondition,
    rng: &Rng,
) -> Result<Generation, DecodeError> {
    let mut streams = Streams::new(rng);
    let n = models.tokens_per_image();
    let start = Instant::now();
    let logits = models.begin(cond, sampling.uses_cfg())?;
    let first = target_dist(sampling, &logits, 0, 0)?;
    let mut tokens = vec![pick(sampling, &first, &mut streams.accept)];
    let prefill_ms = ms_since(start);
    let mut steps = Vec::with_capacity(n);
    let mut dists = Vec::with_capacity(n);
    while tokens.len() < n {
        let t = Instant::now();
        let f0 = models.forward_ms();
        let root = *tokens.last().expect("token 0 exists");
        let logits = models.verify(&DraftTree::root(root))?;
        let dist = target_dist(sampling, &logits, 0, tokens.len())?;
        let next = pick(sampling, &dist, &mut streams.accept);
        models.accept(&[0]);
        tokens.push(next);
        dists.push(dist);
        steps.push(StepLog {
            accepted_ranks: Vec::new(),
            drafted: 0,
            accepted: 0,
            path: vec![0],
            bonus: next,
            draft_ms: 0.0,
            verify_ms: ms_since(t),
            forward_ms: models.forward_ms() - f0,
            tvd_emitted: None,
            regime: None,
        });
    }
    let latency_ms = ms_since(start);
    for (step, p) in steps.iter_mut().zip(&dists) {
        step.regime = Some(Regime::of(p, None));
    }
    Ok(Generation {
        tokens,
        steps,
        prefill_ms,
        latency_ms,
    })
}
