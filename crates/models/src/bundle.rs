//! A model set for one run: target GPT, VQ tokenizer and drafter, from files or presets.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::backend::EngineKind;
use crate::config::{DrafterConfig, GptConfig, VqConfig};
use crate::cpu::{HostDrafter, HostGpt, WeightDtype};
use crate::drafter::Drafter;
use crate::error::ModelError;
use crate::gpt::Gpt;
use crate::vq::VqModel;

/// Paths (and config sources) of a model set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelPaths {
    /// Target checkpoint (`.pt` or `.safetensors`).
    pub gpt: PathBuf,
    /// Target configuration: a preset name (`GPT-B`, …) or a JSON file of `ModelArgs`.
    pub gpt_config: String,
    /// VQ checkpoint, if images are to be decoded.
    pub vq: Option<PathBuf>,
    /// VQ configuration: `VQ-16`, `VQ-8` or a JSON file.
    pub vq_config: Option<String>,
    /// Drafter checkpoint, or `random` for an untrained drafter (machinery tests only).
    pub drafter: Option<String>,
    /// Drafter configuration JSON; derived from the target when absent.
    pub drafter_config: Option<PathBuf>,
}

impl ModelPaths {
    /// The tiny random-weight fixture GPT in `dir` (`gpt_c2i.*`) with an untrained drafter. The
    /// fixture VQ has another codebook size than the GPT's vocabulary, so it is not included.
    pub fn fixture(dir: &Path) -> Self {
        Self {
            gpt: dir.join("gpt_c2i.safetensors"),
            gpt_config: dir.join("gpt_c2i.json").display().to_string(),
            vq: None,
            vq_config: None,
            drafter: Some("random".into()),
            drafter_config: None,
        }
    }

    /// The embedded default in `dir` (see [`tiny_dir`]): GPT, VQ and trained drafter.
    pub fn tiny(dir: &Path) -> Self {
        Self {
            gpt: dir.join("gpt.safetensors"),
            gpt_config: dir.join("gpt.json").display().to_string(),
            vq: Some(dir.join("vq.safetensors")),
            vq_config: Some(dir.join("vq.json").display().to_string()),
            drafter: Some(dir.join("drafter.safetensors").display().to_string()),
            drafter_config: Some(dir.join("drafter.json")),
        }
    }
}

/// The embedded model sets: `tiny` (the default, ambiguous like LlamaGen) and `tiny-peaked` (the
/// earlier, near-memorising one), each a folder under `checkpoints/`.
pub const EMBEDDED: [&str; 2] = ["tiny", "tiny-peaked"];

/// Folder of the embedded default: `$LANTERN_TINY`, else [`embedded_dir`]`("tiny")`.
pub fn tiny_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LANTERN_TINY") {
        return PathBuf::from(d);
    }
    embedded_dir("tiny")
}

/// Folder of the embedded model set `name` (one of [`EMBEDDED`]; `tiny` honours `$LANTERN_TINY`):
/// `checkpoints/<name>` under the working directory, else the one in the source tree this binary
/// was built from.
pub fn embedded_dir(name: &str) -> PathBuf {
    if name == "tiny" {
        if let Some(d) = std::env::var_os("LANTERN_TINY") {
            return PathBuf::from(d);
        }
    }
    let local = Path::new("checkpoints").join(name);
    if local.join("gpt.safetensors").is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../checkpoints")
        .join(name)
}

/// How a bundle's models run: the engine and the storage of their weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// `auto` (the host engine on the CPU backend, burn elsewhere), `host` or `burn`.
    pub engine: EngineKind,
    /// Weight storage of the host engine's matrices (burn keeps f32).
    pub dtype: WeightDtype,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            engine: EngineKind::Auto,
            dtype: WeightDtype::F32,
        }
    }
}

/// The host engine's copies of the target and drafter, packed at load (the CPU fast path).
#[derive(Debug)]
pub struct HostModels {
    /// The target.
    pub gpt: HostGpt,
    /// The drafter, if one is loaded.
    pub drafter: Option<HostDrafter>,
}

/// Loaded models of one run.
#[derive(Debug)]
pub struct ModelBundle {
    /// The target.
    pub gpt: Gpt,
    /// The tokenizer (to decode images).
    pub vq: Option<VqModel>,
    /// The drafter (speculative strategies).
    pub drafter: Option<Drafter>,
    /// Whether the drafter is untrained (random weights): its acceptance numbers mean nothing.
    pub drafter_is_random: bool,
    /// Where everything came from.
    pub paths: ModelPaths,
    /// The host engine's copies, when the models run there.
    pub host: Option<HostModels>,
    /// The weight storage the target runs with.
    pub dtype: WeightDtype,
}

/// Resolves a GPT config source: a preset name or a JSON path.
pub fn gpt_config(source: &str) -> Result<GptConfig, ModelError> {
    let path = Path::new(source);
    if path.extension().is_some_and(|e| e == "json") || path.is_file() {
        GptConfig::from_json_file(path)
    } else {
        GptConfig::preset(source)
    }
}

/// Resolves a VQ config source: `VQ-16`, `VQ-8` or a JSON path.
pub fn vq_config(source: &str) -> Result<VqConfig, ModelError> {
    match source {
        "VQ-16" | "vq16" => Ok(VqConfig::vq16()),
        "VQ-8" | "vq8" => Ok(VqConfig::vq8()),
        path => VqConfig::from_json_file(Path::new(path)),
    }
}

