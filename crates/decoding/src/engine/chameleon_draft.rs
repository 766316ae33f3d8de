//! The drafter side of [`super::ChameleonModels`]: one drafter cache per CFG branch, fed EAGLE's
//! elements (the target's post-norm feature at sequence position j with the token at j + 1) at
//! position j of that branch, so prompt elements differ between branches while image elements
//! are shared. A drafted token that ends a Lumina row is followed by an EOL element (fed in a
//! second pass: its feature is the token element's output), and the token's children are drafted
//! from the EOL element's output, as the sequence runs token, EOL, next row.

use lantern_models::chameleon::layout::ImageLayout;
use lantern_models::cpu::{HostChameleon, HostChameleonDrafter, HostKvCache};
use lantern_models::Visibility;

/// One CFG branch's drafter state.
pub(super) struct DraftBranch {
    cache: HostKvCache,
    /// Sequence length of the branch before image token 0.
    prefix: usize,
    /// Elements committed to the drafter cache (= sequence position of the next feature).
    len: usize,
    /// Target features `[n, d]` not fed yet, and the token after each (the last one's becomes
    /// known with the next root).
    features: Vec<f32>,
    next: Vec<u32>,
    /// Outputs `[pending, d]` of the elements fed this round.
    round: Vec<f32>,
    /// Output of the root element (committed this round).
    root_out: Vec<f32>,
}

impl DraftBranch {
    /// A branch whose target prefill over `tokens` produced `features` (`[tokens, d]`).
    pub(super) fn new(
        drafter: &HostChameleonDrafter,
        tokens: &[u32],
        features: Vec<f32>,
        room: usize,
    ) -> Self {
        Self {
            cache: drafter.new_cache(1, room),
            prefix: tokens.len(),
            len: 0,
            features,
            next: tokens[1..].to_vec(),
            round: Vec::new(),
            root_out: Vec::new(),
        }
    }

    /// Drops the elements drafted this round.
    pub(super) fn discard(&mut self) {
        self.cache.discard();
        self.round.clear();
    }

    /// Adds the committed target features `[n, d]` of sequence tokens `tokens` (in order).
    pub(super) fn push_committed(&mut self, d: usize, features: &[f32], tokens: &[u32]) {
        // The last pending feature's next token is the first committed one.
        if self.next.len() < self.features.len() / d {
            self.next.push(tokens[0]);
        }
        self.features.extend_from_slice(features);
        self.next.extend_from_slice(&tokens[1..]);
    }
}

/// An element fed this round and its parent element (`None`: the committed root element).
struct Element {
    parent: Option<usize>,
}

/// A drafted input of the strategies: its depth below the root and the element whose output
/// gives its children (its EOL element's when it ends a row).
struct Drafted {
    depth: usize,
    effective: usize,
}

/// The elements of one round, shared by both branches.
#[derive(Default)]
pub(super) struct DraftRound {
    elements: Vec<Element>,
    inputs: Vec<Drafted>,
    /// The root's effective element (`None`: the committed root element).
    root: Option<usize>,
}

impl DraftRound {
    /// Drafted inputs fed so far this round.
    pub(super) fn inputs_len(&self) -> usize {
        self.inputs.len()
    }

    /// Pending elements on the path from `e` up to the committed prefix.
    fn ancestors(&self, mut e: Option<usize>) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some(i) = e {
            out.push(i);
            e = self.elements[i].parent;
        }
        out
    }
}

/// Whether a forced EOL follows image token `k` inside the image.
pub(super) fn ends_row(layout: &ImageLayout, k: usize) -> bool {
    layout.eol_after(k) && k + 1 < layout.tokens()
}

/// The image-token columns of the target head over drafter outputs `[n, d]`.
pub(super) fn head_rows(target: &HostChameleon, layout: &ImageLayout, out: &[f32]) -> Vec<f32> {
    let v = target.config().vocab_size;
    let logits = target.logits(out);
    let ids = &layout.vocab.image_ids;
    logits
        .chunks(v)
        .flat_map(|row| ids.iter().map(move |&id| row[id as usize]))
        .collect()
}

