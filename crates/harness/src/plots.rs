//! Plots (PNG and SVG): τ vs δ per k, τ vs k per δ, speedup vs τ per method, and where in the
//! token grid drafts are accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::records::Record;
use crate::summary::Summary;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn io<E: std::fmt::Display>(e: E) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Series colours (matplotlib's tab10, then navy, amber, teal, maroon and two light tints): 16
/// series get distinct colours (the training-free figure draws 13).
const PALETTE: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
    RGBColor(0, 0, 128),
    RGBColor(255, 187, 0),
    RGBColor(0, 128, 128),
    RGBColor(128, 0, 0),
    RGBColor(152, 223, 138),
    RGBColor(174, 199, 232),
];

/// A line chart: one labelled series of (x, y) points per entry.
struct Lines<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    log_x: bool,
    series: Vec<(String, Vec<(f64, f64)>)>,
    /// Text drawn next to individual points (e.g. `δ=0.1`).
    labels: Vec<(f64, f64, String)>,
    /// Error bars: per series, per point, the 95% half-widths `(dx, dy)` (none: no bars).
    bars: Vec<Vec<(f64, f64)>>,
    /// Points only, no connecting lines (a predicted-vs-measured plot).
    scatter: bool,
    /// A grey diagonal y = x with this legend entry.
    diagonal: Option<&'a str>,
    /// Series names in palette order, shared by the panels of one figure so that a series keeps
    /// its colour in each (empty: the series' own order).
    palette_order: Vec<String>,
}

/// The error bar of series `i`, point `j` (zero when there is none).
fn bar(bars: &[Vec<(f64, f64)>], i: usize, j: usize) -> (f64, f64) {
    bars.get(i)
        .and_then(|b| b.get(j))
        .copied()
        .unwrap_or((0.0, 0.0))
}

/// The corner of the plot with the fewest points and point labels, for the
/// legend.
fn emptiest_corner(c: &Lines, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> SeriesLabelPosition {
    let fx = |x: f64| {
        if c.log_x {
            (x.ln() - x0.ln()) / (x1.ln() - x0.ln())
        } else {
            (x - x0) / (x1 - x0)
        }
    };
    let mut counts = [0usize; 4];
    let points = c.series.iter().flat_map(|s| s.1.iter().copied());
    for (x, y) in points.chain(c.labels.iter().map(|l| (l.0, l.1))) {
        let (u, v) = (fx(x), (y - y0) / (y1 - y0));
        // Legends take about the outer 40% of each axis.
        let left = u < 0.4;
        let right = u > 0.6;
        let low = v < 0.4;
        let high = v > 0.6;
        for (i, hit) in [high && left, high && right, low && left, low && right]
            .into_iter()
            .enumerate()
        {
            counts[i] += usize::from(hit);
        }
    }
    let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    [
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::LowerLeft,
        SeriesLabelPosition::LowerRight,
    ][best]
        .clone()
}

fn bounds(c: &Lines) -> ((f64, f64), (f64, f64)) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (i, (_, pts)) in c.series.iter().enumerate() {
        for (j, &(x, y)) in pts.iter().enumerate() {
            let (dx, dy) = bar(&c.bars, i, j);
            x0 = x0.min(x - dx);
            x1 = x1.max(x + dx);
            y0 = y0.min(y - dy);
            y1 = y1.max(y + dy);
        }
    }
    let log_x = c.log_x;
    // Point labels are drawn to the right of their points: leave room for them.
    let label_room = if c.labels.is_empty() { 1.0 } else { 2.0 };
    let xr = if log_x {
        (x0 / 1.5, x1 * 1.5f64.powf(label_room))
    } else {
        let pad = ((x1 - x0) * 0.08).max(0.05);
        (x0 - pad, x1 + pad * label_room)
    };
    let pad = ((y1 - y0) * 0.1).max(0.05);
    (xr, (y0 - pad, y1 + pad))
}

