//! [`Models`] over a Chameleon-family target on the host engine (Lumina-mGPT, Anole), with
//! LANTERN's drafter when one is attached (drafting: [`super::chameleon_draft`]).
//!
//! Strategies see image tokens only: a vocabulary of VQ codes (each logit row gathers the image
//! ids' columns, which is the official image-only mask) and `h·w` tokens. Forced tokens never
//! reach them: after an image token that ends a row, Lumina's EOL token is fed as that node's
//! child in the same forward, the node's children hang under it, and the node's logit row is the
//! EOL's (predicting the next row's first token). Under CFG the unconditional branch is its own
//! sequence (Lumina `[boi, h, w]`, Anole `[<s>, boi]`), fed every token, EOLs included: the two
//! sequences are the two rows of one cache, the shorter prefix padded with hidden slots, each row
//! at its own rotary positions, so one forward streams the weights once for both.

use lantern_models::chameleon::layout::{Convention, ImageLayout};
use lantern_models::cpu::{HostChameleon, HostChameleonDrafter, HostKvCache};
use lantern_models::Visibility;

use super::chameleon_draft::{self as draft, DraftBranch, DraftRound};
use super::err;
use crate::model::{tick, DraftInput, DraftParent, ImageCondition, Logits, ModelCallError, Models};
use crate::tree::DraftTree;

/// The conditional sequence and, under CFG, the unconditional one: the rows of one cache.
struct Branch {
    cache: HostKvCache,
    /// Per row, its prompt's length: the rotary position of image token 0.
    prefix: Vec<usize>,
    /// Cache slots before image token 0 (the longest prefix; shorter rows padded).
    slots: usize,
}

impl Branch {
    /// Rotary positions of tokens at sequence `offsets` from image token 0: `[n]` when every row
    /// shares its prefix length, else `[rows · n]`.
    fn positions(&self, offsets: &[usize]) -> Vec<usize> {
        let rows: &[usize] = if self.prefix.iter().all(|&p| p == self.prefix[0]) {
            &self.prefix[..1]
        } else {
            &self.prefix
        };
        rows.iter()
            .flat_map(|p| offsets.iter().map(move |o| p + o))
            .collect()
    }
}

/// What the last verify fed: per tree node, its fed index and its EOL's; the fed token ids and
/// each branch's features of them (`[fed, d]`, for the drafter).
struct Fed {
    node: Vec<usize>,
    eol: Vec<Option<usize>>,
    tokens: Vec<u32>,
    /// Sequence offset of each fed token from image token 0.
    offsets: Vec<usize>,
    hidden: Vec<Vec<f32>>,
}

/// A draft tree with forced EOLs inserted: what one verify forward feeds.
struct Expanded {
    tokens: Vec<u32>,
    parents: Vec<Option<usize>>,
    /// Sequence offset of each fed token from image token 0.
    offsets: Vec<usize>,
    fed: Fed,
}

/// A Chameleon target and its image layout as the strategies drive them.
pub struct ChameleonModels<'a> {
    model: &'a HostChameleon,
    drafter: Option<&'a HostChameleonDrafter>,
    layout: ImageLayout,
    max_tree: usize,
    max_drafted: usize,
    drafts: Vec<DraftBranch>,
    round: Option<DraftRound>,
    seq: Option<Branch>,
    /// SJD's official unconditional prompt (the prompt's last token before the header).
    sjd_uncond: bool,
    committed: usize,
    /// Sequence offset of every committed slot after the prefix, in cache order (in raster
    /// order except after [`Models::place`]).
    slot_offsets: Vec<usize>,
    last: Option<Fed>,
    clock: std::rc::Rc<std::cell::Cell<f64>>,
}

impl<'a> ChameleonModels<'a> {
    /// Wraps a host target generating images of `layout`, verifying trees of up to `max_tree`
    /// nodes.
    pub fn new(model: &'a HostChameleon, layout: ImageLayout, max_tree: usize) -> Self {
        Self {
            model,
            drafter: None,
            layout,
            max_tree: max_tree.max(1),
            max_drafted: 0,
            drafts: Vec::new(),
            round: None,
            seq: None,
            sjd_uncond: false,
            committed: 0,
            slot_offsets: Vec::new(),
            last: None,
            clock: Default::default(),
        }
    }

