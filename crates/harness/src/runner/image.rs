//! One timed image of one configuration: generated `repeats` times from the same random stream,
//! forwards counted at the model seam, peak memory read, and written up as a [`Record`].

use std::path::Path;
use std::time::Instant;

use lantern_decoding::counted::Counted;
use lantern_decoding::embeddings::Tables;
use lantern_decoding::engine::ModelSet;
use lantern_decoding::engine::{engine_of, models_for};
use lantern_decoding::model::{ImageCondition, Models};
use lantern_decoding::rng::Rng;
use lantern_decoding::strategy::{generate, image_rng, Generation, Strategy};
use lantern_models::ModelPaths;

use super::recheck::AutoRun;
use super::runs::AutoFiles;
use super::setup::Cond;
use super::HarnessError;
use crate::columns::Config;
use crate::plan::RunSpec;
use crate::quiet::{self, Quietness, RULE};
use crate::records::Record;
use crate::system::{self, Hardware};

/// One kept timing of an image.
struct Timed {
    g: Generation,
    forwards: lantern_decoding::counted::Forwards,
    quiet: Quietness,
    /// Re-timings before this one was kept.
    retimes: u32,
    /// Why the kept timing is still disturbed (`None`: quiet).
    disturbed: Option<String>,
}

/// What every image of a sweep shares.
pub(super) struct Context<'a> {
    /// The loaded target (any family), tokenizer and drafter.
    pub set: &'a dyn ModelSet,
    pub paths: &'a ModelPaths,
    pub tables: &'a Tables<'a>,
    pub neighbour_source: Option<&'a str>,
    pub hardware: &'a Hardware,
    pub commit: String,
    pub warmup: usize,
    pub repeats: usize,
    /// The condition warm-up images are made on (the sweep's first).
    pub warm_cond: &'a ImageCondition,
    /// Re-timings of a disturbed image (`[timing] retimes`).
    pub retimes: usize,
    /// Where `auto` checks are recorded.
    pub auto_files: AutoFiles,
}

/// A configuration being generated: its models (set up and warmed up) and what it has made.
pub(super) struct Active<'b> {
    pub spec: &'b RunSpec,
    pub run_id: &'b String,
    /// The strategy that runs (an `auto` tree's current pick).
    pub strategy: Strategy,
    tree_label: Option<String>,
    models: Box<dyn Models + 'b>,
    /// An `auto` tree's choice under check (`recheck.rs`).
    pub auto: Option<AutoRun<'b>>,
    taus: Vec<f64>,
    /// Latencies per target forward of the timings kept undisturbed so far (the stall rule's
    /// reference).
    quiet_ms_per_forward: Vec<f64>,
    grid_images: Vec<Vec<u8>>,
    img_size: (usize, usize),
}

impl<'b> Active<'b> {
    pub fn new(
        spec: &'b RunSpec,
        run_id: &'b String,
        strategy: Strategy,
        tree_label: Option<String>,
        models: Box<dyn Models + 'b>,
    ) -> Self {
        Self {
            spec,
            run_id,
            strategy,
            tree_label,
            models,
            auto: None,
            taus: Vec::new(),
            quiet_ms_per_forward: Vec::new(),
            grid_images: Vec::new(),
            img_size: (0, 0),
        }
    }

    /// Images made so far.
    pub fn images(&self) -> usize {
        self.taus.len()
    }

    /// Runs `strategy` from now on (an `auto` tree re-chosen): its own models, warmed up as at
    /// set-up; the stall rule starts a new reference, since the latencies change.
    pub fn switch(
        &mut self,
        strategy: Strategy,
        tree_label: String,
        ctx: &Context<'b>,
    ) -> Result<(), HarnessError> {
        let mut models = models_for(ctx.set, &strategy);
        warm_up(models.as_mut(), &strategy, self.spec, ctx, ctx.warmup)?;
        self.models = models;
        self.strategy = strategy;
        self.tree_label = Some(tree_label);
        self.quiet_ms_per_forward.clear();
        Ok(())
    }

    /// Mean τ of the images so far.
    pub fn mean_tau(&self) -> f64 {
        self.taus.iter().sum::<f64>() / self.taus.len().max(1) as f64
    }

    /// Writes the sample grid of the first decoded images.
    pub fn write_samples(&self, dir: &Path) -> std::io::Result<()> {
        if self.grid_images.is_empty() {
            return Ok(());
        }
        let (w, h) = self.img_size;
        crate::images::write_grid(dir, &self.spec.label(), &self.grid_images, w, h)
    }
}

/// Generates `n` untimed images of `strategy` on the sweep's first condition (seeds no timed
/// image uses), so that the timed ones find caches and allocations warm.
pub(super) fn warm_up(
    models: &mut dyn Models,
    strategy: &Strategy,
    spec: &RunSpec,
    ctx: &Context,
    n: usize,
) -> Result<(), HarnessError> {
    for w in 0..n {
        let rng = image_rng(u64::MAX - 2, w as u64);
        generate(
            models,
            strategy,
            &spec.sampling,
            ctx.tables,
            ctx.warm_cond,
            &rng,
        )?;
    }
    Ok(())
}