fn draw_lines<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &Lines) -> std::io::Result<()> {
    root.fill(&WHITE).map_err(io)?;
    let ((x0, x1), (y0, y1)) = bounds(c);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(c.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(c.x_desc)
                .y_desc(c.y_desc)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(io)?;
            if let Some(name) = c.diagonal {
                let (lo, hi) = (x0.max(y0), x1.min(y1));
                chart
                    .draw_series(LineSeries::new(
                        [(lo, lo), (hi, hi)],
                        BLACK.mix(0.5).stroke_width(1),
                    ))
                    .map_err(io)?
                    .label(name)
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.mix(0.5)));
            }
            let seg = if c.scatter { 0 } else { 18 };
            for (i, (name, pts)) in c.series.iter().enumerate() {
                let slot = c.palette_order.iter().position(|n| n == name);
                let color = PALETTE[slot.unwrap_or(i) % PALETTE.len()];
                let line = if c.scatter { Vec::new() } else { pts.clone() };
                chart
                    .draw_series(LineSeries::new(line, color.stroke_width(2)))
                    .map_err(io)?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (seg, 0)], color.stroke_width(2))
                            + Circle::new((9, 0), 4, color.filled())
                    });
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(io)?;
                let whiskers = pts.iter().enumerate().flat_map(|(j, &(x, y))| {
                    let (dx, dy) = bar(&c.bars, i, j);
                    [
                        ((x - dx, y), (x + dx, y), dx > 0.0),
                        ((x, y - dy), (x, y + dy), dy > 0.0),
                    ]
                });
                chart
                    .draw_series(whiskers.filter(|w| w.2).map(|(a, b, _)| {
                        PathElement::new(vec![a, b], color.mix(0.7).stroke_width(2))
                    }))
                    .map_err(io)?;
            }
            chart
                .draw_series(c.labels.iter().map(|(x, y, t)| {
                    Text::new(t.clone(), (*x, *y), ("sans-serif", 12).into_font())
                }))
                .map_err(io)?;
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .position(emptiest_corner(c, (x0, x1), (y0, y1)))
                .draw()
                .map_err(io)?;
        }};
    }
    if c.log_x {
        body!(builder
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(io)?);
    } else {
        body!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(io)?);
    }
    root.present().map_err(io)
}

/// An axis label as people write it: `10`, `1000`, `0.25`, `2.5` (no `10.0`, no float noise).
pub fn tick(v: f64) -> String {
    if v.is_finite() && (v - v.round()).abs() < 1e-9 * v.abs().max(1.0) {
        return format!("{}", v.round() as i64);
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Where plots go: `<stem>.png` always, `<stem>.svg` beside it on request (`lantern report
/// --svg`; the PNGs are what the committed results carry).
#[derive(Clone, Copy, Debug)]
pub struct PlotDir<'a> {
    /// The results folder.
    pub dir: &'a Path,
    /// Also write SVG.
    pub svg: bool,
}

impl PlotDir<'_> {
    fn png(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.png"))
    }

    fn svg(&self, stem: &str) -> Option<PathBuf> {
        self.svg.then(|| self.dir.join(format!("{stem}.svg")))
    }
}

fn save_lines(out: PlotDir, stem: &str, chart: &Lines) -> std::io::Result<()> {
    save_panels(out, stem, &[chart])
}

/// Charts side by side in one figure (the empty ones left out; nothing written if all are).
fn save_panels(out: PlotDir, stem: &str, charts: &[&Lines]) -> std::io::Result<()> {
    let charts: Vec<&Lines> = charts
        .iter()
        .copied()
        .filter(|c| c.series.iter().any(|s| !s.1.is_empty()))
        .collect();
    if charts.is_empty() {
        return Ok(());
    }
    let size = (820 * charts.len() as u32, 520);
    draw_panels(
        BitMapBackend::new(&out.png(stem), size).into_drawing_area(),
        &charts,
    )?;
    crate::images::compact_png(&out.png(stem))?;
    match out.svg(stem) {
        Some(svg) => draw_panels(SVGBackend::new(&svg, size).into_drawing_area(), &charts),
        None => Ok(()),
    }
}

fn draw_panels<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    charts: &[&Lines],
) -> std::io::Result<()> {
    for (area, chart) in root.split_evenly((1, charts.len())).iter().zip(charts) {
        draw_lines(area, chart)?;
    }
    root.present().map_err(io)
}

/// A LANTERN configuration's rule for curve names (empty for the paper's principled rule), and
/// the temperature rule when entropy-aware.
fn rule_suffix(s: &Summary) -> String {
    let rule = match (s.config.relax.as_deref(), s.config.official_compat) {
        (Some(r), _) => format!(" {r}"),
        (None, Some(true)) => " official".into(),
        _ => String::new(),
    };
    if s.config.temperature_rule == "entropy" {
        rule + " entropy-T"
    } else {
        rule
    }
}

