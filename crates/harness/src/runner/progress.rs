//! Progress of a sweep's images: indicatif's bar on a terminal; elsewhere (a CI log, a Slurm
//! job's output), where indicatif draws nothing, a plain line at most once a minute.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often the plain line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(60);

/// The sweep's progress display.
pub(super) enum Progress {
    /// A terminal: indicatif's bar.
    Bar(ProgressBar),
    /// No terminal: plain lines on stderr.
    Plain {
        total: u64,
        done: u64,
        start: Instant,
        last: Instant,
    },
}

impl Progress {
    /// Progress over `total` images; a bar when `terminal`.
    pub fn new(total: u64, terminal: bool) -> Self {
        if !terminal {
            let now = Instant::now();
            return Self::Plain {
                total,
                done: 0,
                start: now,
                last: now,
            };
        }
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} images, ETA {eta} {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        Self::Bar(b)
    }

    /// Prints a line of its own without breaking the bar.
    pub fn println(&self, line: &str) {
        match self {
            Self::Bar(b) => b.suspend(|| eprintln!("{line}")),
            Self::Plain { .. } => eprintln!("{line}"),
        }
    }

    /// One more image done; `what` names the configuration and its running τ.
    pub fn inc(&mut self, what: &str) {
        match self {
            Self::Bar(b) => {
                b.set_message(what.to_string());
                b.inc(1);
            }
            Self::Plain {
                total,
                done,
                start,
                last,
            } => {
                *done += 1;
                if last.elapsed() >= PLAIN_EVERY || *done == *total {
                    *last = Instant::now();
                    eprintln!("{}", plain_line(*done, *total, start.elapsed(), what));
                }
            }
        }
    }

    /// Clears the bar (the plain display has nothing to clear).
    pub fn finish(&self) {
        if let Self::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

/// `12/128 images (9%), 1:02 elapsed, ETA 9:59; lantern k=10 δ=0.2 τ=2.91`.
fn plain_line(done: u64, total: u64, elapsed: Duration, what: &str) -> String {
    let secs = elapsed.as_secs_f64();
    let eta = if done == 0 {
        "?".to_string()
    } else {
        clock(secs / done as f64 * (total - done) as f64)
    };
    format!(
        "{done}/{total} images ({:.0}%), {} elapsed, ETA {eta}; {what}",
        100.0 * done as f64 / total.max(1) as f64,
        clock(secs)
    )
}

/// `h:mm:ss` or `m:ss`.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", (s / 60) % 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line_shows_count_share_elapsed_and_eta() {
        let line = plain_line(32, 128, Duration::from_secs(62), "ar τ=1.00");
        assert_eq!(
            line,
            "32/128 images (25%), 1:02 elapsed, ETA 3:06; ar τ=1.00"
        );
        assert_eq!(clock(3725.0), "1:02:05");
        assert!(plain_line(0, 10, Duration::ZERO, "").contains("ETA ?"));
    }
}
