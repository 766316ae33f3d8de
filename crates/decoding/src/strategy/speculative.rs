//! Speculative decoding with a drafter and tree verification: exact SD, LANTERN (δ) and
//! LANTERN++ (λ), differing only in the acceptance relaxation and the default tree.

use std::time::Instant;

use super::drafting::build_tree;
use super::{ms_since, pick, target_dist, DecodeError, Generation, Speculative, StepLog, Streams};
use crate::accept::{emitted_tvd, node_drafts, walk_tree, Drafts, Relax};
use crate::model::{ImageCondition, Models};
use crate::neighbours::NeighbourTable;
use crate::rng::Rng;
use crate::sampling::Sampling;
use crate::tree::DraftTree;

/// Generates one image: draft a tree, verify it in one target forward, accept a path, repeat.
pub(super) fn generate(
    models: &mut dyn Models,
    spec: &Speculative,
    sampling: &Sampling,
    neighbours: Option<&NeighbourTable>,
    cond: &ImageCondition,
    rng: &Rng,
) -> Result<Generation, DecodeError> {
    if !models.has_drafter() {
        return Err(DecodeError::Setup(
            "speculative decoding needs a drafter, and none is loaded".into(),
        ));
    }
    let needs_table = !matches!(spec.relax, Relax::Exact);
    if needs_table && neighbours.is_none() {
        return Err(DecodeError::Setup(
            "LANTERN relaxation needs a latent-neighbour table, and none was built".into(),
        ));
    }
    let neighbours = if needs_table { neighbours } else { None };
    let mut streams = Streams::new(rng);
    let n = models.tokens_per_image();
    let start = Instant::now();
    let logits = models.begin(cond, sampling.uses_cfg())?;
    let first = target_dist(sampling, &logits, 0, 0)?;
    let mut tokens = vec![pick(sampling, &first, &mut streams.accept)];
    let prefill_ms = ms_since(start);
    let mut steps = Vec::new();
    let mut roots = Vec::new();
    while tokens.len() < n {
        let committed = tokens.len() - 1;
        let root = tokens[committed];
        // Accepting m drafts adds m + 1 tokens; never draft past the last image token.
        let max_depth = n - tokens.len() - 1;

        let t = Instant::now();
        let f0 = models.forward_ms();
        let tree = if max_depth > 0 {
            build_tree(
                models,
                &spec.tree,
                sampling,
                root,
                committed,
                max_depth,
                &mut streams.draft,
            )?
        } else {
            DraftTree::root(root)
        };
        let draft_ms = ms_since(t);

        let t = Instant::now();
        let logits = models.verify(&tree)?;
        let mut failure = None;
        let mut root_p = None;
        let mut target = |node: usize| {
            let token_index = committed + tree.depths[node] + 1;
            let p = target_dist(sampling, &logits, node, token_index).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                vec![1.0; logits.vocab()]
            });
            if node == 0 && !sampling.is_greedy() && !tree.is_empty() {
                root_p = Some(p.clone());
            }
            p
        };
        let outcome = walk_tree(
            &tree,
            &mut target,
            sampling.is_greedy(),
            neighbours,
            spec.relax,
            spec.residuals,
            &mut streams.accept,
        );
        if let Some(e) = failure {
            return Err(e);
        }
        let verify_ms = ms_since(t);
        // What the round's rule emits at the first drafted position is computed after the image:
        // here only its inputs are kept, so that neither its time nor its cache traffic is timed.
        roots.push(root_p.and_then(|p| {
            let (drafts, q) = node_drafts(&tree, 0)?;
            Some((p, q.map(<[f32]>::to_vec), drafts))
        }));
        let t = Instant::now();
        models.accept(&outcome.path);
        tokens.extend(outcome.path[1..].iter().map(|&node| tree.tokens[node]));
        tokens.push(outcome.bonus);
        let accepted_ranks = outcome.path[1..]
            .iter()
            .map(|&node| match &tree.selection_rank {
                Some(r) => r[node],
                None => tree.sibling_rank(node),
            })
            .collect();
        steps.push(StepLog {
            drafted: tree.len() - 1,
            accepted: outcome.path.len() - 1,
            accepted_ranks,
            path: outcome.path,
            bonus: outcome.bonus,
            draft_ms,
            verify_ms: verify_ms + ms_since(t),
            forward_ms: models.forward_ms() - f0,
            tvd_emitted: None,
            regime: None,
        });
    }
    let latency_ms = ms_since(start);
    tokens.truncate(n);
    for (step, root) in steps.iter_mut().zip(roots) {
        step.regime = root
            .as_ref()
            .map(|(p, q, _)| crate::regime::Regime::of(p, q.as_deref()));
        step.tvd_emitted = root.and_then(|(p, q, tokens)| {
            let drafts = match &q {
                Some(q) => Drafts::Sampled {
                    q,
                    count: tokens.len(),
                },
                None => Drafts::Deterministic(&tokens),
            };
            emitted_tvd(&p, drafts, neighbours, spec.relax, spec.residuals)
        });
    }
    Ok(Generation {
        tokens,
        steps,
        prefill_ms,
        latency_ms,
    })
}
