//! Meta's VQGAN image tokenizer (taming `VQModel`, shipped as `tokenizer/vqgan.ckpt` with Chameleon,
//! Anole and Lumina-mGPT), loaded into [`VqModel`]: same blocks as LlamaGen's, attention placed by
//! `attn_resolutions`, no codebook normalisation, taming's key names (`encoder.down.i.block.j`,
//! `decoder.up.i` counted from the finest level, `mid.block_1/attn_1/block_2`).

use std::path::Path;

use burn::prelude::*;
use serde::Deserialize;

use crate::checkpoint::{load_module_renamed, KeyLayout, KeyRenames};
use crate::config::VqConfig;
use crate::error::ModelError;
use crate::vq::VqModel;

/// `model.params` of Meta's `vqgan.yaml`, as JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaParams {
    embed_dim: usize,
    n_embed: usize,
    ddconfig: DdConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DdConfig {
    double_z: bool,
    z_channels: usize,
    resolution: usize,
    in_channels: usize,
    out_ch: usize,
    ch: usize,
    ch_mult: Vec<usize>,
    num_res_blocks: usize,
    attn_resolutions: Vec<usize>,
    #[allow(dead_code)]
    dropout: f64,
}

/// Reads a VQGAN config (`vqgan.json`: `{embed_dim, n_embed, ddconfig}`) as a [`VqConfig`].
pub fn config_from_json_file(path: &Path) -> Result<VqConfig, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    let err = |message: String| ModelError::Config {
        source_name: path.display().to_string(),
        message,
    };
    let p: MetaParams = serde_json::from_str(&text).map_err(|e| {
        err(format!(
            "not a VQGAN config ({{embed_dim, n_embed, ddconfig}}): {e}"
        ))
    })?;
    let d = p.ddconfig;
    if d.double_z || d.in_channels != 3 || d.out_ch != 3 {
        return Err(err(format!(
            "ddconfig double_z = {}, in_channels = {}, out_ch = {} is not supported (allowed: false, 3, 3)",
            d.double_z, d.in_channels, d.out_ch
        )));
    }
    if d.ch_mult.is_empty() || !d.ch.is_multiple_of(32) {
        return Err(err(format!(
            "ddconfig ch = {} with ch_mult {:?}: GroupNorm(32) needs ch a multiple of 32 and at least one level",
            d.ch, d.ch_mult
        )));
    }
    Ok(VqConfig {
        codebook_size: p.n_embed,
        codebook_embed_dim: p.embed_dim,
        codebook_l2_norm: false,
        encoder_ch_mult: d.ch_mult.clone(),
        decoder_ch_mult: d.ch_mult,
        z_channels: d.z_channels,
        ch: d.ch,
        num_res_blocks: d.num_res_blocks,
        norm: "group32".into(),
        attn_resolutions: Some(d.attn_resolutions),
        resolution: Some(d.resolution),
        codebook_show_usage: None,
        commit_loss_beta: None,
        entropy_loss_ratio: None,
        dropout_p: None,
    })
}

/// Keys of `vqgan.ckpt` that are not weights (the training loss lives in the same state dict).
const LAYOUT: KeyLayout = KeyLayout {
    model: "VQGAN tokenizer",
    renames: &[],
    ignored: &["loss.*"],
};

/// `(taming, module)` names of the mid blocks, under `encoder.` and `decoder.`.
const MID: [(&str, &str); 3] = [
    ("mid.block_1.", "mid_res_a."),
    ("mid.attn_1.", "mid_attn."),
    ("mid.block_2.", "mid_res_b."),
];
/// `(taming, module)` prefixes of the encoder and the decoder levels.
const LEVELS: [(&str, &str); 2] = [
    ("encoder.down.", "encoder.conv_blocks."),
    ("decoder.up.", "decoder.conv_blocks."),
];
/// `(taming, module)` name of a level's ResNet blocks.
const BLOCK: (&str, &str) = ("block.", "res.");

