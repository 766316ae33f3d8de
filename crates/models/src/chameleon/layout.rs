//! How a Chameleon-family model writes an image as tokens: Lumina-mGPT's size tokens, end-of-line
//! token per row and `<eoss>`, or Anole's bare `h·w` image tokens; and what the unconditional CFG
//! branch starts from (`docs/reference/chameleon.md` §8, §9).

use serde::{Deserialize, Serialize};

use super::config::ChameleonVocab;

/// The generation convention of a Chameleon-family checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Convention {
    /// Lumina-mGPT: `[boi, size(h), size(w)]`, rows of `w` image tokens each closed by an EOL
    /// token, then `<eoss>`; the unconditional branch is its own sequence from `[boi, h, w]`.
    Lumina,
    /// Anole as LANTERN runs it: `h·w` image tokens after `boi`, no size or EOL tokens, `<eoss>`
    /// appended; the unconditional branch is `[<s>, boi]`.
    Anole,
}

impl Convention {
    /// Parses `lumina` or `anole`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "lumina" => Ok(Self::Lumina),
            "anole" => Ok(Self::Anole),
            other => Err(format!(
                "convention '{other}' is not known; allowed: lumina, anole"
            )),
        }
    }
}

/// An image of `h × w` latent tokens under a convention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLayout {
    /// The convention.
    pub convention: Convention,
    /// Latent rows.
    pub h: usize,
    /// Latent columns.
    pub w: usize,
    /// Token ids of the vocabulary.
    pub vocab: ChameleonVocab,
}

impl ImageLayout {
    /// Image tokens per image.
    pub fn tokens(&self) -> usize {
        self.h * self.w
    }

    /// Whether a forced end-of-line token follows image token `k` (Lumina: after every row,
    /// the last included).
    pub fn eol_after(&self, k: usize) -> bool {
        self.convention == Convention::Lumina && (k + 1).is_multiple_of(self.w)
    }

    /// Sequence offset of image token `k` from the first image token (EOLs counted).
    pub fn offset_of(&self, k: usize) -> usize {
        match self.convention {
            Convention::Lumina => k + k / self.w,
            Convention::Anole => k,
        }
    }

    /// The tokens that open an image after the prompt text: `[boi, size(h/2), size(w/2)]`
    /// (Lumina: one size token per 32 px, two latent rows each) or `[boi]` (Anole).
    pub fn header(&self) -> Vec<u32> {
        let v = &self.vocab;
        match self.convention {
            Convention::Lumina => vec![
                v.image_start,
                v.size_token(self.h / 2),
                v.size_token(self.w / 2),
            ],
            Convention::Anole => vec![v.image_start],
        }
    }

    /// The unconditional branch's sequence before image token 0: the header alone (Lumina) or
    /// `[<s>, boi]` (Anole, LANTERN's two-way CFG).
    pub fn uncond_prefix(&self) -> Vec<u32> {
        match self.convention {
            Convention::Lumina => self.header(),
            Convention::Anole => vec![self.vocab.bos, self.vocab.image_start],
        }
    }

    /// The conditional prompt: `<s> text <eot>` then the header.
    pub fn prompt(&self, text: &[u32]) -> Vec<u32> {
        let mut p = vec![self.vocab.bos];
        p.extend_from_slice(text);
        p.push(self.vocab.eot);
        p.extend(self.header());
        p
    }

    /// The token ids after the header for VQ `codes` (row-major): image tokens with EOLs,
    /// then `<eoss>` (Lumina), or the image tokens alone (Anole).
    pub fn sequence(&self, codes: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.offset_of(codes.len()) + 1);
        for (k, &c) in codes.iter().enumerate() {
            out.push(self.vocab.image_ids[c as usize]);
            if self.eol_after(k) {
                out.push(self.vocab.eol);
            }
        }
        if self.convention == Convention::Lumina {
            out.push(self.vocab.image_end);
        }
        out
    }
}
