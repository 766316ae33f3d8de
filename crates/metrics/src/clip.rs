//! CLIP image and text towers (Radford et al. 2021, ViT variants such as ViT-B/32) loading a
//! user's state dict with OpenAI's key names (`visual.conv1.weight`, `transformer.resblocks.N…`,
//! `text_projection`; open_clip's files use the same names), every size read from the checkpoint
//! as OpenAI's `build_model` reads it. CLIP score is the raw cosine between the image and the text
//! "A photo depicts " + caption, not scaled (LANTERN's protocol). HPSv2 (Wu et al. 2023) is the
//! same computation with its fine-tuned open_clip ViT-H-14 (80-wide vision heads), the bare
//! prompt and its own image preprocessing.

use std::path::Path;

use lantern_models::burn::module::Param;
use lantern_models::burn::nn::conv::{Conv2d, Conv2dConfig};
use lantern_models::burn::nn::{Linear, LinearConfig};
use lantern_models::burn::prelude::*;
use lantern_models::burn::tensor::activation::{gelu, sigmoid, softmax};
use lantern_models::burn::tensor::{Distribution, Int, TensorData};
use lantern_models::checkpoint::{file_fingerprint, list_tensors, load_module, KeyLayout};
use lantern_models::ModelError;

use crate::clip_tokenizer::ClipTokenizer;
use crate::extractor::host;
use crate::resize::{pil_resize_f32, pil_resize_u8, to_u8, Filter};
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
    /// Vision attention heads (width / 64 in OpenAI's models; the checkpoint does not say).
    pub vision_heads: usize,
    /// Text attention heads (width / 64).
    pub text_heads: usize,
}

impl ClipConfig {
    /// Reads the sizes from `path`'s shapes (64-wide heads, as OpenAI's `build_model` assumes),
    /// refusing files that are not a CLIP ViT.
    pub fn from_checkpoint(path: &Path) -> Result<Self, ModelError> {
        Self::with_vision_head_width(path, 64)
    }