impl ModelBundle {
    /// Loads every model named in `paths` onto `device` with the default [`RunOptions`]; a random
    /// drafter is seeded with `seed`.
    pub fn load(paths: &ModelPaths, device: &Device, seed: u64) -> Result<Self, ModelError> {
        Self::load_with(paths, device, seed, RunOptions::default())
    }

    /// [`ModelBundle::load`] with an engine and weight storage. The host engine needs the CPU
    /// backend; reduced-precision weights need the host engine.
    pub fn load_with(
        paths: &ModelPaths,
        device: &Device,
        seed: u64,
        opts: RunOptions,
    ) -> Result<Self, ModelError> {
        let cpu = crate::linear::is_cpu(device);
        let refuse = |message: String| ModelError::Config {
            source_name: "engine".into(),
            message,
        };
        let host = match opts.engine {
            EngineKind::Host if !cpu => {
                return Err(refuse(
                    "the host engine runs on the CPU backend; allowed: `--backend cpu`, or engine auto / burn".into(),
                ))
            }
            EngineKind::Host => true,
            EngineKind::Auto => cpu,
            EngineKind::Burn => false,
        };
        if !host && opts.dtype != WeightDtype::F32 {
            return Err(refuse(format!(
                "dtype {} needs the host engine (the CPU backend); the burn path stores f32; allowed: dtype f32, or engine host on the CPU",
                opts.dtype.name()
            )));
        }
        let cfg = gpt_config(&paths.gpt_config)?;
        let gpt = if paths.gpt == Path::new("random") {
            // Random weights of the configured size: for step timings (`lantern bench`) only.
            seeded(device, seed, || Gpt::new(&cfg, device).inspect(materialise))?
        } else {
            Gpt::load(&cfg, &paths.gpt, device)?
        };
        let vq = match (&paths.vq, &paths.vq_config) {
            (Some(p), c) => Some(VqModel::load(
                &vq_config(c.as_deref().unwrap_or("VQ-16"))?,
                p,
                device,
            )?),
            (None, _) => None,
        };
        if let Some(vq) = &vq {
            let codes = vq.config().codebook_size;
            if codes != cfg.vocab_size {
                return Err(ModelError::Config {
                    source_name: paths.gpt_config.clone(),
                    message: format!(
                        "the GPT's vocab_size {} does not match the VQ codebook_size {codes}",
                        cfg.vocab_size
                    ),
                });
            }
        }
        let dcfg = match &paths.drafter_config {
            Some(p) => DrafterConfig::from_json_file(p)?,
            None => DrafterConfig::for_target(&cfg),
        };
        let (drafter, drafter_is_random) = match paths.drafter.as_deref() {
            None => (None, false),
            Some("random") => {
                let d = seeded(device, seed, || {
                    Drafter::new(&dcfg, device).inspect(materialise)
                })?
                .with_embedding(gpt.token_embeddings().clone());
                (Some(d), true)
            }
            Some(p) => (Some(Drafter::load(&dcfg, Path::new(p), device)?), false),
        };
        let host = host.then(|| HostModels {
            gpt: HostGpt::from_burn(&gpt, opts.dtype),
            drafter: drafter
                .as_ref()
                .map(|d| HostDrafter::from_burn(d, opts.dtype)),
        });
        Ok(Self {
            gpt,
            vq,
            drafter,
            drafter_is_random,
            paths: paths.clone(),
            host,
            dtype: opts.dtype,
        })
    }

    /// The target's input token embeddings (GSD's distance space), row-major, with `(vocab, dim)`.
    pub fn token_embeddings(&self) -> Result<(Vec<f32>, usize, usize), ModelError> {
        let table = self.gpt.token_embeddings().weight.val();
        let [vocab, dim] = table.dims();
        let values = table.into_data().try_into_vec_as::<f32>().map_err(|e| {
            ModelError::Input(format!("cannot read the target's token embeddings: {e:?}"))
        })?;
        Ok((values, vocab, dim))
    }

    /// The latent space LANTERN's neighbour table is built from: the VQ codebook (raw rows), or,
    /// when no tokenizer is loaded, the GPT's token-embedding table. Returns the row-major values,
    /// `(vocab, dim)` and the source's name (recorded with every result).
    pub fn neighbour_space(&self) -> Result<(Vec<f32>, usize, usize, &'static str), ModelError> {
        let (table, source) = match &self.vq {
            Some(vq) => (vq.codebook(), "vq_codebook"),
            None => (
                self.gpt.token_embeddings().weight.val(),
                "gpt_tok_embeddings",
            ),
        };
        let [vocab, dim] = table.dims();
        let values = table
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| ModelError::Input(format!("cannot read the {source}: {e:?}")))?;
        Ok((values, vocab, dim, source))
    }
}

/// Runs `init` right after seeding the device's random stream, holding a process-wide lock, so
/// that random weights depend on `seed` alone even while other threads (parallel tests, other
/// bundles) seed and draw too.
fn seeded<T>(device: &Device, seed: u64, init: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    init()
}

/// Draws every lazily initialised parameter of `module` now (burn draws random weights on first
/// use, which would otherwise happen outside [`seeded`]'s lock).
fn materialise<M: burn::module::Module>(module: &M) {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}