/// Renames `key` between taming's names and the module's for a model of `levels` levels
/// (`to_module`: taming → module, else back). Taming counts decoder levels from the finest, the
/// module in processing order; the index flip is its own inverse.
fn rename(key: &str, levels: usize, to_module: bool) -> String {
    let pick = |(taming, module): (&'static str, &'static str)| {
        if to_module {
            (taming, module)
        } else {
            (module, taming)
        }
    };
    for part in ["encoder.", "decoder."] {
        let Some(rest) = key.strip_prefix(part) else {
            continue;
        };
        for (from, to) in MID.map(pick) {
            if let Some(tail) = rest.strip_prefix(from) {
                return format!("{part}{to}{tail}");
            }
        }
    }
    let (block_from, block_to) = pick(BLOCK);
    for (decoder, (from, to)) in LEVELS.map(pick).into_iter().enumerate() {
        let Some((i, tail)) = key.strip_prefix(from).and_then(|r| r.split_once('.')) else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else {
            continue;
        };
        let Some(i) = (if decoder == 1 {
            levels.checked_sub(i + 1)
        } else {
            Some(i)
        }) else {
            continue;
        };
        let tail = tail
            .strip_prefix(block_from)
            .map_or_else(|| tail.to_string(), |t| format!("{block_to}{t}"));
        return format!("{to}{i}.{tail}");
    }
    key.to_string()
}

/// Loads a VQGAN state dict (`vqgan.ckpt`'s `state_dict`, or safetensors with the same keys).
pub fn load(config: &VqConfig, path: &Path, device: &Device) -> Result<VqModel, ModelError> {
    let levels = config.encoder_ch_mult.len();
    let renames = KeyRenames {
        to_module: &|k| rename(k, levels, true),
        to_file: &|k| rename(k, levels, false),
    };
    load_module_renamed(VqModel::new(config, device)?, path, &LAYOUT, &renames)
}

/// Bytes → model input as Lumina-mGPT prepares it: `u8 / 255 · 2 − 1` in f64, then f32 (HF's
/// processor uses `u8 · 0.0078 − 1` instead, which differs in the last bits).
pub fn from_u8(bytes: &[u8]) -> Vec<f32> {
    bytes
        .iter()
        .map(|&b| (b as f64 / 255.0 * 2.0 - 1.0) as f32)
        .collect()
}

/// Decoded pixels `[.., 3, H, W]` in [-1, 1] → bytes as Lumina-mGPT converts them: clamp to
/// [-1, 1], `(x + 1) / 2 · 255`, then a truncating cast (not rounding).
pub fn to_u8_truncating(pixels: &[f32]) -> Vec<u8> {
    pixels
        .iter()
        .map(|&x| ((x.clamp(-1.0, 1.0) + 1.0) / 2.0 * 255.0) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taming_keys_map_to_module_keys_and_back() {
        for (file, module) in [
            (
                "encoder.down.1.block.0.conv1.weight",
                "encoder.conv_blocks.1.res.0.conv1.weight",
            ),
            (
                "encoder.down.0.downsample.conv.bias",
                "encoder.conv_blocks.0.downsample.conv.bias",
            ),
            (
                "decoder.up.0.block.2.norm1.weight",
                "decoder.conv_blocks.2.res.2.norm1.weight",
            ),
            (
                "decoder.up.2.upsample.conv.weight",
                "decoder.conv_blocks.0.upsample.conv.weight",
            ),
            ("decoder.mid.attn_1.q.weight", "decoder.mid_attn.q.weight"),
            (
                "encoder.mid.block_2.conv2.bias",
                "encoder.mid_res_b.conv2.bias",
            ),
            ("quantize.embedding.weight", "quantize.embedding.weight"),
        ] {
            assert_eq!(rename(file, 3, true), module);
            assert_eq!(rename(module, 3, false), file);
        }
    }

    #[test]
    fn bytes_truncate_like_numpy_astype() {
        assert_eq!(
            to_u8_truncating(&[-2.0, -1.0, 0.0, 0.999, 1.0]),
            vec![0, 0, 127, 254, 255]
        );
    }
}
