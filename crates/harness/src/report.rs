//! `lantern report results/<name>`: rebuilds `runs.parquet`, `summary.parquet`, `tables.md` and
//! the plots from the journal (the journal is the source of truth).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use lantern_metrics::stats::median;

use crate::plots;
use crate::quality::Quality;
use crate::records::{self, Record};
use crate::summary::{self, Summary};

/// A results folder read back (stage records → reports): its merged records with their
/// summaries and quality, everything the report files are made of.
pub struct Report {
    /// Every image's record, from all journals merged.
    pub records: Vec<Record>,
    /// One summary per configuration.
    pub summaries: Vec<Summary>,
    /// `quality.json` (and its shards), when computed.
    pub quality: Option<Quality>,
    /// Where the records came from.
    pub provenance: Provenance,
    /// Per image, whether its tokens equal AR's at the same condition and seed.
    same: Vec<Option<bool>>,
}

impl Report {
    /// The headline table ([`crate::headline::headline`]).
    pub fn headline(&self) -> String {
        crate::headline::headline(&self.summaries, &self.records)
    }
}

/// Reads a results folder: all its journals (an unsharded run's and every shard's, merged: see
/// [`records::merge_journals`]), quality and predictions; writes nothing.
pub fn read_report(dir: &Path) -> std::io::Result<Report> {
    let journals = records::journal_files(dir).unwrap_or_default();
    if journals.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{}: no journal.jsonl or journal.shard-*.jsonl here (is this a results/<name> folder?)",
                dir.display()
            ),
        ));
    }
    let merged = records::merge_journals(dir)?;
    for c in &merged.conflicts {
        eprintln!("{}: conflicting records: {c}", dir.display());
    }
    let records = merged.records;
    let quality = Quality::load(dir);
    let same = summary::equals_ar(&records);
    let mut predictions = BTreeMap::new();
    for f in records::results_files(dir, "predictions", "json")? {
        predictions.extend(crate::auto::read_map(&f));
    }
    let summaries = summary::summarise(&records, &same, quality.as_ref(), &predictions);
    let provenance = Provenance {
        journals: journals.len(),
        duplicates: merged.duplicates,
        conflicts: merged.conflicts,
    };
    Ok(Report {
        records,
        summaries,
        quality,
        provenance,
        same,
    })
}

/// Writes every report file of a results folder (`runs.parquet`, `summary.parquet`,
/// `tables.md`, the PNG plots and, with `svg`, SVG copies) from its journals; returns what they
/// were made of.
pub fn write_report(dir: &Path, svg: bool) -> std::io::Result<Report> {
    let report = read_report(dir)?;
    let (records, quality) = (&report.records, report.quality.as_ref());
    let mut runs = records::to_frame(records, &report.same).map_err(std::io::Error::other)?;
    if let Some(q) = quality {
        add_drift_columns(&mut runs, records, q).map_err(std::io::Error::other)?;
        add_score_columns(&mut runs, records, q).map_err(std::io::Error::other)?;
    }
    records::write_parquet(&mut runs, &dir.join("runs.parquet"))?;
    let mut sum = summary::to_frame(&report.summaries).map_err(std::io::Error::other)?;
    records::write_parquet(&mut sum, &dir.join("summary.parquet"))?;
    std::fs::write(
        dir.join("tables.md"),
        tables_md(&report.summaries, records, quality, &report.provenance),
    )?;
    plots::write_all(plots::PlotDir { dir, svg }, &report.summaries, records)?;
    Ok(report)
}

/// Where a report's records came from.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// Journals merged.
    pub journals: usize,
    /// Images recorded in more than one journal (dropped).
    pub duplicates: usize,
    /// Images whose copies disagree.
    pub conflicts: Vec<String>,
}