    /// Attaches LANTERN's drafter, with room for `max_drafted` drafted elements per round.
    pub fn with_drafter(mut self, drafter: &'a HostChameleonDrafter, max_drafted: usize) -> Self {
        self.drafter = Some(drafter);
        self.max_drafted = max_drafted;
        self
    }

    /// The image layout.
    pub fn layout(&self) -> &ImageLayout {
        &self.layout
    }

    /// Runs `tokens` through every row of the sequence at their offsets after each row's
    /// prefix; returns the image-column logits of `rows` (`[cond rows; uncond rows]`, each
    /// `[rows.len(), codes]`) and each row's features of every token (`[tokens, d]`).
    fn run(
        &self,
        branch: &mut Branch,
        tokens: &[u32],
        offsets: &[usize],
        vis: &Visibility,
        rows: &[usize],
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let positions = branch.positions(offsets);
        let out = self
            .model
            .extend(tokens, &positions, vis, &mut branch.cache);
        let n = tokens.len();
        let d = self.model.config().hidden_size;
        let batch = branch.cache.batch();
        let all_rows: Vec<usize> = (0..batch)
            .flat_map(|b| rows.iter().map(move |r| b * n + r))
            .collect();
        let hidden = out
            .hidden
            .chunks_exact(n * d)
            .map(<[f32]>::to_vec)
            .collect();
        (self.image_columns(&out.logits, &all_rows), hidden)
    }

    /// The image-column logits of each branch's drafter outputs, `[cond rows; uncond rows]`.
    fn head_rows(&self, outs: &[Vec<f32>]) -> Vec<f32> {
        outs.iter()
            .flat_map(|o| draft::head_rows(self.model, &self.layout, o))
            .collect()
    }

    /// The image-token columns of full-vocabulary rows `rows` of `logits`.
    fn image_columns(&self, logits: &[f32], rows: &[usize]) -> Vec<f32> {
        let v = self.model.config().vocab_size;
        let ids = &self.layout.vocab.image_ids;
        rows.iter()
            .flat_map(|&r| ids.iter().map(move |&id| logits[r * v + id as usize]))
            .collect()
    }

    /// A one-row cache prefilled with `prefix`, the image-column logits of its last position,
    /// and the features of every position (`[prefix, d]`).
    fn prefill(&self, prefix: &[u32]) -> Result<(HostKvCache, Vec<f32>, Vec<f32>), ModelCallError> {
        if let Some(&bad) = prefix
            .iter()
            .find(|&&t| t as usize >= self.model.config().vocab_size)
        {
            return Err(err(format!(
                "prompt token {bad} is outside the vocabulary of {}",
                self.model.config().vocab_size
            )));
        }
        let n = prefix.len();
        let mut cache = self.model.new_cache(1, n);
        let positions: Vec<usize> = (0..n).collect();
        let out = self
            .model
            .extend(prefix, &positions, &Visibility::causal(n), &mut cache);
        cache.commit_all();
        let logits = self.image_columns(&out.logits, &[n - 1]);
        Ok((cache, logits, out.hidden))
    }

    /// The sequence of prefilled rows `caches` (prompt lengths `prefix`), with room for the
    /// image and a verify tree.
    fn sequence(&self, caches: &[&HostKvCache], prefix: Vec<usize>) -> Branch {
        let slots = prefix.iter().copied().max().unwrap_or(0);
        let room = slots + self.layout.offset_of(self.layout.tokens()) + 2 * self.max_tree + 2;
        let cache = HostKvCache::stack(caches, room.div_ceil(8) * 8);
        Branch {
            cache,
            prefix,
            slots,
        }
    }

    /// The unconditional branch's prompt: the convention's, or under SJD's official CFG the
    /// conditional prompt's last token before the header, then the header.
    fn unconditional_prompt(&self, prompt: &[u32]) -> Vec<u32> {
        let header = self.layout.header();
        if self.sjd_uncond && prompt.len() > header.len() && prompt.ends_with(&header) {
            prompt[prompt.len() - header.len() - 1..].to_vec()
        } else {
            self.layout.uncond_prefix()
        }
    }

