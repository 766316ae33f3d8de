//! Quality metrics for generated images: Fréchet distance between feature sets, improved
//! precision/recall (k-NN radii), Inception Score, drift from AR at the same seed, and the feature
//! extractors behind one trait. Every metric is a pure function over host feature matrices.

pub mod bn;
pub mod bootstrap;
pub mod clip;
pub mod clip_tokenizer;
pub mod drift;
pub mod efficientnet;
pub mod error;
pub mod extractor;
pub mod frechet;
pub mod inception;
pub mod inception_score;
pub mod precision_recall;
pub mod reference;
pub mod resize;
pub mod stats;
pub mod vgg;

pub use error::MetricError;
pub use extractor::{ClassProbs, FeatureExtractor, VqEncoderExtractor};
pub use frechet::{frechet_distance, frechet_distance_sets};
pub use inception_score::inception_score;
pub use precision_recall::{precision_recall, PrecisionRecall};
pub use reference::ReferenceTokens;
pub use stats::{FeatureSet, FeatureStats};