/// A configuration's method as the tables name it: the strategy with its rule, compat mode,
/// coupling, initialisation, grouping or fresh proposal, or "(added baseline)".
pub fn method_label(x: &Summary) -> String {
    match (
        x.config.auto_added,
        x.config.relax.as_deref(),
        x.config.official_compat,
    ) {
        (true, _, _) => format!("{} (added baseline)", x.config.strategy),
        (_, Some(r), _) => format!("{} ({r})", x.config.strategy),
        (_, None, Some(true)) => format!("{} (official)", x.config.strategy),
        _ => {
            let extra = x.config.variant_parts();
            if extra.is_empty() {
                x.config.strategy.clone()
            } else {
                format!("{} ({})", x.config.strategy, extra.join(", "))
            }
        }
    }
}

/// A configuration's relaxation or window: `δ=0.2`, `λ=2`, `L=16`, or `—`.
pub fn relax_label(x: &Summary) -> String {
    match (x.config.delta, x.config.lambda, x.config.window) {
        (Some(d), _, _) => format!("δ={d}"),
        (_, Some(l), _) => format!("λ={l}"),
        (_, _, Some(w)) => format!("L={w}"),
        _ => "—".into(),
    }
}

/// The hardware disclosure: the machines, backends and builds the records came from.
fn hardware_md(records: &[Record]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for r in records {
        let cpu = if r.cpu.is_empty() {
            "CPU not recorded"
        } else {
            &r.cpu
        };
        let burn = if r.burn.is_empty() { "?" } else { &r.burn };
        let host = if r.host.is_empty() {
            "host not recorded"
        } else {
            &r.host
        };
        let line = format!(
            "{host}: {cpu}, {} threads; burn {burn} backend `{}` ({}), engine {}, {} weights",
            r.threads, r.backend, r.device, r.engine, r.dtype
        );
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    let mut s = String::from("**Hardware.** ");
    if seen.len() == 1 {
        s += &seen[0];
        s += ".\n";
    } else {
        let _ = writeln!(
            s,
            "rows come from {} machine/backend combinations; speedups compare latencies measured on \
             different machines where AR and a method ran on different ones:",
            seen.len()
        );
        for l in seen {
            let _ = writeln!(s, "- {l}");
        }
    }
    s
}

/// Per-image drift from AR (`drift_token_agreement`, `drift_pixel_mse`; null for AR rows and
/// images without an AR twin).
fn add_drift_columns(
    runs: &mut polars::prelude::DataFrame,
    records: &[Record],
    q: &Quality,
) -> polars::prelude::PolarsResult<()> {
    use polars::prelude::*;
    let by_key: std::collections::HashMap<_, _> = q
        .images
        .iter()
        .map(|d| {
            (
                (d.run_id.clone(), d.class, d.prompt, d.seed),
                (d.token_agreement, d.pixel_mse),
            )
        })
        .collect();
    let find = |r: &Record| {
        by_key
            .get(&(r.run_id.clone(), r.class, r.prompt, r.seed))
            .copied()
    };
    let agreement: Vec<Option<f64>> = records.iter().map(|r| find(r).map(|d| d.0)).collect();
    let mse: Vec<Option<f64>> = records.iter().map(|r| find(r).map(|d| d.1)).collect();
    runs.with_column(Column::new("drift_token_agreement".into(), agreement))?;
    runs.with_column(Column::new("drift_pixel_mse".into(), mse))?;
    Ok(())
}

/// Per-image CLIP and HPSv2 scores (`clip_score`, `hps_score`), when the sweep computed them.
fn add_score_columns(
    runs: &mut polars::prelude::DataFrame,
    records: &[Record],
    q: &Quality,
) -> polars::prelude::PolarsResult<()> {
    use polars::prelude::*;
    let by_key: std::collections::HashMap<_, _> = q
        .image_scores
        .iter()
        .map(|s| ((s.run_id.clone(), s.prompt, s.seed), s))
        .collect();
    let column = |f: fn(&crate::quality::ImageScore) -> Option<f64>| -> Vec<Option<f64>> {
        records
            .iter()
            .map(|r| {
                by_key
                    .get(&(r.run_id.clone(), r.prompt, r.seed))
                    .and_then(|s| f(s))
            })
            .collect()
    };
    for (name, values) in [
        ("clip_score", column(|s| s.clip_score)),
        ("hps_score", column(|s| s.hps_score)),
    ] {
        if values.iter().any(Option::is_some) {
            runs.with_column(Column::new(name.into(), values))?;
        }
    }
    Ok(())
}

/// Under greedy decoding exact methods must reproduce AR's tokens: which configurations did.
fn greedy_note(summaries: &[Summary], key: (f64, u32, f64, f64, &str)) -> String {
    let rows: Vec<&Summary> = summaries
        .iter()
        .filter(|x| {
            let c = &x.config;
            (
                c.temperature,
                c.top_k,
                c.top_p,
                c.cfg,
                c.temperature_rule.as_str(),
            ) == key
                && x.equals_ar.is_some()
        })
        .collect();
    if rows.is_empty() {
        return "Greedy: no AR rows at these settings to compare tokens with.\n".into();
    }
    let exact = |x: &Summary| {
        matches!(x.config.strategy.as_str(), "sd" | "sjd" | "scd")
            && x.config.official_compat != Some(true)
    };
    let broken: Vec<String> = rows
        .iter()
        .filter(|x| exact(x) && x.equals_ar != Some(1.0))
        .map(|x| format!("`{}` ({:.0}%)", x.label, 100.0 * x.equals_ar.unwrap_or(0.0)))
        .collect();
    let relaxed: Vec<String> = rows
        .iter()
        .filter(|x| !exact(x))
        .map(|x| format!("`{}` {:.0}%", x.label, 100.0 * x.equals_ar.unwrap_or(0.0)))
        .collect();
    let mut s = if broken.is_empty() {
        "Greedy check: every exact configuration (sd, sjd, scd) produced AR's tokens on every image."
            .to_string()
    } else {
        format!(
            "**Greedy check failed:** exact configurations whose tokens differ from AR's: {} \
             (exact speculative decoding must equal AR under greedy decoding; a backend whose \
             batched and single-token forwards round differently can flip near-ties).",
            broken.join(", ")
        )
    };
    if !relaxed.is_empty() {
        s += &format!(
            " Images equal to AR for the other rows: {}.",
            relaxed.join(", ")
        );
    }
    s + "\n"
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".into(), |v| format!("{v:.digits$}"))
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("—".into(), |v| v.to_string())
}

/// The paper's table shape: method, (k, δ | λ), τ, latency, speedup, quality; one table per
/// sampling setting, after the provenance and before the notes on each column.
pub fn tables_md(
    summaries: &[Summary],
    records: &[Record],
    quality: Option<&Quality>,
    provenance: &Provenance,
) -> String {
    let mut s = preamble(summaries, records, provenance);
    let shown = Shown::of(summaries);
    let mut samplings: Vec<SamplingKey> = Vec::new();
    for x in summaries {
        let key = sampling_key(x);
        if !samplings.contains(&key) {
            samplings.push(key);
        }
    }
    for key in &samplings {
        s += &sampling_table(summaries, *key, &shown);
    }
    s += &regime_table(summaries, &samplings);
    s + &notes(&shown, quality)
}

/// The target's regime per configuration (where recorded): how spread its next-token
/// distribution is after CFG and how often one draft from the drafter would be accepted.
fn regime_table(summaries: &[Summary], samplings: &[SamplingKey]) -> String {
    if summaries.iter().all(|x| x.regime.is_none()) {
        return String::new();
    }
    let mut s = String::from(
        "## Target regime

Means over the rounds of every image (AR: every position; drafted kinds: each round's first drafted position, so on the accepted path) of the target's next-token distribution p after CFG and temperature, and the single-draft acceptance Σ min(p, q) = 1 − TV(p, q) of the drafter's q there (sampled drafts only). Not timed.\n\n| T | top-k | top-p | CFG | method | tree | k | δ / λ | entropy (nats) | top-1 p | top-10 mass | 1 − TV(p, q) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for &key in samplings {
        for x in summaries.iter().filter(|x| sampling_key(x) == key) {
            let Some(r) = x.regime else { continue };
            let (t, k, p, c, _) = key;
            let _ = writeln!(
                s,
                "| {t} | {k} | {p} | {c} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {} |",
                method_label(x),
                opt(x.config.tree.clone()),
                opt(x.config.k),
                relax_label(x),
                r.entropy,
                r.max_p,
                r.top10,
                fmt(r.accept1, 3)
            );
        }
    }
    s + "\n"
}

/// Temperature, top-k, top-p, CFG scale and temperature rule.
type SamplingKey<'a> = (f64, u32, f64, f64, &'a str);

fn sampling_key(x: &Summary) -> SamplingKey<'_> {
    (
        x.config.temperature,
        x.config.top_k,
        x.config.top_p,
        x.config.cfg,
        x.config.temperature_rule.as_str(),
    )
}

