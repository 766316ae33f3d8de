//! Forward counts (NFE): a [`Models`] wrapper that counts the target's and the drafter's forward
//! calls, which wall clock alone hides (training-free methods trade forwards for width).

use crate::model::{DraftInput, ImageCondition, Logits, ModelCallError, Models};
use crate::tree::DraftTree;

/// Forward calls made through a [`Counted`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forwards {
    /// Target forwards: the prefill, verifications and placed rows.
    pub target: usize,
    /// Drafter forwards: root catch-ups and expansions.
    pub drafter: usize,
}

/// `inner`, counting forwards.
pub struct Counted<'a> {
    inner: &'a mut dyn Models,
    forwards: Forwards,
}

impl<'a> Counted<'a> {
    /// Wraps `inner` with zero counts.
    pub fn new(inner: &'a mut dyn Models) -> Self {
        Self {
            inner,
            forwards: Forwards::default(),
        }
    }

    /// The forwards counted so far.
    pub fn forwards(&self) -> Forwards {
        self.forwards
    }
}

impl Models for Counted<'_> {
    fn vocab(&self) -> usize {
        self.inner.vocab()
    }
    fn tokens_per_image(&self) -> usize {
        self.inner.tokens_per_image()
    }
    fn grid(&self) -> usize {
        self.inner.grid()
    }
    fn has_drafter(&self) -> bool {
        self.inner.has_drafter()
    }
    fn begin(&mut self, cond: &ImageCondition, cfg: bool) -> Result<Logits, ModelCallError> {
        self.forwards.target += 1;
        self.inner.begin(cond, cfg)
    }
    fn verify(&mut self, tree: &DraftTree) -> Result<Logits, ModelCallError> {
        self.forwards.target += 1;
        self.inner.verify(tree)
    }
    fn accept(&mut self, path: &[usize]) {
        self.inner.accept(path)
    }
    fn committed(&self) -> usize {
        self.inner.committed()
    }
    fn draft_root(&mut self, root: u32) -> Result<Logits, ModelCallError> {
        self.forwards.drafter += 1;
        self.inner.draft_root(root)
    }
    fn draft_expand(&mut self, inputs: &[DraftInput]) -> Result<Logits, ModelCallError> {
        self.forwards.drafter += 1;
        self.inner.draft_expand(inputs)
    }
    fn draft_discard(&mut self) {
        self.inner.draft_discard()
    }
    fn place(
        &mut self,
        tokens: &[u32],
        positions: &[usize],
        keep: &[bool],
    ) -> Result<Logits, ModelCallError> {
        self.forwards.target += 1;
        self.inner.place(tokens, positions, keep)
    }
    fn forward_ms(&self) -> f64 {
        self.inner.forward_ms()
    }
}
