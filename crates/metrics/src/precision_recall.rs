//! Improved precision and recall (Kynkäänniemi et al., 2019): each set's manifold is the union of
//! balls around its samples with radius the distance to the k-th nearest other sample.

use serde::{Deserialize, Serialize};

use crate::{FeatureSet, MetricError};

/// Precision (share of generated samples inside the real manifold) and recall (share of real
/// samples inside the generated manifold).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecall {
    /// Share of generated samples within some real sample's k-NN radius.
    pub precision: f64,
    /// Share of real samples within some generated sample's k-NN radius.
    pub recall: f64,
}

fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum()
}

/// Squared distance from each row to its k-th nearest other row.
fn knn_radii(set: &FeatureSet, k: usize) -> Vec<f64> {
    let n = set.count();
    (0..n)
        .map(|i| {
            let mut d: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| sq_dist(set.row(i), set.row(j)))
                .collect();
            let (_, kth, _) = d.select_nth_unstable_by(k - 1, f64::total_cmp);
            *kth
        })
        .collect()
}

/// Share of `probe` rows that fall inside some ball (centre `manifold` row, squared radius `radii`).
fn coverage(probe: &FeatureSet, manifold: &FeatureSet, radii: &[f64]) -> f64 {
    let inside = (0..probe.count())
        .filter(|&j| {
            (0..manifold.count()).any(|i| sq_dist(probe.row(j), manifold.row(i)) <= radii[i])
        })
        .count();
    inside as f64 / probe.count() as f64
}

/// Improved precision/recall of `fake` against `real` with k-NN radii (the paper uses k = 3).
pub fn precision_recall(
    real: &FeatureSet,
    fake: &FeatureSet,
    k: usize,
) -> Result<PrecisionRecall, MetricError> {
    if real.dim != fake.dim {
        return Err(MetricError::Shape(format!(
            "feature widths {} and {}",
            real.dim, fake.dim
        )));
    }
    if k == 0 {
        return Err(MetricError::TooFew("k must be ≥ 1".into()));
    }
    for (name, s) in [("real", real), ("generated", fake)] {
        if s.count() <= k {
            return Err(MetricError::TooFew(format!(
                "{name} set has {} samples; k = {k} needs at least {}",
                s.count(),
                k + 1
            )));
        }
    }
    Ok(PrecisionRecall {
        precision: coverage(fake, real, &knn_radii(real, k)),
        recall: coverage(real, fake, &knn_radii(fake, k)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(points: &[f32]) -> FeatureSet {
        FeatureSet::new("test", 1, points.to_vec()).unwrap()
    }

    #[test]
    fn identical_sets_have_full_precision_and_recall() {
        let s =
            FeatureSet::new("test", 2, (0..40).map(|i| ((i * 7) % 13) as f32).collect()).unwrap();
        let pr = precision_recall(&s, &s, 3).unwrap();
        assert_eq!((pr.precision, pr.recall), (1.0, 1.0));
    }

    #[test]
    fn disjoint_sets_have_none() {
        let real = line(&[0.0, 1.0, 2.0, 3.0, 4.0]);
        let fake = line(&[100.0, 101.0, 102.0, 103.0, 104.0]);
        let pr = precision_recall(&real, &fake, 3).unwrap();
        assert_eq!((pr.precision, pr.recall), (0.0, 0.0));
    }

    #[test]
    fn constructed_case_with_known_answer() {
        // Real 0..9 on a line: k = 3 radii are 3 at the ends, 2 inside, so the real manifold is
        // [-3, 12]. Fake {0, 1, 2, 3, 100}: 100 lies outside → precision 4/5. The outlier's own
        // radius (distance to its 3rd neighbour, 99) covers every real point → recall 1: the
        // known weakness of k-NN manifolds, reproduced exactly.
        let real = line(&(0..10).map(|i| i as f32).collect::<Vec<_>>());
        let fake = line(&[0.0, 1.0, 2.0, 3.0, 100.0]);
        let pr = precision_recall(&real, &fake, 3).unwrap();
        assert_eq!((pr.precision, pr.recall), (0.8, 1.0));
        // Without the outlier, fake radii are 3, 2, 2, 3 → manifold [-3, 6]: 7 of 10 real points.
        let fake = line(&[0.0, 1.0, 2.0, 3.0]);
        let pr = precision_recall(&real, &fake, 3).unwrap();
        assert_eq!((pr.precision, pr.recall), (1.0, 0.7));
    }

    #[test]
    fn refuses_sets_too_small_for_k() {
        let s = line(&[0.0, 1.0, 2.0]);
        assert!(matches!(
            precision_recall(&s, &s, 3),
            Err(MetricError::TooFew(_))
        ));
    }
}
