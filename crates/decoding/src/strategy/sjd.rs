//! Speculative Jacobi decoding (Teng et al., ICLR 2025): a window of draft tokens refined by
//! Jacobi iterations and verified with the speculative-sampling rule; training-free and lossless.
//!
//! Each round verifies `[root, d_1 .. d_L]` in one forward. Draft `d_j` is accepted with
//! probability `min(1, p_j(d_j) / q_j(d_j))`; at the first rejection the replacement comes from
//! `norm(max(p_j − q_j, 0))`. Positions after it keep this round's samples as their new drafts,
//! with this round's `p` as their `q` (the Jacobi update); fresh positions get a one-hot `q`.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{ms_since, pick, target_dist, DecodeError, Generation, StepLog, Streams};
use crate::model::{ImageCondition, Models};
use crate::rng::Rng;
use crate::sampling::{argmax, Sampling};
use crate::tree::DraftTree;

/// How a fresh window position gets its first draft token (its `q` is one-hot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JacobiInit {
    /// Copy the token one column to the left in the same row (SJD's LlamaGen default); a
    /// row's first column draws uniformly.
    RepeatHorizon,
    /// Draw uniformly from the vocabulary.
    Random,
}

/// A window draft: its token and the distribution it was drawn from (`None` = one-hot).
struct Draft {
    token: u32,
    q: Option<Vec<f32>>,
}

fn init_token(
    init: JacobiInit,
    index: usize,
    known: &[u32],
    grid: usize,
    vocab: usize,
    rng: &mut Rng,
) -> u32 {
    match init {
        JacobiInit::RepeatHorizon
            if !index.is_multiple_of(grid) && index > 0 && index - 1 < known.len() =>
        {
            known[index - 1]
        }
        _ => (rng.next_u64() % vocab as u64) as u32,
    }
}

/// Generates one image with a Jacobi window of `window` drafts.
pub(super) fn generate(
    models: &mut dyn Models,
    window: usize,
    init: JacobiInit,
    sampling: &Sampling,
    cond: &ImageCondition,
    rng: &Rng,
) -> Result<Generation, DecodeError> {
    if window == 0 {
        return Err(DecodeError::Setup(
            "the SJD window must be at least 1".into(),
        ));
    }
    let mut streams = Streams::new(rng);
    let (n, vocab, grid) = (models.tokens_per_image(), models.vocab(), models.grid());
    let greedy = sampling.is_greedy();
    let start = Instant::now();
    let logits = models.begin(cond, sampling.uses_cfg())?;
    let first = target_dist(sampling, &logits, 0, 0)?;
    let mut tokens = vec![pick(sampling, &first, &mut streams.accept)];
    let prefill_ms = ms_since(start);
    let mut drafts: Vec<Draft> = Vec::new();
    let mut steps = Vec::new();
    while tokens.len() < n {
        let committed = tokens.len() - 1;
        let t = Instant::now();
        let f0 = models.forward_ms();
        let len = window.min(n - tokens.len() - 1);
        drafts.truncate(len);
        while drafts.len() < len {
            let index = committed + 1 + drafts.len();
            let mut known = tokens.clone();
            known.extend(drafts.iter().map(|d| d.token));
            let token = init_token(init, index, &known, grid, vocab, &mut streams.draft);
            drafts.push(Draft { token, q: None });
        }
        let mut tree = DraftTree::root(tokens[committed]);
        for (j, d) in drafts.iter().enumerate() {
            tree.push(j, d.token);
        }
        let draft_ms = ms_since(t);

        let t = Instant::now();
        let logits = models.verify(&tree)?;
        // The walk and the Jacobi update read every row: fetch them in one batch.
        logits.prefetch(&(0..tree.len()).collect::<Vec<_>>());
        let mut accepted = 0;
        let mut bonus = None;
        for (j, d) in drafts.iter().enumerate() {
            let p = target_dist(sampling, &logits, j, committed + j + 1)?;
            let x = d.token as usize;
            let ok = if greedy {
                argmax(&p) == x
            } else {
                let q_x = d.q.as_ref().map_or(1.0, |q| q[x]) as f64;
                streams.accept.uniform() < (p[x] as f64 / q_x).min(1.0)
            };
            if !ok {
                bonus = Some(if greedy {
                    argmax(&p) as u32
                } else {
                    let mut residual: Vec<f32> = match &d.q {
                        Some(q) => p.iter().zip(q).map(|(a, b)| (a - b).max(0.0)).collect(),
                        None => {
                            let mut r = p.clone();
                            r[x] = 0.0;
                            r
                        }
                    };
                    if residual.iter().all(|&v| v <= 0.0) {
                        residual.clone_from(&p);
                    }
                    streams.accept.categorical(&residual) as u32
                });
                break;
            }
            accepted += 1;
        }
        let bonus = match bonus {
            Some(b) => b,
            None => {
                let p = target_dist(sampling, &logits, len, committed + len + 1)?;
                pick(sampling, &p, &mut streams.accept)
            }
        };
        // Jacobi update: positions after the bonus take this round's samples from their rows.
        let mut next = Vec::new();
        for i in accepted + 1..len {
            let p = target_dist(sampling, &logits, i, committed + i + 1)?;
            let token = pick(sampling, &p, &mut streams.draft);
            next.push(Draft {
                token,
                q: (!greedy).then_some(p),
            });
        }
        let path: Vec<usize> = (0..=accepted).collect();
        models.accept(&path);
        tokens.extend(drafts[..accepted].iter().map(|d| d.token));
        tokens.push(bonus);
        drafts = next;
        steps.push(StepLog {
            accepted_ranks: Vec::new(),
            drafted: len,
            accepted,
            path,
            bonus,
            draft_ms,
            verify_ms: ms_since(t),
            forward_ms: models.forward_ms() - f0,
            tvd_emitted: None,
        });
    }
    Ok(Generation {
        tokens,
        steps,
        prefill_ms,
        latency_ms: ms_since(start),
    })
}
