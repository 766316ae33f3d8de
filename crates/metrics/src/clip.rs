//! CLIP image and text towers (Radford et al. 2021, ViT variants such as ViT-B/32) loading a
//! user's state dict with OpenAI's key names (`visual.conv1.weight`, `transformer.resblocks.N…`,
//! `text_projection`; open_clip's files use the same names), every size read from the checkpoint
//! as OpenAI's `build_model` reads it. CLIP score is the raw cosine between the image and the text
//! "A photo depicts " + caption, not scaled (LANTERN's protocol).

use std::path::Path;

use lantern_models::burn::module::Param;
use lantern_models::burn::nn::conv::{Conv2d, Conv2dConfig};
use lantern_models::burn::nn::{Linear, LinearConfig};
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::activation::{gelu, sigmoid, softmax};
use lantern_models::burn::tensor::module::interpolate;
use lantern_models::burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use lantern_models::burn::tensor::{Distribution, Int, TensorData};
use lantern_models::checkpoint::{list_tensors, load_module, KeyLayout};
use lantern_models::ModelError;

use crate::clip_tokenizer::ClipTokenizer;
use crate::{FeatureExtractor, FeatureSet, MetricError};

/// The text LANTERN's evaluation puts before every caption.
pub const PROMPT_PREFIX: &str = "A photo depicts ";
/// CLIP's image normalisation (mean, std per RGB channel of [0, 1] pixels).
const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// Key layout: OpenAI's names; scalars and buffers of the official code are not parameters.
pub const CLIP_LAYOUT: KeyLayout = KeyLayout {
    model: "CLIP",
    renames: &[],
    ignored: &[
        "logit_scale",
        "input_resolution",
        "context_length",
        "vocab_size",
        "attn_mask",
        "*.attn_mask",
    ],
};

/// The MLP's activation: OpenAI's weights were trained with QuickGELU, most open_clip
/// (LAION) ViT-B/32 weights with exact GELU; the checkpoint does not say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x · σ(1.702 x)` (OpenAI CLIP).
    QuickGelu,
    /// `x · Φ(x)` (open_clip models without the `-quickgelu` suffix).
    Gelu,
}

/// Sizes of a CLIP ViT, read from a checkpoint's tensor shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipConfig {
    /// Joint embedding width.
    pub embed_dim: usize,
    /// Image side the vision tower was trained at.
    pub image_size: usize,
    /// Patch side.
    pub patch: usize,
    /// Vision transformer width and depth.
    pub vision_width: usize,
    /// Vision transformer depth.
    pub vision_layers: usize,
    /// Text context length (77).
    pub context: usize,
    /// Text vocabulary (49,408).
    pub vocab: usize,
    /// Text transformer width.
    pub text_width: usize,
    /// Text transformer depth.
    pub text_layers: usize,
}

impl ClipConfig {
    /// Reads the sizes from `path`'s shapes, refusing files that are not a CLIP ViT.
    pub fn from_checkpoint(path: &Path) -> Result<Self, ModelError> {
        let shapes = list_tensors(path)?;
        let bad = |message: String| ModelError::Config {
            source_name: path.display().to_string(),
            message,
        };
        let shape = |key: &str| {
            shapes.get(key).map(|(s, _)| s.clone()).ok_or_else(|| {
                bad(format!(
                    "no '{key}': not a CLIP ViT state dict with OpenAI's key names \
                     (open_clip and OpenAI state dicts qualify; Hugging Face `vision_model.*` \
                     layouts and ResNet CLIPs do not)"
                ))
            })
        };
        let layers = |prefix: &str| {
            shapes
                .keys()
                .filter_map(|k| k.strip_prefix(prefix))
                .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
                .max()
                .map_or(0, |n| n + 1)
        };
        let conv = shape("visual.conv1.weight")?;
        let positions = shape("visual.positional_embedding")?[0];
        let grid = ((positions - 1) as f64).sqrt().round() as usize;
        if grid * grid + 1 != positions {
            return Err(bad(format!(
                "visual.positional_embedding has {positions} rows, not a square grid plus one"
            )));
        }
        let config = Self {
            embed_dim: shape("text_projection")?[1],
            image_size: conv[2] * grid,
            patch: conv[2],
            vision_width: conv[0],
            vision_layers: layers("visual.transformer.resblocks."),
            context: shape("positional_embedding")?[0],
            vocab: shape("token_embedding.weight")?[0],
            text_width: shape("ln_final.weight")?[0],
            text_layers: layers("transformer.resblocks."),
        };
        for (name, width) in [("vision", config.vision_width), ("text", config.text_width)] {
            if width % 64 != 0 {
                return Err(bad(format!(
                    "{name} width {width} is not a multiple of CLIP's 64-wide heads"
                )));
            }
        }
        Ok(config)
    }
}