/// Which optional columns the tables show (those some configuration has).
struct Shown {
    clip: bool,
    hps: bool,
    pred: bool,
    tvd: bool,
    forwards: bool,
    repeats: bool,
    rss: bool,
}

impl Shown {
    fn of(summaries: &[Summary]) -> Self {
        let any = |f: &dyn Fn(&Summary) -> bool| summaries.iter().any(f);
        Self {
            clip: any(&|x| x.clip_score.is_some()),
            hps: any(&|x| x.hps_score.is_some()),
            pred: any(&|x| x.predicted_speedup.is_some()),
            tvd: any(&|x| x.tvd_emitted.is_some()),
            forwards: any(&|x| {
                matches!(x.config.strategy.as_str(), "sjd" | "scd" | "gsd" | "zipar")
                    || x.drafter_forwards.is_some_and(|d| d > 0.0)
            }),
            repeats: any(&|x| x.latency_repeat_std_ms.is_some()),
            rss: any(&|x| x.peak_rss_mb.is_some()),
        }
    }
}

/// The title, merge provenance, hardware, models and timing protocol of a results folder.
fn preamble(summaries: &[Summary], records: &[Record], provenance: &Provenance) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Results\n");
    if provenance.journals > 1 {
        let _ = writeln!(
            s,
            "Merged from {} journals ({} duplicate images dropped{}).\n",
            provenance.journals,
            provenance.duplicates,
            if provenance.conflicts.is_empty() {
                String::new()
            } else {
                format!(
                    "; **{} conflicting duplicates** (same image, other tokens; the first kept): {}",
                    provenance.conflicts.len(),
                    provenance.conflicts.join("; ")
                )
            }
        );
    }
    if !records.is_empty() {
        let _ = writeln!(s, "{}", hardware_md(records));
    }
    if let Some(r) = records.first() {
        let warmup = r.warmup.map_or("?".into(), |w| w.to_string());
        let repeats = r.latencies_ms.len().max(1);
        let _ = writeln!(
            s,
            "Target `{}` ({}), drafter `{}`; {warmup} warm-up image(s) per configuration, {repeats} timed \
             generation(s) per image; code {}.\n",
            r.gpt_model,
            r.family.as_deref().unwrap_or("llamagen"),
            records
                .iter()
                .find_map(|r| r.drafter_model.as_deref())
                .unwrap_or("—"),
            r.git_commit
        );
    }
    s += &quietness_md(summaries, records);
    if summaries.iter().any(|x| x.drafter_is_random) {
        let _ = writeln!(
            s,
            "**The drafter is untrained (random weights):** acceptance and speedups of `sd`, `lantern` and \
             `lantern++` say nothing about trained drafters; they exercise the machinery.\n"
        );
    }
    s
}

