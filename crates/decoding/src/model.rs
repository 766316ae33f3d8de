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
    /// A token prompt (Chameleon-family targets): the conditional sequence up to image token 0,
    /// the image header included.
    Prompt(Vec<u32>),
}

/// One position's raw logits: the conditional row and, under CFG, the unconditional one.
pub type LogitRow = (Vec<f32>, Option<Vec<f32>>);

/// Where the rows of a lazy [`Logits`] come from (a device buffer, or a head not yet applied).
pub trait LogitSource {
    /// Host copies of the given rows, in order.
    fn fetch(&self, rows: &[usize]) -> Vec<LogitRow>;
}

/// Adds the time since `since` to `clock` (ms).
pub(crate) fn tick(clock: &std::cell::Cell<f64>, since: std::time::Instant) {
    clock.set(clock.get() + since.elapsed().as_secs_f64() * 1e3);
}

/// A source that adds its fetch time to a clock.
struct Timed {
    source: Box<dyn LogitSource>,
    clock: std::rc::Rc<std::cell::Cell<f64>>,
}

impl LogitSource for Timed {
    fn fetch(&self, rows: &[usize]) -> Vec<LogitRow> {
        let t = std::time::Instant::now();
        let out = self.source.fetch(rows);
        tick(&self.clock, t);
        out
    }
}

/// Raw next-token logits for a batch of positions: conditional rows and, under CFG,
/// unconditional ones. Lazy logits reach the host a row at a time, when first read: a tree walk
/// reads only the nodes it visits.
pub struct Logits {
    vocab: usize,
    rows: usize,
    data: Data,
}

enum Data {
    /// `[cond rows; uncond rows]`, each `[rows, vocab]`.
    Host { buf: Vec<f32>, cfg: bool },
    Lazy {
        source: Box<dyn LogitSource>,
        fetched: Vec<std::cell::OnceCell<LogitRow>>,
    },
}

impl std::fmt::Debug for Logits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.data {
            Data::Host { .. } => "host",
            Data::Lazy { .. } => "lazy",
        };
        write!(f, "Logits[{} × {}, {kind}]", self.rows, self.vocab)
    }
}

impl Logits {
    /// Host logits: row-major `[rows, vocab]` conditional rows and, under CFG, unconditional ones.
    pub fn new(vocab: usize, cond: Vec<f32>, uncond: Option<Vec<f32>>) -> Self {
        let rows = cond.len() / vocab.max(1);
        let cfg = uncond.is_some();
        let mut buf = cond;
        if let Some(u) = uncond {
            assert_eq!(
                u.len(),
                buf.len(),
                "as many unconditional rows as conditional"
            );
            buf.extend_from_slice(&u);
        }
        Self {
            vocab,
            rows,
            data: Data::Host { buf, cfg },
        }
    }

    /// Host logits already laid out as `[cond rows; uncond rows]` (`[rows, vocab]` each).
    pub fn from_buffer(vocab: usize, rows: usize, buf: Vec<f32>, cfg: bool) -> Self {
        assert_eq!(
            buf.len(),
            rows * vocab * if cfg { 2 } else { 1 },
            "logit buffer size"
        );
        Self {
            vocab,
            rows,
            data: Data::Host { buf, cfg },
        }
    }

    /// The same logits, adding the time of every later lazy row fetch to `clock` (ms).
    pub fn timed(self, clock: &std::rc::Rc<std::cell::Cell<f64>>) -> Self {
        match self.data {
            Data::Lazy { source, fetched } => Self {
                data: Data::Lazy {
                    source: Box::new(Timed {
                        source,
                        clock: std::rc::Rc::clone(clock),
                    }),
                    fetched,
                },
                ..self
            },
            host => Self { data: host, ..self },
        }
    }

    /// Logits whose rows `source` produces on first read.
    pub fn lazy(vocab: usize, rows: usize, source: Box<dyn LogitSource>) -> Self {
        Self {
            vocab,
            rows,
            data: Data::Lazy {
                source,
                fetched: (0..rows).map(|_| std::cell::OnceCell::new()).collect(),
            },
        }
    }

    /// Vocabulary size (row length).
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Fetches the given rows of lazy logits in one batch (rows read later come from it).
    pub fn prefetch(&self, rows: &[usize]) {
        if let Data::Lazy { source, fetched } = &self.data {
            let missing: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&r| fetched[r].get().is_none())
                .collect();
            if !missing.is_empty() {
                for (r, row) in missing.iter().zip(source.fetch(&missing)) {
                    let _ = fetched[*r].set(row);
                }
            }
        }
    }

    /// Row `i` as `(cond, uncond)`.
    pub fn row(&self, i: usize) -> (&[f32], Option<&[f32]>) {
        assert!(i < self.rows, "logit row {i} of {}", self.rows);
        match &self.data {
            Data::Host { buf, cfg } => {
                let v = self.vocab;
                let per = self.rows * v;
                (
                    &buf[i * v..(i + 1) * v],
                    cfg.then(|| &buf[per + i * v..per + (i + 1) * v]),
                )
            }
            Data::Lazy { source, fetched } => {
                let (c, u) = fetched[i].get_or_init(|| {
                    source
                        .fetch(&[i])
                        .pop()
                        .expect("a logit source returns the rows asked for")
                });
                (c, u.as_deref())
            }
        }
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
    /// Image tokens per image (rows × row width).
    fn tokens_per_image(&self) -> usize;
    /// Row width of the token grid (its side for square images).
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
    /// Target: feeds `tokens` at explicit image positions in one forward (ZipAR's parallel rows).
    /// Each sees the condition, the committed tokens whose image position is below its own, and
    /// the fed tokens likewise (itself included, placeholders excluded); then the tokens with
    /// `keep[i]` are committed and the rest (placeholders) dropped. Returns one row per token.
    fn place(
        &mut self,
        tokens: &[u32],
        positions: &[usize],
        keep: &[bool],
    ) -> Result<Logits, ModelCallError> {
        let _ = (tokens, positions, keep);
        Err(ModelCallError(
            "these models cannot feed tokens at explicit image positions (ZipAR)".into(),
        ))
    }
    /// Milliseconds spent in model forwards (target and drafter, later logit fetches included)
    /// since the models were made; strategies difference it per round. 0 when not measured.
    fn forward_ms(&self) -> f64 {
        0.0
    }
    /// SJD's official CFG on Lumina-mGPT (`official_compat` of the Jacobi kinds): the
    /// unconditional sequence keeps the prompt's last token before `[boi, h, w]`; from the next
    /// `begin`. False (and nothing changes) where the target has no such convention.
    fn use_sjd_unconditional_prompt(&mut self) -> bool {
        false
    }
}