    /// [`ClipConfig::from_checkpoint`] with `head_width`-wide vision heads (80 in open_clip's
    /// ViT-H-14, and so in HPSv2).
    pub fn with_vision_head_width(path: &Path, head_width: usize) -> Result<Self, ModelError> {
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
            vision_heads: conv[0] / head_width.max(1),
            text_heads: shape("ln_final.weight")?[0] / 64,
        };
        for (name, width, head) in [
            ("vision", config.vision_width, head_width),
            ("text", config.text_width, 64),
        ] {
            if head == 0 || width % head != 0 {
                return Err(bad(format!(
                    "{name} width {width} is not a multiple of {head}-wide heads"
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

/// `nn.MultiheadAttention` with a fused input projection.
#[derive(Module, Debug)]
pub struct Attention {
    in_proj_weight: Param<Tensor<2>>,
    in_proj_bias: Param<Tensor<1>>,
    out_proj: Linear,
    heads: usize,
}

impl Attention {
    fn new(width: usize, heads: usize, d: &Device) -> Self {
        Self {
            in_proj_weight: normal([3 * width, width], (width as f64).powf(-0.5), d),
            in_proj_bias: Param::from_tensor(Tensor::zeros([3 * width], d)),
            out_proj: LinearConfig::new(width, width).init(d),
            heads,
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
    fn new(width: usize, heads: usize, act: Activation, d: &Device) -> Self {
        Self {
            ln_1: Ln::new(width, d),
            attn: Attention::new(width, heads, d),
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
    fn new(width: usize, layers: usize, heads: usize, act: Activation, d: &Device) -> Self {
        Self {
            resblocks: (0..layers)
                .map(|_| Block::new(width, heads, act, d))
                .collect(),
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
                transformer: Transformer::new(vw, c.vision_layers, c.vision_heads, act, d),
                ln_post: Ln::new(vw, d),
                proj: normal([vw, c.embed_dim], vs, d),
            },
            token_embedding: TokenEmbedding {
                weight: normal([c.vocab, c.text_width], 0.02, d),
            },
            positional_embedding: normal([c.context, c.text_width], 0.01, d),
            transformer: Transformer::new(c.text_width, c.text_layers, c.text_heads, act, d),
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
        Ok((Self::load_as(path, &config, act, device)?, config))
    }

    /// Loads `path` into the architecture of `config` (e.g. one with other head widths).
    pub fn load_as(
        path: &Path,
        config: &ClipConfig,
        act: Activation,
        device: &Device,
    ) -> Result<Self, ModelError> {
        load_module(Self::new(config, act, device), path, &CLIP_LAYOUT)
    }

    /// Normalised images `[B, 3, S, S]` (see [`Preprocess`]) → image embeddings `[B, E]`.
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

/// How images reach the vision tower (both start from the 8-bit pixels a saved PNG holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preprocess {
    /// OpenAI's `_transform` (the CLIP score's): Pillow's 8-bit bicubic resize of the shortest
    /// side to the tower's side (the other side truncated, as torchvision's `Resize(int)`), a
    /// centre crop (offsets rounded half to even, as `CenterCrop`), ÷ 255, CLIP normalisation.
    OpenAi,
    /// HPSv2's `ResizeMaxSize`: ÷ 255, then the longest side resized to the tower's side by
    /// torchvision's antialiased bicubic on the float tensor (Pillow's float filter), the other
    /// rounded half to even, zero padding to a square (the extra pixel right and bottom), CLIP
    /// normalisation.
    LongestSidePad,
}

/// Python's `round` (half to even) of a non-negative value.
fn round_half_even(x: f64) -> usize {
    let f = x.floor();
    let up = match (x - f).partial_cmp(&0.5) {
        Some(std::cmp::Ordering::Greater) => true,
        Some(std::cmp::Ordering::Equal) => f % 2.0 != 0.0,
        _ => false,
    };
    (f + up as u8 as f64) as usize
}

impl Preprocess {
    /// Images `[B, 3, H, W]` in [-1, 1] → normalised tower input `[B, 3, side, side]`.
    pub fn apply(self, images: Tensor<4>, side: usize) -> Result<Tensor<4>, MetricError> {
        let [b, c, h, w] = images.dims();
        if c != 3 {
            return Err(MetricError::Shape(format!("{c} channels, CLIP takes RGB")));
        }
        let device = images.device();
        let bytes = to_u8(&host(images)?);
        let mut out = Vec::with_capacity(b * 3 * side * side);
        for (i, plane) in bytes.chunks(h * w).enumerate() {
            let ch = i % 3;
            let square = match self {
                Preprocess::OpenAi => {
                    let (nh, nw) = if h <= w {
                        (side, side * w / h)
                    } else {
                        (side * h / w, side)
                    };
                    let resized = pil_resize_u8(plane, (h, w), (nh, nw), Filter::Bicubic);
                    let (top, left) = (
                        round_half_even((nh - side) as f64 / 2.0),
                        round_half_even((nw - side) as f64 / 2.0),
                    );
                    (top..top + side)
                        .flat_map(|y| {
                            resized[y * nw + left..y * nw + left + side]
                                .iter()
                                .map(|&v| v as f32 / 255.0)
                        })
                        .collect::<Vec<f32>>()
                }
                Preprocess::LongestSidePad => {
                    let unit: Vec<f32> = plane.iter().map(|&v| v as f32 / 255.0).collect();
                    let scale = side as f64 / h.max(w) as f64;
                    let (nh, nw) = if scale == 1.0 {
                        (h, w)
                    } else {
                        (
                            round_half_even(h as f64 * scale),
                            round_half_even(w as f64 * scale),
                        )
                    };
                    let resized = pil_resize_f32(&unit, (h, w), (nh, nw), Filter::Bicubic);
                    let (top, left) = ((side - nh) / 2, (side - nw) / 2);
                    let mut square = vec![0f32; side * side];
                    for y in 0..nh {
                        square[(top + y) * side + left..(top + y) * side + left + nw]
                            .copy_from_slice(&resized[y * nw..(y + 1) * nw]);
                    }
                    square
                }
            };
            out.extend(square.iter().map(|&v| (v - MEAN[ch]) / STD[ch]));
        }
        Ok(Tensor::from_data(
            TensorData::new(out, [b, 3, side, side]),
            &device,
        ))
    }
}

/// CLIP's normalisation of `[B, 3, S, S]` pixels in [0, 1] (what [`Preprocess`] ends with).
pub fn normalise(x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let mean = Tensor::<1>::from_floats(MEAN, &device).reshape([1, 3, 1, 1]);
    let std = Tensor::<1>::from_floats(STD, &device).reshape([1, 3, 1, 1]);
    (x - mean) / std
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

/// Which image–text score a [`ClipScorer`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreKind {
    /// LANTERN's CLIP score: "A photo depicts " + caption, OpenAI's preprocessing.
    Clip,
    /// HPSv2 (v2.0 / v2.1 weights): the bare caption, `ResizeMaxSize` preprocessing.
    Hps,
}

/// CLIP with its tokenizer: image–text scores (CLIP score or HPSv2) of images against captions,
/// and image embeddings as features (`clip:<label>`; a Fréchet distance over them is "FD in CLIP
/// space", not FID).
pub struct ClipScorer {
    clip: Clip,
    config: ClipConfig,
    tokenizer: ClipTokenizer,
    label: String,
    kind: ScoreKind,
    weights: String,
}

impl ClipScorer {
    /// Loads the towers from `checkpoint` and the BPE merges from `vocab` for the CLIP score;
    /// `label` names the weights in records (e.g. `vit-b-32-openai`).
    pub fn load(
        checkpoint: &Path,
        vocab: &Path,
        act: Activation,
        label: &str,
        device: &Device,
    ) -> Result<Self, MetricError> {
        let (clip, config) = Clip::load(checkpoint, act, device)
            .map_err(|e: ModelError| MetricError::Model(e.to_string()))?;
        let kind = (ScoreKind::Clip, act);
        Self::with(clip, config, (vocab, checkpoint), label, kind)
    }

    /// Loads HPSv2 weights (`HPS_v2.1_compressed.pt`: an open_clip ViT-H-14 under a
    /// `state_dict` key; exact GELU, 80-wide vision heads) for the HPSv2 score.
    pub fn load_hps(
        checkpoint: &Path,
        vocab: &Path,
        label: &str,
        device: &Device,
    ) -> Result<Self, MetricError> {
        let model = |e: ModelError| MetricError::Model(e.to_string());
        let config =
            ClipConfig::with_vision_head_width(checkpoint, HPS_HEAD_WIDTH).map_err(model)?;
        let clip = Clip::load_as(checkpoint, &config, Activation::Gelu, device).map_err(model)?;
        let kind = (ScoreKind::Hps, Activation::Gelu);
        Self::with(clip, config, (vocab, checkpoint), label, kind)
    }

    /// The scorer of `clip` with the tokenizer's merges from `files.0`; `files.1` is the
    /// checkpoint it was loaded from, with `kind.1` as its activation.
    fn with(
        clip: Clip,
        config: ClipConfig,
        files: (&Path, &Path),
        label: &str,
        (kind, act): (ScoreKind, Activation),
    ) -> Result<Self, MetricError> {
        Ok(Self {
            clip,
            config,
            tokenizer: ClipTokenizer::load(files.0)?,
            label: label.to_string(),
            kind,
            weights: format!("{}:{act:?}", file_fingerprint(files.1)),
        })
    }

    /// The score's name in records: `clip:<label>` or `hpsv2:<label>`.
    pub fn score_name(&self) -> String {
        match self.kind {
            ScoreKind::Clip => format!("clip:{}", self.label),
            ScoreKind::Hps => format!("hpsv2:{}", self.label),
        }
    }

    /// Refuses a text tower whose vocabulary is not the tokenizer's (CLIP's 49,408 ids).
    pub fn check_vocabulary(&self) -> Result<(), MetricError> {
        if self.config.vocab != self.tokenizer.eot as usize + 1 {
            return Err(MetricError::Shape(format!(
                "the text tower of {} has {} token ids, CLIP's tokenizer {}",
                self.score_name(),
                self.config.vocab,
                self.tokenizer.eot + 1
            )));
        }
        Ok(())
    }

    fn preprocess(&self, images: Tensor<4>) -> Result<Tensor<4>, MetricError> {
        let mode = match self.kind {
            ScoreKind::Clip => Preprocess::OpenAi,
            ScoreKind::Hps => Preprocess::LongestSidePad,
        };
        mode.apply(images, self.config.image_size)
    }

    /// Score of image `i` against `captions[i]`: the raw cosine of the two embeddings, the text
    /// being `PROMPT_PREFIX + caption` for the CLIP score and the caption for HPSv2 (refused when
    /// the text tower's vocabulary is not the tokenizer's).
    pub fn score(&self, images: Tensor<4>, captions: &[String]) -> Result<Vec<f32>, MetricError> {
        self.check_vocabulary()?;
        let b = images.dims()[0];
        if b != captions.len() {
            return Err(MetricError::Shape(format!(
                "{b} images and {} captions",
                captions.len()
            )));
        }
        let img = host(self.clip.encode_image(self.preprocess(images)?))?;
        let prefix = match self.kind {
            ScoreKind::Clip => PROMPT_PREFIX,
            ScoreKind::Hps => "",
        };
        let rows: Vec<Vec<u32>> = captions
            .iter()
            .map(|c| {
                self.tokenizer
                    .tokenize(&format!("{prefix}{c}"), self.config.context)
            })
            .collect();
        let txt = host(self.clip.encode_text(&rows))?;
        cosine_rows(&img, &txt, self.config.embed_dim)
    }
}

/// Vision head width of open_clip's ViT-H-14, which HPSv2 fine-tunes.
pub const HPS_HEAD_WIDTH: usize = 80;

impl FeatureExtractor for ClipScorer {
    fn name(&self) -> String {
        self.score_name()
    }

    fn identity(&self) -> String {
        format!("{}@{}", self.name(), self.weights)
    }

    fn dim(&self) -> usize {
        self.config.embed_dim
    }

    fn features(&self, images: Tensor<4>) -> Result<FeatureSet, MetricError> {
        let f = host(self.clip.encode_image(self.preprocess(images)?))?;
        FeatureSet::new(&self.name(), self.config.embed_dim, f)
    }
}