/// A parameter drawn from N(0, std²) (the initial weights of OpenAI's CLIP code).
fn normal(shape: [usize; 2], std: f64, d: &Device) -> Param<Tensor<2>> {
    Param::from_tensor(Tensor::random(shape, Distribution::Normal(0.0, std), d))
}

/// LayerNorm over the last dimension (ε = 1e-5) with PyTorch's names.
#[derive(Module, Debug)]
pub struct Ln {
    weight: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
}

impl Ln {
    fn new(width: usize, d: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([width], d)),
            bias: Param::from_tensor(Tensor::zeros([width], d)),
        }
    }

    /// `[B, T, W]` → normalised `[B, T, W]`.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let w = self.weight.dims()[0];
        let mean = x.clone().mean_dim(2);
        let centred = x - mean;
        let var = centred.clone().square().mean_dim(2);
        centred / (var + 1e-5).sqrt() * self.weight.val().reshape([1, 1, w])
            + self.bias.val().reshape([1, 1, w])
    }
}

/// `nn.MultiheadAttention` with a fused input projection and 64-wide heads.
#[derive(Module, Debug)]
pub struct Attention {
    in_proj_weight: Param<Tensor<2>>,
    in_proj_bias: Param<Tensor<1>>,
    out_proj: Linear,
    heads: usize,
}

impl Attention {
    fn new(width: usize, d: &Device) -> Self {
        Self {
            in_proj_weight: normal([3 * width, width], (width as f64).powf(-0.5), d),
            in_proj_bias: Param::from_tensor(Tensor::zeros([3 * width], d)),
            out_proj: LinearConfig::new(width, width).init(d),
            heads: width / 64,
        }
    }

    /// `[B, T, W]` with an optional additive mask `[T, T]` → `[B, T, W]`.
    fn forward(&self, x: Tensor<3>, mask: Option<Tensor<2>>) -> Tensor<3> {
        let [b, t, w] = x.dims();
        let (h, hd) = (self.heads, w / self.heads);
        let qkv = x
            .reshape([b * t, w])
            .matmul(self.in_proj_weight.val().transpose())
            + self.in_proj_bias.val().reshape([1, 3 * w]);
        let split = |i: usize| {
            qkv.clone()
                .slice([0..b * t, i * w..(i + 1) * w])
                .reshape([b, t, h, hd])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let mut scores = q.matmul(k.swap_dims(2, 3)) / (hd as f64).sqrt();
        if let Some(mask) = mask {
            scores = scores + mask.reshape([1, 1, t, t]);
        }
        let out = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, t, w]);
        self.out_proj.forward(out)
    }
}

/// Pre-norm residual block: attention, then a 4× MLP.
#[derive(Module, Debug)]
pub struct Block {
    ln_1: Ln,
    attn: Attention,
    ln_2: Ln,
    mlp: Mlp,
}

/// `c_fc` → activation → `c_proj`.
#[derive(Module, Debug)]
pub struct Mlp {
    c_fc: Linear,
    c_proj: Linear,
    quick_gelu: bool,
}

