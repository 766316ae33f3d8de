//! The host engine: the CPU fast path for decode steps, small tree verifies and drafting.
//!
//! burn stays the model definition (modules, checkpoint loading) and the GPU path; on the CPU,
//! a decode step is too small for a tensor library's per-op overhead and its single-threaded
//! skinny products. [`HostGpt`] and [`HostDrafter`] take their weights from the burn modules once,
//! pack them for the skinny-product kernels ([`matmul`]) in f32, bf16 or f16, and run the same
//! forward (same key layout, RoPE, masks, KV-cache protocol) on host buffers, split over a team
//! of threads ([`pool`]). Tests hold both paths to the same fixtures.

pub mod cache;
pub mod chameleon;
pub mod chameleon_drafter;
pub mod drafter;
pub mod gpt;
pub mod isa;
mod layers;
pub mod matmul;
pub mod pool;
pub mod roofline;
pub mod simd;

pub use cache::HostKvCache;
pub use chameleon::HostChameleon;
pub use chameleon_drafter::HostChameleonDrafter;
pub use drafter::HostDrafter;
pub use gpt::{HostCondition, HostGpt, HostStep, LogitChange};
pub use matmul::{PackedMatrix, WeightDtype};
