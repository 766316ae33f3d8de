//! `lantern generate`: one strategy, a few classes and seeds; writes tokens, PNGs and timings.

use std::path::PathBuf;
use std::time::Instant;

use lantern_decoding::embeddings::{Tables, TokenEmbeddings};
use lantern_decoding::engine::models_for;
use lantern_decoding::model::ImageCondition;
use lantern_decoding::neighbours::NeighbourTable;
use lantern_decoding::sampling::{Sampling, TemperatureRule, WarpOrder};
use lantern_decoding::spec::{SpecError, StrategySpec};
use lantern_decoding::strategy::{generate, image_rng, Generation, Strategy};
use lantern_models::backend::cpu_threads;

use crate::models::ModelArgs;

use lantern_harness::images::{to_rgb8, write_png};

/// Arguments of `lantern generate`.
#[derive(clap::Args)]
pub struct Args {
    /// Models, backend, engine and weight storage.
    #[command(flatten)]
    model: ModelArgs,
    /// ar | sd | lantern | lantern++ | sjd | scd | gsd | zipar.
    #[arg(long, default_value = "ar")]
    strategy: String,
    /// dynamic | dynamic:TOP_K:DEPTH:TOTAL | chain:DEPTH | a static preset (naive_extend_57, …);
    /// default: dynamic (sd, lantern), naive_extend_57 (lantern++).
    #[arg(long)]
    tree: Option<String>,
    /// Latent neighbours per drafted token (lantern, lantern++; default 1000).
    #[arg(long)]
    k: Option<usize>,
    /// LANTERN's TVD budget δ in [0, 1] (default 0.1).
    #[arg(long)]
    delta: Option<f64>,
    /// LANTERN++'s ratio bound λ ≥ 1 (default 2).
    #[arg(long)]
    lambda: Option<f64>,
    /// Jacobi window (sjd, scd, gsd; default 16) or ZipAR window (zipar; default 8).
    #[arg(long)]
    window: Option<usize>,
    /// How fresh Jacobi positions start (sjd, scd, gsd): horizontal (default) | vertical | random.
    #[arg(long)]
    init: Option<String>,
    /// SCD's coupling: maximal (default) | gumbel.
    #[arg(long)]
    coupling: Option<String>,
    /// GSD's rank half-window G (default 7).
    #[arg(long)]
    group: Option<usize>,
    /// GSD's probability-gap threshold (default 0.15).
    #[arg(long)]
    p_thr: Option<f64>,
    /// GSD's squared embedding-distance threshold, absolute (instead of --d-quantile).
    #[arg(long)]
    d_thr: Option<f64>,
    /// GSD's distance threshold as a quantile of the model's pair distances (default 0.1; 1 = off).
    #[arg(long)]
    d_quantile: Option<f64>,
    /// Reproduce the official code's residual quirks instead of the principled rule.
    #[arg(long)]
    official_compat: bool,
    /// LANTERN's acceptance rule: lantern (the paper's, default) | bounded (emitted TVD ≤ δ).
    #[arg(long)]
    relax: Option<String>,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Top-k filter (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Top-p filter (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// fixed | entropy (entropy-aware: --temperature is T0).
    #[arg(long, default_value = "fixed")]
    temperature_rule: String,
    /// Order of top-k and top-p: top-k-then-top-p (LlamaGen) | top-p-then-top-k (LANTERN's speculative path).
    #[arg(long, default_value = "top-k-then-top-p")]
    order: String,
    /// Classifier-free guidance scale (≤ 1 = off).
    #[arg(long, default_value_t = 3.0)]
    cfg: f32,
    /// Classes to generate.
    #[arg(long, num_args = 1.., default_values_t = [0usize])]
    class: Vec<usize>,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per class (seeds seed, seed+1, …).
    #[arg(long, default_value_t = 1)]
    images: u64,
    /// Output folder.
    #[arg(long, default_value = "out")]
    out: PathBuf,
}

impl Args {
    /// The strategy flags given, read by the same spec as a sweep's `[[strategy]]` table.
    fn spec(&self) -> Result<StrategySpec, SpecError> {
        let mut table = serde_json::Map::new();
        table.insert("kind".into(), self.strategy.clone().into());
        let mut put = |key: &str, v: Option<serde_json::Value>| {
            if let Some(v) = v {
                table.insert(key.into(), v);
            }
        };
        put("tree", self.tree.clone().map(Into::into));
        put("k", self.k.map(Into::into));
        put("delta", self.delta.map(Into::into));
        put("lambda", self.lambda.map(Into::into));
        put("window", self.window.map(Into::into));
        put("init", self.init.clone().map(Into::into));
        put("coupling", self.coupling.clone().map(Into::into));
        put("group", self.group.map(Into::into));
        put("p_thr", self.p_thr.map(Into::into));
        put("d_thr", self.d_thr.map(Into::into));
        put("d_quantile", self.d_quantile.map(Into::into));
        put(
            "official_compat",
            self.official_compat.then_some(true.into()),
        );
        put("relax", self.relax.clone().map(Into::into));
        StrategySpec::parse(serde_json::Value::Object(table.clone())).map_err(|mut e| {
            if let Some(v) = table.get(&e.key) {
                e.value = v.to_string();
            }
            e
        })
    }
}

/// Runs the generation and prints one line per image plus the means.
pub fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let spec = a.spec().map_err(|e| {
        let flag = match e.key.as_str() {
            "kind" => "strategy".into(),
            key => key.replace('_', "-"),
        };
        format!("--{flag} {}: {}", e.value, e.allowed)
    })?;
    let strategy = spec.strategy()?;
    let sampling = Sampling {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        cfg_scale: a.cfg,
        cfg_interval: None,
        warp_order: WarpOrder::parse(&a.order).map_err(|e| format!("--order: {e}"))?,
        temperature_rule: TemperatureRule::parse(&a.temperature_rule)
            .map_err(|e| format!("--temperature-rule: {e}"))?,
    };
    let needs_drafter = matches!(strategy, Strategy::Speculative(_));
    let bundle = a.model.load(a.model.paths()?, needs_drafter, a.seed)?;
    let neighbours = match strategy.neighbours_needed() {
        0 => None,
        k => {
            let (space, vocab, dim, source) = bundle.neighbour_space()?;
            let cache = PathBuf::from(".cache").join(format!("neighbours-{source}.bin"));
            let t = Instant::now();
            let table = NeighbourTable::cached(&cache, &space, vocab, dim, k)?;
            eprintln!(
                "neighbour table from the {source} (k = {}) ready in {:.0} ms",
                table.k_max(),
                t.elapsed().as_secs_f64() * 1e3
            );
            Some(table)
        }
    };
    let embeddings = if strategy.needs_embeddings() {
        let (rows, vocab, dim) = bundle.token_embeddings()?;
        Some(TokenEmbeddings::new(rows, vocab, dim))
    } else {
        None
    };
    if let (Strategy::Jacobi(j), Some(e)) = (&strategy, &embeddings) {
        if let lantern_decoding::strategy::JacobiMethod::Gsd(g) = &j.method {
            eprintln!(
                "GSD distance threshold: {:?} → squared distance < {:.4} on the target's {}-wide token embeddings",
                g.d_thr,
                g.d_thr(Some(e))?,
                e.dim()
            );
        }
    }
    let tables = Tables {
        neighbours: neighbours.as_ref(),
        embeddings: embeddings.as_ref(),
    };
    let mut models = models_for(&bundle, &strategy);
    std::fs::create_dir_all(&a.out)?;

    // Warm-up (excluded from timings): one image of the first class.
    let first = ImageCondition::Class(a.class[0]);
    generate(
        models.as_mut(),
        &strategy,
        &sampling,
        &tables,
        &first,
        &image_rng(u64::MAX, 0),
    )?;

    let grid = bundle.gpt.config().grid_size();
    let mut all: Vec<Generation> = Vec::new();
    println!(
        "strategy {} on {} ({} threads), cfg {}, temperature {}",
        a.strategy,
        a.model.backend,
        cpu_threads(),
        a.cfg,
        a.temperature
    );
    for &class in &a.class {
        for seed in a.seed..a.seed + a.images {
            let cond = ImageCondition::Class(class);
            let g = generate(
                models.as_mut(),
                &strategy,
                &sampling,
                &tables,
                &cond,
                &image_rng(seed, class as u64),
            )?;
            let stem = format!("class{class}_seed{seed}");
            let mut vq_ms = None;
            if let Some(vq) = &bundle.vq {
                let t = Instant::now();
                let img = vq.decode_tokens(std::slice::from_ref(&g.tokens), grid);
                let rgb = to_rgb8(img);
                vq_ms = Some(t.elapsed().as_secs_f64() * 1e3);
                let (w, h, data) = &rgb[0];
                write_png(&a.out.join(format!("{stem}.png")), *w, *h, data)?;
            }
            let record = serde_json::json!({
                "strategy": strategy, "sampling": sampling, "class": class, "seed": seed,
                "tokens": g.tokens, "tau": g.tau(), "steps": g.steps.len(),
                "latency_ms": g.latency_ms, "draft_ms": g.draft_ms(), "verify_ms": g.verify_ms(),
                "forward_ms": g.forward_ms(), "tvd_emitted": g.tvd_emitted(),
                "vq_decode_ms": vq_ms, "accepted_per_step": g.accepted_per_step(),
                "drafter_is_random": bundle.drafter_is_random,
            });
            std::fs::write(
                a.out.join(format!("{stem}.json")),
                serde_json::to_string_pretty(&record)?,
            )?;
            let rounds = g.draft_ms() + g.verify_ms();
            println!(
                "{stem}: tau {:.3}, {} target forwards, {:.1} ms (draft {:.1}, verify {:.1}; host work outside forwards {:.0}%){}",
                g.tau(),
                g.target_forwards(),
                g.latency_ms,
                g.draft_ms(),
                g.verify_ms(),
                100.0 * (rounds - g.forward_ms()) / rounds.max(1e-9),
                vq_ms.map_or(String::new(), |m| format!(", VQ decode {m:.1} ms"))
            );
            all.push(g);
        }
    }
    let n = all.len() as f64;
    println!(
        "mean over {} images: tau {:.3}, {:.1} ms per image",
        all.len(),
        all.iter().map(|g| g.tau()).sum::<f64>() / n,
        all.iter().map(|g| g.latency_ms).sum::<f64>() / n
    );
    Ok(())
}
