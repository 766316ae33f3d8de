//! ZipAR (ICML 2025): parallel rows through spatial locality, no drafts and no verification.
//! Row 0 is decoded plainly; row r + 1 opens once row r holds `w` tokens, and from then on every
//! target forward samples the next column of every open row. Lossy by design: a lower row's token
//! is sampled without the upper rows' tokens beyond their frontier.
//!
//! Schedule as in the official LlamaGen code (forwards = `2W + (W − 2)·w` on a `W × W` grid):
//! each forward feeds, upper rows first, the last token of a row completed by the previous
//! forward (its keys and values), and for every open row its latest token at its own position;
//! a row that has just opened is fed a placeholder instead (the latest token of the row two
//! above, at the position of the last column of the row above: the input that would predict the
//! row's first token in raster order; row 1 gets the real last token of row 0).
//!
//! Attention is the principled one (the spec's Z1/Z2): a token sees the condition and the tokens
//! already fed whose raster position is below its own; a placeholder is seen by no other token
//! and is dropped after its forward. (The official code also lets a query see the empty cache
//! slots of columns not generated yet, and keeps the placeholder's keys until overwritten.)

use std::time::Instant;

use super::{ms_since, pick, target_dist, DecodeError, Generation, StepLog, Streams};
use crate::model::{ImageCondition, Models};
use crate::rng::Rng;
use crate::sampling::Sampling;
use crate::tree::DraftTree;

/// Target forwards of one image (prefill included) on a `grid × grid` raster with window `w`
/// (`2·grid + (grid − 2)·w` for 1 ≤ w < grid; see [`zipar_forwards_hw`]).
pub fn zipar_forwards(grid: usize, w: usize) -> usize {
    zipar_forwards_hw(grid, grid, w)
}

/// Target forwards of one image (prefill included) on a raster of `height` rows of `width`
/// tokens with window `w ≥ 1`: `2·width + (height − 2)·w` while `w < width`; at `w ≥ width` every
/// row opens as the one above completes, one token a forward, `height · width` (AR's count).
pub fn zipar_forwards_hw(height: usize, width: usize, w: usize) -> usize {
    if w >= width {
        return height * width;
    }
    2 * width + (height.saturating_sub(2)) * w
}

/// Generates one image with ZipAR window `w`.
pub(super) fn generate(
    models: &mut dyn Models,
    w: usize,
    sampling: &Sampling,
    cond: &ImageCondition,
    rng: &Rng,
) -> Result<Generation, DecodeError> {
    // `grid` is the row width; rows need not be square (Chameleon-family layouts).
    let (n, grid) = (models.tokens_per_image(), models.grid());
    let height = n / grid.max(1);
    if height * grid != n || grid < 2 || height < 2 {
        return Err(DecodeError::Setup(format!(
            "ZipAR needs a raster of at least 2 × 2 tokens (this model has {n} image tokens in rows of {grid})"
        )));
    }
    if w == 0 {
        return Err(DecodeError::Setup(
            "the ZipAR window must be ≥ 1 (a window at least the row width opens each row as the one above completes: raster order)".into(),
        ));
    }
    let mut streams = Streams::new(rng);
    let start = Instant::now();
    let logits = models.begin(cond, sampling.uses_cfg())?;
    let first = target_dist(sampling, &logits, 0, 0)?;
    let mut rows: Vec<Vec<u32>> = vec![Vec::with_capacity(grid); height];
    rows[0].push(pick(sampling, &first, &mut streams.accept));
    let prefill_ms = ms_since(start);
    let mut steps = Vec::new();
    let log = |produced: usize, bonus: u32, t: Instant, f0: f64, models: &dyn Models| StepLog {
        accepted_ranks: Vec::new(),
        drafted: 0,
        // τ counts tokens per forward: the tokens beyond the first are reported as "accepted".
        accepted: produced.saturating_sub(1),
        path: vec![0],
        bonus,
        draft_ms: 0.0,
        verify_ms: ms_since(t),
        forward_ms: models.forward_ms() - f0,
        tvd_emitted: None,
        regime: None,
    };
    // Row 0: plain decoding.
    while rows[0].len() < grid {
        let t = Instant::now();
        let f0 = models.forward_ms();
        let root = *rows[0].last().expect("token 0 exists");
        let logits = models.verify(&DraftTree::root(root))?;
        let p = target_dist(sampling, &logits, 0, rows[0].len())?;
        let next = pick(sampling, &p, &mut streams.accept);
        models.accept(&[0]);
        rows[0].push(next);
        steps.push(log(1, next, t, f0, models));
    }
    // Parallel rows. Row 0's last token is fed as row 1's first input (its flush).
    let mut open = vec![1usize];
    let mut flush: Vec<usize> = Vec::new();
    while !open.is_empty() {
        let t = Instant::now();
        let f0 = models.forward_ms();
        let (mut tokens, mut positions, mut keep) = (Vec::new(), Vec::new(), Vec::new());
        let mut predicts = Vec::new();
        for &r in &flush {
            // A row that opens as the one above completes takes that row's last token as its
            // input (below), which flushes it too.
            if open.contains(&(r + 1)) && rows[r + 1].is_empty() {
                continue;
            }
            tokens.push(rows[r][grid - 1]);
            positions.push(r * grid + grid - 1);
            keep.push(true);
        }
        for &r in &open {
            let (token, position, real) = match rows[r].last() {
                Some(&last) => (last, r * grid + rows[r].len() - 1, true),
                // The row above is complete (row 1 always; later rows when w ≥ the width): its
                // real last token predicts this row's first, as in raster order.
                None if rows[r - 1].len() == grid => {
                    (rows[r - 1][grid - 1], (r - 1) * grid + grid - 1, true)
                }
                None => (
                    *rows[r - 2].last().expect("the row two above has started"),
                    (r - 1) * grid + grid - 1,
                    false,
                ),
            };
            predicts.push((tokens.len(), r));
            tokens.push(token);
            positions.push(position);
            keep.push(real);
        }
        let logits = models.place(&tokens, &positions, &keep)?;
        let mut last = 0;
        for &(row, r) in &predicts {
            let index = r * grid + rows[r].len();
            let p = target_dist(sampling, &logits, row, index)?;
            last = pick(sampling, &p, &mut streams.accept);
            rows[r].push(last);
        }
        steps.push(log(predicts.len(), last, t, f0, models));
        flush = open
            .iter()
            .copied()
            .filter(|&r| rows[r].len() == grid)
            .collect();
        open.retain(|&r| rows[r].len() < grid);
        // Row r + 1 opens once row r holds w tokens (or is complete).
        for r in 1..height - 1 {
            let started = !rows[r + 1].is_empty() || open.contains(&(r + 1));
            if !started && rows[r].len() >= w.min(grid) {
                open.push(r + 1);
            }
        }
    }
    Ok(Generation {
        tokens: rows.concat(),
        steps,
        prefill_ms,
        latency_ms: ms_since(start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_counts_follow_the_official_formula() {
        assert_eq!(zipar_forwards(16, 8), 144);
        assert_eq!(zipar_forwards(24, 8), 224);
        assert_eq!(zipar_forwards(24, 4), 136);
        assert_eq!(zipar_forwards(32, 8), 304);
        assert_eq!(zipar_forwards_hw(4, 6, 2), 16);
        assert_eq!(zipar_forwards_hw(4, 6, 6), 24, "raster order: AR's count");
        assert_eq!(zipar_forwards_hw(4, 6, 16), 24);
    }
}
