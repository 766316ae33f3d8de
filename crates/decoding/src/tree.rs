//! Draft trees: the tree handed to verification, static shapes from EAGLE choice lists, and the
//! EAGLE-2 dynamic construction by cumulative log-probability.

/// A draft tree ready for verification. Node 0 is the root: the token just sampled by the
/// target (decided, not a draft); drafted nodes follow in topological order.
#[derive(Clone, Debug, PartialEq)]
pub struct DraftTree {
    /// Token of each node.
    pub tokens: Vec<u32>,
    /// Parent of each node (`None` only for node 0).
    pub parents: Vec<Option<usize>>,
    /// Depth of each node (root = 0).
    pub depths: Vec<usize>,
    /// The drafter's (guided, warped) distribution over each expanded node's children.
    pub child_dists: Vec<Option<Vec<f32>>>,
    /// Whether children were sampled without replacement from `child_dists` (else top-k, q = 1).
    pub sampled: bool,
    /// For dynamic trees: each drafted node's 1-based place in the selection order by cumulative
    /// score (the root 0); a budget-b tree keeps exactly the nodes ranked ≤ b.
    pub selection_rank: Option<Vec<usize>>,
}

impl DraftTree {
    /// A tree holding only the root.
    pub fn root(token: u32) -> Self {
        Self {
            tokens: vec![token],
            parents: vec![None],
            depths: vec![0],
            child_dists: vec![None],
            sampled: false,
            selection_rank: None,
        }
    }

    /// Number of nodes, root included.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether nothing was drafted (only the root).
    pub fn is_empty(&self) -> bool {
        self.tokens.len() <= 1
    }

    /// Children of `node`, in node order.
    pub fn children(&self, node: usize) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.parents[i] == Some(node))
            .collect()
    }

    /// Position of `node` among its parent's children (its drafting rank in a static tree).
    pub fn sibling_rank(&self, node: usize) -> usize {
        match self.parents[node] {
            None => 0,
            Some(p) => (1..node).filter(|&i| self.parents[i] == Some(p)).count(),
        }
    }

    /// Nodes from the root down to `node`.
    pub fn path_to(&self, mut node: usize) -> Vec<usize> {
        let mut p = vec![node];
        while let Some(q) = self.parents[node] {
            p.push(q);
            node = q;
        }
        p.reverse();
        p
    }

    /// Deepest drafted level.
    pub fn max_depth(&self) -> usize {
        self.depths.iter().copied().max().unwrap_or(0)
    }

    /// Adds a drafted node under `parent` and returns its index.
    pub fn push(&mut self, parent: usize, token: u32) -> usize {
        assert!(parent < self.len(), "parent {parent} does not exist");
        self.tokens.push(token);
        self.parents.push(Some(parent));
        self.depths.push(self.depths[parent] + 1);
        self.child_dists.push(None);
        self.len() - 1
    }
}

/// A node of a static tree: parent (`None` = the root), rank among siblings, depth (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticNode {
    /// Parent node index (`None` = root).
    pub parent: Option<usize>,
    /// Child rank: the drafter's `rank`-th most likely (or sampled) child.
    pub rank: usize,
    /// Depth, 1-based.
    pub depth: usize,
}

/// Static tree shapes as lists of child-rank paths (EAGLE choices).
#[derive(Clone, Debug, PartialEq)]
pub struct StaticTree {
    nodes: Vec<StaticNode>,
}

