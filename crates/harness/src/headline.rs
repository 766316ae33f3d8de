//! The headline table a sweep ends with, for a terminal of 100 columns: one line per
//! configuration (method, tree, k and δ/λ/L, τ, median latency, speedup by medians, FD), grouped
//! by sampling settings, and a line on how disturbed the machine was; `tables.md` has everything
//! else.

use std::fmt::Write as _;

use lantern_metrics::stats::median;

use crate::records::Record;
use crate::report::{method_label, relax_label};
use crate::summary::Summary;

/// Characters a cell keeps (longer method and tree names are cut with `…`).
const METHOD: usize = 28;
const TREE: usize = 16;

/// The headline table of `summaries` (latency medians from `records`).
pub fn headline(summaries: &[Summary], records: &[Record]) -> String {
    let mut s = String::new();
    let mut groups: Vec<String> = Vec::new();
    for x in summaries {
        let g = sampling_label(x);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for g in groups {
        let _ = writeln!(s, "{g}");
        let _ = writeln!(
            s,
            "  {:<METHOD$} {:<TREE$} {:>4} {:>7} {:>6} {:>10} {:>8} {:>9}",
            "method", "tree", "k", "δ/λ/L", "τ", "median ms", "speedup", "FD"
        );
        for x in summaries.iter().filter(|x| sampling_label(x) == g) {
            let latencies: Vec<f64> = records
                .iter()
                .filter(|r| r.run_id == x.run_id)
                .map(|r| r.latency_ms)
                .collect();
            let _ = writeln!(
                s,
                "  {:<METHOD$} {:<TREE$} {:>4} {:>7} {:>6.2} {:>10.1} {:>8} {:>9}",
                cut(&method_label(x), METHOD),
                cut(x.config.tree.as_deref().unwrap_or("—"), TREE),
                x.config.k.map_or("—".into(), |k| k.to_string()),
                relax_label(x),
                x.tau.mean,
                median(&latencies),
                x.speedup.map_or("—".into(), |v| {
                    // `!`: more than a tenth of the images stayed disturbed (tables.md says why).
                    let mark = if 10 * x.disturbed_images > x.images {
                        "!"
                    } else {
                        ""
                    };
                    format!("{v:.2}×{mark}")
                }),
                x.fd.map_or("—".into(), |f| format!("{f:.2}")),
            );
        }
    }
    let retimed = records.iter().filter(|r| r.retimed > 0).count();
    let disturbed = records.iter().filter(|r| r.disturbed.is_some()).count();
    if retimed > 0 {
        let _ = writeln!(
            s,
            "\nmachine: {retimed} of {} images re-timed (disturbed), {disturbed} stayed disturbed{}",
            records.len(),
            if disturbed > 0 {
                "; `!` marks a speedup from timings a neighbour disturbed (tables.md)"
            } else {
                ""
            }
        );
    }
    s
}

/// `T 1, top-k 0, top-p 1, CFG 3` (with `entropy-T` under the entropy-aware temperature).
fn sampling_label(x: &Summary) -> String {
    let c = &x.config;
    let rule = if c.temperature_rule == "entropy" {
        " (entropy-T)"
    } else {
        ""
    };
    format!(
        "T {}{rule}, top-k {}, top-p {}, CFG {}",
        c.temperature, c.top_k, c.top_p, c.cfg
    )
}

/// `text` cut to `width` characters, the last one `…` when cut.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut t: String = text.chars().take(width - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cut_to_their_width() {
        assert_eq!(cut("lantern", 28), "lantern");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abcd", 4), "abcd");
    }
}