/// A configuration's curve name apart from what the curve traces: the strategy with its
/// variant ([`crate::columns::Config::variant_parts`]), and the temperature rule when
/// entropy-aware.
fn variant(s: &Summary) -> String {
    let mut name = s.config.strategy.clone();
    for v in s.config.variant_parts() {
        name += &format!(" {v}");
    }
    if s.config.temperature_rule == "entropy" {
        name += " entropy-T";
    }
    name
}

/// Fraction of images in which the token at each grid cell was an accepted draft.
pub fn acceptance_map(records: &[&Record]) -> Vec<f64> {
    let n = records.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
    let mut hits = vec![0.0; n];
    for r in records {
        let mut mask = vec![false];
        for &a in &r.accepted_per_step {
            mask.extend(std::iter::repeat_n(true, a as usize));
            mask.push(false);
        }
        for (i, m) in mask.iter().take(n).enumerate() {
            if *m {
                hits[i] += 1.0;
            }
        }
    }
    hits.iter()
        .map(|h| h / records.len().max(1) as f64)
        .collect()
}

/// The heatmap colour of a share in [0, 1] (dark purple → yellow).
fn heat(v: f64) -> RGBColor {
    let shade = |a: f64, b: f64| (a + (b - a) * v.clamp(0.0, 1.0)) as u8;
    RGBColor(shade(68.0, 253.0), shade(1.0, 231.0), shade(84.0, 37.0))
}

/// A grid heatmap with row 0 at the top, rows and columns labelled at their centres, and a
/// colour bar.
fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    map: &[f64],
) -> std::io::Result<()> {
    root.fill(&WHITE).map_err(io)?;
    let grid = (map.len() as f64).sqrt().round() as usize;
    let (w, _) = root.dim_in_pixel();
    let (main, side) = root.split_horizontally(w.saturating_sub(90));
    let g = grid as f64;
    let mut chart = ChartBuilder::on(&main)
        .caption(title, ("sans-serif", 14))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..g, 0.0..g)
        .map_err(io)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_desc("column")
        .y_desc("row")
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(io)?;
    chart
        .draw_series(map.iter().enumerate().map(|(i, &v)| {
            let (r, c) = ((i / grid) as f64, (i % grid) as f64);
            Rectangle::new([(c, g - 1.0 - r), (c + 1.0, g - r)], heat(v).filled())
        }))
        .map_err(io)?;
    // Tick labels at cell centres: row r is drawn r cells below the top.
    let step = (grid / 8).max(1);
    let style = ("sans-serif", 12).into_font().color(&BLACK);
    let last = (!(grid - 1).is_multiple_of(step)).then_some(grid - 1);
    for i in (0..grid).step_by(step).chain(last) {
        let (x, y) = chart.backend_coord(&(0.0, g - i as f64 - 0.5));
        main.draw(&Text::new(format!("{i}"), (x - 22, y - 6), style.clone()))
            .map_err(io)?;
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        main.draw(&Text::new(format!("{i}"), (x - 4, y + 4), style.clone()))
            .map_err(io)?;
    }
    // Colour bar.
    let mut bar = ChartBuilder::on(&side)
        .margin_top(40)
        .margin_bottom(48)
        .margin_right(8)
        .y_label_area_size(36)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(io)?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(io)?;
    bar.draw_series((0..100).map(|i| {
        let (lo, hi) = (i as f64 / 100.0, (i + 1) as f64 / 100.0);
        Rectangle::new([(0.0, lo), (1.0, hi)], heat((lo + hi) / 2.0).filled())
    }))
    .map_err(io)?;
    root.present().map_err(io)
}

/// Per configuration, the share of rounds that emitted each number of tokens (accepted drafts +
/// the bonus): `(label, shares[len - 1])`.
pub fn accepted_lengths(
    summaries: &[Summary],
    records: &[Record],
    kind: &str,
) -> Vec<(String, Vec<f64>)> {
    summaries
        .iter()
        .filter(|s| s.config.strategy == kind)
        .filter_map(|s| {
            let mut counts: Vec<f64> = Vec::new();
            for r in records.iter().filter(|r| r.run_id == s.run_id) {
                for &a in &r.accepted_per_step {
                    let len = a as usize + 1;
                    if counts.len() < len {
                        counts.resize(len, 0.0);
                    }
                    counts[len - 1] += 1.0;
                }
            }
            let total: f64 = counts.iter().sum();
            (total > 0.0).then(|| (s.label.clone(), counts.iter().map(|c| c / total).collect()))
        })
        .collect()
}

