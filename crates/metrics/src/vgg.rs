//! VGG (Simonyan & Zisserman 2015; torchvision's `vgg11/13/16/19`, without batch norm) as the
//! feature network of improved precision/recall as LANTERN's `eval_prec_recall.py` runs it (after
//! Kynkäänniemi et al. 2019): 8-bit images resized to 224 × 224 by Pillow's bilinear filter
//! (torchvision's `Resize([224, 224])` on a PIL image), ImageNet normalisation, `features`, a
//! 7 × 7 adaptive average pool, then `classifier[:4]` — the second fully connected layer
//! **before** its ReLU ("fc2", 4096 wide). Loads torchvision's `vgg16-397923af.pth` by its own key
//! names; every width and the layer plan come from the checkpoint's shapes.

use std::collections::BTreeMap;
use std::path::Path;

use lantern_models::burn::nn::conv::{Conv2d, Conv2dConfig};
use lantern_models::burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::activation::{relu, softmax};
use lantern_models::burn::tensor::module::{adaptive_avg_pool2d, max_pool2d};
use lantern_models::burn::tensor::ops::MaxPoolOptions;
use lantern_models::burn::tensor::TensorData;
use lantern_models::checkpoint::{file_fingerprint, list_tensors, load_module, KeyLayout};
use lantern_models::ModelError;

use crate::extractor::{host, ClassProbs};
use crate::resize::{pil_resize_u8, to_u8, Filter};
use crate::{FeatureExtractor, FeatureSet, MetricError};

/// Input side: `Resize([224, 224])`.
pub const INPUT_SIDE: usize = 224;
/// Side of the adaptive average pool before the classifier.
const POOL_SIDE: usize = 7;
/// ImageNet normalisation (torchvision's `Normalize`).
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// torchvision's key names are the module's (`features.N`, `classifier.N`).
pub const VGG_LAYOUT: KeyLayout = KeyLayout {
    model: "VGG (torchvision)",
    renames: &[],
    ignored: &[],
};

/// The layer plan of a torchvision VGG, read from a checkpoint's shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VggConfig {
    /// `(features index, in channels, out channels)` of each 3 × 3 convolution; torchvision puts
    /// a ReLU after each and a 2 × 2 max pool wherever an index is skipped, and after the last.
    pub convs: Vec<(usize, usize, usize)>,
    /// `[in, out]` of `classifier.0` (fc1), `classifier.3` (fc2) and `classifier.6` (the logits).
    pub fc: [[usize; 2]; 3],
}

impl VggConfig {
    /// Reads the plan from `path`, refusing files that are not a torchvision VGG without batch
    /// norm.
    pub fn from_checkpoint(path: &Path) -> Result<Self, ModelError> {
        let shapes: BTreeMap<String, Vec<usize>> = list_tensors(path)?
            .into_iter()
            .map(|(k, (s, _))| (k, s))
            .collect();
        Self::from_shapes(&shapes).map_err(|message| ModelError::Config {
            source_name: path.display().to_string(),
            message,
        })
    }

    /// The plan from `{key: shape}` in torchvision's names.
    pub fn from_shapes(shapes: &BTreeMap<String, Vec<usize>>) -> Result<Self, String> {
        if shapes.keys().any(|k| k.ends_with("running_mean")) {
            return Err(
                "a batch-norm VGG (vgg16_bn and kin): LANTERN's precision/recall uses \
                        torchvision's plain vgg16 (vgg16-397923af.pth)"
                    .into(),
            );
        }
        let mut convs = Vec::new();
        for (key, shape) in shapes {
            let Some(index) = key
                .strip_prefix("features.")
                .and_then(|r| r.strip_suffix(".weight"))
            else {
                continue;
            };
            let index: usize = index
                .parse()
                .map_err(|_| format!("unexpected key '{key}'"))?;
            if shape.len() != 4 || shape[2..] != [3, 3] {
                return Err(format!("{key} is {shape:?}, not a 3 × 3 convolution"));
            }
            convs.push((index, shape[1], shape[0]));
        }
        convs.sort_unstable();
        if convs.first().map(|c| c.0) != Some(0) {
            return Err("no 'features.0.weight': not a torchvision VGG state dict".into());
        }
        for pair in convs.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            if !(2..=3).contains(&gap) || pair[1].1 != pair[0].2 {
                return Err(format!(
                    "features.{} → features.{}: not a VGG plan (convolution, ReLU, optional pool)",
                    pair[0].0, pair[1].0
                ));
            }
        }
        let fc = |i: usize| -> Result<[usize; 2], String> {
            let key = format!("classifier.{i}.weight");
            match shapes.get(&key).map(Vec::as_slice) {
                Some(&[out, inp]) => Ok([inp, out]),
                Some(s) => Err(format!("{key} is {s:?}, not a linear layer")),
                None => Err(format!("no '{key}': not a torchvision VGG classifier")),
            }
        };
        let fc = [fc(0)?, fc(3)?, fc(6)?];
        let last = convs.last().expect("non-empty").2;
        if fc[0][0] != last * POOL_SIDE * POOL_SIDE || fc[1][0] != fc[0][1] || fc[2][0] != fc[1][1]
        {
            return Err(format!(
                "classifier widths {fc:?} do not follow {last} channels × 7 × 7"
            ));
        }
        Ok(Self { convs, fc })
    }

    /// Depth as torchvision names it: convolutions plus the three linear layers (16 for vgg16).
    pub fn depth(&self) -> usize {
        self.convs.len() + 3
    }
}

