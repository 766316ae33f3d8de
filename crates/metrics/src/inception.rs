//! Inception-v3 in its FID variant (Szegedy et al. 2016 as frozen in TensorFlow's 2015-12-05
//! graph; pytorch-fid's `fid_inception_v3`): loads `pt_inception-2015-12-05-6726825d.pth` by its own
//! key names. Differences from torchvision's Inception-v3: 1008 classes, and the pooling branches
//! of the A, C and first E blocks average without counting padding, while the last E block takes a
//! max. Features are the 2048-wide pool3 activations; a Fréchet distance over them is FID.
//! Images reach 299 × 299 either as clean-fid's "clean" mode does it (8-bit images, Pillow's
//! antialiased bicubic; the LANTERN paper's FIDs) or as pytorch-fid does (bilinear, no
//! antialiasing); the two give different FIDs, so the extractor's name says which.

use std::path::Path;

use lantern_models::burn::module::Param;
use lantern_models::burn::nn::conv::{Conv2d, Conv2dConfig};
use lantern_models::burn::nn::PaddingConfig2d;
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::activation::{relu, softmax};
use lantern_models::burn::tensor::module::{avg_pool2d, interpolate, max_pool2d};
use lantern_models::burn::tensor::ops::{
    AvgPoolOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions,
};
use lantern_models::burn::tensor::TensorData;
use lantern_models::checkpoint::{file_fingerprint, load_module, KeyLayout};
use lantern_models::ModelError;

use crate::bn::Bn;
use crate::extractor::{host, ClassProbs};
use crate::resize::{pil_bicubic, to_u8};
use crate::{FeatureExtractor, FeatureSet, MetricError};

/// Input side: pytorch-fid resizes every image bilinearly to 299 × 299.
pub const INPUT_SIDE: usize = 299;
/// Width of the pool3 features.
pub const POOL3: usize = 2048;
/// Classes of the 2015 graph's softmax (ImageNet's 1000 plus 8 unused).
pub const CLASSES: usize = 1008;

/// How images are brought to 299 × 299 and into the network's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// clean-fid's "clean" mode: pixels quantised to 8 bits as saved PNGs are
    /// (`clamp(127.5·x + 128, 0, 255)`, truncated), each channel resized by Pillow's bicubic
    /// filter on floats (antialiased when shrinking) and clipped to [0, 255], then (x − 128)/128.
    Clean,
    /// pytorch-fid: bilinear interpolation of the [-1, 1] tensor, no antialiasing, no quantising.
    PytorchFid,
}

impl Resize {
    /// Suffix of the extractor name (`inception-v3-fid:clean`, `inception-v3-fid:pytorch-fid`).
    pub fn label(self) -> &'static str {
        match self {
            Resize::Clean => "clean",
            Resize::PytorchFid => "pytorch-fid",
        }
    }

    /// Images `[B, 3, H, W]` in [-1, 1] → network input `[B, 3, 299, 299]`.
    pub fn apply(self, images: Tensor<4>) -> Result<Tensor<4>, MetricError> {
        let [b, c, h, w] = images.dims();
        Ok(match self {
            Resize::PytorchFid if (h, w) == (INPUT_SIDE, INPUT_SIDE) => images,
            Resize::PytorchFid => interpolate(
                images,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(false)
                    .with_output_size([INPUT_SIDE, INPUT_SIDE]),
            ),
            Resize::Clean => {
                let device = images.device();
                let pixels = host(images)?;
                let s = INPUT_SIDE;
                let mut out = Vec::with_capacity(b * c * s * s);
                for plane in pixels.chunks(h * w) {
                    let bytes: Vec<f32> = to_u8(plane).into_iter().map(f32::from).collect();
                    let resized = if (h, w) == (s, s) {
                        bytes
                    } else {
                        pil_bicubic(&bytes, h, w, s, s)
                    };
                    out.extend(
                        resized
                            .iter()
                            .map(|v| (v.clamp(0.0, 255.0) - 128.0) / 128.0),
                    );
                }
                Tensor::from_data(TensorData::new(out, [b, c, s, s]), &device)
            }
        })
    }
}