impl Block {
    fn new(width: usize, act: Activation, d: &Device) -> Self {
        Self {
            ln_1: Ln::new(width, d),
            attn: Attention::new(width, d),
            ln_2: Ln::new(width, d),
            mlp: Mlp {
                c_fc: LinearConfig::new(width, 4 * width).init(d),
                c_proj: LinearConfig::new(4 * width, width).init(d),
                quick_gelu: act == Activation::QuickGelu,
            },
        }
    }

    fn forward(&self, x: Tensor<3>, mask: Option<Tensor<2>>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), mask);
        let h = self.mlp.c_fc.forward(self.ln_2.forward(x.clone()));
        let h = if self.mlp.quick_gelu {
            h.clone() * sigmoid(h * 1.702)
        } else {
            gelu(h)
        };
        x + self.mlp.c_proj.forward(h)
    }
}

/// A stack of residual blocks (`resblocks.N`).
#[derive(Module, Debug)]
pub struct Transformer {
    resblocks: Vec<Block>,
}

impl Transformer {
    fn new(width: usize, layers: usize, act: Activation, d: &Device) -> Self {
        Self {
            resblocks: (0..layers).map(|_| Block::new(width, act, d)).collect(),
        }
    }

    fn forward(&self, mut x: Tensor<3>, mask: Option<Tensor<2>>) -> Tensor<3> {
        for block in &self.resblocks {
            x = block.forward(x, mask.clone());
        }
        x
    }
}

/// The vision tower (`visual.*`): patch embedding, class token, transformer, projection.
#[derive(Module, Debug)]
pub struct VisionTower {
    conv1: Conv2d,
    class_embedding: Param<Tensor<1>>,
    positional_embedding: Param<Tensor<2>>,
    ln_pre: Ln,
    transformer: Transformer,
    ln_post: Ln,
    proj: Param<Tensor<2>>,
}

/// Token embedding table (`token_embedding.weight`, `[vocab, width]`).
#[derive(Module, Debug)]
pub struct TokenEmbedding {
    weight: Param<Tensor<2>>,
}

/// Both CLIP towers.
#[derive(Module, Debug)]
pub struct Clip {
    visual: VisionTower,
    token_embedding: TokenEmbedding,
    positional_embedding: Param<Tensor<2>>,
    transformer: Transformer,
    ln_final: Ln,
    text_projection: Param<Tensor<2>>,
}

impl Clip {
    /// The architecture of `c` with random initial weights (OpenAI's initialisation scales).
    pub fn new(c: &ClipConfig, act: Activation, d: &Device) -> Self {
        let grid = c.image_size / c.patch;
        let vw = c.vision_width;
        let (vs, ts) = ((vw as f64).powf(-0.5), (c.text_width as f64).powf(-0.5));
        Self {
            visual: VisionTower {
                conv1: Conv2dConfig::new([3, vw], [c.patch, c.patch])
                    .with_stride([c.patch, c.patch])
                    .with_bias(false)
                    .init(d),
                class_embedding: Param::from_tensor(Tensor::random(
                    [vw],
                    Distribution::Normal(0.0, vs),
                    d,
                )),
                positional_embedding: normal([grid * grid + 1, vw], vs, d),
                ln_pre: Ln::new(vw, d),
                transformer: Transformer::new(vw, c.vision_layers, act, d),
                ln_post: Ln::new(vw, d),
                proj: normal([vw, c.embed_dim], vs, d),
            },
            token_embedding: TokenEmbedding {
                weight: normal([c.vocab, c.text_width], 0.02, d),
            },
            positional_embedding: normal([c.context, c.text_width], 0.01, d),
            transformer: Transformer::new(c.text_width, c.text_layers, act, d),
            ln_final: Ln::new(c.text_width, d),
            text_projection: normal([c.text_width, c.embed_dim], ts, d),
        }
    }

    /// Loads a CLIP ViT state dict (`.pt`, `.bin` or `.safetensors`; OpenAI's TorchScript
    /// archives must be saved as a state dict first).
    pub fn load(
        path: &Path,
        act: Activation,
        device: &Device,
    ) -> Result<(Self, ClipConfig), ModelError> {
        let config = ClipConfig::from_checkpoint(path)?;
        let model = load_module(Self::new(&config, act, device), path, &CLIP_LAYOUT)?;
        Ok((model, config))
    }