    /// The fed sequence of `tree`: tokens, parents and sequence offsets, EOLs inserted.
    fn expand(&self, tree: &DraftTree) -> Result<Expanded, ModelCallError> {
        let ids = &self.layout.vocab.image_ids;
        let n = tree.tokens.len();
        let (mut tokens, mut parents, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
        let mut fed = Fed {
            node: vec![0; n],
            eol: vec![None; n],
            tokens: Vec::new(),
            offsets: Vec::new(),
            hidden: Vec::new(),
        };
        for i in 0..n {
            let code = tree.tokens[i] as usize;
            let id = *ids.get(code).ok_or_else(|| {
                err(format!(
                    "code {code} is outside the codebook of {}",
                    ids.len()
                ))
            })?;
            let parent = tree.parents[i].map(|p| fed.eol[p].unwrap_or(fed.node[p]));
            let k = self.committed + tree.depths[i];
            fed.node[i] = tokens.len();
            tokens.push(id);
            parents.push(parent);
            offsets.push(self.layout.offset_of(k));
            if self.layout.eol_after(k) && k + 1 < self.layout.tokens() {
                fed.eol[i] = Some(tokens.len());
                parents.push(Some(fed.node[i]));
                tokens.push(self.layout.vocab.eol);
                offsets.push(self.layout.offset_of(k) + 1);
            }
        }
        fed.tokens = tokens.clone();
        fed.offsets = offsets.clone();
        Ok(Expanded {
            tokens,
            parents,
            offsets,
            fed,
        })
    }
}

impl Models for ChameleonModels<'_> {
    fn vocab(&self) -> usize {
        self.layout.vocab.codebook_size()
    }

    fn tokens_per_image(&self) -> usize {
        self.layout.tokens()
    }

    fn grid(&self) -> usize {
        self.layout.w
    }

    fn has_drafter(&self) -> bool {
        self.drafter.is_some()
    }

    fn begin(&mut self, cond: &ImageCondition, cfg: bool) -> Result<Logits, ModelCallError> {
        let ImageCondition::Prompt(prompt) = cond else {
            return Err(err(
                "a Chameleon-family target is conditioned on a token prompt, not a class or caption embeddings",
            ));
        };
        if prompt.is_empty() {
            return Err(err("the prompt is empty"));
        }
        let t = std::time::Instant::now();
        let (c, mut buf, hidden) = self.prefill(prompt)?;
        let mut prefixes = vec![(prompt.clone(), hidden)];
        self.seq = Some(if cfg {
            let prefix = self.unconditional_prompt(prompt);
            let (u, ul, hidden) = self.prefill(&prefix)?;
            buf.extend(ul);
            let lengths = vec![prompt.len(), prefix.len()];
            prefixes.push((prefix, hidden));
            self.sequence(&[&c, &u], lengths)
        } else {
            self.sequence(&[&c], vec![prompt.len()])
        });
        self.drafts = match self.drafter {
            Some(d) => prefixes
                .into_iter()
                .map(|(tokens, hidden)| {
                    let room = tokens.len()
                        + self.layout.offset_of(self.layout.tokens())
                        + 2 * self.max_drafted
                        + 4;
                    DraftBranch::new(d, &tokens, hidden, room)
                })
                .collect(),
            None => Vec::new(),
        };
        self.round = None;
        self.committed = 0;
        self.slot_offsets.clear();
        self.last = None;
        tick(&self.clock, t);
        Ok(Logits::from_buffer(self.vocab(), 1, buf, cfg))
    }

    fn verify(&mut self, tree: &DraftTree) -> Result<Logits, ModelCallError> {
        let t = std::time::Instant::now();
        let Expanded {
            tokens,
            parents,
            offsets,
            fed,
        } = self.expand(tree)?;
        let vis = Visibility::tree(&parents);
        let rows: Vec<usize> = (0..tree.tokens.len())
            .map(|i| fed.eol[i].unwrap_or(fed.node[i]))
            .collect();
        let mut fed = fed;
        let mut seq = self.seq.take().ok_or_else(|| err("begin() first"))?;
        let (buf, hidden) = self.run(&mut seq, &tokens, &offsets, &vis, &rows);
        let cfg = seq.cache.batch() > 1;
        self.seq = Some(seq);
        fed.hidden = hidden;
        self.last = Some(fed);
        tick(&self.clock, t);
        Ok(Logits::from_buffer(self.vocab(), rows.len(), buf, cfg))
    }

