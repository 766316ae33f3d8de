//! Captions of a sweep on a Chameleon-family target (`[data] prompts`): read from a caption list,
//! written into the convention's prompt text and tokenised with the release's
//! `text_tokenizer.json` (HF `tokenizers`); the conditional prompt wraps the ids
//! (`ImageLayout::prompt`: `<s> text <eot>` and the image header).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use lantern_models::chameleon::layout::Convention;

/// Pixels per latent token of Meta's VQGAN (16× down): the size Lumina-mGPT's prompt names.
const PIXELS_PER_TOKEN: usize = 16;

/// Reads a caption list: a text file with one caption per line (blank lines skipped), or a JSON
/// object whose `captions` is a list of strings (a LlamaGen prompt manifest serves; its
/// embeddings are not read).
pub fn read_captions(path: &Path) -> Result<Vec<String>, String> {
    let here = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| here(&e))?;
    let captions: Vec<String> = if path.extension().is_some_and(|e| e == "json") {
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| here(&e))?;
        v.get("captions")
            .and_then(|c| c.as_array())
            .and_then(|c| c.iter().map(|s| s.as_str().map(String::from)).collect())
            .ok_or_else(|| here(&"expected {\"captions\": [\"…\", …]}"))?
    } else {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    if captions.is_empty() {
        return Err(here(&"no captions"));
    }
    Ok(captions)
}

/// The text a caption becomes: Lumina-mGPT's template naming the image size in pixels, width
/// first (`Generate an image of {W}x{H} according to the following prompt:\n{caption}`, LUM
/// README and SJD's `test_lumina_mgpt.py`), or the caption itself (Anole).
pub fn prompt_text(convention: Convention, caption: &str, [h, w]: [usize; 2]) -> String {
    match convention {
        Convention::Lumina => format!(
            "Generate an image of {}x{} according to the following prompt:\n{caption}",
            w * PIXELS_PER_TOKEN,
            h * PIXELS_PER_TOKEN
        ),
        Convention::Anole => caption.to_string(),
    }
}

/// A text tokenizer and where it came from.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    /// The file it was read from, or what it was built from.
    pub source: String,
}

impl TextTokenizer {
    /// Reads an HF `tokenizer.json` (the Chameleon releases' `text_tokenizer.json`).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| format!("{}: not a tokenizers JSON file: {e}", path.display()))?;
        Ok(Self {
            inner,
            source: lantern_models::checkpoint::file_fingerprint(path),
        })
    }

    /// A word-level tokenizer over the text tokens of a checkpoint's `vocabulary_map` (names
    /// starting with `▁`, SentencePiece's word boundary; others map to `<unk>`), split at spaces.
    /// The random-weight fixture ships no text tokenizer; this stands in for one.
    pub fn word_level(config: &Path) -> Result<Self, String> {
        let here = |e: &dyn std::fmt::Display| format!("{}: {e}", config.display());
        let text = std::fs::read_to_string(config).map_err(|e| here(&e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| here(&e))?;
        let map = v
            .get("vocabulary_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| here(&"no vocabulary_map"))?;
        let vocab: serde_json::Map<String, serde_json::Value> = map
            .iter()
            .filter(|(name, _)| name.starts_with('\u{2581}') || name.as_str() == "<unk>")
            .map(|(name, id)| (name.clone(), id.clone()))
            .collect();
        if !vocab.contains_key("<unk>") {
            return Err(here(&"vocabulary_map lacks <unk>"));
        }
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "post_processor": null, "decoder": null,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}",
                              "prepend_scheme": "always", "split": true},
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
        });
        let inner = tokenizers::Tokenizer::from_str(&json.to_string())
            .map_err(|e| here(&format!("cannot build a word-level tokenizer: {e}")))?;
        Ok(Self {
            inner,
            source: format!(
                "word-level:{}",
                lantern_models::checkpoint::file_fingerprint(config)
            ),
        })
    }

    /// The token ids of `text`, without special tokens (the prompt adds `<s>` and `<eot>`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| format!("cannot tokenise {text:?}: {e}"))
    }
}

/// Where a checkpoint folder's text tokenizer is looked for when the sweep names none:
/// `text_tokenizer.json` in the folder, else `../tokenizer/text_tokenizer.json` (the layout of
/// Meta's and Lumina-mGPT's `ckpts/chameleon/`).
pub fn default_tokenizer(dir: &Path) -> Option<PathBuf> {
    [
        dir.join("text_tokenizer.json"),
        dir.join("../tokenizer/text_tokenizer.json"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}
