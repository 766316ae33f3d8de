//! Feature extractors behind one trait, so every number names the network behind it.

use lantern_models::burn::prelude::*;
use lantern_models::VqModel;

use crate::{FeatureSet, MetricError};

/// A network that maps images to feature vectors (and, if it is a classifier, class probabilities).
pub trait FeatureExtractor {
    /// Name recorded next to every metric computed from these features (e.g. `inception-fid`).
    fn name(&self) -> String;
    /// What the features depend on beyond the name (the weights file's fingerprint for loaded
    /// networks): cached features are keyed by it.
    fn identity(&self) -> String {
        self.name()
    }
    /// Feature width.
    fn dim(&self) -> usize;
    /// Images `[B, 3, H, W]` in [-1, 1] → `B` feature rows.
    fn features(&self, images: Tensor<4>) -> Result<FeatureSet, MetricError>;
    /// Class probabilities `[B × classes]` for the Inception Score, when the network classifies.
    fn class_probs(&self, _images: Tensor<4>) -> Option<Result<ClassProbs, MetricError>> {
        None
    }
    /// Features and class probabilities together; classifiers override it to run the network
    /// once.
    fn features_and_probs(
        &self,
        images: Tensor<4>,
    ) -> Result<(FeatureSet, Option<ClassProbs>), MetricError> {
        let probs = self.class_probs(images.clone()).transpose()?;
        Ok((self.features(images)?, probs))
    }
}

/// Host values of a tensor, row-major.
pub(crate) fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, MetricError> {
    t.into_data()
        .try_into_vec_as()
        .map_err(|e| MetricError::Shape(format!("{e:?}")))
}

/// Row-major class probabilities `[B × classes]` and the class count.
pub type ClassProbs = (Vec<f32>, usize);

/// Texture statistics from a VQ tokenizer's encoder: per-channel mean and standard deviation of
/// its mid-block activations. Trained here, not on ImageNet: its Fréchet distance is **not** FID.
pub struct VqEncoderExtractor {
    vq: VqModel,
    name: String,
}

impl VqEncoderExtractor {
    /// Wraps `vq`; `label` names the tokenizer (e.g. `tiny`), giving the extractor `vq-encoder:tiny`.
    pub fn new(vq: VqModel, label: &str) -> Self {
        Self {
            vq,
            name: format!("vq-encoder:{label}"),
        }
    }

    fn channels(&self) -> usize {
        let c = self.vq.config();
        c.ch * c.encoder_ch_mult.last().copied().unwrap_or(1)
    }
}

impl FeatureExtractor for VqEncoderExtractor {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn dim(&self) -> usize {
        2 * self.channels()
    }

    fn features(&self, images: Tensor<4>) -> Result<FeatureSet, MetricError> {
        let h = self.vq.encode_features(images);
        let [b, c, hh, ww] = h.dims();
        let flat = h.reshape([b, c, hh * ww]);
        let mean = flat.clone().mean_dim(2);
        let std = (flat - mean.clone()).square().mean_dim(2).sqrt();
        let f = Tensor::cat(vec![mean, std], 1).reshape([b, 2 * c]);
        FeatureSet::new(&self.name, 2 * c, host(f)?)
    }
}
