//! The pretrained feature extractors by name, for sweeps (`[quality] extractor`, `pr_extractor`)
//! and `lantern score`: `efficientnet-lite0` (shipped), `inception-v3-fid`, `clip` and `vgg16`
//! (user weights); and the image–text scorers (CLIP score, HPSv2).

use std::path::Path;

use lantern_metrics::clip::{Activation, ClipScorer};
use lantern_metrics::clip_tokenizer::default_vocab;
use lantern_metrics::efficientnet::{default_weights, EfficientNetExtractor};
use lantern_metrics::inception::{InceptionExtractor, Resize};
use lantern_metrics::vgg::VggExtractor;
use lantern_metrics::FeatureExtractor;
use lantern_models::burn::prelude::Device;

/// Extractors that load from a weights file (`vq-encoder` is built from a sweep's tokenizer).
pub const PRETRAINED: [&str; 4] = ["efficientnet-lite0", "inception-v3-fid", "clip", "vgg16"];

/// Which extractor, and the options of the ones that take them.
#[derive(Clone, Debug)]
pub struct ExtractorSpec<'a> {
    /// One of [`PRETRAINED`].
    pub name: &'a str,
    /// User weights (`inception-v3-fid`: `pt_inception-2015-12-05-6726825d.pth`; `clip`: a ViT
    /// state dict; `vgg16`: torchvision's `vgg16-397923af.pth`); `efficientnet-lite0` uses the
    /// shipped file.
    pub weights: Option<&'a Path>,
    /// `clip`: `quick-gelu` (OpenAI weights) or `gelu`.
    pub clip_activation: &'a str,
    /// `inception-v3-fid`: `clean` (clean-fid's resize) or `pytorch-fid`.
    pub inception_resize: &'a str,
}

/// Parses `quick-gelu` / `gelu`.
pub fn clip_activation(name: &str) -> Result<Activation, String> {
    match name {
        "quick-gelu" => Ok(Activation::QuickGelu),
        "gelu" => Ok(Activation::Gelu),
        other => Err(format!(
            "CLIP activation '{other}': allowed are quick-gelu or gelu"
        )),
    }
}

/// Parses `clean` / `pytorch-fid`.
pub fn inception_resize(name: &str) -> Result<Resize, String> {
    match name {
        "clean" => Ok(Resize::Clean),
        "pytorch-fid" => Ok(Resize::PytorchFid),
        other => Err(format!(
            "Inception resize '{other}': allowed are clean or pytorch-fid"
        )),
    }
}

/// Loads the CLIP towers of `weights` with the shipped tokenizer; the label is the file stem.
pub fn load_clip(weights: &Path, activation: &str, device: &Device) -> Result<ClipScorer, String> {
    let label = weights
        .file_stem()
        .map_or("clip".into(), |s| s.to_string_lossy().into_owned());
    ClipScorer::load(
        weights,
        &default_vocab(),
        clip_activation(activation)?,
        &label,
        device,
    )
    .map_err(|e| e.to_string())
}

/// Loads HPSv2 weights (`HPS_v2.1_compressed.pt`) with the shipped tokenizer; the label is the
/// file stem.
pub fn load_hps(weights: &Path, device: &Device) -> Result<ClipScorer, String> {
    let label = weights
        .file_stem()
        .map_or("hps".into(), |s| s.to_string_lossy().into_owned());
    ClipScorer::load_hps(weights, &default_vocab(), &label, device).map_err(|e| e.to_string())
}

/// Loads a pretrained extractor; the error says what failed to load, and from where.
pub fn load_pretrained(
    spec: &ExtractorSpec,
    device: &Device,
) -> Result<Box<dyn FeatureExtractor>, String> {
    let user_weights = || {
        spec.weights.ok_or_else(|| {
            format!(
                "{} needs a weights file (none can be downloaded here)",
                spec.name
            )
        })
    };
    Ok(match spec.name {
        "efficientnet-lite0" => {
            if let Some(w) = spec.weights {
                return Err(format!(
                    "efficientnet-lite0 uses its shipped weights; {} is not taken",
                    w.display()
                ));
            }
            let weights = default_weights();
            Box::new(EfficientNetExtractor::load(&weights, device).map_err(|e| {
                format!(
                    "its weights at {} could not be loaded: {e}",
                    weights.display()
                )
            })?)
        }
        "inception-v3-fid" => {
            let resize = inception_resize(spec.inception_resize)?;
            Box::new(
                InceptionExtractor::load(user_weights()?, resize, device)
                    .map_err(|e| e.to_string())?,
            )
        }
        "clip" => Box::new(load_clip(user_weights()?, spec.clip_activation, device)?),
        "vgg16" => {
            Box::new(VggExtractor::load(user_weights()?, device).map_err(|e| e.to_string())?)
        }
        other => {
            return Err(format!(
                "unknown extractor '{other}': allowed are {}",
                PRETRAINED.join(", ")
            ))
        }
    })
}
