//! Loading and saving each model from official checkpoint files.

use std::path::Path;

use burn::prelude::*;

use crate::checkpoint::{load_module, save_module, KeyLayout};
use crate::config::GptConfig;
use crate::error::ModelError;
use crate::gpt::Gpt;

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
}