/// Small multiples: one histogram of accepted lengths per configuration.
fn draw_histograms<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[(String, Vec<f64>)],
    cols: usize,
) -> std::io::Result<()> {
    root.fill(&WHITE).map_err(io)?;
    let root = root.titled(title, ("sans-serif", 16)).map_err(io)?;
    let rows = panels.len().div_ceil(cols);
    let max_len = panels.iter().map(|p| p.1.len()).max().unwrap_or(1);
    let y_max = panels
        .iter()
        .flat_map(|p| p.1.iter().copied())
        .fold(0.0f64, f64::max)
        .max(0.05)
        * 1.1;
    for ((label, shares), area) in panels.iter().zip(root.split_evenly((rows, cols))) {
        let mut chart = ChartBuilder::on(&area)
            .caption(label, ("sans-serif", 12))
            .margin(6)
            .x_label_area_size(28)
            .y_label_area_size(36)
            .build_cartesian_2d(0.5..max_len as f64 + 0.5, 0.0..y_max)
            .map_err(io)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(max_len.min(10))
            .x_label_formatter(&|x| format!("{}", x.round() as i64))
            .y_labels(4)
            .y_label_formatter(&|y| format!("{y:.2}"))
            .x_desc("tokens per target forward")
            .label_style(("sans-serif", 10))
            .axis_desc_style(("sans-serif", 10))
            .draw()
            .map_err(io)?;
        chart
            .draw_series(shares.iter().enumerate().map(|(i, &v)| {
                let x = (i + 1) as f64;
                Rectangle::new([(x - 0.4, 0.0), (x + 0.4, v)], PALETTE[0].filled())
            }))
            .map_err(io)?;
    }
    root.present().map_err(io)
}

/// Writes every plot that the data supports.
pub fn write_all(out: PlotDir, summaries: &[Summary], records: &[Record]) -> std::io::Result<()> {
    register_font();
    lantern_curves(out, summaries)?;
    speedup_vs_tau(out, summaries)?;
    tvd_vs_delta(out, summaries)?;
    predicted_vs_measured(out, summaries)?;
    speed_quality(out, summaries)?;
    tau_vs_entropy(out, summaries)?;
    acceptance(out, summaries, records)?;
    Ok(())
}

/// The LANTERN configurations' summaries.
fn lantern_rows(summaries: &[Summary]) -> Vec<&Summary> {
    summaries
        .iter()
        .filter(|s| s.config.strategy == "lantern")
        .collect()
}

/// Points `(x, y, 95% half-width)` of one curve.
type Curve = Vec<(f64, f64, f64)>;
/// Named point series of a chart.
type Series = Vec<(String, Vec<(f64, f64)>)>;
/// Per series, per point, the `(dx, dy)` error bars.
type Bars = Vec<Vec<(f64, f64)>>;

/// The series (each sorted by x) and error bars of named curves; the half-width is y's when
/// `y_bars`, else x's.
fn series_and_bars(curves: BTreeMap<String, Curve>, y_bars: bool) -> (Series, Bars) {
    let mut series = Vec::new();
    let mut bars = Vec::new();
    for (name, mut v) in curves {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        series.push((name, v.iter().map(|p| (p.0, p.1)).collect()));
        bars.push(
            v.iter()
                .map(|p| if y_bars { (0.0, p.2) } else { (p.2, 0.0) })
                .collect(),
        );
    }
    (series, bars)
}

