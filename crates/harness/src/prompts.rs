//! Prompt sets of text-conditional sweeps (`[data] prompts`): a JSON manifest with the captions
//! and the safetensors file of their precomputed text-encoder embeddings (LlamaGen: flan-t5-xl,
//! 120 tokens × 2048), since no T5 runs here.
//!
//! ```json
//! {"captions": ["a red fox in the snow", …], "embeddings": "coco_t5.safetensors"}
//! ```
//!
//! The safetensors file holds `embeddings` `[N, tokens, dim]` (f32, f16 or bf16) and optionally
//! `mask` `[N, tokens]` (non-zero = a real token; LlamaGen's `emb_masks`).

use std::path::{Path, PathBuf};

use lantern_decoding::model::ImageCondition;
use lantern_models::burn::tensor::TensorData;
use lantern_models::checkpoint::read_tensor_data;
use serde::Deserialize;

/// The manifest's fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    captions: Vec<String>,
    embeddings: PathBuf,
}

/// Captions with their embeddings, row-major `[N, tokens, dim]`.
#[derive(Clone, Debug)]
pub struct PromptSet {
    /// Caption text (for CLIP score).
    pub captions: Vec<String>,
    /// Caption positions per prompt.
    pub tokens: usize,
    /// Embedding width.
    pub dim: usize,
    /// The embeddings file.
    pub source: PathBuf,
    embeddings: Vec<f32>,
    mask: Option<Vec<bool>>,
}

fn floats(data: TensorData, what: &str) -> Result<Vec<f32>, String> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{what}: {e:?}"))
}

impl PromptSet {
    /// Reads the manifest at `path` and its embeddings file (relative to the manifest).
    pub fn load(path: &Path) -> Result<Self, String> {
        let here = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| here(&e))?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| {
            here(&format!(
                "{e} (expected {{\"captions\": [..], \"embeddings\": \"file.safetensors\"}})"
            ))
        })?;
        let file = path.parent().unwrap_or(Path::new(".")).join(&m.embeddings);
        let mut tensors = read_tensor_data(&file).map_err(|e| here(&e))?;
        let emb = tensors.remove("embeddings").ok_or_else(|| {
            format!(
                "{}: no tensor 'embeddings' ([N, tokens, dim])",
                file.display()
            )
        })?;
        let shape = emb.shape().to_vec();
        let [n, tokens, dim] = shape[..] else {
            return Err(format!(
                "{}: 'embeddings' has shape {shape:?}, expected [N, tokens, dim]",
                file.display()
            ));
        };
        if n != m.captions.len() {
            return Err(format!(
                "{}: {} captions but {} embedding rows in {}",
                path.display(),
                m.captions.len(),
                n,
                file.display()
            ));
        }
        let mask = match tensors.remove("mask") {
            None => None,
            Some(t) if t.shape().to_vec() == vec![n, tokens] => {
                Some(floats(t, "mask")?.into_iter().map(|v| v != 0.0).collect())
            }
            Some(t) => {
                return Err(format!(
                    "{}: 'mask' has shape {:?}, expected [{n}, {tokens}]",
                    file.display(),
                    t.shape()
                ))
            }
        };
        let embeddings = floats(emb, "embeddings")?;
        if embeddings.iter().any(|v| !v.is_finite()) {
            return Err(format!(
                "{}: 'embeddings' holds NaN or infinity",
                file.display()
            ));
        }
        Ok(Self {
            captions: m.captions,
            tokens,
            dim,
            source: file,
            embeddings,
            mask,
        })
    }

    /// Captions without embeddings (a Chameleon-family target tokenises them itself); `source`
    /// is the caption list.
    pub fn captions_only(captions: Vec<String>, source: PathBuf) -> Self {
        Self {
            captions,
            tokens: 0,
            dim: 0,
            source,
            embeddings: Vec::new(),
            mask: None,
        }
    }

    /// What run ids hash for this set: the captions and the embeddings file's fingerprint.
    pub fn identity(&self) -> String {
        let captions = serde_json::to_string(&self.captions).expect("strings");
        format!(
            "{:016x}:{}",
            crate::plan::fnv1a(captions.as_bytes()),
            lantern_models::checkpoint::file_fingerprint(&self.source)
        )
    }

    /// Prompts in the set.
    pub fn len(&self) -> usize {
        self.captions.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.captions.is_empty()
    }

    /// The decoding condition of prompt `i`.
    pub fn condition(&self, i: usize) -> ImageCondition {
        let rows = self.tokens * self.dim;
        ImageCondition::Caption {
            embeddings: self.embeddings[i * rows..(i + 1) * rows].to_vec(),
            tokens: self.tokens,
            dim: self.dim,
            valid: self
                .mask
                .as_ref()
                .map(|m| m[i * self.tokens..(i + 1) * self.tokens].to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lantern_models::burn::tensor::f16;
    use lantern_models::checkpoint::write_safetensors;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lantern-prompts-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn manifest(d: &Path, captions: &[&str], tensors: &[(String, TensorData)]) -> PathBuf {
        write_safetensors(&d.join("e.safetensors"), tensors).unwrap();
        let m = d.join("p.json");
        let json = serde_json::json!({"captions": captions, "embeddings": "e.safetensors"});
        std::fs::write(&m, json.to_string()).unwrap();
        m
    }

    #[test]
    fn half_embeddings_and_a_byte_mask_become_conditions() {
        let d = dir("ok");
        let emb: Vec<f16> = (0..2 * 3 * 4)
            .map(|i| f16::from_f32(i as f32 / 8.0))
            .collect();
        let mask = vec![0u8, 1, 1, 1, 1, 0];
        let m = manifest(
            &d,
            &["a", "b"],
            &[
                ("embeddings".into(), TensorData::new(emb, [2, 3, 4])),
                ("mask".into(), TensorData::new(mask, [2, 3])),
            ],
        );
        let set = PromptSet::load(&m).unwrap();
        assert_eq!((set.len(), set.tokens, set.dim), (2, 3, 4));
        let ImageCondition::Caption {
            embeddings, valid, ..
        } = set.condition(1)
        else {
            panic!("a caption condition")
        };
        assert_eq!(embeddings[0], 12.0 / 8.0);
        assert_eq!(valid, Some(vec![true, true, false]));
        std::fs::remove_dir_all(d).ok();
    }

    #[test]
    fn mismatches_are_named() {
        let d = dir("bad");
        let emb = TensorData::new(vec![0f32; 2 * 3 * 4], [2, 3, 4]);
        let m = manifest(&d, &["only one"], &[("embeddings".into(), emb.clone())]);
        let err = PromptSet::load(&m).unwrap_err();
        assert!(err.contains("1 captions but 2 embedding rows"), "{err}");
        let m = manifest(&d, &["a", "b"], &[("emb".into(), emb.clone())]);
        assert!(PromptSet::load(&m)
            .unwrap_err()
            .contains("no tensor 'embeddings'"));
        let mask = TensorData::new(vec![1u8; 4], [2, 2]);
        let m = manifest(
            &d,
            &["a", "b"],
            &[("embeddings".into(), emb), ("mask".into(), mask)],
        );
        assert!(PromptSet::load(&m)
            .unwrap_err()
            .contains("'mask' has shape"));
        std::fs::write(d.join("p.json"), "{\"captions\": []}").unwrap();
        assert!(PromptSet::load(&d.join("p.json"))
            .unwrap_err()
            .contains("expected {\"captions\""));
        std::fs::remove_dir_all(d).ok();
    }
}