/// Key layout of `pt_inception-2015-12-05`: top-level names are CamelCase there.
pub const INCEPTION_LAYOUT: KeyLayout = KeyLayout {
    model: "Inception-v3 (FID)",
    renames: &[
        ("Conv2d_1a_3x3.", "conv2d_1a_3x3."),
        ("Conv2d_2a_3x3.", "conv2d_2a_3x3."),
        ("Conv2d_2b_3x3.", "conv2d_2b_3x3."),
        ("Conv2d_3b_1x1.", "conv2d_3b_1x1."),
        ("Conv2d_4a_3x3.", "conv2d_4a_3x3."),
        ("Mixed_5b.", "mixed_5b."),
        ("Mixed_5c.", "mixed_5c."),
        ("Mixed_5d.", "mixed_5d."),
        ("Mixed_6a.", "mixed_6a."),
        ("Mixed_6b.", "mixed_6b."),
        ("Mixed_6c.", "mixed_6c."),
        ("Mixed_6d.", "mixed_6d."),
        ("Mixed_6e.", "mixed_6e."),
        ("Mixed_7a.", "mixed_7a."),
        ("Mixed_7b.", "mixed_7b."),
        ("Mixed_7c.", "mixed_7c."),
    ],
    ignored: &["*.num_batches_tracked"],
};

/// Conv (no bias) + batch norm (ε = 1e-3) + ReLU: torchvision's `BasicConv2d`.
#[derive(Module, Debug)]
pub struct BasicConv {
    conv: Conv2d,
    bn: Bn,
}

impl BasicConv {
    /// `c_in → c_out` with kernel `[kh, kw]`, `stride` and padding `[ph, pw]`.
    fn new(
        c_in: usize,
        c_out: usize,
        kernel: [usize; 2],
        stride: usize,
        pad: [usize; 2],
        device: &Device,
    ) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], kernel)
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad[0], pad[1], pad[0], pad[1]))
            .with_bias(false)
            .init(device);
        Self {
            conv,
            bn: Bn::new(c_out, device),
        }
    }

    fn square(c_in: usize, c_out: usize, k: usize, stride: usize, device: &Device) -> Self {
        Self::new(c_in, c_out, [k, k], stride, [k / 2, k / 2], device)
    }

    fn valid(c_in: usize, c_out: usize, k: usize, stride: usize, device: &Device) -> Self {
        Self::new(c_in, c_out, [k, k], stride, [0, 0], device)
    }

    /// `[B, C_in, H, W]` → `[B, C_out, H', W']`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}

/// 3 × 3 average over the padded window, dividing by the number of real pixels.
fn avg_pool_3x3(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(
        x,
        AvgPoolOptions::new([3, 3])
            .with_stride([1, 1])
            .with_padding([1, 1])
            .with_count_include_pad(false),
    )
}

/// 3 × 3 max with stride `stride` and padding `pad`.
fn max_pool_3x3(x: Tensor<4>, stride: usize, pad: usize) -> Tensor<4> {
    max_pool2d(
        x,
        MaxPoolOptions::new([3, 3])
            .with_stride([stride, stride])
            .with_padding([pad, pad]),
    )
}

/// Block A (Mixed_5b–d): 1×1, 5×5, double 3×3 and average-pool branches.
#[derive(Module, Debug)]
pub struct BlockA {
    branch1x1: BasicConv,
    branch5x5_1: BasicConv,
    branch5x5_2: BasicConv,
    branch3x3dbl_1: BasicConv,
    branch3x3dbl_2: BasicConv,
    branch3x3dbl_3: BasicConv,
    branch_pool: BasicConv,
}

