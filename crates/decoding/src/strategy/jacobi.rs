//! The Jacobi scheduler shared by SJD and its forks (SCD, GSD): a window of drafts verified in
//! one target forward, committed up to the first rejection, the rest carried to the next round.
//!
//! Each round verifies `[root, d_1 .. d_L]`. Draft `d_j` (recorded proposal `q_j`) is tested
//! against row `j − 1`'s target `p_j`: SJD and SCD accept with `min(1, p_j(d_j)/q_j(d_j))`, GSD
//! with its group ratio. At the first rejection the replacement comes from
//! `norm(max(p_j − q_j, 0))`. Every later row's output becomes the next round's draft for its
//! position, recorded with that row's `p` as its proposal (the principled rule: the carried token
//! is an exact sample of it): an independent sample (SJD, GSD) or coupled to the stale draft
//! (SCD). Fresh positions get a one-hot proposal from the initialisation, or a uniform one
//! ([`FreshProposal`]) when they are drawn uniformly.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::gsd::{self, Grouping};
use super::scd::{self, Coupling};
use super::sjd::{init_token, FreshProposal, JacobiInit};
use super::{ms_since, pick, target_dist, DecodeError, Generation, StepLog, Streams};
use crate::accept::{single_draft_residual, tvd};
use crate::embeddings::Tables;
use crate::model::{ImageCondition, Models};
use crate::rng::Rng;
use crate::sampling::{argmax, Sampling};
use crate::tree::DraftTree;

/// Which member of the SJD family runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum JacobiMethod {
    /// Speculative Jacobi decoding: independent resamples, exact test.
    Sjd,
    /// Speculative coupled decoding: coupled resamples, exact test.
    Scd(Coupling),
    /// Grouped speculative decoding: independent resamples, grouped test.
    Gsd(Grouping),
}

/// A Jacobi-family strategy: window, initialisation and method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Jacobi {
    /// Drafts per round (16 in SJD and GSD, 32 in SCD's Lumina scripts).
    pub window: usize,
    /// How fresh window positions are initialised.
    pub init: JacobiInit,
    /// The proposal a fresh draft records.
    #[serde(default)]
    pub fresh: FreshProposal,
    /// SJD, SCD or GSD.
    pub method: JacobiMethod,
    /// SJD's official CFG on Lumina-mGPT (see [`crate::model::Models::use_sjd_unconditional_prompt`]).
    #[serde(default)]
    pub official_compat: bool,
}

/// What the emitted-TVD diagnostic needs of a round's first window position: the target there,
/// the draft's recorded proposal (`None` = one-hot) and the draft.
type FirstDraft = (Vec<f32>, Option<Vec<f32>>, u32);

/// A window draft: its token and the distribution it was drawn from (`None` = one-hot).
struct Draft {
    token: u32,
    q: Option<Vec<f32>>,
}

