//! Burn models of lantern-bench: LlamaGen GPT (c2i, t2i), its VQ tokenizer and the one-layer
//! EAGLE drafter, with a KV cache built for tree verification and loaders for the official
//! checkpoint files (`.pt` and `.safetensors`, official key names).

pub mod attention;
pub mod backend;
pub mod bundle;
pub mod cache;
pub mod chameleon;
pub mod checkpoint;
pub mod config;
pub mod cpu;
pub mod drafter;
pub mod error;
pub mod fixtures;
pub mod gpt;
pub mod linear;
pub mod pretrained;
pub mod rope;
pub mod vq;
pub mod vqgan;

pub use attention::Visibility;
pub use bundle::{HostModels, ModelBundle, ModelPaths, RunOptions};
pub use cache::KvCache;
pub use chameleon::{Chameleon, ChameleonConfig, ChameleonVocab};
pub use config::{DrafterConfig, GptConfig, ModelType, VqConfig};
pub use drafter::Drafter;
pub use error::{KeyProblem, ModelError};
pub use gpt::{Condition, Gpt, StepOutput};
pub use vq::VqModel;

/// Re-exported so that downstream crates name one burn.
pub use burn;