/// torchvision's VGG: `features` (convolutions at their indices, ReLUs and pools between) and
/// `classifier` (linear layers at 0, 3 and 6).
#[derive(Module, Debug)]
pub struct Vgg {
    features: Vec<Option<Conv2d>>,
    classifier: Vec<Option<Linear>>,
}

impl Vgg {
    /// The architecture of `c` with placeholder weights.
    pub fn new(c: &VggConfig, d: &Device) -> Self {
        let mut features: Vec<Option<Conv2d>> = (0..=c.convs.last().map_or(0, |x| x.0))
            .map(|_| None)
            .collect();
        for &(i, cin, cout) in &c.convs {
            features[i] = Some(
                Conv2dConfig::new([cin, cout], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(d),
            );
        }
        let mut classifier: Vec<Option<Linear>> = (0..7).map(|_| None).collect();
        for (slot, [i, o]) in [0, 3, 6].into_iter().zip(c.fc) {
            classifier[slot] = Some(LinearConfig::new(i, o).init(d));
        }
        Self {
            features,
            classifier,
        }
    }

    /// Loads a torchvision VGG state dict (`vgg16-397923af.pth` or a safetensors copy).
    pub fn load(path: &Path, device: &Device) -> Result<(Self, VggConfig), ModelError> {
        let config = VggConfig::from_checkpoint(path)?;
        let net = load_module(Self::new(&config, device), path, &VGG_LAYOUT)?;
        Ok((net, config))
    }

    fn fc(&self, i: usize) -> &Linear {
        self.classifier[i]
            .as_ref()
            .expect("linear layers at 0, 3, 6")
    }

    /// Normalised input `[B, 3, H, W]` → fc2 activations before the ReLU `[B, 4096]`.
    pub fn fc2(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        let mut after_conv = false;
        for layer in &self.features {
            match layer {
                Some(conv) => {
                    x = relu(conv.forward(x));
                    after_conv = true;
                }
                // The ReLU's slot follows its convolution; any other empty slot is a pool.
                None if after_conv => after_conv = false,
                None => x = max_pool_2x2(x),
            }
        }
        let x = max_pool_2x2(x);
        let x = adaptive_avg_pool2d(x, [POOL_SIDE, POOL_SIDE]);
        let [b, c, h, w] = x.dims();
        let x = x.reshape([b, c * h * w]);
        // classifier[:4]: fc1, ReLU, Dropout (identity in eval), fc2.
        self.fc(3).forward(relu(self.fc(0).forward(x)))
    }

    /// Class logits `[B, classes]` from fc2 activations (`classifier[4:]`).
    pub fn logits(&self, fc2: Tensor<2>) -> Tensor<2> {
        self.fc(6).forward(relu(fc2))
    }
}

fn max_pool_2x2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([2, 2]).with_stride([2, 2]))
}

/// Images `[B, 3, H, W]` in [-1, 1] → VGG input `[B, 3, 224, 224]`: bytes as saved, Pillow's
/// 8-bit bilinear resize, `ToTensor` (÷ 255) and ImageNet normalisation.
pub fn preprocess(images: Tensor<4>) -> Result<Tensor<4>, MetricError> {
    let [b, c, h, w] = images.dims();
    if c != 3 {
        return Err(MetricError::Shape(format!("{c} channels, VGG takes RGB")));
    }
    let device = images.device();
    let pixels = host(images)?;
    let s = INPUT_SIDE;
    let mut out = Vec::with_capacity(b * 3 * s * s);
    for (i, plane) in pixels.chunks(h * w).enumerate() {
        let ch = i % 3;
        let resized = pil_resize_u8(&to_u8(plane), (h, w), (s, s), Filter::Bilinear);
        out.extend(
            resized
                .iter()
                .map(|&v| (v as f32 / 255.0 - MEAN[ch]) / STD[ch]),
        );
    }
    Ok(Tensor::from_data(
        TensorData::new(out, [b, 3, s, s]),
        &device,
    ))
}

/// VGG fc2 features for precision/recall (`vgg16-fc2` for torchvision's vgg16), and the
/// classifier's softmax for the class score.
pub struct VggExtractor {
    net: Vgg,
    config: VggConfig,
    weights: String,
}

impl VggExtractor {
    /// Loads the user's torchvision VGG weights.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        let (net, config) = Vgg::load(path, device)?;
        Ok(Self {
            net,
            config,
            weights: file_fingerprint(path),
        })
    }
}

impl FeatureExtractor for VggExtractor {
    fn name(&self) -> String {
        format!("vgg{}-fc2", self.config.depth())
    }

    fn identity(&self) -> String {
        format!("{}@{}", self.name(), self.weights)
    }

    fn dim(&self) -> usize {
        self.config.fc[1][1]
    }

    fn features(&self, images: Tensor<4>) -> Result<FeatureSet, MetricError> {
        let f = self.net.fc2(preprocess(images)?);
        FeatureSet::new(&self.name(), self.dim(), host(f)?)
    }

    fn class_probs(&self, images: Tensor<4>) -> Option<Result<ClassProbs, MetricError>> {
        Some(
            self.features_and_probs(images)
                .map(|(_, p)| p.expect("VGG classifies")),
        )
    }

    fn features_and_probs(
        &self,
        images: Tensor<4>,
    ) -> Result<(FeatureSet, Option<ClassProbs>), MetricError> {
        let fc2 = self.net.fc2(preprocess(images)?);
        let probs = host(softmax(self.net.logits(fc2.clone()), 1))?;
        let set = FeatureSet::new(&self.name(), self.dim(), host(fc2)?)?;
        Ok((set, Some((probs, self.config.fc[2][1]))))
    }
}