/// Generates one image with a Jacobi-family strategy.
pub(super) fn generate(
    models: &mut dyn Models,
    spec: &Jacobi,
    sampling: &Sampling,
    tables: &Tables,
    cond: &ImageCondition,
    rng: &Rng,
) -> Result<Generation, DecodeError> {
    if spec.window == 0 {
        return Err(DecodeError::Setup(
            "the Jacobi window must be at least 1".into(),
        ));
    }
    let d_thr = match &spec.method {
        JacobiMethod::Gsd(g) => g.d_thr(tables.embeddings).map_err(DecodeError::Setup)?,
        _ => f32::INFINITY,
    };
    let emb = tables.embeddings;
    let mut streams = Streams::new(rng);
    // Gumbel noise of each absolute position: its own stream, reused until it is committed.
    let noise = rng.fork(3);
    let (n, vocab, grid) = (models.tokens_per_image(), models.vocab(), models.grid());
    let greedy = sampling.is_greedy();
    let start = Instant::now();
    let logits = models.begin(cond, sampling.uses_cfg())?;
    let first = target_dist(sampling, &logits, 0, 0)?;
    let mut tokens = vec![pick(sampling, &first, &mut streams.accept)];
    let prefill_ms = ms_since(start);
    let mut drafts: Vec<Draft> = Vec::new();
    let mut steps = Vec::new();
    // Inputs of the emitted-TVD diagnostic (GSD), computed after the image.
    let mut firsts: Vec<Option<FirstDraft>> = Vec::new();
    while tokens.len() < n {
        let committed = tokens.len() - 1;
        let t = Instant::now();
        let f0 = models.forward_ms();
        let len = spec.window.min(n - tokens.len() - 1);
        drafts.truncate(len);
        if drafts.len() < len {
            // Tokens known so far (committed, then this window's drafts), grown as drafts are made.
            let mut known = tokens.clone();
            known.extend(drafts.iter().map(|d| d.token));
            while drafts.len() < len {
                let index = committed + 1 + drafts.len();
                let token = init_token(spec.init, index, &known, grid, vocab, &mut streams.draft);
                known.push(token);
                drafts.push(Draft {
                    token,
                    q: spec.fresh.q(vocab),
                });
            }
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
        let mut first = None;
        for (j, d) in drafts.iter().enumerate() {
            let p = target_dist(sampling, &logits, j, committed + j + 1)?;
            let x = d.token as usize;
            let ok = if greedy {
                argmax(&p) == x
            } else {
                let a = match &spec.method {
                    JacobiMethod::Gsd(g) => {
                        gsd::accept_prob(&p, d.q.as_deref(), d.token, g, d_thr, emb)
                    }
                    _ => {
                        let q_x = d.q.as_ref().map_or(1.0, |q| q[x]) as f64;
                        (p[x] as f64 / q_x).min(1.0)
                    }
                };
                streams.accept.uniform() < a
            };
            if j == 0 && !greedy && matches!(spec.method, JacobiMethod::Gsd(_)) {
                first = Some((p.clone(), d.q.clone(), d.token));
            }
            if !ok {
                bonus = Some(if greedy {
                    argmax(&p) as u32
                } else {
                    streams
                        .accept
                        .categorical(&single_draft_residual(&p, d.q.as_deref(), d.token))
                        as u32
                });
                break;
            }
            accepted += 1;
        }
        firsts.push(first);
        let bonus = match bonus {
            Some(b) => b,
            None => {
                let p = target_dist(sampling, &logits, len, committed + len + 1)?;
                pick(sampling, &p, &mut streams.accept)
            }
        };
        // Jacobi update: every row after the bonus drafts its position for the next round.
        let mut next = Vec::new();
        if accepted < len {
            for i in accepted + 1..=len {
                let position = committed + i + 1;
                if position >= n {
                    break;
                }
                let p = target_dist(sampling, &logits, i, position)?;
                let token = if greedy {
                    argmax(&p) as u32
                } else {
                    match (&spec.method, drafts.get(i)) {
                        (JacobiMethod::Scd(Coupling::Maximal), Some(stale)) => scd::maximal_couple(
                            &p,
                            stale.q.as_deref(),
                            stale.token,
                            &mut streams.draft,
                        ),
                        (JacobiMethod::Scd(Coupling::Gumbel), _) => {
                            scd::gumbel_draw(&p, &noise.fork(position as u64))
                        }
                        _ => pick(sampling, &p, &mut streams.draft),
                    }
                };
                next.push(Draft {
                    token,
                    q: (!greedy).then_some(p),
                });
            }
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
            regime: None,
        });
    }
    let latency_ms = ms_since(start);
    if let JacobiMethod::Gsd(g) = &spec.method {
        for (step, first) in steps.iter_mut().zip(firsts) {
            step.tvd_emitted =
                first.map(|(p, q, x)| tvd(&gsd::emitted(&p, q.as_deref(), x, g, d_thr, emb), &p));
        }
    }
    Ok(Generation {
        tokens,
        steps,
        prefill_ms,
        latency_ms,
    })
}