    fn accept(&mut self, path: &[usize]) {
        let fed = self.last.take().expect("verify() before accept()");
        let keep: Vec<usize> = path
            .iter()
            .flat_map(|&i| std::iter::once(fed.node[i]).chain(fed.eol[i]))
            .collect();
        if let Some(seq) = self.seq.as_mut() {
            seq.cache.commit(&keep);
        }
        self.slot_offsets
            .extend(keep.iter().map(|&i| fed.offsets[i]));
        let d = self.model.config().hidden_size;
        let tokens: Vec<u32> = keep.iter().map(|&i| fed.tokens[i]).collect();
        for (b, hidden) in self.drafts.iter_mut().zip(&fed.hidden) {
            let features: Vec<f32> = keep
                .iter()
                .flat_map(|&i| hidden[i * d..(i + 1) * d].iter().copied())
                .collect();
            b.push_committed(d, &features, &tokens);
        }
        self.committed += path.len();
    }

    fn committed(&self) -> usize {
        self.committed
    }

    fn draft_root(&mut self, root: u32) -> Result<Logits, ModelCallError> {
        let drafter = self.drafter.ok_or_else(|| err("no drafter loaded"))?;
        if root as usize >= self.vocab() {
            return Err(err(format!("root code {root} is outside the codebook")));
        }
        let t = std::time::Instant::now();
        let (round, outs) = draft::draft_root(
            drafter,
            &self.layout,
            &mut self.drafts,
            root,
            self.committed,
        );
        self.round = Some(round);
        let buf = self.head_rows(&outs);
        tick(&self.clock, t);
        Ok(Logits::from_buffer(self.vocab(), 1, buf, outs.len() > 1))
    }

    fn draft_expand(&mut self, inputs: &[DraftInput]) -> Result<Logits, ModelCallError> {
        let drafter = self.drafter.ok_or_else(|| err("no drafter loaded"))?;
        let mut round = self
            .round
            .take()
            .ok_or_else(|| err("draft_root() before draft_expand()"))?;
        let fed = round.inputs_len();
        let mut new = Vec::with_capacity(inputs.len());
        for input in inputs {
            let parent = match input.parent {
                DraftParent::Root => None,
                DraftParent::Fed(i) if i < fed => Some(i),
                DraftParent::Fed(i) => {
                    self.round = Some(round);
                    return Err(err(format!("draft parent {i} was not fed")));
                }
            };
            if input.token as usize >= self.vocab() {
                self.round = Some(round);
                return Err(err(format!(
                    "drafted code {} is outside the codebook",
                    input.token
                )));
            }
            new.push((input.token, parent));
        }
        let t = std::time::Instant::now();
        let outs = draft::draft_expand(
            drafter,
            &self.layout,
            &mut self.drafts,
            &mut round,
            &new,
            self.committed,
        );
        self.round = Some(round);
        let buf = self.head_rows(&outs);
        tick(&self.clock, t);
        Ok(Logits::from_buffer(
            self.vocab(),
            inputs.len(),
            buf,
            outs.len() > 1,
        ))
    }

    fn draft_discard(&mut self) {
        for b in &mut self.drafts {
            b.discard();
        }
        self.round = None;
    }

