//! Speculative Jacobi decoding (Teng et al., ICLR 2025): a window of draft tokens refined by
//! Jacobi iterations and verified with the speculative-sampling rule; training-free and lossless.
//! The scheduler is shared with its forks (SCD, GSD) in `jacobi.rs`; this file holds how fresh
//! window positions get their first draft.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// How a fresh window position gets its first draft token (its `q` is one-hot).
///
/// Every choice keeps SJD exact here: a fresh draft is made at the start of a round and tested in
/// that same round, and only once every earlier window position has been accepted, so the token it
/// copies (committed, or a draft accepted just before it) is then part of the accepted prefix and
/// the draft is a function of that prefix and of randomness independent of the target (a
/// point-mass proposal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum JacobiInit {
    /// Copy the token one column to the left in the same row (SJD's `repeat_horizon`); a row's
    /// first column draws uniformly.
    Horizontal,
    /// Copy the token one row up in the same column ("Vertical-Repeat"); row 0 draws uniformly.
    Vertical,
    /// Draw uniformly from the vocabulary (what the official LlamaGen path falls back to).
    Random,
}

impl TryFrom<String> for JacobiInit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl JacobiInit {
    /// Parses `horizontal`, `vertical` or `random`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "horizontal" => Ok(Self::Horizontal),
            "vertical" => Ok(Self::Vertical),
            "random" => Ok(Self::Random),
            other => Err(format!(
                "initialisation '{other}' is not known; allowed: horizontal, vertical, random"
            )),
        }
    }

    /// The name as written in configs and records.
    pub fn name(self) -> &'static str {
        match self {
            Self::Horizontal => "horizontal",
            Self::Vertical => "vertical",
            Self::Random => "random",
        }
    }
}

/// The proposal a fresh window draft records (SJD-PAC's quirk P2, reference/training-free-2026.md
/// §1f): both keep SJD exact, they differ in how often a fresh draft is accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum FreshProposal {
    /// A point mass at the draft (SJD's convention): accepted with probability p(x).
    #[default]
    OneHot,
    /// Uniform over the vocabulary (SJD-PAC's), for drafts drawn uniformly (`init = random`):
    /// accepted with min(1, V·p(x)), residual `norm(max(p − 1/V, 0))`.
    Uniform,
}

impl TryFrom<String> for FreshProposal {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl FreshProposal {
    /// Parses `one_hot` or `uniform`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "one_hot" => Ok(Self::OneHot),
            "uniform" => Ok(Self::Uniform),
            other => Err(format!(
                "fresh proposal '{other}' is not known; allowed: one_hot, uniform"
            )),
        }
    }

    /// The name as written in configs and records.
    pub fn name(self) -> &'static str {
        match self {
            Self::OneHot => "one_hot",
            Self::Uniform => "uniform",
        }
    }

    /// The recorded proposal of a fresh draft over `vocab` tokens (`None` = one-hot).
    pub(super) fn q(self, vocab: usize) -> Option<Vec<f32>> {
        match self {
            Self::OneHot => None,
            Self::Uniform => Some(vec![1.0 / vocab as f32; vocab]),
        }
    }
}

/// The first draft of image token `index`, given the tokens known so far (committed, then this
/// window's drafts), on a `grid`-wide raster.
pub(super) fn init_token(
    init: JacobiInit,
    index: usize,
    known: &[u32],
    grid: usize,
    vocab: usize,
    rng: &mut Rng,
) -> u32 {
    let copy = match init {
        JacobiInit::Horizontal if !index.is_multiple_of(grid) => index.checked_sub(1),
        JacobiInit::Vertical => index.checked_sub(grid),
        _ => None,
    };
    match copy.and_then(|i| known.get(i)) {
        Some(&t) => t,
        None => (rng.next_u64() % vocab as u64) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialisations_copy_the_left_or_upper_token() {
        let known: Vec<u32> = (0..10).collect(); // a 4-wide grid: rows [0..4), [4..8), [8..10)
        let mut rng = Rng::new(1);
        assert_eq!(
            init_token(JacobiInit::Horizontal, 9, &known, 4, 100, &mut rng),
            8
        );
        assert_eq!(
            init_token(JacobiInit::Vertical, 9, &known, 4, 100, &mut rng),
            5
        );
        assert_eq!(
            init_token(JacobiInit::Vertical, 10, &known, 4, 100, &mut rng),
            6
        );
        // Row 0 (vertical) and column 0 (horizontal) draw uniformly.
        let mut draws: Vec<u32> = (0..50)
            .map(|_| init_token(JacobiInit::Vertical, 2, &known, 4, 100, &mut rng))
            .collect();
        draws.extend(
            (0..50).map(|_| init_token(JacobiInit::Horizontal, 8, &known, 4, 100, &mut rng)),
        );
        assert!(draws.iter().all(|&t| t < 100));
        assert!(draws.iter().any(|&t| t >= 10), "uniform draws, not copies");
        for p in ["horizontal", "vertical", "random"] {
            assert_eq!(JacobiInit::parse(p).unwrap().name(), p);
        }
        assert!(JacobiInit::parse("diagonal").is_err());
    }
}
