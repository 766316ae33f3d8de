//! Draft-tree shapes: presets match LANTERN's choice lists, validation, truncation, and the
//! EAGLE-2 dynamic construction on a hand-computable case.

use lantern_decoding::tree::{DynamicTreeBuilder, StaticTree};

fn per_depth(t: &StaticTree) -> Vec<usize> {
    (1..=t.depth())
        .map(|d| t.nodes().iter().filter(|n| n.depth == d).count())
        .collect()
}

#[test]
fn presets_have_the_published_shapes() {
    let want: &[(&str, usize, &[usize])] = &[
        ("naive_extend_57", 57, &[5, 13, 16, 14, 9]),
        ("mc_sim_7b_63", 25, &[4, 8, 8, 3, 2]),
        ("mc_sim_7b_63_balanced", 25, &[3, 8, 9, 3, 2]),
        ("medusa_2_7b_63", 63, &[10, 23, 23, 7]),
        ("reverse_balanced_25", 25, &[3, 4, 6, 5, 7]),
        ("chain", 5, &[1, 1, 1, 1, 1]),
    ];
    for &(name, n, depths) in want {
        let t = StaticTree::preset(name).unwrap();
        assert_eq!(t.len(), n, "{name}");
        assert_eq!(per_depth(&t), depths, "{name}");
    }
    assert_eq!(StaticTree::preset_names().len(), want.len());
    let mc = StaticTree::preset("mc_sim_7b_63").unwrap();
    // Expanded (non-leaf) nodes per level: {4, 4, 1, 1} after the root (llamagen-eagle.md §4.4).
    let expanded: Vec<usize> = (1..=4).map(|d| mc.expanded_at(d).len()).collect();
    assert_eq!(expanded, vec![4, 4, 1, 1]);
    assert_eq!(mc.expanded_at(0), vec![None]);
    assert_eq!(mc.child_count(None), 4);
}

#[test]
fn choices_are_validated() {
    assert!(StaticTree::from_choices(&[vec![0], vec![0, 1, 0]]).is_err());
    assert!(StaticTree::from_choices(&[vec![0], vec![0]]).is_err());
    assert!(StaticTree::from_choices(&[vec![]]).is_err());
    let t = StaticTree::from_choices(&[vec![1, 0], vec![0], vec![1]]).unwrap();
    assert_eq!(t.nodes()[2].parent, Some(1));
    assert_eq!(StaticTree::chain(3).len(), 3);
    // A rank gap would drop the rank-1 draw: refused, naming the missing sibling.
    let err = StaticTree::from_choices(&[vec![0], vec![2]]).unwrap_err();
    assert!(err.contains("[1]") && err.contains("without gaps"), "{err}");
    assert!(StaticTree::from_choices(&[vec![0], vec![0, 1]]).is_err());
    // Every preset is gap-free.
    for name in StaticTree::preset_names() {
        assert!(StaticTree::preset(name).is_some(), "{name}");
    }
}

#[test]
fn truncation_keeps_closed_prefixes() {
    let t = StaticTree::preset("naive_extend_57").unwrap();
    let small = t.truncated(2, 10);
    assert_eq!(small.len(), 10);
    assert!(small.nodes().iter().all(|n| n.depth <= 2));
    assert_eq!(t.truncated(1, 100).len(), 5);
    for (i, n) in small.nodes().iter().enumerate() {
        if let Some(p) = n.parent {
            assert!(p < i);
        }
    }
}

#[test]
fn dynamic_tree_selects_by_cumulative_log_probability() {
    // Root children: 0 (0.6), 1 (0.3), 2 (0.1); top_k = 2 → frontier {0, 1}.
    let mut b = DynamicTreeBuilder::new(9, 2, 1, 3);
    let f = b.start(&[0.6, 0.3, 0.1, 0.0]);
    assert_eq!(f.iter().map(|x| x.1).collect::<Vec<_>>(), vec![0, 1]);
    // Children of token 0: 3 (0.9) → 0.54, 2 (0.1); of token 1: 0 (0.5) → 0.15, 1 (0.5) → 0.15.
    let next = b.grow(&[vec![0.0, 0.0, 0.1, 0.9], vec![0.5, 0.5, 0.0, 0.0]]);
    assert_eq!(next.len(), 2);
    assert_eq!(b.parent(next[0].0), Some(f[0].0));
    let tree = b.finish();
    // Best three: 0 (0.6), 0→3 (0.54), 1 (0.3).
    assert_eq!(tree.tokens, vec![9, 0, 1, 3]);
    assert_eq!(tree.parents, vec![None, Some(0), Some(0), Some(1)]);
    assert_eq!(tree.depths, vec![0, 1, 1, 2]);
    assert!(tree.child_dists[0].is_some() && tree.child_dists[1].is_some());
    assert!(!tree.sampled);
}

#[test]
fn dynamic_tree_never_keeps_zero_probability_nodes() {
    let mut b = DynamicTreeBuilder::new(0, 3, 0, 10);
    b.start(&[0.0, 1.0, 0.0]);
    let t = b.finish();
    assert_eq!(t.tokens, vec![0, 1]);
}

/// A pseudo-random drafter: the child distribution of a node, from a hash of its token path.
fn drafter_dist(path: &[u32], vocab: usize) -> Vec<f32> {
    let mut h = path.iter().fold(0x9E37_79B9_7F4A_7C15u64, |h, &t| {
        (h ^ t as u64).wrapping_mul(0x100_0000_01B3)
    });
    let mut w: Vec<f32> = (0..vocab)
        .map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            ((h >> 11) as f64 / (1u64 << 53) as f64).powi(4) as f32
        })
        .collect();
    let s: f32 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= s);
    w
}

/// Drives a builder with the pseudo-random drafter; returns (tokens, parents) of the tree.
fn build(top_k: usize, depth: usize, total: usize, vocab: usize) -> (Vec<u32>, Vec<Option<usize>>) {
    use std::collections::HashMap;
    let mut b = DynamicTreeBuilder::new(7, top_k, depth, total);
    let mut paths: HashMap<lantern_decoding::tree::CandidateId, Vec<u32>> = HashMap::new();
    let mut frontier = b.start(&drafter_dist(&[7], vocab));
    for &(id, tok) in &frontier {
        paths.insert(id, vec![7, tok]);
    }
    for _ in 0..depth {
        let dists: Vec<Vec<f32>> = frontier
            .iter()
            .map(|(id, _)| drafter_dist(&paths[id], vocab))
            .collect();
        let parents: Vec<Vec<u32>> = frontier.iter().map(|(id, _)| paths[id].clone()).collect();
        let next = b.grow(&dists);
        for &(id, tok) in &next {
            let parent = b.parent(id).expect("grown nodes have parents");
            let idx = frontier.iter().position(|(f, _)| *f == parent).unwrap();
            let mut p = parents[idx].clone();
            p.push(tok);
            paths.insert(id, p);
        }
        frontier = next;
    }
    let t = b.finish();
    (t.tokens, t.parents)
}

#[test]
fn budgeted_dynamic_drafting_keeps_exactly_the_full_drafting_tree() {
    // TreeShape::with_budget drafts top_k ≤ b children per node, frontiers of ≤ b nodes and
    // ≤ b − 1 levels: the kept tree must equal the one the full (10, 4) drafting keeps.
    for total in 1..=24 {
        for vocab in [12, 40] {
            let full = build(10, 4, total, vocab);
            let lean = build(10.min(total), 4.min(total - 1), total, vocab);
            assert_eq!(full, lean, "budget {total}, vocab {vocab}");
        }
    }
}