    fn image_side(&self) -> usize {
        let [positions, _] = self.visual.positional_embedding.dims();
        let grid = ((positions - 1) as f64).sqrt().round() as usize;
        grid * self.visual.conv1.weight.dims()[2]
    }

    /// Images `[B, 3, H, W]` in [-1, 1] → CLIP's input: shortest side resized bicubically to the
    /// tower's side (on the tensor, without PIL's antialiasing), centre crop, CLIP normalisation.
    pub fn preprocess(&self, images: Tensor<4>) -> Tensor<4> {
        let side = self.image_side();
        let [b, _, h, w] = images.dims();
        let x = (images + 1.0) * 0.5;
        let x = if h.min(w) != side {
            let (nh, nw) = if h <= w {
                (side, (w * side).div_ceil(h).max(side))
            } else {
                ((h * side).div_ceil(w).max(side), side)
            };
            interpolate(
                x,
                InterpolateOptions::new(InterpolateMode::Bicubic)
                    .with_align_corners(false)
                    .with_output_size([nh, nw]),
            )
        } else {
            x
        };
        let [_, _, h, w] = x.dims();
        let (top, left) = ((h - side) / 2, (w - side) / 2);
        let x = x.slice([0..b, 0..3, top..top + side, left..left + side]);
        let device = x.device();
        let mean = Tensor::<1>::from_floats(MEAN, &device).reshape([1, 3, 1, 1]);
        let std = Tensor::<1>::from_floats(STD, &device).reshape([1, 3, 1, 1]);
        (x - mean) / std
    }

    /// Normalised images `[B, 3, S, S]` (see [`Clip::preprocess`]) → image embeddings `[B, E]`.
    pub fn encode_image(&self, x: Tensor<4>) -> Tensor<2> {
        let v = &self.visual;
        let h = v.conv1.forward(x);
        let [b, w, gh, gw] = h.dims();
        let patches = h.reshape([b, w, gh * gw]).swap_dims(1, 2);
        let class = v.class_embedding.val().reshape([1, 1, w]).expand([b, 1, w]);
        let x = Tensor::cat(vec![class, patches], 1) + v.positional_embedding.val().unsqueeze();
        let x = v.transformer.forward(v.ln_pre.forward(x), None);
        let cls = v
            .ln_post
            .forward(x.slice([0..b, 0..1, 0..w]))
            .reshape([b, w]);
        cls.matmul(v.proj.val())
    }

    /// Token ids (rows of the context length, zero-padded; see [`ClipTokenizer::tokenize`]) →
    /// text embeddings `[B, E]`, pooled at each row's largest id (`<end_of_text>`).
    pub fn encode_text(&self, rows: &[Vec<u32>]) -> Tensor<2> {
        let device = self.positional_embedding.device();
        let [t, w] = self.positional_embedding.dims();
        let b = rows.len();
        let flat: Vec<i64> = rows
            .iter()
            .flat_map(|r| (0..t).map(move |i| r.get(i).copied().unwrap_or(0) as i64))
            .collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(flat, [b * t]), &device);
        let x = self
            .token_embedding
            .weight
            .val()
            .select(0, ids)
            .reshape([b, t, w])
            + self.positional_embedding.val().unsqueeze();
        let mask: Vec<f32> = (0..t * t)
            .map(|i| {
                if i % t > i / t {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [t, t]), &device);
        let x = self
            .ln_final
            .forward(self.transformer.forward(x, Some(mask)));
        let eot: Vec<i64> = rows
            .iter()
            .enumerate()
            .map(|(row, r)| {
                let pos =
                    (0..r.len().min(t)).fold(0, |best, i| if r[i] > r[best] { i } else { best });
                (row * t + pos) as i64
            })
            .collect();
        let eot = Tensor::<1, Int>::from_data(TensorData::new(eot, [b]), &device);
        x.reshape([b * t, w])
            .select(0, eot)
            .matmul(self.text_projection.val())
    }
}

