//! Feature matrices and their first two moments (what a Fréchet distance needs), cached on disk.

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
