//! What strategies need from the models: a target that scores draft trees and commits accepted
//! paths, and (for speculative strategies) a drafter that proposes children of tree nodes.
//!
//! Everything crossing this seam is host data (`Vec<f32>` logit rows, token ids), so strategies
//! run unchanged over the burn models and over small analytic models in tests.

use crate::tree::DraftTree;

/// What an image is conditioned on.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageCondition {
    /// A class label (c2i).
    Class(usize),
    /// Caption embeddings, row-major `[tokens, dim]` (t2i), and which slots are real (false = padding).
    Caption {
        /// Row-major `[tokens, dim]` values.
        embeddings: Vec<f32>,
        /// Caption positions.
        tokens: usize,
        /// Embedding width.
        dim: usize,
        /// Per-slot validity; `None` = every slot is real.
        valid: Option<Vec<bool>>,
    },
}

/// Raw next-token logits for a batch of positions: conditional rows and, under CFG, unconditional ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Logits {
    /// Vocabulary size (row length).
    pub vocab: usize,
    /// Row-major `[rows, vocab]` conditional logits.
    pub cond: Vec<f32>,
    /// Row-major `[rows, vocab]` unconditional logits (CFG runs only).
    pub uncond: Option<Vec<f32>>,
}

impl Logits {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.cond.len() / self.vocab.max(1)
    }

    /// Row `i` as `(cond, uncond)`.
    pub fn row(&self, i: usize) -> (&[f32], Option<&[f32]>) {
        let r = i * self.vocab..(i + 1) * self.vocab;
        (&self.cond[r.clone()], self.uncond.as_ref().map(|u| &u[r]))
    }
}

/// Where a drafted element hangs when it is fed to the drafter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DraftParent {
    /// A child of the root (the token the target sampled last).
    Root,
    /// A child of the element fed at this index earlier in the same round.
    Fed(usize),
}

/// One element fed to the drafter: a drafted token and its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DraftInput {
    /// The drafted token.
    pub token: u32,
    /// Its parent.
    pub parent: DraftParent,
}

/// Failure inside a model call.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ModelCallError(pub String);

/// A target model, and optionally a drafter, as the strategies drive them.
///
/// Protocol per image: [`Models::begin`] gives the logits of image token 0; the strategy samples it
/// (the *root*). Each round the strategy may draft (`draft_root`, `draft_expand`, `draft_discard`),
/// then [`Models::verify`]s a [`DraftTree`] whose node 0 is the root, decides, and
/// [`Models::accept`]s a root-first path; the next root is the token it samples after that path.
pub trait Models {
    /// Vocabulary size.
    fn vocab(&self) -> usize;
    /// Image tokens per image (grid²).
    fn tokens_per_image(&self) -> usize;
    /// Side of the token grid.
    fn grid(&self) -> usize {
        (self.tokens_per_image() as f64).sqrt().round() as usize
    }
    /// Whether a drafter is attached.
    fn has_drafter(&self) -> bool;
    /// Starts an image: resets all state and runs the condition (both CFG halves when `cfg`).
    /// Returns the logits of image token 0.
    fn begin(&mut self, cond: &ImageCondition, cfg: bool) -> Result<Logits, ModelCallError>;
    /// Scores `tree` after the committed tokens: one row per node, predicting the node's next token.
    fn verify(&mut self, tree: &DraftTree) -> Result<Logits, ModelCallError>;
    /// Commits the nodes of the last verified tree on `path` (root first).
    fn accept(&mut self, path: &[usize]);
    /// Image tokens committed so far.
    fn committed(&self) -> usize;
    /// Drafter: catches up on everything the target committed since the last call and the new
    /// `root`; returns logits for the root's children.
    fn draft_root(&mut self, root: u32) -> Result<Logits, ModelCallError>;
    /// Drafter: runs drafted elements (parents fed earlier this round, or the root) and returns
    /// logits for each element's children.
    fn draft_expand(&mut self, inputs: &[DraftInput]) -> Result<Logits, ModelCallError>;
    /// Drafter: forgets the elements drafted this round.
    fn draft_discard(&mut self);
}