/// Feeds every branch's pending target features with `root` (image token `k`) and commits them;
/// if the root ends a row, feeds the EOL element after it (pending). Returns the round and, per
/// branch, the output that predicts the root's next image token.
pub(super) fn draft_root(
    drafter: &HostChameleonDrafter,
    layout: &ImageLayout,
    branches: &mut [DraftBranch],
    root: u32,
    k: usize,
) -> (DraftRound, Vec<Vec<f32>>) {
    let d = drafter.config().hidden_size;
    let mut round = DraftRound::default();
    let eol = ends_row(layout, k);
    if eol {
        round.elements.push(Element { parent: None });
        round.root = Some(0);
    }
    let outs = branches
        .iter_mut()
        .map(|b| {
            b.cache.discard();
            let mut tokens = std::mem::take(&mut b.next);
            tokens.push(layout.vocab.image_ids[root as usize]);
            let features = std::mem::take(&mut b.features);
            let n = tokens.len();
            let positions: Vec<usize> = (b.len..b.len + n).collect();
            let vis = Visibility::causal(n);
            let out = drafter.extend(&features, &tokens, &positions, &vis, &mut b.cache);
            b.cache.commit_all();
            b.len += n;
            b.root_out = out[(n - 1) * d..].to_vec();
            b.round.clear();
            if !eol {
                return b.root_out.clone();
            }
            let pos = [b.prefix + layout.offset_of(k)];
            let vis = Visibility::causal(1);
            let out = drafter.extend(&b.root_out, &[layout.vocab.eol], &pos, &vis, &mut b.cache);
            b.round.extend_from_slice(&out);
            out
        })
        .collect();
    (round, outs)
}

/// Feeds `new` elements (`(token id, image index, parent element)`) to one branch after its
/// pending ones; returns their outputs and appends them to the branch's round.
fn feed(
    drafter: &HostChameleonDrafter,
    b: &mut DraftBranch,
    round: &DraftRound,
    new: &[(u32, usize, Option<usize>)],
    first: usize,
) -> Vec<f32> {
    let d = drafter.config().hidden_size;
    let mut features = Vec::with_capacity(new.len() * d);
    for &(_, _, parent) in new {
        match parent {
            None => features.extend_from_slice(&b.root_out),
            Some(e) => features.extend_from_slice(&b.round[e * d..(e + 1) * d]),
        }
    }
    let tokens: Vec<u32> = new.iter().map(|n| n.0).collect();
    let positions: Vec<usize> = new.iter().map(|n| b.prefix + n.1).collect();
    let ancestors: Vec<Vec<usize>> = (0..new.len())
        .map(|i| round.ancestors(round.elements[first + i].parent))
        .collect();
    let vis = Visibility::tree_after(first, &ancestors, &vec![None; new.len()]);
    let out = drafter.extend(&features, &tokens, &positions, &vis, &mut b.cache);
    b.round.extend_from_slice(&out);
    out
}

/// One expansion: drafted image tokens (`(code, parent input)`, parent `None` = the root) at
/// depth parent + 1, fed to every branch, then EOL elements after those that end a row. Returns
/// per branch the outputs `[inputs, d]` that predict each input's next image token.
pub(super) fn draft_expand(
    drafter: &HostChameleonDrafter,
    layout: &ImageLayout,
    branches: &mut [DraftBranch],
    round: &mut DraftRound,
    inputs: &[(u32, Option<usize>)],
    committed: usize,
) -> Vec<Vec<f32>> {
    let d = drafter.config().hidden_size;
    let first = round.elements.len();
    let mut tokens = Vec::with_capacity(inputs.len());
    for &(code, parent) in inputs {
        let (depth, parent_el) = match parent {
            None => (1, round.root),
            Some(i) => (round.inputs[i].depth + 1, Some(round.inputs[i].effective)),
        };
        let k = committed + depth;
        round.elements.push(Element { parent: parent_el });
        round.inputs.push(Drafted {
            depth,
            effective: round.elements.len() - 1,
        });
        // Element (feature before token k, token k) sits at that feature's position.
        tokens.push((
            layout.vocab.image_ids[code as usize],
            layout.offset_of(k) - 1,
            parent_el,
        ));
    }
    let base = round.inputs.len() - inputs.len();
    let eols: Vec<usize> = (0..inputs.len())
        .filter(|&i| ends_row(layout, committed + round.inputs[base + i].depth))
        .collect();
    let eol_first = round.elements.len();
    let mut eol_elements = Vec::with_capacity(eols.len());
    for &i in &eols {
        let el = first + i;
        round.elements.push(Element { parent: Some(el) });
        round.inputs[base + i].effective = round.elements.len() - 1;
        let k = committed + round.inputs[base + i].depth;
        eol_elements.push((layout.vocab.eol, layout.offset_of(k), Some(el)));
    }
    let round = &*round;
    branches
        .iter_mut()
        .map(|b| {
            let mut out = feed(drafter, b, round, &tokens, first);
            if !eol_elements.is_empty() {
                let eol_out = feed(drafter, b, round, &eol_elements, eol_first);
                for (j, &i) in eols.iter().enumerate() {
                    out[i * d..(i + 1) * d].copy_from_slice(&eol_out[j * d..(j + 1) * d]);
                }
            }
            out
        })
        .collect()
}