/// Points in x order.
fn sorted(mut v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// LANTERN's τ against δ (a line per k and rule) and against k (a line per δ).
fn lantern_curves(out: PlotDir, summaries: &[Summary]) -> std::io::Result<()> {
    let lantern = lantern_rows(summaries);
    // τ vs δ, one line per k (rule, tree); τ vs k, one line per δ (tree); 95% CIs over images.
    type Curves = BTreeMap<String, Curve>;
    let (mut by_k, mut by_delta): (Curves, Curves) = Default::default();
    for s in &lantern {
        if let (Some(k), Some(d)) = (s.config.k, s.config.delta) {
            let tree = s.config.tree.as_deref().unwrap_or("");
            let point = |x: f64| (x, s.tau.mean, s.tau.ci95);
            by_k.entry(format!("k={k}{} {tree}", rule_suffix(s)))
                .or_default()
                .push(point(d));
            by_delta
                .entry(format!("δ={d}{} {tree}", rule_suffix(s)))
                .or_default()
                .push(point(k as f64));
        }
    }
    let chart = |title, x_desc, log_x, curves: Curves| {
        let (series, bars) = series_and_bars(curves, true);
        Lines {
            palette_order: Vec::new(),
            title,
            x_desc,
            y_desc: "τ (tokens per target forward; ± 95% CI)",
            log_x,
            series,
            labels: Vec::new(),
            bars,
            scatter: false,
            diagonal: None,
        }
    };
    let vs_delta = chart(
        "LANTERN: accepted length vs δ",
        "δ (TVD budget)",
        false,
        by_k,
    );
    save_lines(out, "tau_vs_delta", &vs_delta)?;
    let vs_k = chart(
        "LANTERN: accepted length vs k",
        "k (latent neighbours)",
        true,
        by_delta,
    );
    save_lines(out, "tau_vs_k", &vs_k)
}

/// τ against the target's mean next-token entropy after CFG (AR's, at each sampling setting), a
/// curve per configuration: how much drafting gains as the target spreads out (± 95% CI of τ).
/// Drawn when two or more sampling settings carry AR's regime (e.g. a temperature axis).
fn tau_vs_entropy(out: PlotDir, summaries: &[Summary]) -> std::io::Result<()> {
    let same_sampling = |a: &Summary, b: &Summary| {
        let (x, y) = (&a.config, &b.config);
        (x.temperature, x.top_k, x.top_p, x.cfg, &x.temperature_rule)
            == (y.temperature, y.top_k, y.top_p, y.cfg, &y.temperature_rule)
    };
    let ar: Vec<&Summary> = summaries
        .iter()
        .filter(|s| s.config.strategy == "ar" && s.regime.is_some())
        .collect();
    if ar.len() < 2 {
        return Ok(());
    }
    let mut curves: BTreeMap<String, Curve> = BTreeMap::new();
    for s in summaries.iter().filter(|s| s.config.strategy != "ar") {
        let entropy = ar
            .iter()
            .find(|a| same_sampling(a, s))
            .and_then(|a| a.regime)
            .map(|r| r.entropy);
        if let Some(h) = entropy {
            curves
                .entry(s.label.clone())
                .or_default()
                .push((h, s.tau.mean, s.tau.ci95));
        }
    }
    let (series, bars) = series_and_bars(curves, true);
    save_lines(
        out,
        "tau_vs_entropy",
        &Lines {
            palette_order: Vec::new(),
            title: "Accepted length vs the target's entropy (AR's, after CFG)",
            x_desc: "mean next-token entropy of the target (nats)",
            y_desc: "τ (tokens per target forward; ± 95% CI)",
            log_x: false,
            series,
            labels: Vec::new(),
            bars,
            scatter: false,
            diagonal: None,
        },
    )
}

/// Speedup against τ per method (the speed axis of the speed–quality plot).
fn speedup_vs_tau(out: PlotDir, summaries: &[Summary]) -> std::io::Result<()> {
    // Speedup vs τ per method (the speed axis of the speed–quality plot).
    let mut by_method: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in summaries.iter().filter(|s| s.config.strategy != "ar") {
        if let Some(sp) = s.speedup {
            by_method
                .entry(variant(s))
                .or_default()
                .push((s.tau.mean, sp));
        }
    }
    save_lines(
        out,
        "speedup_vs_tau",
        &Lines {
            palette_order: Vec::new(),
            title: "Speedup over AR vs accepted length",
            x_desc: "τ",
            y_desc: "speedup (×)",
            log_x: false,
            series: by_method.into_iter().map(|(m, v)| (m, sorted(v))).collect(),
            labels: Vec::new(),
            bars: Vec::new(),
            scatter: false,
            diagonal: None,
        },
    )?;
    Ok(())
}

/// What δ really costs: the exact emitted TVD against δ, per rule and k, beside the line y = δ.
fn tvd_vs_delta(out: PlotDir, summaries: &[Summary]) -> std::io::Result<()> {
    let lantern = lantern_rows(summaries);
    // What δ really costs: the exact emitted TVD against δ, per rule and k, beside the line y = δ.
    let mut tvd_curves: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for s in &lantern {
        if let (Some(k), Some(d), Some(t)) = (s.config.k, s.config.delta, s.tvd_emitted) {
            let tree = s.config.tree.as_deref().unwrap_or("");
            tvd_curves
                .entry(format!("k={k}{} {tree}", rule_suffix(s)))
                .or_default()
                .push((d, t.mean, t.ci95));
        }
    }
    if !tvd_curves.is_empty() {
        for v in tvd_curves.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        let mut bars = Vec::new();
        for (name, v) in &tvd_curves {
            series.push((name.clone(), v.iter().map(|p| (p.0, p.1)).collect()));
            bars.push(v.iter().map(|p| (0.0, p.2)).collect());
        }
        save_lines(
            out,
            "tvd_vs_delta",
            &Lines {
                palette_order: Vec::new(),
                title: "What δ costs: emitted-vs-target TVD at the first draft (± 95% CI)",
                x_desc: "δ (TVD budget)",
                y_desc: "emitted TVD",
                log_x: false,
                series,
                labels: Vec::new(),
                bars,
                scatter: false,
                diagonal: Some("y = δ (the bounded rule's guarantee)"),
            },
        )?;
    }
    Ok(())
}

/// The tree cost model against the measurement, per method.
fn predicted_vs_measured(out: PlotDir, summaries: &[Summary]) -> std::io::Result<()> {
    // The tree cost model against the measurement, per method.
    let mut predicted: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut predicted_labels = Vec::new();
    for s in summaries {
        if let (Some(p), Some(m)) = (s.predicted_speedup, s.speedup) {
            predicted
                .entry(s.config.strategy.clone())
                .or_default()
                .push((p, m));
            let tree = s.config.tree.as_deref().unwrap_or("");
            predicted_labels.push((p, m, format!(" {tree}")));
        }
    }
    save_lines(
        out,
        "predicted_vs_measured",
        &Lines {
            palette_order: Vec::new(),
            title: "Tree cost model: predicted vs measured speedup over AR",
            x_desc: "predicted speedup (×)",
            y_desc: "measured speedup (×)",
            log_x: false,
            series: predicted.into_iter().collect(),
            labels: predicted_labels,
            bars: Vec::new(),
            scatter: true,
            diagonal: Some("prediction = measurement"),
        },
    )?;
    Ok(())
}

/// Speed–quality: speedup against the Fréchet distance per method, and LANTERN's quality cost of δ.
fn speed_quality(out: PlotDir, summaries: &[Summary]) -> std::io::Result<()> {
    let lantern = lantern_rows(summaries);
    // Speed–quality: speedup against the Fréchet distance (lower is better), per method, and the
    // LANTERN quality cost of δ, when quality was computed.
    let extractor = summaries.iter().find_map(|s| s.extractor.clone());
    if let Some(x) = extractor {
        let mut speed_quality: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let mut fd_bars: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let mut labels = Vec::new();
        for s in summaries.iter().filter(|s| s.config.strategy != "ar") {
            if let (Some(fd), Some(sp)) = (s.fd, s.speedup) {
                let curve = trade_off_curve(s);
                speed_quality
                    .entry(curve.clone())
                    .or_default()
                    .push((fd, sp));
                fd_bars
                    .entry(curve)
                    .or_default()
                    .push((s.fd_ci95.unwrap_or(0.0), 0.0));
                let param = match (s.config.k, s.config.delta, s.config.lambda, s.config.window) {
                    (Some(_), Some(d), _, _) => format!("δ={d}"),
                    (Some(_), _, Some(l), _) => format!("λ={l}"),
                    (_, _, _, Some(w)) => format!("L={w}"),
                    _ => s.config.tree.clone().unwrap_or_default(),
                };
                labels.push((fd, sp, format!(" {}{param}", sampling_tag(summaries, s))));
            }
        }
        // AR at each sampling setting (speedup 1 by definition), labelled when settings differ.
        for ar in summaries.iter().filter(|s| s.config.strategy == "ar") {
            if let Some(fd) = ar.fd {
                speed_quality
                    .entry("ar".into())
                    .or_default()
                    .push((fd, 1.0));
                fd_bars
                    .entry("ar".into())
                    .or_default()
                    .push((ar.fd_ci95.unwrap_or(0.0), 0.0));
                let tag = sampling_tag(summaries, ar);
                if !tag.is_empty() {
                    labels.push((fd, 1.0, format!(" {}", tag.trim_end())));
                }
            }
        }
        // Bars in the series' (name) order.
        let bars = speed_quality.keys().map(|k| fd_bars[k].clone()).collect();
        let x_desc = format!("FD ({x}; lower is better)");
        let mut fd_panel = Lines {
            palette_order: Vec::new(),
            title: "Speedup over AR vs Fréchet distance (± 95% CI)",
            x_desc: &x_desc,
            y_desc: "speedup (×)",
            log_x: false,
            // Points stay in configuration order (δ, k, λ ascending), tracing the trade-off curve.
            series: speed_quality.into_iter().collect(),
            labels,
            bars,
            scatter: false,
            diagonal: None,
        };
        let mut tvd_panel = speedup_vs_tvd_panel(summaries);
        // One colour per series across both panels.
        let names: BTreeSet<String> = (fd_panel.series.iter())
            .chain(&tvd_panel.series)
            .map(|(name, _)| name.clone())
            .collect();
        fd_panel.palette_order = names.iter().cloned().collect();
        tvd_panel.palette_order = fd_panel.palette_order.clone();
        save_panels(out, "speedup_vs_fd", &[&fd_panel, &tvd_panel])?;
        let mut fd_by_k: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
        for s in &lantern {
            if let (Some(k), Some(d), Some(fd)) = (s.config.k, s.config.delta, s.fd) {
                let ci = s.fd_ci95.unwrap_or(0.0);
                fd_by_k
                    .entry(format!("k={k}{}", rule_suffix(s)))
                    .or_default()
                    .push((d, fd, ci));
            }
        }
        for v in fd_by_k.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let y_desc = format!("FD ({x})");
        save_lines(
            out,
            "fd_vs_delta",
            &Lines {
                palette_order: Vec::new(),
                title: "LANTERN: Fréchet distance vs δ (± 95% CI)",
                x_desc: "δ (TVD budget)",
                y_desc: &y_desc,
                log_x: false,
                series: fd_by_k
                    .iter()
                    .map(|(k, v)| (k.clone(), v.iter().map(|p| (p.0, p.1)).collect()))
                    .collect(),
                labels: Vec::new(),
                bars: fd_by_k
                    .values()
                    .map(|v| v.iter().map(|p| (0.0, p.2)).collect())
                    .collect(),
                scatter: false,
                diagonal: None,
            },
        )?;
    }
    Ok(())
}

/// The sampling settings that differ between `summaries` (temperature, top-k, top-p, CFG) at
/// `s`, as a point label's prefix ("T=0.5 "); empty when every summary samples alike.
fn sampling_tag(summaries: &[Summary], s: &Summary) -> String {
    type Field = fn(&Summary) -> String;
    let fields: [(&str, Field); 4] = [
        ("T", |s| s.config.temperature.to_string()),
        ("top-k", |s| s.config.top_k.to_string()),
        ("top-p", |s| s.config.top_p.to_string()),
        ("CFG", |s| s.config.cfg.to_string()),
    ];
    fields
        .iter()
        .filter(|(_, f)| summaries.iter().any(|o| f(o) != f(s)))
        .map(|(name, f)| format!("{name}={} ", f(s)))
        .collect()
}

/// The curve a configuration belongs to in the speed–quality figure: one per method and k (and
/// tree), traced along δ or λ; other kinds by their variant (and tree: exact SD on two trees is
/// two points, not a line).
fn trade_off_curve(s: &Summary) -> String {
    match s.config.k {
        Some(k) => format!(
            "{} k={k}{} {}",
            s.config.strategy,
            rule_suffix(s),
            s.config.tree.as_deref().unwrap_or("")
        ),
        None => match &s.config.tree {
            Some(tree) => format!("{} {tree}", variant(s)),
            None => variant(s),
        },
    }
}

/// The second panel of the speed–quality figure: speedup against the exact emitted TVD (0 for
/// the lossless rules), a curve per method, k and tree, ± 95% CI over images.
fn speedup_vs_tvd_panel(summaries: &[Summary]) -> Lines<'static> {
    let mut curves: BTreeMap<String, Curve> = BTreeMap::new();
    for s in summaries {
        if let (Some(t), Some(sp)) = (s.tvd_emitted, s.speedup) {
            curves
                .entry(trade_off_curve(s))
                .or_default()
                .push((t.mean, sp, t.ci95));
        }
    }
    let (series, bars) = series_and_bars(curves, false);
    Lines {
        palette_order: Vec::new(),
        title: "Speedup over AR vs emitted TVD (exact; ± 95% CI)",
        x_desc: "emitted TVD at the first drafted position (0 = lossless)",
        y_desc: "speedup (×)",
        log_x: false,
        bars,
        series,
        labels: Vec::new(),
        scatter: false,
        diagonal: None,
    }
}