impl Context<'_> {
    /// Generates, times and records one image of `a`.
    pub fn image(&self, a: &mut Active, c: &Cond, seed: u64) -> Result<Record, HarnessError> {
        let spec = a.spec;
        let rng = image_rng(seed, c.class.or(c.prompt).unwrap_or(0) as u64);
        let rss_tracked = system::reset_peak_rss();
        let mut first: Option<Timed> = None;
        let mut latencies = Vec::with_capacity(self.repeats);
        let (mut retimed, mut disturbed) = (0u32, None);
        for repeat in 0..self.repeats {
            let t = self.timed(a, c, &rng)?;
            latencies.push(t.g.latency_ms);
            retimed += t.retimes;
            disturbed = disturbed.or(t.disturbed.clone());
            match &first {
                None => first = Some(t),
                Some(f) if f.g.tokens != t.g.tokens => {
                    return Err(HarnessError::Io(format!(
                        "{}: repeat {repeat} of seed {seed} produced other tokens than the first: \
                         this backend is not deterministic, so repeats would time different images; \
                         set [timing] repeats = 1",
                        spec.label()
                    )))
                }
                Some(_) => {}
            }
        }
        let Timed {
            g, forwards, quiet, ..
        } = first.expect("repeats ≥ 1");
        let peak_rss_mb = rss_tracked.then(system::peak_rss_mb).flatten();
        let vq_decode_ms = self.decode(a, &g.tokens);
        a.taus.push(g.tau());
        let uses_drafter = matches!(a.strategy, Strategy::Speculative(_));
        let hw = self.hardware;
        Ok(Record {
            run_id: a.run_id.clone(),
            label: spec.label(),
            config: Config::of(spec, a.tree_label.clone()),
            class: c.class,
            prompt: c.prompt,
            seed,
            tokens: g.tokens.clone(),
            steps: g.steps.len() as u32,
            tau: g.tau(),
            latency_ms: latencies.iter().sum::<f64>() / latencies.len() as f64,
            latencies_ms: latencies,
            warmup: Some(self.warmup as u32),
            draft_ms: g.draft_ms(),
            verify_ms: g.verify_ms(),
            forward_ms: g.forward_ms(),
            prefill_ms: g.prefill_ms,
            tvd_emitted: g.tvd_emitted(),
            regime: g.regime(),
            quiet: Some(quiet),
            retimed,
            disturbed,
            vq_decode_ms,
            accepted_per_step: g.accepted_per_step().iter().map(|&a| a as u32).collect(),
            target_forwards: Some(forwards.target as u32),
            drafter_forwards: Some(forwards.drafter as u32),
            peak_rss_mb,
            neighbour_source: (a.strategy.neighbours_needed() > 0)
                .then(|| self.neighbour_source.map(String::from))
                .flatten(),
            family: Some(self.set.family().into()),
            gpt_model: self.paths.gpt.display().to_string(),
            drafter_model: uses_drafter
                .then(|| self.paths.drafter.clone())
                .flatten()
                .filter(|_| self.set.has_drafter()),
            vq_model: self.paths.vq.as_ref().map(|p| p.display().to_string()),
            backend: hw.backend.clone(),
            engine: engine_of(self.set).name().into(),
            dtype: hw.dtype.clone(),
            device: hw.device.clone(),
            threads: hw.threads_used as u32,
            host: hw.host.clone(),
            cpu: hw.cpu.clone(),
            burn: hw.burn.clone(),
            git_commit: self.commit.clone(),
        })
    }

    /// One timed generation of the image, re-timed while [`RULE`] finds it disturbed (at most
    /// `retimes` more times; same random stream, so the same tokens): the first quiet timing
    /// is kept, else the fastest, flagged with why it was disturbed.
    fn timed(&self, a: &mut Active, c: &Cond, rng: &Rng) -> Result<Timed, HarnessError> {
        let mut best: Option<Timed> = None;
        for retimes in 0..=self.retimes as u32 {
            let mut counted = Counted::new(a.models.as_mut());
            let (before, t0) = (quiet::read(), Instant::now());
            let g = generate(
                &mut counted,
                &a.strategy,
                &a.spec.sampling,
                self.tables,
                &c.cond,
                rng,
            )?;
            let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
            let q = Quietness::between(
                &before,
                &quiet::read(),
                wall_ms,
                self.hardware.cores_available,
            );
            // On the host engine every thread of this process is the decoder's; on a burn
            // backend the driver's own workers (lavapipe, CUDA) share the process and wait on
            // each other, so only the stall rule and steal judge those timings.
            let own_threads = self.hardware.engine == "host";
            let forwards = counted.forwards();
            let verdict = RULE.verdict(
                &Quietness {
                    wall_ms: g.latency_ms,
                    wait_ms: q.wait_ms.filter(|_| own_threads),
                    ..q
                },
                forwards.target,
                &a.quiet_ms_per_forward,
            );
            let t = Timed {
                forwards,
                g,
                quiet: q,
                retimes,
                disturbed: verdict,
            };
            if t.disturbed.is_none() {
                let per_forward = t.g.latency_ms / t.forwards.target.max(1) as f64;
                a.quiet_ms_per_forward.push(per_forward);
                return Ok(t);
            }
            if best
                .as_ref()
                .is_none_or(|b| t.g.latency_ms < b.g.latency_ms)
            {
                best = Some(t);
            }
        }
        // Every re-timing was spent: the fastest timing is kept, flagged.
        Ok(Timed {
            retimes: self.retimes as u32,
            ..best.expect("at least one timing")
        })
    }

    /// Decodes the tokens to pixels (timed), keeping the first 8 images for the sample grid.
    fn decode(&self, a: &mut Active, tokens: &[u32]) -> Option<f64> {
        let vq = self.set.vq()?;
        let t = Instant::now();
        let img = vq.decode_tokens_grid(&[tokens.to_vec()], self.set.image_grid());
        let rgb = crate::images::to_rgb8(img);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if a.grid_images.len() < 8 {
            let (w, h, data) = rgb.into_iter().next().expect("one image");
            a.img_size = (w, h);
            a.grid_images.push(data);
        }
        Some(ms)
    }
}
