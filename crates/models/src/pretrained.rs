//! Loading and saving each model from official checkpoint files.

use std::path::Path;

use burn::prelude::*;

use crate::checkpoint::{load_module, save_module, save_module_as, KeyLayout};
use crate::config::{DrafterConfig, GptConfig, VqConfig};
use crate::drafter::Drafter;
use crate::error::ModelError;
use crate::gpt::Gpt;
use crate::vq::VqModel;

/// LlamaGen GPT keys: identical to the module; tolerates the non-persistent buffers some
/// training scripts saved.
pub const GPT_LAYOUT: KeyLayout = KeyLayout {
    model: "GPT",
    renames: &[],
    ignored: &[
        "freqs_cis",
        "causal_mask",
        "*.kv_cache.k_cache",
        "*.kv_cache.v_cache",
    ],
};

impl Gpt {
    /// Builds a GPT of `config` and loads `path` (`.pt` or `.safetensors`, official keys).
    pub fn load(config: &GptConfig, path: &Path, device: &Device) -> Result<Self, ModelError> {
        load_module(Gpt::new(config, device)?, path, &GPT_LAYOUT)
    }

    /// Saves the weights as safetensors with the official key names.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        save_module(self, path, &GPT_LAYOUT)
    }

    /// Saves the weights as f16 safetensors (half the size; [`Gpt::load`] reads them back as f32).
    pub fn save_f16(&self, path: &Path) -> Result<(), ModelError> {
        save_module_as(self, path, &GPT_LAYOUT, true)
    }
}

/// LlamaGen VQ keys: `mid.0/1/2` become named fields; `codebook_used` is a training buffer.
pub const VQ_LAYOUT: KeyLayout = KeyLayout {
    model: "VQ tokenizer",
    renames: &[
        ("encoder.mid.0.", "encoder.mid_res_a."),
        ("encoder.mid.1.", "encoder.mid_attn."),
        ("encoder.mid.2.", "encoder.mid_res_b."),
        ("decoder.mid.0.", "decoder.mid_res_a."),
        ("decoder.mid.1.", "decoder.mid_attn."),
        ("decoder.mid.2.", "decoder.mid_res_b."),
    ],
    ignored: &["quantize.codebook_used"],
};

impl VqModel {
    /// Builds a tokenizer of `config` and loads `path` (`.pt` or `.safetensors`, official keys).
    pub fn load(config: &VqConfig, path: &Path, device: &Device) -> Result<Self, ModelError> {
        load_module(VqModel::new(config, device)?, path, &VQ_LAYOUT)
    }

    /// Saves the weights as safetensors with the official key names.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        save_module(self, path, &VQ_LAYOUT)
    }
}

/// LANTERN drafter keys (`pytorch_model.bin`, loaded `strict=True` there, so nothing is tolerated).
pub const DRAFTER_LAYOUT: KeyLayout = KeyLayout {
    model: "drafter",
    renames: &[],
    ignored: &[],
};

impl Drafter {
    /// Builds a drafter of `config` and loads `path` (`.pt`/`.bin` or `.safetensors`).
    pub fn load(config: &DrafterConfig, path: &Path, device: &Device) -> Result<Self, ModelError> {
        load_module(Drafter::new(config, device)?, path, &DRAFTER_LAYOUT)
    }

    /// Saves the weights as safetensors in LANTERN's key layout.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        save_module(self, path, &DRAFTER_LAYOUT)
    }

    /// Saves the weights as f16 safetensors ([`Drafter::load`] reads them back as f32).
    pub fn save_f16(&self, path: &Path) -> Result<(), ModelError> {
        save_module_as(self, path, &DRAFTER_LAYOUT, true)
    }
}