/// How quiet the machine was: images re-timed and still disturbed, median run-queue wait, steal
/// and CPU pressure over the kept timings, and a warning per configuration whose timing is
/// unreliable (more than a tenth of its images stayed disturbed).
fn quietness_md(summaries: &[Summary], records: &[Record]) -> String {
    let measured: Vec<&crate::quiet::Quietness> =
        records.iter().filter_map(|r| r.quiet.as_ref()).collect();
    if measured.is_empty() {
        return String::new();
    }
    let med = |f: &dyn Fn(&crate::quiet::Quietness) -> Option<f64>| {
        let v: Vec<f64> = measured.iter().filter_map(|q| f(q)).collect();
        (!v.is_empty()).then(|| format!("{:.1}%", 100.0 * median(&v)))
    };
    let retimed = records.iter().filter(|r| r.retimed > 0).count();
    let disturbed = records.iter().filter(|r| r.disturbed.is_some()).count();
    let rule = crate::quiet::RULE;
    let mut s = format!(
        "**Machine quietness.** {retimed} of {} timed images ({:.1}%) were re-timed because the machine was disturbed, {disturbed} stayed disturbed after every re-timing allowed (`[timing] retimes`; flagged in runs.parquet: `retimed`, `disturbed`). Medians over the kept timings: run-queue wait of this process's threads {} of wall time, steal {}, CPU pressure {}. Disturbed means: run-queue wait above {:.0}% of wall, steal above {:.0}%, or a latency per target forward above {}× the configuration's median of quiet images (once it has {}).\n\n",
        records.len(),
        100.0 * retimed as f64 / records.len().max(1) as f64,
        med(&|q| q.wait_share()).unwrap_or("—".into()),
        med(&|q| q.steal).unwrap_or("—".into()),
        med(&|q| q.pressure).unwrap_or("—".into()),
        100.0 * rule.max_wait_share,
        100.0 * rule.max_steal,
        rule.max_over_median,
        rule.min_images,
    );
    for x in summaries
        .iter()
        .filter(|x| 10 * x.disturbed_images > x.images)
    {
        let _ = writeln!(
            s,
            "**Unreliable timing:** `{}` — {} of {} images stayed disturbed; its latency and speedup are not to be trusted.\n",
            x.label, x.disturbed_images, x.images
        );
    }
    s
}