/// Presets from LANTERN's `models/drafters/choices.py` (data), one path per space, ranks by '.'.
const PRESETS: &[(&str, &str)] = &[
    ("naive_extend_57", "0 1 2 3 4 0.0 0.1 0.2 0.3 1.0 1.1 1.2 2.0 2.1 2.2 3.0 3.1 4.0 0.0.0 0.0.1 0.0.2 0.0.3 0.1.0 0.1.1 0.1.2 0.2.0 0.2.1 0.2.2 0.3.0 0.3.1 1.0.0 1.0.1 1.1.0 2.0.0 0.0.0.0 0.0.0.1 0.0.0.2 0.0.0.3 0.0.1.0 0.0.1.1 0.0.1.2 0.0.2.0 0.0.2.1 0.0.3.0 0.1.0.0 0.1.0.1 0.1.1.0 0.2.0.0 0.0.0.0.0 0.0.0.0.1 0.0.0.0.2 0.0.0.1.0 0.0.0.1.1 0.0.1.0.0 0.0.1.0.1 0.0.1.1.0 0.0.2.0.0"),
    ("mc_sim_7b_63", "0 1 2 3 0.0 0.1 0.2 1.0 1.1 2.0 2.1 3.0 0.0.0 0.0.1 0.0.2 0.1.0 0.1.1 0.2.0 0.2.1 1.0.0 0.0.0.0 0.0.0.1 0.0.0.2 0.0.0.0.0 0.0.0.0.1"),
    ("mc_sim_7b_63_balanced", "0 1 2 0.0 0.1 0.2 1.0 1.1 1.2 2.0 2.1 0.0.0 0.0.1 0.0.2 0.1.0 0.1.1 1.0.0 1.0.1 1.1.0 1.1.1 0.0.0.0 0.0.0.1 0.0.0.2 0.0.0.0.0 0.0.0.0.1"),
    ("medusa_2_7b_63", "0 1 2 3 4 5 6 7 8 9 0.0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0 1.1 1.2 1.3 1.4 2.0 2.1 3.0 3.1 4.0 5.0 6.0 7.0 0.0.0 0.0.1 0.0.2 0.0.3 0.0.4 0.0.5 0.0.6 0.0.7 0.0.8 0.1.0 0.1.1 0.1.2 0.1.3 0.2.0 0.2.1 0.3.0 0.4.0 0.5.0 1.0.0 1.0.1 1.0.2 1.1.0 2.0.0 0.0.0.0 0.0.0.1 0.0.0.2 0.0.0.3 0.0.1.0 0.0.2.0 0.1.0.0"),
    ("reverse_balanced_25", "0 1 2 0.0 0.1 1.0 2.0 0.0.0 0.0.1 0.0.2 0.1.0 0.1.1 1.0.0 0.0.0.0 0.0.0.1 0.0.0.2 0.0.1.0 0.0.1.1 0.0.0.0.0 0.0.0.0.1 0.0.0.0.2 0.0.0.0.3 0.0.0.1.0 0.0.0.1.1 0.0.0.1.2"),
    ("chain", "0 0.0 0.0.0 0.0.0.0 0.0.0.0.0"),
];