/// Cosine similarity of row `i` of `a` with row `i` of `b` (both `n × dim`, row-major): the raw
/// CLIP score of each image–text pair.
pub fn cosine_rows(a: &[f32], b: &[f32], dim: usize) -> Result<Vec<f32>, MetricError> {
    if a.len() != b.len() || dim == 0 || !a.len().is_multiple_of(dim) {
        return Err(MetricError::Shape(format!(
            "cosine of {} and {} values in rows of {dim}",
            a.len(),
            b.len()
        )));
    }
    Ok(a.chunks(dim)
        .zip(b.chunks(dim))
        .map(|(x, y)| {
            let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
            let nx: f64 = x.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|q| (*q as f64).powi(2)).sum::<f64>().sqrt();
            (dot / (nx * ny).max(f64::MIN_POSITIVE)) as f32
        })
        .collect())
}

fn host(t: Tensor<2>) -> Result<Vec<f32>, MetricError> {
    t.into_data()
        .try_into_vec_as()
        .map_err(|e| MetricError::Shape(format!("{e:?}")))
}

/// CLIP with its tokenizer: CLIP scores of images against captions, and image embeddings as
/// features (`clip:<label>`; a Fréchet distance over them is "FD in CLIP space", not FID).
pub struct ClipScorer {
    clip: Clip,
    config: ClipConfig,
    tokenizer: ClipTokenizer,
    label: String,
}

impl ClipScorer {
    /// Loads the towers from `checkpoint` and the BPE merges from `vocab`; `label` names the
    /// weights in records (e.g. `vit-b-32-openai`).
    pub fn load(
        checkpoint: &Path,
        vocab: &Path,
        act: Activation,
        label: &str,
        device: &Device,
    ) -> Result<Self, MetricError> {
        let (clip, config) = Clip::load(checkpoint, act, device)
            .map_err(|e: ModelError| MetricError::Model(e.to_string()))?;
        let tokenizer = ClipTokenizer::load(vocab)?;
        Ok(Self {
            clip,
            config,
            tokenizer,
            label: label.to_string(),
        })
    }

    /// Refuses a text tower whose vocabulary is not the tokenizer's (CLIP's 49,408 ids).
    pub fn check_vocabulary(&self) -> Result<(), MetricError> {
        if self.config.vocab != self.tokenizer.eot as usize + 1 {
            return Err(MetricError::Shape(format!(
                "the text tower of clip:{} has {} token ids, CLIP's tokenizer {}",
                self.label,
                self.config.vocab,
                self.tokenizer.eot + 1
            )));
        }
        Ok(())
    }

    /// Raw CLIP score (cosine) of image `i` with `PROMPT_PREFIX + captions[i]` (refused when the
    /// text tower's vocabulary is not the tokenizer's).
    pub fn score(&self, images: Tensor<4>, captions: &[String]) -> Result<Vec<f32>, MetricError> {
        self.check_vocabulary()?;
        let b = images.dims()[0];
        if b != captions.len() {
            return Err(MetricError::Shape(format!(
                "{b} images and {} captions",
                captions.len()
            )));
        }
        let img = host(self.clip.encode_image(self.clip.preprocess(images)))?;
        let rows: Vec<Vec<u32>> = captions
            .iter()
            .map(|c| {
                self.tokenizer
                    .tokenize(&format!("{PROMPT_PREFIX}{c}"), self.config.context)
            })
            .collect();
        let txt = host(self.clip.encode_text(&rows))?;
        cosine_rows(&img, &txt, self.config.embed_dim)
    }
}

impl FeatureExtractor for ClipScorer {
    fn name(&self) -> String {
        format!("clip:{}", self.label)
    }

    fn dim(&self) -> usize {
        self.config.embed_dim
    }

    fn features(&self, images: Tensor<4>) -> Result<FeatureSet, MetricError> {
        let f = host(self.clip.encode_image(self.clip.preprocess(images)))?;
        FeatureSet::new(&self.name(), self.config.embed_dim, f)
    }
}
