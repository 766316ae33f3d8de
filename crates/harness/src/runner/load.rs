//! Stage plan → loaded: the runtime strategies (checked before any weight is read), the models on
//! their device, the tables the strategies need (latent neighbours, token embeddings), the quality
//! scorers and the hardware they run on; loaded once, checked before anything is written.

use std::path::Path;

use lantern_decoding::embeddings::{Tables, TokenEmbeddings};
use lantern_decoding::engine::{engine_of, ModelSet};
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::strategy::Strategy;
use lantern_metrics::clip::ClipScorer;
use lantern_models::backend::{cpu_threads, select_device_at, EngineKind};
use lantern_models::burn::prelude::Device;
use lantern_models::chameleon::layout::Convention;
use lantern_models::chameleon::ChameleonSet;
use lantern_models::ModelBundle;

use super::family::Family;
use super::setup::{self, device_description, QualitySetup};
use super::{HarnessError, PlanInputs};
use crate::config::{ConfigError, SweepConfig};
use crate::plan::SweepPlan;
use crate::system::{self, Hardware};

/// Everything a sweep generates and scores with.
pub(super) struct Loaded {
    /// Target, drafter and tokenizer on the sweep's device (LlamaGen or Chameleon family).
    pub set: Box<dyn ModelSet>,
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
    let mut strategies = strategies(cfg, plan)?;
    if let Family::Chameleon(layout) = &inputs.family {
        if layout.convention == Convention::Lumina {
            strategies = strategies.into_iter().map(Strategy::on_lumina).collect();
        }
    }
    let device = select_device_at(&cfg.runtime.backend, cfg.runtime.device)?;
    let set = load_set(cfg, inputs, &device)?;
    let drafted = strategies
        .iter()
        .any(|s| matches!(s, Strategy::Speculative(_)));
    if drafted && !set.has_drafter() {
        return Err(ConfigError::Invalid {
            file: cfg.file.clone(),
            key: "model.drafter".into(),
            value: "(none)".into(),
            allowed: "a drafter checkpoint (or \"random\" for an untrained one; on a Chameleon-family target LANTERN's drafter folder or \"from-target\") for sd, lantern and lantern++".into(),
        }
        .into());
    }
    let quality = setup::quality_setup(cfg, &inputs.paths, set.vq(), &device)?;
    let clip = setup::text_scorer(cfg, &quality, &device, "clip_weights", false)?;
    let hps = setup::text_scorer(cfg, &quality, &device, "hps_weights", true)?;
    let k_max = plan
        .mine()
        .map(|(i, _)| strategies[i].neighbours_needed())
        .max()
        .unwrap_or(0);
    let (neighbours, neighbour_source) = if k_max > 0 {
        let (space, vocab, dim, source) = set.neighbour_space()?;
        let file = cache.join(format!("neighbours-{source}.bin"));
        let table = NeighbourTable::cached(&file, &space, vocab, dim, k_max)?;
        (Some(table), Some(source.to_string()))
    } else {
        (None, None)
    };
    let embeddings = if strategies.iter().any(Strategy::needs_embeddings) {
        let (rows, vocab, dim) = set.token_embeddings()?;
        Some(TokenEmbeddings::new(rows, vocab, dim))
    } else {
        None
    };
    let hardware = hardware(cfg, set.as_ref());
    Ok(Loaded {
        set,
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

/// The target of the sweep's family on `device`: LlamaGen's bundle, or a Chameleon-family set
/// (the host engine only: its models have no burn path through `Models` yet).
fn load_set(
    cfg: &SweepConfig,
    inputs: &PlanInputs,
    device: &Device,
) -> Result<Box<dyn ModelSet>, HarnessError> {
    let opts = cfg.run_options();
    let Family::Chameleon(layout) = &inputs.family else {
        return Ok(Box::new(ModelBundle::load_with(
            &inputs.paths,
            device,
            0,
            opts,
        )?));
    };
    let cpu = lantern_models::linear::is_cpu(device);
    if !cpu || opts.engine == EngineKind::Burn {
        let (key, value) = if cpu {
            ("runtime.engine", "burn".to_string())
        } else {
            ("runtime.backend", cfg.runtime.backend.clone())
        };
        return Err(cfg
            .invalid(
                key,
                value,
                "a Chameleon-family target runs on the host engine: backend cpu (or auto on a machine without a GPU), engine auto or host",
            )
            .into());
    }
    let grid = (layout.convention, layout.h, layout.w);
    Ok(Box::new(ChameleonSet::load(
        &inputs.paths,
        grid,
        opts.dtype,
        device,
    )?))
}

/// The hardware disclosure of the sweep's records.
fn hardware(cfg: &SweepConfig, set: &dyn ModelSet) -> Hardware {
    let backend = cfg.runtime.backend.clone();
    Hardware {
        host: system::host_name(),
        cpu: system::cpu_model(),
        cores_available: system::cores_available(),
        threads_used: cpu_threads(),
        device: device_description(&backend),
        backend,
        engine: engine_of(set).name().into(),
        dtype: set.dtype().name().into(),
        burn: system::BURN_VERSION.into(),
    }
}