impl StaticTree {
    /// Builds a tree from rank paths: every proper prefix must be present, no duplicates, no
    /// empty path, and the children of each node must hold ranks 0, 1, … without gaps (a node
    /// drafts its children in rank order, so a gap would silently drop a draw and break
    /// losslessness). Nodes are ordered by depth, then lexicographically.
    pub fn from_choices(choices: &[Vec<usize>]) -> Result<Self, String> {
        let mut paths: Vec<&Vec<usize>> = choices.iter().collect();
        if paths.iter().any(|p| p.is_empty()) {
            return Err("a choice path is empty".into());
        }
        paths.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
        if let Some(w) = paths.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("choice {:?} appears twice", w[0]));
        }
        for p in &paths {
            let last = p[p.len() - 1];
            if last > 0 {
                let mut sibling = p.to_vec();
                *sibling.last_mut().expect("non-empty") = last - 1;
                if !paths.iter().any(|q| **q == sibling) {
                    return Err(format!(
                        "choice {p:?} has rank {last} but its parent has no rank-{} child {sibling:?}; ranks under a node must be 0, 1, … without gaps",
                        last - 1
                    ));
                }
            }
        }
        let mut nodes = Vec::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            let parent = if p.len() == 1 {
                None
            } else {
                let prefix = &p[..p.len() - 1];
                Some(
                    paths[..i]
                        .iter()
                        .position(|q| q.as_slice() == prefix)
                        .ok_or_else(|| format!("choice {p:?} lacks its prefix {prefix:?}"))?,
                )
            };
            nodes.push(StaticNode {
                parent,
                rank: p[p.len() - 1],
                depth: p.len(),
            });
        }
        Ok(Self { nodes })
    }

    /// A named preset (see [`StaticTree::preset_names`]).
    pub fn preset(name: &str) -> Option<Self> {
        let (_, spec) = PRESETS.iter().find(|(n, _)| *n == name)?;
        let choices: Vec<Vec<usize>> = spec
            .split(' ')
            .map(|p| {
                p.split('.')
                    .map(|r| r.parse().expect("preset data"))
                    .collect()
            })
            .collect();
        Some(Self::from_choices(&choices).expect("valid preset"))
    }

    /// Names of the presets.
    pub fn preset_names() -> &'static [&'static str] {
        &[
            "naive_extend_57",
            "mc_sim_7b_63",
            "mc_sim_7b_63_balanced",
            "medusa_2_7b_63",
            "reverse_balanced_25",
            "chain",
        ]
    }

    /// A chain of `depth` nodes (rank 0 at every level).
    pub fn chain(depth: usize) -> Self {
        let choices: Vec<Vec<usize>> = (1..=depth).map(|d| vec![0; d]).collect();
        Self::from_choices(&choices).expect("chain")
    }

    /// Nodes (without the root) in order.
    pub fn nodes(&self) -> &[StaticNode] {
        &self.nodes
    }

    /// Nodes at `depth` that have children (depth 0: the root, as `None`).
    pub fn expanded_at(&self, depth: usize) -> Vec<Option<usize>> {
        if depth == 0 {
            return if self.child_count(None) > 0 {
                vec![None]
            } else {
                vec![]
            };
        }
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].depth == depth && self.child_count(Some(i)) > 0)
            .map(Some)
            .collect()
    }

    /// Number of children of a node (`None` = root).
    pub fn child_count(&self, node: Option<usize>) -> usize {
        self.nodes.iter().filter(|n| n.parent == node).count()
    }

    /// Deepest level.
    pub fn depth(&self) -> usize {
        self.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Keeps nodes of depth ≤ `max_depth`, at most `budget` of them, in node order.
    pub fn truncated(&self, max_depth: usize, budget: usize) -> Self {
        let mut map = vec![None; self.nodes.len()];
        let mut nodes = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.depth > max_depth || nodes.len() >= budget {
                continue;
            }
            let parent = match n.parent {
                None => None,
                Some(p) => match map[p] {
                    Some(q) => Some(q),
                    None => continue,
                },
            };
            map[i] = Some(nodes.len());
            nodes.push(StaticNode { parent, ..*n });
        }
        Self { nodes }
    }
}

/// Identifier of a candidate node in a [`DynamicTreeBuilder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CandidateId(pub usize);

#[derive(Clone, Debug)]
struct Candidate {
    token: u32,
    parent: Option<CandidateId>,
    depth: usize,
    score: f64,
    dist: Option<Vec<f32>>,
}

/// EAGLE-2 dynamic tree construction, driven by the caller who runs the drafter.
pub struct DynamicTreeBuilder {
    root_token: u32,
    top_k: usize,
    depth: usize,
    total_tokens: usize,
    candidates: Vec<Candidate>,
    root_dist: Option<Vec<f32>>,
    frontier: Vec<CandidateId>,
    grown: usize,
}

/// The `k` largest entries of `q` as (index, ln q), ties by lower index, −inf excluded.
fn top_log(q: &[f32], k: usize) -> Vec<(u32, f64)> {
    let mut idx: Vec<u32> = (0..q.len() as u32)
        .filter(|&i| q[i as usize] > 0.0)
        .collect();
    let cmp = |a: &u32, b: &u32| q[*b as usize].total_cmp(&q[*a as usize]).then(a.cmp(b));
    let k = k.min(idx.len());
    if k < idx.len() && k > 0 {
        idx.select_nth_unstable_by(k - 1, cmp);
    }
    idx.truncate(k);
    idx.sort_by(cmp);
    idx.into_iter()
        .map(|i| (i, (q[i as usize] as f64).ln()))
        .collect()
}

