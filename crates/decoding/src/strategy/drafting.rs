//! Building a draft tree with the drafter: static trees (chain, choice lists) level by level,
//! and EAGLE-2 dynamic trees by cumulative log-probability.

use super::{target_dist, DecodeError};
use crate::model::{DraftInput, DraftParent, Logits, Models};
use crate::rng::Rng;
use crate::sampling::Sampling;
use crate::tree::{CandidateId, DraftTree, DynamicTreeBuilder, StaticTree};
use crate::tree_shape::TreeShape;

/// The drafter's distribution for row `row` predicting image token `token_index`.
fn draft_dist(
    sampling: &Sampling,
    logits: &Logits,
    row: usize,
    token_index: usize,
) -> Result<Vec<f32>, DecodeError> {
    target_dist(sampling, logits, row, token_index)
}

/// The `count` most probable tokens (ties: lower id first).
fn top_tokens(q: &[f32], count: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..q.len() as u32).collect();
    let count = count.min(q.len());
    let cmp = |a: &u32, b: &u32| q[*b as usize].total_cmp(&q[*a as usize]).then(a.cmp(b));
    if count < idx.len() {
        idx.select_nth_unstable_by(count, cmp);
        idx.truncate(count);
    }
    idx.sort_by(cmp);
    idx
}

/// `count` tokens sampled without replacement from `q` (fewer if q has less support).
fn sample_without_replacement(q: &[f32], count: usize, rng: &mut Rng) -> Vec<u32> {
    let mut w = q.to_vec();
    let mut out = Vec::with_capacity(count);
    while out.len() < count && w.iter().any(|&x| x > 0.0) {
        let t = rng.categorical(&w);
        w[t] = 0.0;
        out.push(t as u32);
    }
    out
}

/// Builds this round's draft tree under `root` (image token `committed`), at most `max_depth`
/// levels deep. Leaves the drafter without pending drafts.
pub(super) fn build_tree(
    models: &mut dyn Models,
    shape: &TreeShape,
    sampling: &Sampling,
    root: u32,
    committed: usize,
    max_depth: usize,
    rng: &mut Rng,
) -> Result<DraftTree, DecodeError> {
    let tree = match shape {
        TreeShape::Static { .. } => {
            let st = shape
                .static_tree()
                .map_err(DecodeError::Setup)?
                .truncated(max_depth, usize::MAX);
            build_static(models, &st, sampling, root, committed, rng)
        }
        TreeShape::Dynamic {
            top_k,
            depth,
            total_tokens,
        } => build_dynamic(
            models,
            (
                *top_k,
                (*depth).min(max_depth.saturating_sub(1)),
                *total_tokens,
            ),
            sampling,
            root,
            committed,
        ),
    };
    models.draft_discard();
    tree
}

fn build_static(
    models: &mut dyn Models,
    st: &StaticTree,
    sampling: &Sampling,
    root: u32,
    committed: usize,
    rng: &mut Rng,
) -> Result<DraftTree, DecodeError> {
    let mut tree = DraftTree::root(root);
    tree.sampled = !sampling.is_greedy();
    if st.is_empty() {
        return Ok(tree);
    }
    let nodes = st.nodes();
    let mut in_tree = vec![usize::MAX; nodes.len()]; // static node → tree node
    let mut fed = vec![usize::MAX; nodes.len()]; // static node → drafter element index
    let mut n_fed = 0;

    // Children of one expanded node: the static nodes under `parent`, drafted from `q` by rank.
    let mut grow = |tree: &mut DraftTree,
                    parent: Option<usize>,
                    tree_parent: usize,
                    q: Vec<f32>,
                    in_tree: &mut Vec<usize>| {
        let kids: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].parent == parent)
            .collect();
        let ranks = kids.iter().map(|&i| nodes[i].rank + 1).max().unwrap_or(0);
        let tokens = if tree.sampled {
            sample_without_replacement(&q, ranks, rng)
        } else {
            top_tokens(&q, ranks)
        };
        for &i in &kids {
            if let Some(&tok) = tokens.get(nodes[i].rank) {
                in_tree[i] = tree.push(tree_parent, tok);
            }
        }
        tree.child_dists[tree_parent] = Some(q);
    };

    let logits = models.draft_root(root)?;
    let q = draft_dist(sampling, &logits, 0, committed + 1)?;
    grow(&mut tree, None, 0, q, &mut in_tree);
    for depth in 1..st.depth() {
        let expand: Vec<usize> = st
            .expanded_at(depth)
            .into_iter()
            .flatten()
            .filter(|&i| in_tree[i] != usize::MAX)
            .collect();
        if expand.is_empty() {
            break;
        }
        let inputs: Vec<DraftInput> = expand
            .iter()
            .map(|&i| DraftInput {
                token: tree.tokens[in_tree[i]],
                parent: match nodes[i].parent {
                    None => DraftParent::Root,
                    Some(p) => DraftParent::Fed(fed[p]),
                },
            })
            .collect();
        for &i in &expand {
            fed[i] = n_fed;
            n_fed += 1;
        }
        let logits = models.draft_expand(&inputs)?;
        for (row, &i) in expand.iter().enumerate() {
            let q = draft_dist(sampling, &logits, row, committed + depth + 1)?;
            grow(&mut tree, Some(i), in_tree[i], q, &mut in_tree);
        }
    }
    Ok(tree)
}

