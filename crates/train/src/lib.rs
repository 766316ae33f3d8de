//! Training for lantern-bench: image datasets from package-shipped photos or image folders, and
//! the three stages of the embedded default — VQ tokenizer, class-conditional LlamaGen GPT, and
//! the EAGLE drafter (which also trains drafters for users' own LlamaGen checkpoints).

pub mod common;
pub mod data;
pub mod drafter;
pub mod gpt;
pub mod tiny;
pub mod vq;
