//! Feature matrices and their first two moments (what a Fréchet distance needs), cached on disk;
//! and estimates over images (mean with a Student-t 95% interval, standard deviation).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::MetricError;

/// `count × dim` features, row-major, with the extractor that produced them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSet {
    /// Extractor name (recorded next to every number computed from these features).
    pub extractor: String,
    /// Feature width.
    pub dim: usize,
    /// Row-major features.
    pub values: Vec<f32>,
}

impl FeatureSet {
    /// Wraps row-major features, checking the shape and that every value is finite.
    pub fn new(extractor: &str, dim: usize, values: Vec<f32>) -> Result<Self, MetricError> {
        if dim == 0 || !values.len().is_multiple_of(dim) {
            return Err(MetricError::Shape(format!(
                "{} values do not make rows of width {dim}",
                values.len()
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(MetricError::NonFinite(format!("{extractor} features")));
        }
        Ok(Self {
            extractor: extractor.into(),
            dim,
            values,
        })
    }

    /// Number of rows.
    pub fn count(&self) -> usize {
        self.values.len() / self.dim
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Reads a set written by [`FeatureSet::save`].
    pub fn load(path: &Path) -> Result<Self, MetricError> {
        let text = std::fs::read_to_string(path).map_err(|source| MetricError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let s: Self = serde_json::from_str(&text).map_err(|e| MetricError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::new(&s.extractor, s.dim, s.values)
    }

    /// Writes the set as JSON (through a temporary file, so a torn write is never read back).
    pub fn save(&self, path: &Path) -> Result<(), MetricError> {
        let io = |source| MetricError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string(self).expect("json")).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// Mean and (unbiased, n − 1) covariance of a feature set, in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureStats {
    /// Feature width.
    pub dim: usize,
    /// Samples.
    pub count: usize,
    /// Mean, length `dim`.
    pub mean: Vec<f64>,
    /// Covariance, `dim × dim` row-major.
    pub cov: Vec<f64>,
}

impl FeatureStats {
    /// Moments of `set` (as `numpy.cov(x, rowvar=False)`); needs at least two rows.
    pub fn of(set: &FeatureSet) -> Result<Self, MetricError> {
        let (n, d) = (set.count(), set.dim);
        if n < 2 {
            return Err(MetricError::TooFew(format!(
                "a covariance needs 2 samples, got {n}"
            )));
        }
        let mut mean = vec![0f64; d];
        for i in 0..n {
            for (m, &v) in mean.iter_mut().zip(set.row(i)) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0f64; d * d];
        let mut centred = vec![0f64; d];
        for i in 0..n {
            for ((c, &v), m) in centred.iter_mut().zip(set.row(i)).zip(&mean) {
                *c = v as f64 - m;
            }
            for a in 0..d {
                for b in a..d {
                    cov[a * d + b] += centred[a] * centred[b];
                }
            }
        }
        for a in 0..d {
            for b in a..d {
                let v = cov[a * d + b] / (n - 1) as f64;
                cov[a * d + b] = v;
                cov[b * d + a] = v;
            }
        }
        Ok(Self {
            dim: d,
            count: n,
            mean,
            cov,
        })
    }
}

/// Mean and 95% confidence half-width (Student t) of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// Sample mean.
    pub mean: f64,
    /// Half-width of the 95% interval (0 for a single value).
    pub ci95: f64,
}

/// Two-sided 97.5% quantile of Student's t with `dof` degrees of freedom.
pub fn t975(dof: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match dof {
        0 => f64::INFINITY,
        d if d <= 30 => T[d - 1],
        d if d <= 60 => 2.042 - (d - 30) as f64 * (2.042 - 2.000) / 30.0,
        d if d <= 120 => 2.000 - (d - 60) as f64 * (2.000 - 1.980) / 60.0,
        _ => 1.960,
    }
}

impl Estimate {
    /// Estimate of the mean of `xs`.
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n.max(1) as f64;
        if n < 2 {
            return Self { mean, ci95: 0.0 };
        }
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Self {
            mean,
            ci95: t975(n - 1) * (var / n as f64).sqrt(),
        }
    }
}

/// Median of a sample (the mean of the two middle values for an even count; NaN when empty).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `q`-quantile of a sample, interpolating linearly between order statistics (NaN when empty).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    match v.get(i + 1) {
        Some(&next) => v[i] + frac * (next - v[i]),
        None => v[i],
    }
}

/// Median and interquartile range of a sample: what a latency is summarised by, since one
/// stalled image moves a mean but not these.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// First quartile.
    pub q1: f64,
    /// Third quartile.
    pub q3: f64,
}

impl Spread {
    /// The spread of `xs`.
    pub fn of(xs: &[f64]) -> Self {
        Self {
            median: median(xs),
            q1: quantile(xs, 0.25),
            q3: quantile(xs, 0.75),
        }
    }
}

/// A ratio with a 95% interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Ratio {
    /// Point value.
    pub value: f64,
    /// Lower end of the 95% interval.
    pub lo: f64,
    /// Upper end of the 95% interval.
    pub hi: f64,
}

