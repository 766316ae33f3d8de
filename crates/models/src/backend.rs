//! Backend selection: the CPU default (`flex`) and the optional features (`wgpu`, `cuda`, and
//! `tch`: LibTorch on the CPU or CUDA).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Which implementation runs the models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The host engine on the CPU backend, burn on a GPU.
    Auto,
    /// The host engine: the CPU fast path ([`crate::cpu`]).
    Host,
    /// burn tensors on the selected backend.
    Burn,
}

impl EngineKind {
    /// Parses `auto`, `host` or `burn`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "host" => Ok(Self::Host),
            "burn" => Ok(Self::Burn),
            other => Err(format!(
                "engine '{other}' is not known; allowed: auto, host, burn"
            )),
        }
    }

    /// The name as written in configs and records.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Host => "host",
            Self::Burn => "burn",
        }
    }
}

/// Backends compiled into this build, in the order `auto` prefers them.
pub fn available_backends() -> Vec<&'static str> {
    let mut out = Vec::new();
    if cfg!(feature = "cuda") {
        out.push("cuda");
    }
    if cfg!(feature = "wgpu") {
        out.push("wgpu");
    }
    if cfg!(feature = "flex") {
        out.push("cpu");
    }
    // LibTorch only when named: `auto` keeps the native backends.
    if cfg!(feature = "tch") {
        out.extend(["tch-cpu", "tch-cuda"]);
    }
    out
}

/// The backend `auto` stands for: the first of [`available_backends`] that runs on hardware
/// (CUDA; wgpu when its default adapter is a GPU rather than a software rasteriser such as
/// lavapipe), else the first one built; `None` in a build with no backend. Resolved once.
pub fn auto_backend() -> Option<&'static str> {
    static AUTO: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    *AUTO.get_or_init(|| {
        let built = available_backends();
        let hardware = |b: &str| b != "wgpu" || wgpu_adapter_is_hardware();
        built
            .iter()
            .copied()
            .find(|b| hardware(b))
            .or(built.first().copied())
    })
}

/// Whether wgpu's default adapter is a hardware GPU (not a CPU rasteriser such as lavapipe).
#[cfg(not(feature = "wgpu"))]
fn wgpu_adapter_is_hardware() -> bool {
    false
}

/// Whether wgpu's default adapter is a hardware GPU (not a CPU rasteriser such as lavapipe).
#[cfg(feature = "wgpu")]
fn wgpu_adapter_is_hardware() -> bool {
    // Vulkan, Metal, DX12 and WebGPU only: probing GL (EGL, Wayland) prints errors on headless
    // machines and finds no GPU the primary backends miss.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    futures_lite::future::block_on(
        instance.request_adapter(&wgpu::RequestAdapterOptions::default()),
    )
    .is_ok_and(|a| a.get_info().device_type != wgpu::DeviceType::Cpu)
}

/// The device `auto` stands for ([`auto_backend`]): what the CLI's scoring and training run on
/// unless told otherwise. Unlike burn's `crate::backend::test_device()`, it does not pick a software GPU
/// (lavapipe) over the CPU. Panics in a build with no backend.
pub fn default_device() -> Device {
    select_device("auto").unwrap_or_else(|e| panic!("{e}"))
}

/// The device for a backend name: `auto` ([`auto_backend`]), `cpu` (flex),
/// `wgpu` or `cuda` (when built with those features).
pub fn select_device(name: &str) -> Result<Device, ModelError> {
    select_device_at(name, 0)
}

/// [`select_device`] on GPU `index` (`cuda`, `tch-cuda`; `--device N`); other backends take
/// only index 0.
pub fn select_device_at(name: &str, index: usize) -> Result<Device, ModelError> {
    if index > 0 && !matches!(name, "cuda" | "tch-cuda") {
        return Err(ModelError::Config {
            source_name: "device".into(),
            message: format!(
                "device index {index} applies to the cuda and tch-cuda backends, not '{name}'"
            ),
        });
    }
    let unavailable = || {
        ModelError::Config {
        source_name: "backend".into(),
        message: format!(
            "backend '{name}' is not available in this build; allowed: auto, {} (GPU backends need `--features wgpu`, `cuda` or `tch`)",
            available_backends().join(", ")
        ),
    }
    };
    match name {
        "auto" => match auto_backend() {
            Some(b) => select_device_at(b, index),
            None => Err(unavailable()),
        },
        #[cfg(feature = "flex")]
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(index)),
        // burn 0.22 marks burn-tch deprecated; it is still the only CUDA route that builds offline.
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch-cpu" => Ok(Device::libtorch()),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch-cuda" => Ok(Device::libtorch_cuda(index)),
        _ => Err(unavailable()),
    }
}

/// The adapter wgpu picks by default, with its backend and driver, e.g. `llvmpipe (LLVM 15.0.6,
/// 256 bits), Vulkan, driver llvmpipe Mesa 22.3.6`; `None` when no adapter is found.
#[cfg(feature = "wgpu")]
pub fn wgpu_adapter() -> Option<String> {
    let instance = wgpu::Instance::default();
    let adapter = futures_lite::future::block_on(
        instance.request_adapter(&wgpu::RequestAdapterOptions::default()),
    )
    .ok()?;
    let info = adapter.get_info();
    Some(format!(
        "{}, {:?}, driver {} {}",
        info.name, info.backend, info.driver, info.driver_info
    ))
}

/// What a backend runs on, for records: the CPU model for the CPU backend, the adapter and
/// driver for wgpu, the backend's name otherwise.
pub fn device_description(backend: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let auto = auto_backend().unwrap_or("cpu");
    match backend {
        "auto" if auto != "cpu" => device_description(auto),
        "auto" | "cpu" | "flex" => format!("cpu: {cpu}"),
        "tch-cpu" => format!("libtorch cpu: {cpu}"),
        #[cfg(feature = "wgpu")]
        "wgpu" => format!(
            "wgpu: {}",
            wgpu_adapter().unwrap_or_else(|| "no adapter found".into())
        ),
        other => other.to_string(),
    }
}

/// The device the fixture tests run on: `LANTERN_TEST_BACKEND` (`cpu` when unset; `wgpu` in a
/// build with the `wgpu` feature, e.g. on lavapipe). Panics with the allowed names otherwise.
pub fn test_device() -> Device {
    let name = std::env::var("LANTERN_TEST_BACKEND").unwrap_or_else(|_| "cpu".into());
    select_device(&name).unwrap_or_else(|e| panic!("LANTERN_TEST_BACKEND: {e}"))
}

/// The backend name the fixture tests run on (`LANTERN_TEST_BACKEND`, `cpu` when unset).
pub fn test_backend() -> String {
    std::env::var("LANTERN_TEST_BACKEND").unwrap_or_else(|_| "cpu".into())
}

/// Threads the CPU backend uses (rayon's pool; set `RAYON_NUM_THREADS` to change it).
pub fn cpu_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_backend_lists_the_allowed_ones() {
        let err = select_device("tpu").unwrap_err().to_string();
        assert!(err.contains("'tpu'") && err.contains("auto"), "{err}");
        assert!(select_device("auto").is_ok());
        assert!(select_device("cpu").is_ok());
    }
}
