//! The shape of the draft tree a speculative strategy builds each round (a configuration value:
//! chains, static choice lists and presets, EAGLE-2 dynamic trees, budgets), parsed from the
//! names sweep files and `lantern generate` use.

use serde::{Deserialize, Serialize};

use crate::tree::StaticTree;

/// The shape of the draft tree a speculative strategy builds each round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TreeShape {
    /// A fixed tree of child ranks (EAGLE-1 / LANTERN++); a chain has one child per level.
    Static {
        /// Preset name or a label for a user list.
        name: String,
        /// Child-rank paths, e.g. `[[0], [1], [0, 0]]`.
        choices: Vec<Vec<usize>>,
    },
    /// EAGLE-2: expand the `top_k` best nodes per level for `depth` levels, keep `total_tokens`.
    Dynamic {
        /// Children per expansion and frontier width.
        top_k: usize,
        /// Expansion rounds after the root's (the tree is at most `depth + 1` deep).
        depth: usize,
        /// Draft nodes kept (the tree budget).
        total_tokens: usize,
    },
}

impl TreeShape {
    /// A chain of `depth` drafted tokens.
    pub fn chain(depth: usize) -> Self {
        Self::Static {
            name: format!("chain{depth}"),
            choices: (1..=depth).map(|d| vec![0; d]).collect(),
        }
    }

    /// A named static preset (`naive_extend_57`, `mc_sim_7b_63`, …).
    pub fn static_preset(name: &str) -> Option<Self> {
        let tree = StaticTree::preset(name)?;
        Some(Self::Static {
            name: name.to_string(),
            choices: rank_paths(&tree),
        })
    }

    /// LANTERN's EAGLE-2 default for LlamaGen: 58 draft nodes, depth 4 (5 levels), top-10.
    pub fn lantern_dynamic() -> Self {
        Self::Dynamic {
            top_k: 10,
            depth: 4,
            total_tokens: 58,
        }
    }

    /// Parses `dynamic` (LANTERN's EAGLE-2 default), `dynamic:TOP_K:DEPTH:TOTAL`, `chain:DEPTH`, a
    /// static preset name, a user list of child-rank paths such as `[[0], [1], [0, 0]]`, or any of
    /// the named shapes with a budget, `NAME@B` (e.g. `dynamic@16`: see
    /// [`TreeShape::with_budget`]).
    pub fn parse(s: &str) -> Result<Self, String> {
        let allowed = || {
            format!(
                "allowed: dynamic, dynamic:TOP_K:DEPTH:TOTAL, chain:DEPTH, a list like [[0], [1], [0, 0]], {}, or NAME@BUDGET (dynamic@16)",
                StaticTree::preset_names().join(", ")
            )
        };
        if let Some((name, budget)) = s.rsplit_once('@') {
            let b = budget
                .parse::<usize>()
                .ok()
                .filter(|&b| b > 0)
                .ok_or_else(|| {
                    format!("tree '{s}': the budget '{budget}' is not an integer ≥ 1")
                })?;
            return Self::parse(name)?
                .with_budget(b)
                .map_err(|e| format!("tree '{s}': {e}"));
        }
        if s.trim_start().starts_with('[') {
            let choices: Vec<Vec<usize>> = serde_json::from_str(s).map_err(|e| {
                format!(
                    "tree '{s}' is not a list of rank paths ({e}); {}",
                    allowed()
                )
            })?;
            StaticTree::from_choices(&choices).map_err(|e| format!("tree '{s}': {e}"))?;
            return Ok(Self::Static {
                name: "custom".into(),
                choices,
            });
        }
        let nums = |rest: &str| -> Result<Vec<usize>, String> {
            rest.split(':')
                .map(|x| {
                    x.parse::<usize>()
                        .map_err(|_| format!("tree '{s}': '{x}' is not a number; {}", allowed()))
                })
                .collect()
        };
        if s == "dynamic" {
            return Ok(Self::lantern_dynamic());
        }
        if let Some(rest) = s.strip_prefix("dynamic:") {
            return match nums(rest)?.as_slice() {
                &[top_k, depth, total_tokens] if top_k > 0 && total_tokens > 0 => {
                    Ok(Self::Dynamic {
                        top_k,
                        depth,
                        total_tokens,
                    })
                }
                _ => Err(format!("tree '{s}': {}", allowed())),
            };
        }
        if let Some(rest) = s.strip_prefix("chain:") {
            return match nums(rest)?.as_slice() {
                &[depth] if depth > 0 => Ok(Self::chain(depth)),
                _ => Err(format!("tree '{s}': {}", allowed())),
            };
        }
        Self::static_preset(s).ok_or_else(|| format!("unknown tree '{s}'; {}", allowed()))
    }

    /// Draft nodes per round (the tree budget).
    pub fn budget(&self) -> usize {
        match self {
            Self::Static { choices, .. } => choices.len(),
            Self::Dynamic { total_tokens, .. } => *total_tokens,
        }
    }

    /// Elements fed to the drafter per round besides the root: the expanded static nodes, or
    /// `top_k` per dynamic expansion round.
    pub fn drafted_per_round(&self) -> usize {
        match self {
            Self::Static { .. } => self.budget(),
            Self::Dynamic { top_k, depth, .. } => top_k * depth,
        }
    }

    /// The same shape with at most `budget` draft nodes. A dynamic tree keeps only the drafting
    /// that budget can use: a kept node's rank among its siblings and the size of its level's
    /// frontier are both below the budget, and a kept path holds at most `budget` nodes, so
    /// `top_k ≤ budget` and `depth ≤ budget − 1` build exactly the tree the full drafting would
    /// keep, for fewer drafter rows and passes.
    pub fn with_budget(&self, budget: usize) -> Result<Self, String> {
        let budget = budget.max(1);
        Ok(match self {
            Self::Static { name, .. } => {
                let tree = self.static_tree()?.truncated(usize::MAX, budget);
                Self::Static {
                    name: format!("{name}@{budget}"),
                    choices: rank_paths(&tree),
                }
            }
            Self::Dynamic { top_k, depth, .. } => Self::Dynamic {
                top_k: (*top_k).min(budget),
                depth: (*depth).min(budget - 1),
                total_tokens: budget,
            },
        })
    }

    /// The static tree of a static shape (an error for a dynamic one).
    pub(crate) fn static_tree(&self) -> Result<StaticTree, String> {
        match self {
            Self::Static { name, choices } => {
                StaticTree::from_choices(choices).map_err(|e| format!("static tree '{name}': {e}"))
            }
            Self::Dynamic { .. } => Err("not a static tree".into()),
        }
    }
}

/// The child-rank path of every node of a static tree, in node order.
fn rank_paths(tree: &StaticTree) -> Vec<Vec<usize>> {
    let nodes = tree.nodes();
    (0..nodes.len())
        .map(|mut i| {
            let mut path = vec![nodes[i].rank];
            while let Some(p) = nodes[i].parent {
                path.push(nodes[p].rank);
                i = p;
            }
            path.reverse();
            path
        })
        .collect()
}
