//! Errors of the model crate: bad configs, bad checkpoint files, bad inputs.

use std::path::{Path, PathBuf};

/// One disagreement between a checkpoint file and the module it is loaded into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// The module needs this key and the file lacks it.
    Missing {
        /// Key in the file's naming.
        key: String,
        /// Shape the module expects, in the file's layout.
        expected: Vec<usize>,
    },
    /// The file has a tensor the module does not use.
    Unexpected {
        /// Key in the file's naming.
        key: String,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// Both have the key, with different shapes.
    ShapeMismatch {
        /// Key in the file's naming.
        key: String,
        /// Shape the module expects, in the file's layout.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { key, expected } => {
                write!(
                    f,
                    "missing key '{key}' (the model expects shape {expected:?})"
                )
            }
            Self::Unexpected { key, found } => {
                write!(
                    f,
                    "unexpected key '{key}' (shape {found:?}) that the model does not use"
                )
            }
            Self::ShapeMismatch {
                key,
                expected,
                found,
            } => write!(
                f,
                "shape mismatch for '{key}': the model expects {expected:?}, the file has {found:?}"
            ),
        }
    }
}

/// Everything that can go wrong building or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A configuration is malformed or inconsistent.
    #[error("{source_name}: {message}")]
    Config {
        /// File or preset the configuration came from.
        source_name: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The file is neither a torch zip/pickle checkpoint nor a safetensors file.
    #[error("{}: not a checkpoint ({reason}); expected a PyTorch .pt/.pth/.bin file or a .safetensors file", path.display())]
    NotACheckpoint {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// The checkpoint's keys or shapes do not match the module.
    #[error("{}: checkpoint does not match the {model} ({} problem(s)):\n  {}", path.display(), problems.len(), problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    KeyMismatch {
        /// The file.
        path: PathBuf,
        /// Which model was being loaded.
        model: String,
        /// Every problem found.
        problems: Vec<KeyProblem>,
    },
    /// A caller passed an input the model cannot take.
    #[error("{0}")]
    Input(String),
}

impl ModelError {
    /// Wraps an I/O error with its path.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