impl BlockA {
    fn new(c: usize, pool_features: usize, d: &Device) -> Self {
        Self {
            branch1x1: BasicConv::square(c, 64, 1, 1, d),
            branch5x5_1: BasicConv::square(c, 48, 1, 1, d),
            branch5x5_2: BasicConv::square(48, 64, 5, 1, d),
            branch3x3dbl_1: BasicConv::square(c, 64, 1, 1, d),
            branch3x3dbl_2: BasicConv::square(64, 96, 3, 1, d),
            branch3x3dbl_3: BasicConv::square(96, 96, 3, 1, d),
            branch_pool: BasicConv::square(c, pool_features, 1, 1, d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b5 = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let b3 = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        let pool = self.branch_pool.forward(avg_pool_3x3(x.clone()));
        Tensor::cat(vec![self.branch1x1.forward(x), b5, b3, pool], 1)
    }
}

/// Block B (Mixed_6a): strided 3×3, strided double 3×3 and max-pool branches (35 → 17).
#[derive(Module, Debug)]
pub struct BlockB {
    branch3x3: BasicConv,
    branch3x3dbl_1: BasicConv,
    branch3x3dbl_2: BasicConv,
    branch3x3dbl_3: BasicConv,
}

impl BlockB {
    fn new(c: usize, d: &Device) -> Self {
        Self {
            branch3x3: BasicConv::valid(c, 384, 3, 2, d),
            branch3x3dbl_1: BasicConv::square(c, 64, 1, 1, d),
            branch3x3dbl_2: BasicConv::square(64, 96, 3, 1, d),
            branch3x3dbl_3: BasicConv::valid(96, 96, 3, 2, d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3.forward(x.clone());
        let dbl = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        Tensor::cat(vec![b3, dbl, max_pool_3x3(x, 2, 0)], 1)
    }
}

/// Block C (Mixed_6b–e): factorised 7×7 branches (1×7 then 7×1) with `c7` inner channels.
#[derive(Module, Debug)]
pub struct BlockC {
    branch1x1: BasicConv,
    branch7x7_1: BasicConv,
    branch7x7_2: BasicConv,
    branch7x7_3: BasicConv,
    branch7x7dbl_1: BasicConv,
    branch7x7dbl_2: BasicConv,
    branch7x7dbl_3: BasicConv,
    branch7x7dbl_4: BasicConv,
    branch7x7dbl_5: BasicConv,
    branch_pool: BasicConv,
}

impl BlockC {
    fn new(c: usize, c7: usize, d: &Device) -> Self {
        let row = |i, o| BasicConv::new(i, o, [1, 7], 1, [0, 3], d);
        let col = |i, o| BasicConv::new(i, o, [7, 1], 1, [3, 0], d);
        Self {
            branch1x1: BasicConv::square(c, 192, 1, 1, d),
            branch7x7_1: BasicConv::square(c, c7, 1, 1, d),
            branch7x7_2: row(c7, c7),
            branch7x7_3: col(c7, 192),
            branch7x7dbl_1: BasicConv::square(c, c7, 1, 1, d),
            branch7x7dbl_2: col(c7, c7),
            branch7x7dbl_3: row(c7, c7),
            branch7x7dbl_4: col(c7, c7),
            branch7x7dbl_5: row(c7, 192),
            branch_pool: BasicConv::square(c, 192, 1, 1, d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut b7 = self.branch7x7_1.forward(x.clone());
        b7 = self.branch7x7_3.forward(self.branch7x7_2.forward(b7));
        let mut dbl = self.branch7x7dbl_1.forward(x.clone());
        for conv in [
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ] {
            dbl = conv.forward(dbl);
        }
        let pool = self.branch_pool.forward(avg_pool_3x3(x.clone()));
        Tensor::cat(vec![self.branch1x1.forward(x), b7, dbl, pool], 1)
    }
}

/// Block D (Mixed_7a): strided 3×3 and strided 7×7-then-3×3 branches with a max pool (17 → 8).
#[derive(Module, Debug)]
pub struct BlockD {
    branch3x3_1: BasicConv,
    branch3x3_2: BasicConv,
    branch7x7x3_1: BasicConv,
    branch7x7x3_2: BasicConv,
    branch7x7x3_3: BasicConv,
    branch7x7x3_4: BasicConv,
}

impl BlockD {
    fn new(c: usize, d: &Device) -> Self {
        Self {
            branch3x3_1: BasicConv::square(c, 192, 1, 1, d),
            branch3x3_2: BasicConv::valid(192, 320, 3, 2, d),
            branch7x7x3_1: BasicConv::square(c, 192, 1, 1, d),
            branch7x7x3_2: BasicConv::new(192, 192, [1, 7], 1, [0, 3], d),
            branch7x7x3_3: BasicConv::new(192, 192, [7, 1], 1, [3, 0], d),
            branch7x7x3_4: BasicConv::valid(192, 192, 3, 2, d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone()));
        let mut b7 = self.branch7x7x3_1.forward(x.clone());
        for conv in [
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ] {
            b7 = conv.forward(b7);
        }
        Tensor::cat(vec![b3, b7, max_pool_3x3(x, 2, 0)], 1)
    }
}

/// Block E (Mixed_7b, 7c): expanded 1×3 / 3×1 branches; `max_pool` selects the last block's
/// max-pool branch (the FID graph's quirk) over the average pool.
#[derive(Module, Debug)]
pub struct BlockE {
    branch1x1: BasicConv,
    branch3x3_1: BasicConv,
    branch3x3_2a: BasicConv,
    branch3x3_2b: BasicConv,
    branch3x3dbl_1: BasicConv,
    branch3x3dbl_2: BasicConv,
    branch3x3dbl_3a: BasicConv,
    branch3x3dbl_3b: BasicConv,
    branch_pool: BasicConv,
    max_pool: bool,
}

impl BlockE {
    fn new(c: usize, max_pool: bool, d: &Device) -> Self {
        let row = |i, o| BasicConv::new(i, o, [1, 3], 1, [0, 1], d);
        let col = |i, o| BasicConv::new(i, o, [3, 1], 1, [1, 0], d);
        Self {
            branch1x1: BasicConv::square(c, 320, 1, 1, d),
            branch3x3_1: BasicConv::square(c, 384, 1, 1, d),
            branch3x3_2a: row(384, 384),
            branch3x3_2b: col(384, 384),
            branch3x3dbl_1: BasicConv::square(c, 448, 1, 1, d),
            branch3x3dbl_2: BasicConv::square(448, 384, 3, 1, d),
            branch3x3dbl_3a: row(384, 384),
            branch3x3dbl_3b: col(384, 384),
            branch_pool: BasicConv::square(c, 192, 1, 1, d),
            max_pool,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3_1.forward(x.clone());
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b3.clone()),
                self.branch3x3_2b.forward(b3),
            ],
            1,
        );
        let dbl = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone()));
        let dbl = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(dbl.clone()),
                self.branch3x3dbl_3b.forward(dbl),
            ],
            1,
        );
        let pooled = if self.max_pool {
            max_pool_3x3(x.clone(), 1, 1)
        } else {
            avg_pool_3x3(x.clone())
        };
        let pool = self.branch_pool.forward(pooled);
        Tensor::cat(vec![self.branch1x1.forward(x), b3, dbl, pool], 1)
    }
}

