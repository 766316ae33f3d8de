//! Deterministic random streams: one per image, split by purpose, reproducible bit for bit.

/// SplitMix64 step: the seeding and stream-splitting function.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Deterministic random stream for one image (xoshiro256++ seeded through SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng {
    seed: u64,
    s: [u64; 4],
}

impl Rng {
    /// A stream from a 64-bit seed.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Self { seed, s }
    }

    /// An independent stream derived from this generator's seed and `stream`; does not advance `self`.
    pub fn fork(&self, stream: u64) -> Rng {
        let mut sm = self.seed ^ 0xA076_1D64_78BD_642F;
        let a = splitmix64(&mut sm);
        let mut sm2 = stream.wrapping_add(0xE703_7ED1_A0B4_28DB);
        let b = splitmix64(&mut sm2);
        Rng::new(a ^ b.rotate_left(17))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Index drawn from non-negative weights (need not sum to 1), inverse CDF in f64; never
    /// returns an index of zero weight. Panics if the total is not positive and finite.
    pub fn categorical(&mut self, weights: &[f32]) -> usize {
        let total: f64 = weights.iter().map(|&w| w.max(0.0) as f64).sum();
        assert!(
            total > 0.0 && total.is_finite(),
            "categorical needs a positive finite total weight (got {total})"
        );
        let target = self.uniform() * total;
        let mut acc = 0.0;
        let mut last = 0;
        for (i, &w) in weights.iter().enumerate() {
            if w > 0.0 {
                acc += w as f64;
                last = i;
                if target < acc {
                    return i;
                }
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_forks_independent() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(5).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r = Rng::new(5);
        let f1 = r.fork(1).next_u64();
        r.next_u64();
        assert_eq!(
            r.fork(1).next_u64(),
            f1,
            "fork does not depend on the stream position"
        );
        assert_ne!(Rng::new(5).fork(2).next_u64(), f1);
        assert_ne!(Rng::new(6).fork(1).next_u64(), f1);
    }

    #[test]
    fn categorical_skips_zero_weights_and_follows_weights() {
        let mut r = Rng::new(1);
        let w = [0.0, 1.0, 0.0, 3.0, 0.0];
        let mut c = [0usize; 5];
        for _ in 0..40_000 {
            c[r.categorical(&w)] += 1;
        }
        assert_eq!(c[0] + c[2] + c[4], 0);
        let frac = c[3] as f64 / 40_000.0;
        assert!((frac - 0.75).abs() < 0.01, "{frac}");
        let u: f64 = (0..10_000).map(|_| r.uniform()).sum::<f64>() / 10_000.0;
        assert!((u - 0.5).abs() < 0.01);
    }
}