/// Where drafts are accepted and how many tokens each round emits, per speculative strategy kind.
fn acceptance(out: PlotDir, summaries: &[Summary], records: &[Record]) -> std::io::Result<()> {
    // Where drafts are accepted, per speculative strategy kind (not ZipAR: it verifies nothing).
    for kind in ["sd", "lantern", "lantern++", "sjd", "scd", "gsd"] {
        let rs: Vec<&Record> = records
            .iter()
            .filter(|r| r.config.strategy == kind)
            .collect();
        if rs.is_empty() {
            continue;
        }
        let map = acceptance_map(&rs);
        let title = format!("{kind}: share of images where a cell was an accepted draft");
        let stem = format!("acceptance_{}", kind.replace("++", "_pp"));
        draw_heatmap(
            &BitMapBackend::new(&out.png(&stem), (640, 560)).into_drawing_area(),
            &title,
            &map,
        )?;
        crate::images::compact_png(&out.png(&stem))?;
        if let Some(svg) = out.svg(&stem) {
            draw_heatmap(
                &SVGBackend::new(&svg, (640, 560)).into_drawing_area(),
                &title,
                &map,
            )?;
        }

        // How many tokens each round emitted, per configuration.
        let panels = accepted_lengths(summaries, records, kind);
        if panels.is_empty() {
            continue;
        }
        let cols = panels.len().clamp(1, 4);
        let size = (
            300 * cols as u32,
            40 + 210 * panels.len().div_ceil(cols) as u32,
        );
        let title = format!("{kind}: tokens per target forward (share of rounds)");
        let stem = format!("accepted_length_{}", kind.replace("++", "_pp"));
        draw_histograms(
            &BitMapBackend::new(&out.png(&stem), size).into_drawing_area(),
            &title,
            &panels,
            cols,
        )?;
        crate::images::compact_png(&out.png(&stem))?;
        if let Some(svg) = out.svg(&stem) {
            draw_histograms(
                &SVGBackend::new(&svg, size).into_drawing_area(),
                &title,
                &panels,
                cols,
            )?;
        }
    }
    Ok(())
}

