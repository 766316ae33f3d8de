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

/// Taming key → module key for a model of `levels` levels.
fn to_module(key: &str, levels: usize) -> String {
    let mid = [
        ("mid.block_1.", "mid_res_a."),
        ("mid.attn_1.", "mid_attn."),
        ("mid.block_2.", "mid_res_b."),
    ];
    for part in ["encoder.", "decoder."] {
        if let Some(rest) = key.strip_prefix(part) {
            for (from, to) in mid {
                if let Some(tail) = rest.strip_prefix(from) {
                    return format!("{part}{to}{tail}");
                }
            }
        }
    }
    let level = |rest: &str, reverse: bool| -> Option<(usize, String)> {
        let (i, tail) = rest.split_once('.')?;
        let i: usize = i.parse().ok()?;
        let i = if reverse {
            levels.checked_sub(i + 1)?
        } else {
            i
        };
        let tail = tail
            .strip_prefix("block.")
            .map_or_else(|| tail.to_string(), |t| format!("res.{t}"));
        Some((i, tail))
    };
    if let Some((i, tail)) = key
        .strip_prefix("encoder.down.")
        .and_then(|r| level(r, false))
    {
        return format!("encoder.conv_blocks.{i}.{tail}");
    }
    if let Some((i, tail)) = key.strip_prefix("decoder.up.").and_then(|r| level(r, true)) {
        return format!("decoder.conv_blocks.{i}.{tail}");
    }
    key.to_string()
}

/// Module key → taming key (the inverse of [`to_module`]).
fn to_file(key: &str, levels: usize) -> String {
    let mid = [
        ("mid_res_a.", "mid.block_1."),
        ("mid_attn.", "mid.attn_1."),
        ("mid_res_b.", "mid.block_2."),
    ];
    for part in ["encoder.", "decoder."] {
        if let Some(rest) = key.strip_prefix(part) {
            for (from, to) in mid {
                if let Some(tail) = rest.strip_prefix(from) {
                    return format!("{part}{to}{tail}");
                }
            }
        }
    }
    let level = |rest: &str, reverse: bool| -> Option<(usize, String)> {
        let (i, tail) = rest.split_once('.')?;
        let i: usize = i.parse().ok()?;
        let i = if reverse {
            levels.checked_sub(i + 1)?
        } else {
            i
        };
        let tail = tail
            .strip_prefix("res.")
            .map_or_else(|| tail.to_string(), |t| format!("block.{t}"));
        Some((i, tail))
    };
    if let Some((i, tail)) = key
        .strip_prefix("encoder.conv_blocks.")
        .and_then(|r| level(r, false))
    {
        return format!("encoder.down.{i}.{tail}");
    }
    if let Some((i, tail)) = key
        .strip_prefix("decoder.conv_blocks.")
        .and_then(|r| level(r, true))
    {
        return format!("decoder.up.{i}.{tail}");
    }
    key.to_string()
}

/// Loads a VQGAN state dict (`vqgan.ckpt`'s `state_dict`, or safetensors with the same keys).
pub fn load(config: &VqConfig, path: &Path, device: &Device) -> Result<VqModel, ModelError> {
    let levels = config.encoder_ch_mult.len();
    let renames = KeyRenames {
        to_module: &|k| to_module(k, levels),
        to_file: &|k| to_file(k, levels),
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
            assert_eq!(to_module(file, 3), module);
            assert_eq!(to_file(module, 3), file);
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