/// One sampling setting's table, with the greedy check under temperature 0.
fn sampling_table(summaries: &[Summary], key: SamplingKey, shown: &Shown) -> String {
    let (t, k, p, c, rule) = key;
    let mut s = String::new();
    let score = |on: bool, mean: Option<f64>, ci: Option<f64>| match (on, mean, ci) {
        (false, _, _) => String::new(),
        (true, Some(m), Some(ci)) => format!(" {m:.4} ± {ci:.4} |"),
        (true, _, _) => " — |".into(),
    };
    let temp = if rule == "entropy" {
        format!("entropy-aware temperature (T0 = {t})")
    } else {
        format!("temperature {t}")
    };
    let _ = writeln!(s, "## {temp}, top-k {k}, top-p {p}, CFG {c}\n");
    let _ = writeln!(
        s,
        "| method | tree | k | δ / λ | images | τ (95% CI) |{} latency ms: median [IQR] | latency ms: mean (95% CI{}) | host % |{} speedup by medians [95% CI] |{}{} FD (95% CI) | precision | recall | class score |{}{} tokens = AR | PSNR vs AR (dB) |",
        if shown.forwards { " forwards / image: target, drafter |" } else { "" },
        if shown.repeats { "; ± std over repeats" } else { "" },
        if shown.rss { " peak RSS MiB |" } else { "" },
        if shown.pred { " predicted τ, speedup |" } else { "" },
        if shown.tvd { " emitted TVD (95% CI) |" } else { "" },
        if shown.clip { " CLIP score (95% CI) |" } else { "" },
        if shown.hps { " HPSv2 (95% CI) |" } else { "" }
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|{}---|{}{}{}---|---|---|---|{}{}---|---|",
        if shown.forwards { "---|" } else { "" },
        if shown.rss { "---|" } else { "" },
        if shown.pred { "---|" } else { "" },
        if shown.tvd { "---|" } else { "" },
        if shown.clip { "---|" } else { "" },
        if shown.hps { "---|" } else { "" }
    );
    for x in summaries.iter().filter(|x| sampling_key(x) == key) {
        let (method, relax) = (method_label(x), relax_label(x));
        let predicted = match (shown.pred, x.predicted_tau, x.predicted_speedup) {
            (false, _, _) => String::new(),
            (true, Some(t), Some(v)) => format!(" {t:.2}, {v:.2}× |"),
            (true, _, _) => " — |".into(),
        };
        let tvd = match (shown.tvd, x.tvd_emitted) {
            (false, _) => String::new(),
            (true, Some(e)) => format!(" {:.4} ± {:.4} |", e.mean, e.ci95),
            (true, None) => " — |".into(),
        };
        let _ = writeln!(
            s,
            "| {method} | {} | {} | {relax} | {} | {:.3} ± {:.3} |{} {:.1} [{:.1}, {:.1}] | {:.1} ± {:.1}{} | {:.0} |{} {} |{predicted}{tvd} {} | {} | {} | {} |{}{} {} | {} |",
            opt(x.config.tree.as_deref()),
            opt(x.config.k),
            x.images,
            x.tau.mean,
            x.tau.ci95,
            if shown.forwards {
                format!(
                    " {:.1}, {} |",
                    x.forwards,
                    x.drafter_forwards.map_or("—".into(), |d| format!("{d:.1}"))
                )
            } else {
                String::new()
            },
            x.latency_spread.median,
            x.latency_spread.q1,
            x.latency_spread.q3,
            x.latency_ms.mean,
            x.latency_ms.ci95,
            x.latency_repeat_std_ms
                .map_or(String::new(), |sd| format!(" (± {sd:.1})")),
            100.0 * x.host_share,
            if shown.rss {
                format!(" {} |", fmt(x.peak_rss_mb, 0))
            } else {
                String::new()
            },
            match (x.speedup, x.speedup_ci) {
                (Some(v), Some((lo, hi))) => format!("{v:.2}× [{lo:.2}, {hi:.2}]"),
                (v, _) => v.map_or("—".into(), |v| format!("{v:.2}×")),
            },
            match (x.fd, x.fd_ci95) {
                (Some(f), Some(ci)) => format!("{f:.2} ± {ci:.2}"),
                (f, _) => fmt(f, 2),
            },
            fmt(x.precision, 3),
            fmt(x.recall, 3),
            fmt(x.class_score, 2),
            score(shown.clip, x.clip_score, x.clip_score_ci95),
            score(shown.hps, x.hps_score, x.hps_score_ci95),
            fmt(x.drift_token_agreement, 3),
            fmt(x.drift_psnr_db, 1),
        );
    }
    let _ = writeln!(s);
    if t <= 1e-5 {
        let _ = writeln!(s, "{}", greedy_note(summaries, (t, k, p, c, rule)));
    }
    s
}