/// Plots columns of a training log CSV (first column = step) against the step, writing
/// `<stem>.png` next to it; returns false when the CSV is missing.
pub fn training_curve(
    csv: &Path,
    columns: &[&str],
    title: &str,
    stem: &str,
) -> std::io::Result<bool> {
    register_font();
    let Ok(text) = std::fs::read_to_string(csv) else {
        return Ok(false);
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for name in columns {
        let Some(c) = header.iter().position(|h| h == name) else {
            return Err(std::io::Error::other(format!(
                "{}: no column {name}",
                csv.display()
            )));
        };
        let points = text
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                Some((f.first()?.parse().ok()?, f.get(c)?.parse().ok()?))
            })
            .collect();
        series.push((name.to_string(), points));
    }
    let dir = csv.parent().unwrap_or(Path::new("."));
    save_lines(
        PlotDir { dir, svg: false },
        stem,
        &Lines {
            palette_order: Vec::new(),
            title,
            x_desc: "step",
            y_desc: "loss",
            log_x: false,
            series,
            labels: Vec::new(),
            bars: Vec::new(),
            scatter: false,
            diagonal: None,
        },
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::tick;

    #[test]
    fn axis_labels_read_as_written() {
        assert_eq!(tick(10.0), "10");
        assert_eq!(tick(1000.0), "1000");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(0.1 + 0.2), "0.3");
        assert_eq!(tick(-3.0), "-3");
    }
}
