//! CLIP's byte-level BPE tokenizer (Radford et al. 2021; 49,408 ids, `<start_of_text>` = 49406,
//! `<end_of_text>` = 49407), reading the merges file `bpe_simple_vocab_16e6.txt.gz` that OpenAI
//! CLIP and open_clip ship (MIT). Text is cleaned as open_clip's `SimpleTokenizer` does, with the
//! parts of `ftfy.fix_text` that change real prompts: NFC, straight quotes, Latin ligatures. Its
//! mojibake repair is not reproduced, and HTML entities are the common named ones and numeric ones.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use crate::MetricError;

/// Number of BPE merges in the vocabulary (`49152 − 256 − 2`).
const MERGES: usize = 48_894;
/// Context length of every CLIP text tower.
pub const CONTEXT: usize = 77;

/// The merges file shipped in `checkpoints/extractors/` (same resolution as the other extractors).
pub fn default_vocab() -> PathBuf {
    crate::efficientnet::extractor_file("clip-bpe-simple-vocab-16e6.txt.gz")
}

/// The tokenizer: byte → unicode table, vocabulary and merge ranks.
pub struct ClipTokenizer {
    byte_char: [char; 256],
    encoder: HashMap<String, u32>,
    ranks: HashMap<(String, String), usize>,
    pattern: Regex,
    /// Id of `<start_of_text>`.
    pub sot: u32,
    /// Id of `<end_of_text>` (the largest id; the text tower pools at its position).
    pub eot: u32,
}

/// GPT-2's reversible byte → printable character table.
fn bytes_to_unicode() -> [char; 256] {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let mut table = ['\0'; 256];
    let mut extra = 0;
    for b in 0..256u32 {
        table[b as usize] = if printable(b) {
            char::from_u32(b).expect("latin-1")
        } else {
            extra += 1;
            char::from_u32(255 + extra).expect("valid")
        };
    }
    table
}

/// Replaces the HTML entities a caption may carry (`&amp;`, `&#39;`, `&#x27;`, …).
fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let ch = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            ch.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// open_clip's `_clean_lower`: ftfy's quote/ligature/NFC fixes, HTML unescaping (twice),
/// whitespace collapsed, lower case.
pub fn clean(text: &str) -> String {
    let fixed: String = text
        .nfc()
        .flat_map(|c| {
            let s: &str = match c {
                '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' => "'",
                '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' => "\"",
                '\u{fb00}' => "ff",
                '\u{fb01}' => "fi",
                '\u{fb02}' => "fl",
                '\u{fb03}' => "ffi",
                '\u{fb04}' => "ffl",
                '\u{fb05}' | '\u{fb06}' => "st",
                _ => return vec![c],
            };
            s.chars().collect()
        })
        .collect();
    let unescaped = html_unescape(&html_unescape(&fixed));
    unescaped
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl ClipTokenizer {
    /// Reads the gzipped merges file.
    pub fn load(path: &Path) -> Result<Self, MetricError> {
        let io = |source| MetricError::Io {
            path: path.display().to_string(),
            source,
        };
        let parse = |message: String| MetricError::Parse {
            path: path.display().to_string(),
            message,
        };
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).map_err(io)?)
            .read_to_string(&mut text)
            .map_err(io)?;
        let merges: Vec<(String, String)> = text
            .split('\n')
            .skip(1)
            .take(MERGES)
            .map(|line| {
                let mut parts = line.split(' ');
                match (parts.next(), parts.next()) {
                    (Some(a), Some(b)) => Ok((a.to_string(), b.to_string())),
                    _ => Err(parse(format!(
                        "'{line}' is not a BPE merge (expected 'a b')"
                    ))),
                }
            })
            .collect::<Result<_, _>>()?;
        if merges.len() != MERGES {
            return Err(parse(format!(
                "{} merges, CLIP's vocabulary has {MERGES}",
                merges.len()
            )));
        }
        let byte_char = bytes_to_unicode();
        // Vocabulary order: the byte characters in GPT-2's table order, the same with `</w>`,
        // the merges, the two specials.
        let mut order: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
        order.extend((0..256).filter(|b| !order.contains(b)).collect::<Vec<_>>());
        let mut vocab: Vec<String> = order
            .iter()
            .map(|&b| byte_char[b as usize].to_string())
            .collect();
        vocab.extend(
            order
                .iter()
                .map(|&b| format!("{}</w>", byte_char[b as usize])),
        );
        vocab.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        vocab.push("<start_of_text>".into());
        vocab.push("<end_of_text>".into());
        let encoder: HashMap<String, u32> = vocab
            .into_iter()
            .enumerate()
            .map(|(i, v)| (v, i as u32))
            .collect();
        let ranks = merges
            .into_iter()
            .enumerate()
            .map(|(i, m)| (m, i))
            .collect();
        let pattern = Regex::new(
            r"(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        )
        .expect("valid pattern");
        Ok(Self {
            byte_char,
            sot: encoder["<start_of_text>"],
            eot: encoder["<end_of_text>"],
            encoder,
            ranks,
            pattern,
        })
    }

    /// Byte-pair merges of one pre-token (already mapped to byte characters).
    fn bpe(&self, token: &str) -> Vec<String> {
        let mut word: Vec<String> = token.chars().map(String::from).collect();
        if let Some(last) = word.last_mut() {
            last.push_str("</w>");
        }
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|p| {
                    let pair = (p[0].clone(), p[1].clone());
                    self.ranks.get(&pair).map(|&rank| (rank, pair))
                })
                .min_by_key(|(rank, _)| *rank);
            let Some((_, (first, second))) = best else {
                break;
            };
            let mut merged = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == first && word[i + 1] == second {
                    merged.push(format!("{first}{second}"));
                    i += 2;
                } else {
                    merged.push(word[i].clone());
                    i += 1;
                }
            }
            word = merged;
        }
        word
    }

    /// Token ids of `text` without the special tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let text = clean(text);
        let mut ids = Vec::new();
        for m in self.pattern.find_iter(&text) {
            let piece = m.as_str();
            if piece == "<start_of_text>" || piece == "<end_of_text>" {
                ids.push(self.encoder[piece]);
                continue;
            }
            let mapped: String = piece.bytes().map(|b| self.byte_char[b as usize]).collect();
            ids.extend(self.bpe(&mapped).iter().map(|t| self.encoder[t]));
        }
        ids
    }

    /// `<start_of_text>` + ids + `<end_of_text>`, cut to `context` (the last kept id becomes
    /// `<end_of_text>`, as open_clip truncates) and zero-padded to `context`.
    pub fn tokenize(&self, text: &str, context: usize) -> Vec<u32> {
        let mut ids = vec![self.sot];
        ids.extend(self.encode(text));
        ids.push(self.eot);
        if ids.len() > context {
            ids.truncate(context);
            ids[context - 1] = self.eot;
        }
        ids.resize(context, 0);
        ids
    }
}