    /// ZipAR's parallel rows: each token at its raster position, a token that ends a row
    /// followed by its EOL (whose row is the one returned, as in [`Models::verify`]); a token (and
    /// its EOL) sees the committed and fed tokens earlier in the sequence, a placeholder is seen by
    /// no other token, and each branch hides its committed slots from earlier offsets.
    fn place(
        &mut self,
        tokens: &[u32],
        positions: &[usize],
        keep: &[bool],
    ) -> Result<Logits, ModelCallError> {
        let n = tokens.len();
        assert!(
            positions.len() == n && keep.len() == n,
            "one position and keep flag per token"
        );
        if self.last.is_some() {
            return Err(err("place() after an uncommitted verify()"));
        }
        let t = std::time::Instant::now();
        let placed = self.placed(tokens, positions, keep)?;
        let kept = placed.kept();
        let mut seq = self.seq.take().ok_or_else(|| err("begin() first"))?;
        let vis = placed.visibility(&seq, &self.slot_offsets);
        let (buf, _) = self.run(
            &mut seq,
            &placed.tokens,
            &placed.offsets,
            &vis,
            &placed.rows,
        );
        seq.cache.commit(&kept);
        let cfg = seq.cache.batch() > 1;
        self.seq = Some(seq);
        self.slot_offsets
            .extend(kept.iter().map(|&i| placed.offsets[i]));
        self.committed += keep.iter().filter(|&&k| k).count();
        tick(&self.clock, t);
        Ok(Logits::from_buffer(self.vocab(), n, buf, cfg))
    }

    fn forward_ms(&self) -> f64 {
        self.clock.get()
    }

    fn use_sjd_unconditional_prompt(&mut self) -> bool {
        self.sjd_uncond = self.layout.convention == Convention::Lumina;
        self.sjd_uncond
    }
}

/// What one [`Models::place`] feeds: tokens with their EOLs, sequence offsets, whether each is
/// kept, the token an EOL follows, and the row returned per placed token.
struct Placed {
    tokens: Vec<u32>,
    offsets: Vec<usize>,
    keep: Vec<bool>,
    owner: Vec<Option<usize>>,
    rows: Vec<usize>,
}

impl Placed {
    /// Fed indices that are committed.
    fn kept(&self) -> Vec<usize> {
        (0..self.tokens.len()).filter(|&i| self.keep[i]).collect()
    }

    /// Item `b` sees itself, the token its EOL follows, and kept items earlier in the sequence;
    /// committed image slots of `branch` at or after its offset are hidden.
    fn visibility(&self, branch: &Branch, slot_offsets: &[usize]) -> Visibility {
        let m = self.tokens.len();
        let mut vis = Visibility::hidden(m, m);
        for b in 0..m {
            for a in 0..m {
                let earlier = self.keep[a] && self.offsets[a] < self.offsets[b];
                if a == b || self.owner[b] == Some(a) || earlier {
                    vis.set(b, a);
                }
            }
        }
        let prefix = branch.slots;
        vis.hide_committed(prefix + slot_offsets.len(), |i, slot| {
            slot >= prefix && slot_offsets[slot - prefix] >= self.offsets[i]
        });
        vis
    }
}

impl ChameleonModels<'_> {
    /// The items one `place` feeds (EOLs after row ends), checked against the codebook and image.
    fn placed(
        &self,
        tokens: &[u32],
        positions: &[usize],
        keep: &[bool],
    ) -> Result<Placed, ModelCallError> {
        let ids = &self.layout.vocab.image_ids;
        let total = self.layout.tokens();
        let mut p = Placed {
            tokens: Vec::new(),
            offsets: Vec::new(),
            keep: Vec::new(),
            owner: Vec::new(),
            rows: Vec::new(),
        };
        for ((&code, &k), &kept) in tokens.iter().zip(positions).zip(keep) {
            let id = *ids.get(code as usize).ok_or_else(|| {
                err(format!(
                    "code {code} is outside the codebook of {}",
                    ids.len()
                ))
            })?;
            if k >= total {
                return Err(err(format!(
                    "position {k} is outside the image of {total} tokens"
                )));
            }
            let at = p.tokens.len();
            p.tokens.push(id);
            p.offsets.push(self.layout.offset_of(k));
            p.keep.push(kept);
            p.owner.push(None);
            if self.layout.eol_after(k) && k + 1 < total {
                p.tokens.push(self.layout.vocab.eol);
                p.offsets.push(self.layout.offset_of(k) + 1);
                p.keep.push(kept);
                p.owner.push(Some(at));
            }
            p.rows.push(p.tokens.len() - 1);
        }
        Ok(p)
    }
}