/// The 1008-way classifier of the 2015 graph (`fc.weight` `[1008, 2048]`, `fc.bias`).
#[derive(Module, Debug)]
pub struct Classifier {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

/// Inception-v3, FID variant.
#[derive(Module, Debug)]
pub struct InceptionV3 {
    conv2d_1a_3x3: BasicConv,
    conv2d_2a_3x3: BasicConv,
    conv2d_2b_3x3: BasicConv,
    conv2d_3b_1x1: BasicConv,
    conv2d_4a_3x3: BasicConv,
    mixed_5b: BlockA,
    mixed_5c: BlockA,
    mixed_5d: BlockA,
    mixed_6a: BlockB,
    mixed_6b: BlockC,
    mixed_6c: BlockC,
    mixed_6d: BlockC,
    mixed_6e: BlockC,
    mixed_7a: BlockD,
    mixed_7b: BlockE,
    mixed_7c: BlockE,
    fc: Classifier,
}

/// Activations of one forward pass: the three intermediate block outputs pytorch-fid exposes
/// (64, 192 and 768 channels) and the pooled features.
pub struct InceptionOutput {
    /// After the first max pool, `[B, 64, 73, 73]`.
    pub block0: Tensor<4>,
    /// After the second max pool, `[B, 192, 35, 35]`.
    pub block1: Tensor<4>,
    /// After Mixed_6e, `[B, 768, 17, 17]`.
    pub block2: Tensor<4>,
    /// Global average of Mixed_7c, `[B, 2048]`.
    pub pool3: Tensor<2>,
}

impl InceptionV3 {
    /// The architecture with placeholder weights.
    pub fn new(d: &Device) -> Self {
        Self {
            conv2d_1a_3x3: BasicConv::valid(3, 32, 3, 2, d),
            conv2d_2a_3x3: BasicConv::valid(32, 32, 3, 1, d),
            conv2d_2b_3x3: BasicConv::square(32, 64, 3, 1, d),
            conv2d_3b_1x1: BasicConv::valid(64, 80, 1, 1, d),
            conv2d_4a_3x3: BasicConv::valid(80, 192, 3, 1, d),
            mixed_5b: BlockA::new(192, 32, d),
            mixed_5c: BlockA::new(256, 64, d),
            mixed_5d: BlockA::new(288, 64, d),
            mixed_6a: BlockB::new(288, d),
            mixed_6b: BlockC::new(768, 128, d),
            mixed_6c: BlockC::new(768, 160, d),
            mixed_6d: BlockC::new(768, 160, d),
            mixed_6e: BlockC::new(768, 192, d),
            mixed_7a: BlockD::new(768, d),
            mixed_7b: BlockE::new(1280, false, d),
            mixed_7c: BlockE::new(2048, true, d),
            fc: Classifier {
                weight: Param::from_tensor(Tensor::zeros([CLASSES, POOL3], d)),
                bias: Param::from_tensor(Tensor::zeros([CLASSES], d)),
            },
        }
    }

