//! Stage plan → loaded: the runtime strategies (checked before any weight is read), the models on
//! their device, the tables the strategies need (latent neighbours, token embeddings), the quality
//! scorers and the hardware they run on; loaded once, checked before anything is written.

use std::path::Path;

use lantern_decoding::embeddings::{Tables, TokenEmbeddings};
use lantern_decoding::engine::engine_of;
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::strategy::Strategy;
use lantern_metrics::clip::ClipScorer;
use lantern_models::backend::{cpu_threads, select_device_at};
use lantern_models::ModelBundle;

use super::setup::{self, device_description, QualitySetup};
use super::{HarnessError, PlanInputs};
use crate::config::{ConfigError, SweepConfig};
use crate::plan::SweepPlan;
use crate::system::{self, Hardware};

/// Everything a sweep generates and scores with.
pub(super) struct Loaded {
    /// Target, drafter and tokenizer on the sweep's device.
    pub bundle: ModelBundle,
    /// One runtime strategy per planned configuration (the plan's order).
    pub strategies: Vec<Strategy>,
    /// Latent-neighbour table up to the largest k this invocation's configurations use.
    pub neighbours: Option<NeighbourTable>,
    /// Where the neighbour table's vectors come from (records name it).
    pub neighbour_source: Option<String>,
    /// Token embeddings (GSD's distance rule).
    pub embeddings: Option<TokenEmbeddings>,
    /// Reference set and extractors of the quality pass (`None`: no quality pass).
    pub quality: Option<QualitySetup>,
    /// CLIP scorer of a text-conditional sweep.
    pub clip: Option<ClipScorer>,
    /// HPSv2 scorer of a text-conditional sweep.
    pub hps: Option<ClipScorer>,
    /// The machine, backend and build the images are made on.
    pub hardware: Hardware,
}

impl Loaded {
    /// The lookup tables as strategies take them.
    pub fn tables(&self) -> Tables<'_> {
        Tables {
            neighbours: self.neighbours.as_ref(),
            embeddings: self.embeddings.as_ref(),
        }
    }
}

/// Loads what `plan` needs; the neighbour table is cached under `cache`.
pub(super) fn load(
    cfg: &SweepConfig,
    plan: &SweepPlan,
    inputs: &PlanInputs,
    cache: &Path,
) -> Result<Loaded, HarnessError> {
    let strategies = strategies(cfg, plan)?;
    let device = select_device_at(&cfg.runtime.backend, cfg.runtime.device)?;
    let bundle = ModelBundle::load_with(&inputs.paths, &device, 0, cfg.run_options())?;
    let drafted = strategies
        .iter()
        .any(|s| matches!(s, Strategy::Speculative(_)));
    if drafted && bundle.drafter.is_none() {
        return Err(ConfigError::Invalid {
            file: cfg.file.clone(),
            key: "model.drafter".into(),
            value: "(none)".into(),
            allowed: "a drafter checkpoint (or \"random\" for an untrained one) for sd, lantern and lantern++".into(),
        }
        .into());
    }
    let quality = setup::quality_setup(cfg, &inputs.paths, &bundle, &device)?;
    let clip = setup::text_scorer(cfg, &quality, &device, "clip_weights", false)?;
    let hps = setup::text_scorer(cfg, &quality, &device, "hps_weights", true)?;
    let k_max = plan
        .mine()
        .map(|(i, _)| strategies[i].neighbours_needed())
        .max()
        .unwrap_or(0);
    let (neighbours, neighbour_source) = if k_max > 0 {
        let (space, vocab, dim, source) = bundle.neighbour_space()?;
        let file = cache.join(format!("neighbours-{source}.bin"));
        let table = NeighbourTable::cached(&file, &space, vocab, dim, k_max)?;
        (Some(table), Some(source.to_string()))
    } else {
        (None, None)
    };
    let embeddings = if strategies.iter().any(Strategy::needs_embeddings) {
        let (rows, vocab, dim) = bundle.token_embeddings()?;
        Some(TokenEmbeddings::new(rows, vocab, dim))
    } else {
        None
    };
    let hardware = hardware(cfg, &bundle);
    Ok(Loaded {
        bundle,
        strategies,
        neighbours,
        neighbour_source,
        embeddings,
        quality,
        clip,
        hps,
        hardware,
    })
}

/// The runtime strategy of every planned configuration; a spec that does not make one is a
/// config error naming its key.
pub(super) fn strategies(
    cfg: &SweepConfig,
    plan: &SweepPlan,
) -> Result<Vec<Strategy>, HarnessError> {
    plan.runs
        .iter()
        .map(|r| {
            r.spec.strategy.strategy().map_err(|e| {
                ConfigError::Invalid {
                    file: cfg.file.clone(),
                    key: format!("strategy.{}", e.key),
                    value: r.label.clone(),
                    allowed: e.allowed,
                }
                .into()
            })
        })
        .collect()
}

/// The hardware disclosure of the sweep's records.
fn hardware(cfg: &SweepConfig, bundle: &ModelBundle) -> Hardware {
    let backend = cfg.runtime.backend.clone();
    Hardware {
        host: system::host_name(),
        cpu: system::cpu_model(),
        cores_available: system::cores_available(),
        threads_used: cpu_threads(),
        device: device_description(&backend),
        backend,
        engine: engine_of(bundle).name().into(),
        dtype: bundle.dtype.name().into(),
        burn: system::BURN_VERSION.into(),
    }
}
