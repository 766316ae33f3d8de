//! Token embedding rows for distance tests between codes (GSD's embedding-distance filter), and
//! the side tables a strategy may read besides the models.

use crate::neighbours::NeighbourTable;
use crate::rng::Rng;

/// Pairs sampled to calibrate a distance threshold as a quantile.
const CALIBRATION_PAIRS: usize = 4096;

/// Row-major `[vocab, dim]` embedding rows, with a sample of squared pair distances for turning
/// a quantile into a threshold on this table's own scale.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenEmbeddings {
    rows: Vec<f32>,
    vocab: usize,
    dim: usize,
    /// Squared distances of `CALIBRATION_PAIRS` random distinct pairs, ascending.
    sample: Vec<f32>,
}

impl TokenEmbeddings {
    /// Wraps `[vocab, dim]` rows; samples pair distances with a fixed seed (deterministic).
    pub fn new(rows: Vec<f32>, vocab: usize, dim: usize) -> Self {
        assert_eq!(rows.len(), vocab * dim, "embeddings are not [vocab, dim]");
        let mut e = Self {
            rows,
            vocab,
            dim,
            sample: Vec::new(),
        };
        if vocab > 1 {
            let mut rng = Rng::new(0x6753_4421);
            let mut s: Vec<f32> = (0..CALIBRATION_PAIRS)
                .map(|_| {
                    let a = (rng.next_u64() % vocab as u64) as u32;
                    let mut b = (rng.next_u64() % (vocab as u64 - 1)) as u32;
                    if b >= a {
                        b += 1;
                    }
                    e.sq_distance(a, b)
                })
                .collect();
            s.sort_by(f32::total_cmp);
            e.sample = s;
        }
        e
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Row width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `‖E_a − E_b‖²`.
    pub fn sq_distance(&self, a: u32, b: u32) -> f32 {
        let (a, b) = (a as usize * self.dim, b as usize * self.dim);
        self.rows[a..a + self.dim]
            .iter()
            .zip(&self.rows[b..b + self.dim])
            .map(|(x, y)| (x - y) * (x - y))
            .sum()
    }

    /// The `q`-quantile (q in [0, 1]) of squared distances between random distinct codes: a
    /// threshold on this table's own scale. q = 1 gives +∞ (the filter is off).
    pub fn distance_quantile(&self, q: f32) -> f32 {
        if q >= 1.0 || self.sample.is_empty() {
            return f32::INFINITY;
        }
        let i = ((q.max(0.0) * self.sample.len() as f32) as usize).min(self.sample.len() - 1);
        self.sample[i]
    }
}

/// Side tables a strategy may read besides the models: LANTERN's latent neighbours, GSD's
/// embedding rows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tables<'a> {
    /// Latent-neighbour table (LANTERN, LANTERN++, the bounded rule).
    pub neighbours: Option<&'a NeighbourTable>,
    /// The target's input token embeddings (GSD).
    pub embeddings: Option<&'a TokenEmbeddings>,
}

impl<'a> Tables<'a> {
    /// No tables.
    pub const NONE: Tables<'static> = Tables {
        neighbours: None,
        embeddings: None,
    };

    /// Only a neighbour table (when given).
    pub fn neighbours(t: Option<&'a NeighbourTable>) -> Self {
        Self {
            neighbours: t,
            embeddings: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_quantiles_follow_the_rows() {
        // Codes on a line: 0, 1, 2, 3 → squared distances 1, 4, 9, ...
        let e = TokenEmbeddings::new(vec![0.0, 1.0, 2.0, 3.0], 4, 1);
        assert_eq!(e.sq_distance(0, 3), 9.0);
        assert_eq!(e.sq_distance(2, 1), 1.0);
        assert_eq!(e.distance_quantile(1.0), f32::INFINITY);
        assert_eq!(e.distance_quantile(0.0), 1.0);
        let median = e.distance_quantile(0.5);
        assert!([1.0, 4.0].contains(&median), "{median}");
        assert!(e.distance_quantile(0.99) <= 9.0);
    }
}