impl DynamicTreeBuilder {
    /// `top_k` children per expansion, `depth` expansion rounds after the root's, `total_tokens` nodes kept.
    pub fn new(root_token: u32, top_k: usize, depth: usize, total_tokens: usize) -> Self {
        Self {
            root_token,
            top_k: top_k.max(1),
            depth,
            total_tokens,
            candidates: Vec::new(),
            root_dist: None,
            frontier: Vec::new(),
            grown: 0,
        }
    }

    fn add(
        &mut self,
        token: u32,
        parent: Option<CandidateId>,
        depth: usize,
        score: f64,
    ) -> CandidateId {
        self.candidates.push(Candidate {
            token,
            parent,
            depth,
            score,
            dist: None,
        });
        CandidateId(self.candidates.len() - 1)
    }

    fn frontier_out(&self) -> Vec<(CandidateId, u32)> {
        self.frontier
            .iter()
            .map(|&id| (id, self.candidates[id.0].token))
            .collect()
    }

    /// Feeds the root's child distribution; returns the first frontier (the root's top_k children).
    pub fn start(&mut self, root_probs: &[f32]) -> Vec<(CandidateId, u32)> {
        self.root_dist = Some(root_probs.to_vec());
        self.frontier = top_log(root_probs, self.top_k)
            .into_iter()
            .map(|(t, s)| self.add(t, None, 1, s))
            .collect();
        self.frontier_out()
    }

    /// Feeds the child distributions of the last frontier (same order); returns the next frontier:
    /// the top_k of all frontier × top_k children by cumulative log-probability.
    pub fn grow(&mut self, frontier_probs: &[Vec<f32>]) -> Vec<(CandidateId, u32)> {
        assert_eq!(
            frontier_probs.len(),
            self.frontier.len(),
            "one distribution per frontier node"
        );
        assert!(
            self.grown < self.depth,
            "grow() called more than `depth` times"
        );
        self.grown += 1;
        let mut children = Vec::new();
        for (&parent, q) in self.frontier.clone().iter().zip(frontier_probs) {
            let (score, depth) = (
                self.candidates[parent.0].score,
                self.candidates[parent.0].depth,
            );
            self.candidates[parent.0].dist = Some(q.clone());
            for (t, s) in top_log(q, self.top_k) {
                children.push(self.add(t, Some(parent), depth + 1, score + s));
            }
        }
        let c = &self.candidates;
        children.sort_by(|a, b| c[b.0].score.total_cmp(&c[a.0].score).then(a.cmp(b)));
        children.truncate(self.top_k);
        self.frontier = children;
        self.frontier_out()
    }

    /// Parent candidate (`None` = the root).
    pub fn parent(&self, id: CandidateId) -> Option<CandidateId> {
        self.candidates[id.0].parent
    }

    /// Selects the `total_tokens` best candidates by cumulative log-probability (ties: lower id,
    /// so a parent always precedes a tying child) and returns the tree ordered by depth, then id.
    pub fn finish(self) -> DraftTree {
        let c = &self.candidates;
        let mut order: Vec<usize> = (0..c.len()).filter(|&i| c[i].score.is_finite()).collect();
        order.sort_by(|&a, &b| c[b].score.total_cmp(&c[a].score).then(a.cmp(&b)));
        order.truncate(self.total_tokens);
        let mut rank = vec![0usize; c.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r + 1;
        }
        order.sort_by_key(|&i| (c[i].depth, i));
        let mut tree = DraftTree::root(self.root_token);
        tree.child_dists[0] = self.root_dist.clone();
        let mut ranks = vec![0usize];
        let mut map = vec![usize::MAX; c.len()];
        for i in order {
            ranks.push(rank[i]);
            let parent = match c[i].parent {
                None => 0,
                Some(p) => {
                    assert_ne!(map[p.0], usize::MAX, "a selected node's parent is selected");
                    map[p.0]
                }
            };
            let node = tree.push(parent, c[i].token);
            tree.child_dists[node] = c[i].dist.clone();
            map[i] = node;
        }
        tree.selection_rank = Some(ranks);
        tree
    }
}
