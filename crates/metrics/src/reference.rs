//! Reference sets: tokens of real images (decoded by the same tokenizer as the generated ones, so
//! both sides share its reconstruction error), and their features cached per extractor.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{FeatureSet, MetricError};

/// Tokens of real images, one row per image, with their class labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceTokens {
    /// Where the images came from (dataset, crop size, seed).
    pub source: String,
    /// Tokens per side.
    pub grid: usize,
    /// Class of each image.
    pub labels: Vec<usize>,
    /// `grid²` tokens per image.
    pub tokens: Vec<Vec<u32>>,
}

impl ReferenceTokens {
    /// Reads and checks a reference file (every row `grid²` tokens, one label per row).
    pub fn load(path: &Path) -> Result<Self, MetricError> {
        let parse = |message: String| MetricError::Parse {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|source| MetricError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let r: Self = serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
        if r.labels.len() != r.tokens.len() || r.tokens.iter().any(|t| t.len() != r.grid * r.grid) {
            return Err(parse(format!(
                "{} labels for {} rows; every row must hold grid² = {} tokens",
                r.labels.len(),
                r.tokens.len(),
                r.grid * r.grid
            )));
        }
        Ok(r)
    }

    /// Writes the file.
    pub fn save(&self, path: &Path) -> Result<(), MetricError> {
        std::fs::write(path, serde_json::to_string(self).expect("json")).map_err(|source| {
            MetricError::Io {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// Cache file of this set's features under `cache_dir`, keyed by extractor, its `identity`
    /// (see [`cached_features`]) and the set's content.
    pub fn feature_cache(&self, cache_dir: &Path, extractor: &str, identity: &str) -> PathBuf {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            &self.source,
            self.grid,
            &self.labels,
            &self.tokens,
            identity,
        )
            .hash(&mut h);
        let slug: String = extractor
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        cache_dir.join(format!("reference-{slug}-{:016x}.json", h.finish()))
    }
}

/// Reference features from the cache, or computed by `compute` and cached; `identity` is what
/// else they depend on (the extractor's weights, the tokenizer that decodes the tokens).
pub fn cached_features(
    reference: &ReferenceTokens,
    cache_dir: &Path,
    (extractor, identity): (&str, &str),
    compute: impl FnOnce() -> Result<FeatureSet, MetricError>,
) -> Result<FeatureSet, MetricError> {
    let path = reference.feature_cache(cache_dir, extractor, identity);
    if let Ok(set) = FeatureSet::load(&path) {
        if set.extractor == extractor && set.count() == reference.tokens.len() {
            return Ok(set);
        }
    }
    let set = compute()?;
    set.save(&path)?;
    Ok(set)
}