fn build_dynamic(
    models: &mut dyn Models,
    (top_k, grows, total_tokens): (usize, usize, usize),
    sampling: &Sampling,
    root: u32,
    committed: usize,
) -> Result<DraftTree, DecodeError> {
    let mut builder = DynamicTreeBuilder::new(root, top_k, grows, total_tokens);
    let logits = models.draft_root(root)?;
    let mut frontier = builder.start(&draft_dist(sampling, &logits, 0, committed + 1)?);
    let mut fed: std::collections::HashMap<CandidateId, usize> = Default::default();
    for g in 0..grows {
        let inputs: Vec<DraftInput> = frontier
            .iter()
            .map(|&(id, token)| DraftInput {
                token,
                parent: match builder.parent(id) {
                    None => DraftParent::Root,
                    Some(p) => DraftParent::Fed(fed[&p]),
                },
            })
            .collect();
        let base = fed.len();
        for (i, &(id, _)) in frontier.iter().enumerate() {
            fed.insert(id, base + i);
        }
        let logits = models.draft_expand(&inputs)?;
        let dists = (0..frontier.len())
            .map(|row| draft_dist(sampling, &logits, row, committed + g + 2))
            .collect::<Result<Vec<_>, _>>()?;
        frontier = builder.grow(&dists);
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_tokens_breaks_ties_by_id() {
        assert_eq!(top_tokens(&[0.1, 0.4, 0.4, 0.1], 3), vec![1, 2, 0]);
    }

    #[test]
    fn dynamic_budgets_draft_only_what_they_can_keep() {
        let full = TreeShape::lantern_dynamic();
        assert_eq!(full.drafted_per_round(), 40);
        let b8 = full.with_budget(8).unwrap();
        assert_eq!(
            b8,
            TreeShape::Dynamic {
                top_k: 8,
                depth: 4,
                total_tokens: 8
            }
        );
        let b3 = full.with_budget(3).unwrap();
        assert_eq!(b3.drafted_per_round(), 6);
        assert_eq!(full.with_budget(1).unwrap().drafted_per_round(), 0);
    }

    #[test]
    fn chain_and_preset_shapes() {
        assert_eq!(TreeShape::chain(3).budget(), 3);
        let s = TreeShape::static_preset("naive_extend_57").unwrap();
        assert_eq!(s.budget(), 57);
        assert_eq!(s.with_budget(10).unwrap().budget(), 10);
        assert!(TreeShape::static_preset("nope").is_none());
        assert_eq!(TreeShape::parse("[[0], [1], [0, 0]]").unwrap().budget(), 3);
        assert!(TreeShape::parse("[[0, 0]]").unwrap_err().contains("prefix"));
        assert!(TreeShape::parse("[[0], [x]]").is_err());
        assert_eq!(TreeShape::parse("chain:3").unwrap(), TreeShape::chain(3));
        assert_eq!(
            TreeShape::parse("dynamic@8").unwrap(),
            TreeShape::lantern_dynamic().with_budget(8).unwrap()
        );
        assert_eq!(TreeShape::parse("naive_extend_57@10").unwrap().budget(), 10);
        assert!(TreeShape::parse("dynamic@0")
            .unwrap_err()
            .contains("budget"));
        assert!(TreeShape::parse("chain:0").is_err());
        assert!(matches!(
            TreeShape::parse("dynamic:5:3:20").unwrap(),
            TreeShape::Dynamic {
                total_tokens: 20,
                ..
            }
        ));
    }
}
