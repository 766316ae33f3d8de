//! Sampling noise of a Fréchet distance: a bootstrap over the generated images with the reference
//! set fixed, so that configurations compared at one image count can be told apart from noise.
//!
//! Resampling with replacement repeats images, which biases each replicate's distance upwards;
//! the spread of the replicates, not their mean, is what is reported.

use crate::frechet::{centred, frechet_distance, frechet_distance_sets, is_low_rank, low_rank};
use crate::{FeatureSet, FeatureStats, MetricError};

/// Resamples a sweep's quality pass draws per configuration.
pub const RESAMPLES: usize = 100;

/// SplitMix64 step: the next 64 random bits of `state`.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `a`'s rows drawn with replacement (as many as `a` has).
fn resample(a: &FeatureSet, state: &mut u64) -> Result<FeatureSet, MetricError> {
    let n = a.count();
    let values = (0..n)
        .flat_map(|_| a.row((splitmix(state) % n as u64) as usize).iter().copied())
        .collect();
    FeatureSet::new(&a.extractor, a.dim, values)
}

/// [`frechet_distance_sets`]`(a, b)` and its 95% half-width: 1.96 × the standard deviation of the
/// distance over `resamples` bootstrap resamples of `a` (seeded, so reruns agree), `b` fixed. The
/// reference's share of the work is done once for the distance and every replicate.
pub fn frechet_with_ci95(
    a: &FeatureSet,
    b: &FeatureSet,
    resamples: usize,
    seed: u64,
) -> Result<(f64, f64), MetricError> {
    // Refuses mismatched widths and too-small sets with frechet_distance_sets' own errors.
    if a.dim != b.dim || a.count() < 2 || b.count() < 2 {
        return frechet_distance_sets(a, b).map(|fd| (fd, 0.0));
    }
    if resamples < 2 {
        return Err(MetricError::TooFew(format!(
            "a bootstrap needs two resamples, got {resamples}"
        )));
    }
    // The route frechet_distance_sets takes, with the reference prepared once.
    let (cb, sb) = if is_low_rank(a.count(), b.count(), a.dim) {
        (Some(centred(b)), None)
    } else {
        (None, Some(FeatureStats::of(b)?))
    };
    let fd = |s: &FeatureSet| match (&cb, &sb) {
        (Some(cb), _) => low_rank(&centred(s), cb),
        (_, Some(sb)) => frechet_distance(&FeatureStats::of(s)?, sb),
        _ => unreachable!("one route is prepared"),
    };
    let point = fd(a)?;
    let mut state = seed;
    let fds = (0..resamples)
        .map(|_| fd(&resample(a, &mut state)?))
        .collect::<Result<Vec<f64>, _>>()?;
    let mean = fds.iter().sum::<f64>() / resamples as f64;
    let var = fds.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / (resamples - 1) as f64;
    Ok((point, 1.96 * var.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci95(
        a: &FeatureSet,
        b: &FeatureSet,
        resamples: usize,
        seed: u64,
    ) -> Result<f64, MetricError> {
        frechet_with_ci95(a, b, resamples, seed).map(|r| r.1)
    }

    /// `n` rows of `d` standard normal values (Box–Muller on SplitMix64), shifted by `shift`.
    fn gaussian(n: usize, d: usize, shift: f32, seed: u64) -> FeatureSet {
        let mut s = seed;
        let mut u = || (splitmix(&mut s) >> 11) as f64 / (1u64 << 53) as f64;
        let values = (0..n * d)
            .map(|_| {
                let (u1, u2) = (u().max(1e-300), u());
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32 + shift
            })
            .collect();
        FeatureSet::new("test", d, values).unwrap()
    }

    #[test]
    fn identical_samples_have_no_noise() {
        let a = FeatureSet::new("test", 2, [1.0, 2.0].repeat(20)).unwrap();
        let b = gaussian(50, 2, 0.0, 1);
        // Every replicate is the same distance; only the mean's rounding is left.
        assert!(ci95(&a, &b, 20, 7).unwrap() < 1e-9);
    }

    #[test]
    fn matches_the_spread_over_independent_draws() {
        // The FD of 100 samples of N(0.3, I₃) against a fixed reference, drawn 300 times: its
        // standard deviation is the noise the bootstrap estimates from one draw.
        let b = gaussian(500, 3, 0.0, 99);
        let fds: Vec<f64> = (0..300)
            .map(|i| frechet_distance_sets(&gaussian(100, 3, 0.3, 1000 + i), &b).unwrap())
            .collect();
        let mean = fds.iter().sum::<f64>() / fds.len() as f64;
        let sd = (fds.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / 299.0).sqrt();
        for seed in [1, 2, 3] {
            let ci = ci95(&gaussian(100, 3, 0.3, seed), &b, RESAMPLES, 5).unwrap();
            let ratio = ci / (1.96 * sd);
            assert!((0.6..1.6).contains(&ratio), "bootstrap/actual {ratio}");
        }
    }

    #[test]
    fn shrinks_with_the_sample_count_on_both_routes() {
        // d = 3 takes the covariance route, d = 300 the low-rank one.
        for d in [3, 300] {
            let b = gaussian(400, d, 0.0, 11);
            let small = ci95(&gaussian(50, d, 0.2, 12), &b, 60, 3).unwrap();
            let large = ci95(&gaussian(200, d, 0.2, 13), &b, 60, 3).unwrap();
            assert!(
                large < small * 0.8,
                "d = {d}: {large} at 200 samples vs {small} at 50"
            );
        }
    }

    #[test]
    fn the_distance_is_frechet_distance_sets_on_both_routes() {
        for d in [3, 300] {
            let (a, b) = (gaussian(60, d, 0.2, 21), gaussian(120, d, 0.0, 22));
            let (fd, _) = frechet_with_ci95(&a, &b, 5, 1).unwrap();
            assert_eq!(fd, frechet_distance_sets(&a, &b).unwrap(), "d = {d}");
        }
    }

    #[test]
    fn is_deterministic_and_refuses_bad_inputs() {
        let (a, b) = (gaussian(30, 4, 0.1, 1), gaussian(40, 4, 0.0, 2));
        assert_eq!(ci95(&a, &b, 30, 9).unwrap(), ci95(&a, &b, 30, 9).unwrap());
        assert!(ci95(&a, &b, 1, 9).is_err());
        assert!(ci95(&a, &gaussian(40, 5, 0.0, 2), 30, 9).is_err());
    }
}
