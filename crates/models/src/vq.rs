//! LlamaGen VQ tokenizer (`tokenizer/tokenizer_image/vq_model.py::VQModel`).
//!
//! The official `mid` ModuleLists mix ResNet and attention blocks; burn needs one type per
//! `Vec`, so they are fields here (`mid_res_a`, `mid_attn`, `mid_res_b`) and
//! [`crate::pretrained::VQ_LAYOUT`] renames `mid.0/1/2` on load and back on save. Everything
//! else carries the official key names.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::TensorData;

use crate::config::VqConfig;
use crate::error::ModelError;

/// ResNet block: `x' + conv2(swish(norm2(conv1(swish(norm1(x))))))`, with a 1×1 `nin_shortcut`
/// when the channel count changes.
#[derive(Module, Debug)]
pub struct ResnetBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    norm2: GroupNorm,
    conv2: Conv2d,
    nin_shortcut: Option<Conv2d>,
}

/// Single-head spatial self-attention with 1×1 projections.
#[derive(Module, Debug)]
pub struct AttnBlock {
    norm: GroupNorm,
    q: Conv2d,
    k: Conv2d,
    v: Conv2d,
    proj_out: Conv2d,
}

/// The 3×3 convolution of an up- or downsampling step.
#[derive(Module, Debug)]
pub struct Resample {
    conv: Conv2d,
}

/// One encoder resolution: ResNet blocks (+ attention at the last level), then a downsample.
#[derive(Module, Debug)]
pub struct EncoderLevel {
    res: Vec<ResnetBlock>,
    attn: Vec<AttnBlock>,
    downsample: Option<Resample>,
}

/// One decoder resolution: ResNet blocks (+ attention at the first level), then an upsample.
#[derive(Module, Debug)]
pub struct DecoderLevel {
    res: Vec<ResnetBlock>,
    attn: Vec<AttnBlock>,
    upsample: Option<Resample>,
}

/// Image → latent grid.
#[derive(Module, Debug)]
pub struct Encoder {
    conv_in: Conv2d,
    conv_blocks: Vec<EncoderLevel>,
    mid_res_a: ResnetBlock,
    mid_attn: AttnBlock,
    mid_res_b: ResnetBlock,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

/// Latent grid → image.
#[derive(Module, Debug)]
pub struct Decoder {
    conv_in: Conv2d,
    mid_res_a: ResnetBlock,
    mid_attn: AttnBlock,
    mid_res_b: ResnetBlock,
    conv_blocks: Vec<DecoderLevel>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

/// The codebook (`quantize.embedding`).
#[derive(Module, Debug)]
pub struct Quantizer {
    embedding: Embedding,
}

/// What [`VqModel::quantize_train`] returns.
#[derive(Debug)]
pub struct QuantOutput {
    /// Straight-through quantised latent `[B, D, h, w]`.
    pub quant: Tensor<4>,
    /// `mean((z_q − sg(z))²)`: moves codes towards encoder outputs.
    pub codebook_loss: Tensor<1>,
    /// `mean((sg(z_q) − z)²)`: keeps encoder outputs near their codes (scale by β).
    pub commit_loss: Tensor<1>,
    /// Chosen codes `[B, h·w]`.
    pub codes: Tensor<2, Int>,
}

/// LlamaGen VQ tokenizer.
#[derive(Module, Debug)]
pub struct VqModel {
    encoder: Encoder,
    decoder: Decoder,
    quantize: Quantizer,
    quant_conv: Conv2d,
    post_quant_conv: Conv2d,
    #[module(skip)]
    config: VqConfig,
}

fn swish(x: Tensor<4>) -> Tensor<4> {
    x.clone() * sigmoid(x)
}

fn conv(c_in: usize, c_out: usize, kernel: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(device)
}

fn group_norm(groups: usize, channels: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups, channels)
        .with_epsilon(1e-6)
        .init(device)
}

/// `x / max(‖x‖₂, 1e-12)` along the last axis (`F.normalize`).
fn l2_normalize<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = x.clone().square().sum_dim(D - 1).sqrt().clamp_min(1e-12);
    x / norm
}

