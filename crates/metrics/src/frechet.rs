//! Fréchet distance between two Gaussians fitted to feature sets (FID when the features are
//! Inception pool3; this crate never calls other features "FID").

use nalgebra::{DMatrix, SymmetricEigen};

use crate::{FeatureSet, FeatureStats, MetricError};

/// Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues from
/// rounding are clamped to zero).
fn sqrt_psd(m: DMatrix<f64>) -> DMatrix<f64> {
    let eig = SymmetricEigen::new(m);
    let roots = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eig.eigenvectors * DMatrix::from_diagonal(&roots) * eig.eigenvectors.transpose()
}

/// Sum of the square roots of the eigenvalues of a (numerically) symmetric PSD matrix: the trace
/// of its square root.
fn trace_sqrt(m: DMatrix<f64>) -> f64 {
    let sym = (&m + m.transpose()) * 0.5;
    SymmetricEigen::new(sym)
        .eigenvalues
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum()
}

/// ‖μ₁ − μ₂‖² from the two means.
fn mean_term(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// The distance, refused when it is not finite.
fn finite(fd: f64) -> Result<f64, MetricError> {
    if fd.is_finite() {
        Ok(fd)
    } else {
        Err(MetricError::NonFinite("the Fréchet distance".into()))
    }
}

/// ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^½.
///
/// tr (Σ₁ Σ₂)^½ is computed as tr (Σ₁^½ Σ₂ Σ₁^½)^½ — the same eigenvalues, but of a symmetric
/// matrix, so two symmetric eigendecompositions replace the general matrix square root.
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<f64, MetricError> {
    if a.dim != b.dim {
        return Err(MetricError::Shape(format!(
            "feature widths {} and {}",
            a.dim, b.dim
        )));
    }
    let d = a.dim;
    let s1 = DMatrix::from_row_slice(d, d, &a.cov);
    let s2 = DMatrix::from_row_slice(d, d, &b.cov);
    let r1 = sqrt_psd(s1.clone());
    let cross = trace_sqrt(&r1 * &s2 * &r1);
    finite(mean_term(&a.mean, &b.mean) + s1.trace() + s2.trace() - 2.0 * cross)
}

/// Samples centred and scaled by (n − 1)^−½ (so that `AᵀA` is the covariance), and the mean.
pub(crate) fn centred(set: &FeatureSet) -> (DMatrix<f64>, Vec<f64>) {
    let (n, d) = (set.count(), set.dim);
    let mut mean = vec![0f64; d];
    for i in 0..n {
        for (m, v) in mean.iter_mut().zip(set.row(i)) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let scale = 1.0 / ((n - 1) as f64).sqrt();
    let a = DMatrix::from_fn(n, d, |i, j| (set.row(i)[j] as f64 - mean[j]) * scale);
    (a, mean)
}

/// Fréchet distance between two feature sets (each at least two samples).
///
/// When a set has fewer samples than dimensions (a few hundred images in Inception's 2048), the
/// covariances have low rank and tr (Σ₁ Σ₂)^½ equals the nuclear norm of `A Bᵀ` exactly (`A`, `B`
/// the centred samples scaled so that Σ₁ = AᵀA, Σ₂ = BᵀB: the non-zero eigenvalues of
/// AᵀA BᵀB are those of (ABᵀ)(ABᵀ)ᵀ), an eigenproblem of the smaller sample count instead of two
/// of the feature width. Otherwise it is [`frechet_distance`] of the fitted Gaussians.
pub fn frechet_distance_sets(a: &FeatureSet, b: &FeatureSet) -> Result<f64, MetricError> {
    if a.dim != b.dim {
        return Err(MetricError::Shape(format!(
            "feature widths {} and {}",
            a.dim, b.dim
        )));
    }
    if a.count() < 2 || b.count() < 2 {
        return Err(MetricError::TooFew(format!(
            "a Fréchet distance needs two samples per set, got {} and {}",
            a.count(),
            b.count()
        )));
    }
    if !is_low_rank(a.count(), b.count(), a.dim) {
        return frechet_distance(&FeatureStats::of(a)?, &FeatureStats::of(b)?);
    }
    low_rank(&centred(a), &centred(b))
}

/// Whether [`frechet_distance_sets`] takes the low-rank route for sets of `na` and `nb` samples.
pub(crate) fn is_low_rank(na: usize, nb: usize, dim: usize) -> bool {
    na.min(nb) < dim
}

/// The low-rank route of [`frechet_distance_sets`] from [`centred`] samples.
pub(crate) fn low_rank(
    (ma, mean_a): &(DMatrix<f64>, Vec<f64>),
    (mb, mean_b): &(DMatrix<f64>, Vec<f64>),
) -> Result<f64, MetricError> {
    let m = ma * mb.transpose();
    let gram = if m.nrows() <= m.ncols() {
        &m * m.transpose()
    } else {
        m.transpose() * &m
    };
    let cross = trace_sqrt(gram);
    finite(mean_term(mean_a, mean_b) + ma.norm_squared() + mb.norm_squared() - 2.0 * cross)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize, d: usize, f: impl Fn(f64, f64) -> f64) -> FeatureSet {
        let v = (0..n)
            .flat_map(|i| (0..d).map(move |j| (i as f64, j as f64)))
            .map(|(i, j)| f(i, j) as f32)
            .collect();
        FeatureSet::new("test", d, v).unwrap()
    }

    /// The features of `scipy_reference`, generated identically in numpy.
    fn pair() -> (FeatureStats, FeatureStats) {
        let a = set(60, 7, |i, j| {
            (0.37 * i + 1.3 * j).sin() + 0.1 * j + 0.05 * ((i as i64 * j as i64) % 5) as f64
        });
        let b = set(45, 7, |i, j| {
            (0.23 * i * (j + 1.0)).cos() + 0.5 * (i + j).sin() + 0.2
        });
        (FeatureStats::of(&a).unwrap(), FeatureStats::of(&b).unwrap())
    }

    #[test]
    fn matches_scipy_sqrtm_reference() {
        // numpy 2.4.6 / scipy 1.17.1 with pytorch-fid's formula (np.cov, linalg.sqrtm(s1 @ s2).real)
        // on the same features in f64; ours are rounded to f32 first, well inside 1e-6 relative.
        let (a, b) = pair();
        let reference = 3.7533488961358312;
        let fd = frechet_distance(&a, &b).unwrap();
        assert!(
            ((fd - reference) / reference).abs() < 1e-6,
            "{fd} vs {reference}"
        );
        let back = frechet_distance(&b, &a).unwrap();
        assert!(((back - reference) / reference).abs() < 1e-6);
    }

    #[test]
    fn zero_for_identical_sets_and_mean_shift_for_translated_ones() {
        // Square roots of near-zero eigenvalues amplify rounding (√1e-16 = 1e-8), as in scipy,
        // whose own result for this pair is −5e-8.
        let (a, _) = pair();
        assert!(frechet_distance(&a, &a).unwrap().abs() < 1e-6);
        let mut shifted = a.clone();
        shifted.mean.iter_mut().for_each(|m| *m += 0.5);
        let fd = frechet_distance(&a, &shifted).unwrap();
        assert!((fd - 7.0 * 0.25).abs() < 1e-6, "{fd}");
    }

    #[test]
    fn low_rank_route_equals_the_covariance_route() {
        // Fewer samples than dimensions: the nuclear-norm identity against the eigen route.
        let a = set(12, 40, |i, j| (0.37 * i + 1.3 * j).sin() + 0.01 * j);
        let b = set(25, 40, |i, j| (0.23 * i * (j + 1.0)).cos() + 0.3);
        let via_stats = frechet_distance(
            &FeatureStats::of(&a).unwrap(),
            &FeatureStats::of(&b).unwrap(),
        )
        .unwrap();
        for (x, y) in [(&a, &b), (&b, &a)] {
            let fd = frechet_distance_sets(x, y).unwrap();
            assert!(
                ((fd - via_stats) / via_stats).abs() < 1e-6,
                "{fd} vs {via_stats}"
            );
        }
        // More samples than dimensions takes the covariance route: scipy's number.
        let (p, q) = (
            set(60, 7, |i, j| {
                (0.37 * i + 1.3 * j).sin() + 0.1 * j + 0.05 * ((i as i64 * j as i64) % 5) as f64
            }),
            set(45, 7, |i, j| {
                (0.23 * i * (j + 1.0)).cos() + 0.5 * (i + j).sin() + 0.2
            }),
        );
        let fd = frechet_distance_sets(&p, &q).unwrap();
        assert!(((fd - 3.7533488961358312) / 3.7533488961358312).abs() < 1e-6);
        assert!(frechet_distance_sets(&a, &set(1, 40, |i, j| i + j)).is_err());
    }

    #[test]
    fn refuses_mismatched_widths() {
        let (a, _) = pair();
        let b = FeatureStats::of(&set(5, 3, |i, j| i + j * j)).unwrap();
        assert!(matches!(
            frechet_distance(&a, &b),
            Err(MetricError::Shape(_))
        ));
    }
}
