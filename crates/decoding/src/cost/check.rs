//! The in-run check of an `auto` tree: the chosen tree's measured cost per round, over the
//! images timed quietly since the choice, against the cost model's prediction. When the two
//! disagree beyond the noise of both measurements, the step costs were measured on a machine
//! other than the one the run now sees (a neighbour came or went) and the choice is re-made.

use serde::{Deserialize, Serialize};

use super::measure::{median, relative_iqr, UNSTABLE_IQR};

/// Quiet images of the chosen tree before the first check; later checks follow at twice as
/// many, and so on (4, 8, 16, …).
pub const FIRST_CHECK: usize = 4;
/// Smallest relative disagreement that counts, however steady the measurements (the cost
/// model's own error on a quiet machine is a few per cent).
pub const MIN_TOLERANCE: f64 = 0.15;

/// One comparison of measured and predicted round cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundCheck {
    /// Predicted milliseconds per round.
    pub predicted_ms: f64,
    /// Median measured milliseconds per round.
    pub measured_ms: f64,
    /// Interquartile range over median of the measured rounds' costs.
    pub measured_spread: f64,
    /// Relative disagreement allowed: the larger of [`MIN_TOLERANCE`] and two standard errors
    /// of the difference between the two medians (each estimated from its spread and count;
    /// the step costs' spread counted up to [`UNSTABLE_IQR`]).
    pub tolerance: f64,
    /// Quiet images the measurement covers.
    pub images: usize,
}

/// Relative standard error of a median of `n` values whose interquartile range is `iqr` of
/// the median (normal approximation: σ = IQR / 1.349, SE = 1.2533 σ / √n).
pub fn median_se(iqr: f64, n: usize) -> f64 {
    1.2533 * iqr / 1.349 / (n.max(1) as f64).sqrt()
}

impl RoundCheck {
    /// Compares `measured` per-image costs per round with `predicted_ms`, whose step costs were
    /// medians of `cost_repeats` timings with relative IQR `cost_spread`; `None` without
    /// measurements.
    pub fn new(
        predicted_ms: f64,
        measured: &[f64],
        cost_spread: f64,
        cost_repeats: usize,
    ) -> Option<Self> {
        if measured.is_empty() {
            return None;
        }
        let measured_ms = median(measured.to_vec());
        let measured_spread = relative_iqr(measured);
        // Step costs that spread beyond UNSTABLE_IQR were measured beside a neighbour: their
        // spread says how disturbed they were, not how uncertain the cost is.
        let cost_se = median_se(cost_spread.min(UNSTABLE_IQR), cost_repeats);
        let se = median_se(measured_spread, measured.len()).hypot(cost_se);
        Some(Self {
            predicted_ms,
            measured_ms,
            measured_spread,
            tolerance: MIN_TOLERANCE.max(2.0 * se),
            images: measured.len(),
        })
    }

    /// Measured over predicted, minus one.
    pub fn error(&self) -> f64 {
        self.measured_ms / self.predicted_ms.max(1e-12) - 1.0
    }

    /// Whether measurement and prediction disagree beyond the tolerance.
    pub fn disagrees(&self) -> bool {
        self.error().abs() > self.tolerance
    }
}

/// Whether the check is due after `images` quiet images of the chosen tree (4, 8, 16, …).
pub fn due(images: usize) -> bool {
    images >= FIRST_CHECK && images.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_within_the_noise_and_disagreement_beyond_it() {
        // Steady rounds 10% above the prediction: within the 15% floor.
        let c = RoundCheck::new(10.0, &[11.0, 11.0, 11.0, 11.0], 0.0, 5).unwrap();
        assert_eq!((c.measured_ms, c.measured_spread), (11.0, 0.0));
        assert!((c.error() - 0.1).abs() < 1e-12 && !c.disagrees());
        // Half the predicted cost (the costs were measured beside a neighbour).
        let c = RoundCheck::new(10.0, &[5.0, 5.2, 4.9, 5.1], 0.02, 5).unwrap();
        assert!(c.disagrees(), "{c:?}");
        // Noisy rounds: the median of 5 with IQR 3/8 has SE 0.156, so the tolerance is 0.31 and
        // a 20% gap is noise, while steady rounds make it a disagreement.
        let c = RoundCheck::new(10.0, &[4.0, 6.0, 8.0, 9.0, 16.0], 0.0, 5).unwrap();
        assert_eq!(c.measured_ms, 8.0);
        assert!((c.measured_spread - 3.0 / 8.0).abs() < 1e-12);
        assert!((c.tolerance - 2.0 * median_se(3.0 / 8.0, 5)).abs() < 1e-12);
        assert!(!c.disagrees(), "{c:?}");
        assert!(RoundCheck::new(10.0, &[7.9, 8.0, 8.0, 8.1], 0.0, 5)
            .unwrap()
            .disagrees());
        assert!((median_se(1.349, 4) - 1.2533 / 2.0).abs() < 1e-12);
        // Unsteady step costs widen it too (IQR 0.24 over 5 repeats: SE 0.1, tolerance 0.2) …
        let c = RoundCheck::new(10.0, &[8.2; 4], 0.24, 5).unwrap();
        assert!((c.tolerance - 2.0 * median_se(0.24, 5)).abs() < 1e-12);
        assert!(!c.disagrees(), "{c:?}");
        assert!(RoundCheck::new(10.0, &[8.2; 4], 0.0, 5)
            .unwrap()
            .disagrees());
        // … up to UNSTABLE_IQR: costs measured beside a hog (IQR 3×) cannot excuse a 4× gap.
        let c = RoundCheck::new(11.0, &[2.9; 4], 3.0, 5).unwrap();
        assert!((c.tolerance - 2.0 * median_se(UNSTABLE_IQR, 5)).abs() < 1e-12);
        assert!(c.disagrees(), "{c:?}");
        assert!(RoundCheck::new(10.0, &[], 0.0, 5).is_none());
    }

    #[test]
    fn checks_fall_due_at_doubling_counts() {
        let due_at: Vec<usize> = (0..40).filter(|&n| due(n)).collect();
        assert_eq!(due_at, vec![4, 8, 16, 32]);
    }
}