impl ResnetBlock {
    fn new(c_in: usize, c_out: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm1: group_norm(groups, c_in, device),
            conv1: conv(c_in, c_out, 3, device),
            norm2: group_norm(groups, c_out, device),
            conv2: conv(c_out, c_out, 3, device),
            nin_shortcut: (c_in != c_out).then(|| conv(c_in, c_out, 1, device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.conv1.forward(swish(self.norm1.forward(x.clone())));
        let h = self.conv2.forward(swish(self.norm2.forward(h)));
        let x = match &self.nin_shortcut {
            Some(s) => s.forward(x),
            None => x,
        };
        x + h
    }
}

impl AttnBlock {
    fn new(c: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm: group_norm(groups, c, device),
            q: conv(c, c, 1, device),
            k: conv(c, c, 1, device),
            v: conv(c, c, 1, device),
            proj_out: conv(c, c, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let hn = self.norm.forward(x.clone());
        let q = self
            .q
            .forward(hn.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let k = self.k.forward(hn.clone()).reshape([b, c, h * w]);
        let v = self.v.forward(hn).reshape([b, c, h * w]);
        let attn = softmax(q.matmul(k) * (1.0 / (c as f64).sqrt()), 2);
        let out = v.matmul(attn.swap_dims(1, 2)).reshape([b, c, h, w]);
        x + self.proj_out.forward(out)
    }
}

/// Nearest-neighbour ×2 upsampling (`F.interpolate(scale_factor=2, mode="nearest")`).
fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

impl VqModel {
    /// A randomly initialised tokenizer of the given shape.
    pub fn new(config: &VqConfig, device: &Device) -> Result<Self, ModelError> {
        let g = config.norm_groups("vq config")?;
        let ch = config.ch;
        let nres = config.num_res_blocks;

        let enc_mult = &config.encoder_ch_mult;
        let mut block_in = ch;
        let mut enc_levels = Vec::new();
        for (i, &m) in enc_mult.iter().enumerate() {
            let block_out = ch * m;
            let last = i + 1 == enc_mult.len();
            let with_attn = config.level_has_attention(i);
            let mut res = Vec::new();
            let mut attn = Vec::new();
            for _ in 0..nres {
                res.push(ResnetBlock::new(block_in, block_out, g, device));
                block_in = block_out;
                if with_attn {
                    attn.push(AttnBlock::new(block_in, g, device));
                }
            }
            let downsample = (!last).then(|| Resample {
                conv: Conv2dConfig::new([block_in, block_in], [3, 3])
                    .with_stride([2, 2])
                    .init(device),
            });
            enc_levels.push(EncoderLevel {
                res,
                attn,
                downsample,
            });
        }
        let encoder = Encoder {
            conv_in: conv(3, ch, 3, device),
            conv_blocks: enc_levels,
            mid_res_a: ResnetBlock::new(block_in, block_in, g, device),
            mid_attn: AttnBlock::new(block_in, g, device),
            mid_res_b: ResnetBlock::new(block_in, block_in, g, device),
            norm_out: group_norm(g, block_in, device),
            conv_out: conv(block_in, config.z_channels, 3, device),
        };

        let dec_mult = &config.decoder_ch_mult;
        let mut block_in = ch * dec_mult[dec_mult.len() - 1];
        let dec_conv_in = conv(config.z_channels, block_in, 3, device);
        let mid = (
            ResnetBlock::new(block_in, block_in, g, device),
            AttnBlock::new(block_in, g, device),
            ResnetBlock::new(block_in, block_in, g, device),
        );
        let mut dec_levels = Vec::new();
        for i in (0..dec_mult.len()).rev() {
            let block_out = ch * dec_mult[i];
            let with_attn = config.level_has_attention(i);
            let mut res = Vec::new();
            let mut attn = Vec::new();
            for _ in 0..nres + 1 {
                res.push(ResnetBlock::new(block_in, block_out, g, device));
                block_in = block_out;
                if with_attn {
                    attn.push(AttnBlock::new(block_in, g, device));
                }
            }
            let upsample = (i != 0).then(|| Resample {
                conv: conv(block_in, block_in, 3, device),
            });
            dec_levels.push(DecoderLevel {
                res,
                attn,
                upsample,
            });
        }
        let decoder = Decoder {
            conv_in: dec_conv_in,
            mid_res_a: mid.0,
            mid_attn: mid.1,
            mid_res_b: mid.2,
            conv_blocks: dec_levels,
            norm_out: group_norm(g, block_in, device),
            conv_out: conv(block_in, 3, 3, device),
        };

        Ok(Self {
            encoder,
            decoder,
            quantize: Quantizer {
                embedding: EmbeddingConfig::new(config.codebook_size, config.codebook_embed_dim)
                    .init(device),
            },
            quant_conv: conv(config.z_channels, config.codebook_embed_dim, 1, device),
            post_quant_conv: conv(config.codebook_embed_dim, config.z_channels, 1, device),
            config: config.clone(),
        })
    }

    /// The configuration the tokenizer was built from.
    pub fn config(&self) -> &VqConfig {
        &self.config
    }

    fn device(&self) -> Device {
        self.quantize.embedding.weight.val().device()
    }

    /// The raw (un-normalised) codebook `[codebook_size, embed_dim]`, as stored in the file.
    pub fn codebook(&self) -> Tensor<2> {
        self.quantize.embedding.weight.val()
    }

    /// Replaces codebook rows: `rows` pairs a code index with its new `embed_dim` values (dead-code
    /// restarts during training). The parameter keeps its id, so optimiser state follows it.
    pub fn restart_codes(mut self, rows: &[(usize, Vec<f32>)]) -> Self {
        let d = self.config.codebook_embed_dim;
        let weight = self.quantize.embedding.weight.clone();
        let old = weight.val();
        let device = old.device();
        let require_grad = old.is_require_grad();
        let mut values: Vec<f32> = old.into_data().try_into_vec_as().expect("f32 codebook");
        for (code, row) in rows {
            assert_eq!(row.len(), d, "a restarted code needs {d} values");
            values[code * d..(code + 1) * d].copy_from_slice(row);
        }
        let n = values.len() / d;
        self.quantize.embedding.weight = weight.map(|_| {
            Tensor::<2>::from_data(TensorData::new(values, [n, d]), &device)
                .set_require_grad(require_grad)
        });
        self
    }

    /// The codebook used for lookups: L2-normalised when `codebook_l2_norm` is set.
    fn lookup_codebook(&self) -> Tensor<2> {
        if self.config.codebook_l2_norm {
            l2_normalize(self.codebook())
        } else {
            self.codebook()
        }
    }

    /// Image `[B, 3, H, W]` in [-1, 1] → the encoder's mid-block activations
    /// `[B, ch·ch_mult.last, H/f, W/f]` (before the output norm; used as a feature extractor).
    pub fn encode_features(&self, image: Tensor<4>) -> Tensor<4> {
        let e = &self.encoder;
        let mut h = e.conv_in.forward(image);
        for level in &e.conv_blocks {
            for (i, res) in level.res.iter().enumerate() {
                h = res.forward(h);
                if let Some(a) = level.attn.get(i) {
                    h = a.forward(h);
                }
            }
            if let Some(d) = &level.downsample {
                h = d
                    .conv
                    .forward(h.pad((0, 1, 0, 1), burn::tensor::ops::PadMode::Constant(0.0)));
            }
        }
        e.mid_res_b
            .forward(e.mid_attn.forward(e.mid_res_a.forward(h)))
    }

    /// Image `[B, 3, H, W]` in [-1, 1] → latent `[B, z_channels, H/f, W/f]` before quantisation.
    pub fn encode_latent(&self, image: Tensor<4>) -> Tensor<4> {
        let e = &self.encoder;
        let h = self.encode_features(image);
        let h = e.conv_out.forward(swish(e.norm_out.forward(h)));
        self.quant_conv.forward(h)
    }

    /// Image `[B, 3, H, W]` in [-1, 1] → code indices `[B, (H/f)·(W/f)]`, row-major over the grid
    /// (nearest L2-normalised code, as `VectorQuantizer.forward`).
    pub fn encode(&self, image: Tensor<4>) -> Tensor<2, Int> {
        let z = self.encode_latent(image);
        let [b, d, h, w] = z.dims();
        let z = z.permute([0, 2, 3, 1]).reshape([b * h * w, d]);
        let (z, e) = if self.config.codebook_l2_norm {
            (l2_normalize(z), l2_normalize(self.codebook()))
        } else {
            (z, self.codebook())
        };
        let dist = z.clone().square().sum_dim(1) + e.clone().square().sum_dim(1).transpose()
            - z.matmul(e.transpose()) * 2.0;
        dist.argmin(1).reshape([b, h * w])
    }

    /// Training-time quantisation of a latent `[B, D, h, w]` (`VectorQuantizer.forward`): with the
    /// L2-normalised codebook, the nearest code per position, the straight-through output
    /// `z + sg(z_q − z)`, the codebook loss `mean((z_q − sg(z))²)` and the commitment loss
    /// `mean((sg(z_q) − z)²)` (to be scaled by β), and the chosen codes `[B, h·w]`.
    pub fn quantize_train(&self, z: Tensor<4>) -> QuantOutput {
        let [b, d, h, w] = z.dims();
        let zf = z.permute([0, 2, 3, 1]).reshape([b * h * w, d]);
        let (zf, e) = if self.config.codebook_l2_norm {
            (l2_normalize(zf), l2_normalize(self.codebook()))
        } else {
            (zf, self.codebook())
        };
        let (zd, ed) = (zf.clone().detach(), e.clone().detach());
        let dist = zd.clone().square().sum_dim(1) + ed.clone().square().sum_dim(1).transpose()
            - zd.matmul(ed.transpose()) * 2.0;
        let idx = dist.argmin(1).reshape([b * h * w]);
        let zq = e.select(0, idx.clone());
        let codebook_loss = (zq.clone() - zf.clone().detach()).square().mean();
        let commit_loss = (zq.clone().detach() - zf.clone()).square().mean();
        let st = zf.clone() + (zq - zf).detach();
        QuantOutput {
            quant: st.reshape([b, h, w, d]).permute([0, 3, 1, 2]),
            codebook_loss,
            commit_loss,
            codes: idx.reshape([b, h * w]),
        }
    }

    /// Code indices `[B, grid²]` (row-major) → image `[B, 3, grid·f, grid·f]`, roughly in [-1, 1]
    /// and not clamped (`decode_code`).
    pub fn decode_code(&self, codes: Tensor<2, Int>, grid: usize) -> Tensor<4> {
        self.decode_grid(codes, [grid, grid])
    }

    /// Code indices `[B, h·w]` (row-major) of an `h × w` grid → image `[B, 3, h·f, w·f]`.
    pub fn decode_grid(&self, codes: Tensor<2, Int>, [h, w]: [usize; 2]) -> Tensor<4> {
        let [b, n] = codes.dims();
        assert_eq!(n, h * w, "{n} codes do not fill a {h}×{w} grid");
        let d = self.config.codebook_embed_dim;
        let z = self
            .lookup_codebook()
            .select(0, codes.reshape([b * n]))
            .reshape([b, h, w, d])
            .permute([0, 3, 1, 2]);
        self.decode(z)
    }

    /// Quantised latent `[B, embed_dim, h, w]` → image.
    pub fn decode(&self, quant: Tensor<4>) -> Tensor<4> {
        let dec = &self.decoder;
        let mut h = dec.conv_in.forward(self.post_quant_conv.forward(quant));
        h = dec
            .mid_res_b
            .forward(dec.mid_attn.forward(dec.mid_res_a.forward(h)));
        for level in &dec.conv_blocks {
            for (i, res) in level.res.iter().enumerate() {
                h = res.forward(h);
                if let Some(a) = level.attn.get(i) {
                    h = a.forward(h);
                }
            }
            if let Some(u) = &level.upsample {
                h = u.conv.forward(upsample2(h));
            }
        }
        dec.conv_out.forward(swish(dec.norm_out.forward(h)))
    }

    /// Decodes codes given as host integers (`[B][grid²]`).
    pub fn decode_tokens(&self, codes: &[Vec<u32>], grid: usize) -> Tensor<4> {
        self.decode_tokens_grid(codes, [grid, grid])
    }

    /// Decodes codes given as host integers (`[B][h·w]`, row-major) of an `h × w` grid.
    pub fn decode_tokens_grid(&self, codes: &[Vec<u32>], hw: [usize; 2]) -> Tensor<4> {
        let b = codes.len();
        let data: Vec<i64> = codes.iter().flatten().map(|&c| c as i64).collect();
        let n = data.len() / b.max(1);
        let t = Tensor::<2, Int>::from_data(TensorData::new(data, [b, n]), &self.device());
        self.decode_grid(t, hw)
    }
}
