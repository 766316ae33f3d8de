//! The model-selection arguments `lantern generate` and `lantern bench` share: which model set,
//! which backend and engine, which weight storage.

use std::path::PathBuf;
use std::time::Instant;

use lantern_models::backend::{select_device, EngineKind};
use lantern_models::cpu::WeightDtype;
use lantern_models::{ModelBundle, ModelPaths, RunOptions};

/// Where the models come from and how they run.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// Model set: `tiny` (the embedded default), `tiny-peaked` (the earlier, near-memorising one),
    /// `fixture` (the random-weight fixtures) or `custom` (give --gpt …).
    #[arg(long, default_value = "tiny")]
    pub models: String,
    /// The LlamaGen fixture folder (default: `llamagen-tiny/` in $LANTERN_FIXTURES or `fixtures/`).
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// Target checkpoint (with --models custom), or `random`: random weights of --gpt-config
    /// (for step timings only).
    #[arg(long)]
    pub gpt: Option<PathBuf>,
    /// Target config: a preset (GPT-B, …) or a JSON file.
    #[arg(long)]
    pub gpt_config: Option<String>,
    /// VQ checkpoint.
    #[arg(long)]
    pub vq: Option<PathBuf>,
    /// VQ config: VQ-16, VQ-8 or a JSON file.
    #[arg(long)]
    pub vq_config: Option<String>,
    /// Drafter checkpoint, or `random` (untrained; for machinery tests only).
    #[arg(long)]
    pub drafter: Option<String>,
    /// Drafter config JSON (default: derived from the target).
    #[arg(long)]
    pub drafter_config: Option<PathBuf>,
    /// auto | cpu | wgpu | cuda.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// auto (the host engine on the CPU, burn on a GPU) | host | burn.
    #[arg(long, default_value = "auto")]
    pub engine: String,
    /// Weight storage of the host engine: f32 | bf16 | f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

fn fixture_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(lantern_models::fixtures::llamagen_tiny)
}

impl ModelArgs {
    /// The files of the chosen model set.
    pub fn paths(&self) -> Result<ModelPaths, String> {
        let mut p = match self.models.as_str() {
            "fixture" => ModelPaths::fixture(&fixture_dir(self.fixtures.clone())),
            name if lantern_models::bundle::EMBEDDED.contains(&name) => {
                let dir = lantern_models::bundle::embedded_dir(name);
                if !dir.join("gpt.safetensors").is_file() {
                    return Err(format!(
                        "the embedded default is missing ({} has no gpt.safetensors); rebuild it with `just train-tiny`, or use --models fixture",
                        dir.display()
                    ));
                }
                ModelPaths::tiny(&dir)
            }
            "custom" => {
                return Ok(ModelPaths {
                    gpt: self.gpt.clone().ok_or("--models custom needs --gpt")?,
                    gpt_config: self
                        .gpt_config
                        .clone()
                        .ok_or("--models custom needs --gpt-config")?,
                    vq: self.vq.clone(),
                    vq_config: self.vq_config.clone(),
                    drafter: self.drafter.clone(),
                    drafter_config: self.drafter_config.clone(),
                })
            }
            other => {
                return Err(format!(
                    "unknown --models '{other}'; allowed: tiny, tiny-peaked, fixture, custom"
                ))
            }
        };
        if let Some(d) = &self.drafter {
            p.drafter = Some(d.clone());
        }
        Ok(p)
    }

    /// The engine and weight storage.
    pub fn run_options(&self) -> Result<RunOptions, String> {
        Ok(RunOptions {
            engine: EngineKind::parse(&self.engine).map_err(|e| format!("--engine: {e}"))?,
            dtype: WeightDtype::parse(&self.dtype).map_err(|e| format!("--dtype: {e}"))?,
        })
    }

    /// Loads `paths` (the drafter dropped when `drafter` is false) and says on stderr what it
    /// loaded, with the logit change of reduced-precision weights.
    pub fn load(
        &self,
        paths: ModelPaths,
        drafter: bool,
        seed: u64,
    ) -> Result<ModelBundle, Box<dyn std::error::Error>> {
        let device = select_device(&self.backend)?;
        let paths = ModelPaths {
            drafter: if drafter { paths.drafter } else { None },
            ..paths
        };
        let t = Instant::now();
        let bundle = ModelBundle::load_with(&paths, &device, seed, self.run_options()?)?;
        eprintln!(
            "loaded models in {:.0} ms ({} engine, {} weights)",
            t.elapsed().as_secs_f64() * 1e3,
            lantern_decoding::engine::engine_of(&bundle).name(),
            bundle.dtype.name()
        );
        if let Some(h) = &bundle.host {
            if bundle.dtype != WeightDtype::F32 {
                let change = h.gpt.logit_change(&bundle.gpt, 16)?;
                eprintln!(
                    "{} weights change the target's logits by at most {:.2e} (mean {:.2e}) against f32 on a 16-token sequence",
                    bundle.dtype.name(),
                    change.max,
                    change.mean
                );
            }
        }
        if bundle.drafter_is_random {
            eprintln!("note: the drafter is untrained (random weights); acceptance numbers say nothing about real drafters");
        }
        Ok(bundle)
    }
}