/// Bootstrap resamples of [`ratio_of_medians`].
pub const RATIO_RESAMPLES: usize = 1000;

/// median(a) / median(b) over paired samples `(a, b)` (e.g. AR's and a method's latency on the
/// same images: a speedup), with a percentile-bootstrap 95% interval that resamples the pairs
/// (`resamples` draws, seeded so reruns agree). `None` without pairs.
pub fn ratio_of_medians(pairs: &[(f64, f64)], resamples: usize, seed: u64) -> Option<Ratio> {
    if pairs.is_empty() {
        return None;
    }
    let ratio = |ps: &[(f64, f64)]| {
        let a: Vec<f64> = ps.iter().map(|p| p.0).collect();
        let b: Vec<f64> = ps.iter().map(|p| p.1).collect();
        median(&a) / median(&b)
    };
    let value = ratio(pairs);
    let mut state = seed;
    let mut draws: Vec<f64> = (0..resamples)
        .map(|_| {
            let sample: Vec<(f64, f64)> = (0..pairs.len())
                .map(|_| {
                    pairs[(crate::bootstrap::splitmix(&mut state) % pairs.len() as u64) as usize]
                })
                .collect();
            ratio(&sample)
        })
        .collect();
    draws.retain(|d| d.is_finite());
    Some(Ratio {
        value,
        lo: quantile(&draws, 0.025).min(value),
        hi: quantile(&draws, 0.975).max(value),
    })
}

/// Sample standard deviation (0 for fewer than two values).
pub fn std_dev(xs: &[f64]) -> f64 {
    let n = xs.len();
    if n < 2 {
        return 0.0;
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
}

#[cfg(test)]
mod estimate_tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_and_spread_ignores_one_outlier() {
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&xs, 0.0), 1.0);
        assert_eq!(quantile(&xs, 0.25), 2.0);
        assert_eq!(quantile(&xs, 0.6), 3.4);
        assert_eq!(quantile(&xs, 1.0), 5.0);
        assert!(quantile(&[], 0.5).is_nan());
        // One stalled image (the 2,613 ms of the issue) moves the mean, not the median or IQR.
        let quiet = [140.0, 141.0, 142.0, 143.0, 144.0, 145.0, 146.0, 147.0];
        let mut noisy = quiet;
        noisy[3] = 2613.0;
        let (a, b) = (Spread::of(&quiet), Spread::of(&noisy));
        assert!((a.median - b.median).abs() <= 1.0 && (a.q3 - b.q3).abs() <= 1.5);
        assert!(Estimate::of(&noisy).mean > 1.9 * Estimate::of(&quiet).mean);
    }

    #[test]
    fn ratio_of_medians_brackets_its_value_and_resists_a_stalled_pair() {
        let pairs: Vec<(f64, f64)> = (0..40)
            .map(|i| (200.0 + i as f64, 100.0 + (i % 7) as f64))
            .collect();
        let r = ratio_of_medians(&pairs, RATIO_RESAMPLES, 1).unwrap();
        assert!(r.lo <= r.value && r.value <= r.hi);
        assert!((r.value - 219.5 / 103.0).abs() < 1e-9, "{}", r.value);
        assert!(r.hi - r.lo < 0.25, "{r:?}");
        let mut stalled = pairs.clone();
        stalled[5].0 = 3000.0;
        let s = ratio_of_medians(&stalled, RATIO_RESAMPLES, 1).unwrap();
        assert!(
            (s.value - r.value).abs() < 0.02,
            "{} vs {}",
            s.value,
            r.value
        );
        assert_eq!(ratio_of_medians(&[], 10, 1), None);
        // Seeded: the interval is the same on a rerun.
        assert_eq!(ratio_of_medians(&pairs, RATIO_RESAMPLES, 1), Some(r));
    }

    #[test]
    fn estimate_matches_hand_computation() {
        let e = Estimate::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(e.mean, 2.5);
        // s = sqrt(5/3), t(3) = 3.182
        assert!((e.ci95 - 3.182 * (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-9);
        assert_eq!(Estimate::of(&[7.0]).ci95, 0.0);
        assert_eq!(t975(1000), 1.96);
        assert!((std_dev(&[1.0, 2.0, 3.0, 4.0]) - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(median(&[4.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