    /// Loads `pt_inception-2015-12-05-*.pth` (or a safetensors copy with the same keys).
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        load_module(Self::new(device), path, &INCEPTION_LAYOUT)
    }

    /// Network input `[B, 3, H, W]` (see [`Resize::apply`]; pytorch-fid also feeds other sizes)
    /// → all exposed activations.
    pub fn forward_all(&self, x: Tensor<4>) -> InceptionOutput {
        let b = x.dims()[0];
        let x = self.conv2d_1a_3x3.forward(x);
        let x = self.conv2d_2a_3x3.forward(x);
        let x = self.conv2d_2b_3x3.forward(x);
        let block0 = max_pool_3x3(x, 2, 0);
        let x = self.conv2d_3b_1x1.forward(block0.clone());
        let x = self.conv2d_4a_3x3.forward(x);
        let block1 = max_pool_3x3(x, 2, 0);
        let mut x = self.mixed_5b.forward(block1.clone());
        x = self.mixed_5c.forward(x);
        x = self.mixed_5d.forward(x);
        x = self.mixed_6a.forward(x);
        for block in [
            &self.mixed_6b,
            &self.mixed_6c,
            &self.mixed_6d,
            &self.mixed_6e,
        ] {
            x = block.forward(x);
        }
        let block2 = x.clone();
        let x = self
            .mixed_7c
            .forward(self.mixed_7b.forward(self.mixed_7a.forward(x)));
        let [_, c, hh, ww] = x.dims();
        let pool3 = x.reshape([b, c, hh * ww]).mean_dim(2).reshape([b, c]);
        InceptionOutput {
            block0,
            block1,
            block2,
            pool3,
        }
    }

    /// Network input `[B, 3, H, W]` → pool3 features `[B, 2048]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_all(x).pool3
    }

    /// Class logits `[B, 1008]` from pool3 features, **without** the bias, as the original
    /// Inception Score code (`softmax/logits/MatMul`) and torch-fidelity compute them.
    pub fn logits_unbiased(&self, pool3: Tensor<2>) -> Tensor<2> {
        pool3.matmul(self.fc.weight.val().transpose())
    }
}

/// The FID Inception as a feature extractor: `inception-v3-fid:<resize>` pool3 features (a
/// Fréchet distance over them is FID), and its 1008-way softmax for the Inception Score.
pub struct InceptionExtractor {
    net: InceptionV3,
    resize: Resize,
    weights: String,
}

impl InceptionExtractor {
    /// Loads the user's `pt_inception-2015-12-05` weights; `resize` brings images to 299.
    pub fn load(path: &Path, resize: Resize, device: &Device) -> Result<Self, ModelError> {
        Ok(Self {
            net: InceptionV3::load(path, device)?,
            resize,
            weights: file_fingerprint(path),
        })
    }
}

impl FeatureExtractor for InceptionExtractor {
    fn name(&self) -> String {
        format!("inception-v3-fid:{}", self.resize.label())
    }

    fn identity(&self) -> String {
        format!("{}@{}", self.name(), self.weights)
    }

    fn dim(&self) -> usize {
        POOL3
    }

    fn features(&self, images: Tensor<4>) -> Result<FeatureSet, MetricError> {
        Ok(self.features_and_probs(images)?.0)
    }

    fn class_probs(&self, images: Tensor<4>) -> Option<Result<ClassProbs, MetricError>> {
        Some(
            self.features_and_probs(images)
                .map(|(_, p)| p.expect("Inception classifies")),
        )
    }

    fn features_and_probs(
        &self,
        images: Tensor<4>,
    ) -> Result<(FeatureSet, Option<ClassProbs>), MetricError> {
        let pool3 = self.net.forward(self.resize.apply(images)?);
        let probs = host(softmax(self.net.logits_unbiased(pool3.clone()), 1))?;
        let set = FeatureSet::new(&self.name(), POOL3, host(pool3)?)?;
        Ok((set, Some((probs, CLASSES))))
    }
}