/// The notes under the tables: what each column means, and the quality protocol.
fn notes(shown: &Shown, quality: Option<&Quality>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "τ: mean accepted length per target forward after the prefill, bonus token included (AR = 1). \
         Latency: prefill through the last token, one image at a time, warm-up excluded, VQ decoding \
         excluded. Host %: share of the rounds' time (drafting and verification) spent outside model \
         forwards (sampling, trees, acceptance, copies). Latencies are summarised by their median and \
         interquartile range (one stalled image moves a mean, not these); the mean and its 95% CI stand \
         beside them. Speedup: AR's median latency / this configuration's, over the same images and \
         sampling settings, with a percentile-bootstrap 95% interval that resamples the paired images \
         (1000 draws; the ratio of means is `speedup_of_means` in summary.parquet)."
    );
    if shown.forwards {
        let _ = writeln!(
            s,
            "\nForwards / image: target forwards per image, prefill included (AR: one per token), and \
             drafter forwards (root catch-ups and expansions), both counted at the model seam. For \
             ZipAR, τ is tokens per forward (no drafts are verified). Training-free rows: sjd, scd \
             (coupling), gsd (group rule: rank half-window G, probability gap, squared embedding \
             distance below a quantile q of the model's pair distances) with their initialisation."
        );
    }
    if shown.tvd {
        let _ = writeln!(
            s,
            "\nEmitted TVD: per round, the exact total variation distance between the distribution of \
             the token the acceptance rule emits at the first drafted position (summed over the drafts' \
             draw, every acceptance test and the residual sample) and the target distribution there; \
             mean over rounds per image, then mean ± 95% CI over images. 0 for exact speculative \
             sampling; LANTERN's δ bounds one candidate's relaxed target, not this; the bounded rule \
             keeps it ≤ δ. For GSD: at the first window position, over its draft (fixed, or drawn \
             from the recorded proposal), the group test and the residual. Not computed (—) for \
             several sampled siblings at the root (exponential), greedy rounds, lossless Jacobi \
             rules and ZipAR (whose lower-row tokens have no single target to compare with); not \
             included in any timing."
        );
    }
    if shown.pred {
        let _ = writeln!(
            s,
            "\nPredicted: the tree cost model behind `tree = \"auto\"` (for every tree of an acceptance rule \
             that has an auto configuration), from the step costs measured in this sweep \
             (`verify_cost.json`) and pilot rounds replayed on each tree; `auto.json` lists every \
             candidate it weighed, `predicted_vs_measured.png` compares it with the measurement."
        );
    }
    match quality {
        Some(q) => {
            let extractor = q.extractor.as_deref().unwrap_or("—");
            let inception = extractor.starts_with("inception-v3-fid");
            let space = if inception {
                let resize = if extractor.ends_with(":pytorch-fid") {
                    "resized bilinearly to 299 as pytorch-fid does"
                } else {
                    "quantised to 8 bits and resized to 299 by Pillow's bicubic filter as clean-fid does"
                };
                format!(
                    "pool3 features of the FID Inception-v3 (`{extractor}`: `pt_inception-2015-12-05`, \
                     images {resize}), so FD is FID here — comparable with other FIDs only at the same \
                     reference set, image count and resize"
                )
            } else {
                format!(
                    "the feature space of `{extractor}` — not FID, which is defined on Inception-v3 features"
                )
            };
            let class = if inception {
                "the Inception Score (softmax of the unbiased 1008-way logits, as the original IS code)"
            } else {
                "the Inception-Score formula exp E KL(p(y|x) ‖ p(y)) over that extractor's classifier \
                 (an IS only for Inception; empty when the extractor does not classify)"
            };
            let pr_space = match q.pr_space() {
                Some(x) if Some(x) != q.extractor.as_deref() => {
                    format!(" in the feature space of `{x}`")
                }
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "\nQuality (`quality.json`): FD is the Fréchet distance between each configuration's images and \
                 {} reference images ({}) in {space} (± a bootstrap 95% half-width over the configuration's images, \
                 the reference fixed: differences inside it are noise); precision/recall are the improved k-NN metrics with \
                 k = {}{pr_space}; the class score is {class}. \
                 \"tokens = AR\" is the share of tokens equal to the AR image at the same condition and seed, and \
                 PSNR compares the decoded pixels with that AR image: cheap proxies of drift, not quality.",
                q.reference_images,
                q.reference.as_deref().unwrap_or("no reference set: drift only"),
                q.k
            );
            if let Some(model) = &q.clip_model {
                let _ = writeln!(
                    s,
                    "\nCLIP score: mean raw cosine between each image and \"A photo depicts \" + its caption \
                     in `{model}` (not scaled by 100 or 2.5; LANTERN's protocol uses OpenAI's ViT-B/32)."
                );
            }
            if let Some(model) = &q.hps_model {
                let _ = writeln!(
                    s,
                    "\nHPSv2: mean cosine between each image and its bare caption in `{model}`, images \
                     preprocessed as HPSv2's own code does (longest side to 224, zero padding)."
                );
            }
        }
        None => {
            let _ = writeln!(
                s,
                "\nQuality: not computed (no tokenizer, or `[quality] enabled = false`)."
            );
        }
    }
    s
}
