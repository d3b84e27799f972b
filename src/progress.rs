//! The progress bar of a replay (`run`, `serve`): drawn on standard error when it is a
//! terminal, once the replay has run for a second, never with `--quiet`. Packets, their rate,
//! the elapsed time and, when the captures' sizes are known, how much is read and the time
//! remaining.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};

/// How long a replay runs before its bar appears: short ones finish without one.
const AFTER: Duration = Duration::from_secs(1);

pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    shown: bool,
    total: Option<u64>,
}

impl Progress {
    /// A bar for a replay of `total` bytes (None: a stream of unknown size, such as standard
    /// input); nothing is drawn unless standard error is a terminal and not `quiet`.
    pub fn new(total: Option<u64>, quiet: bool) -> Progress {
        let on = !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
        Progress {
            bar: on.then(|| ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden())),
            start: Instant::now(),
            shown: false,
            total,
        }
    }

    /// The size of the files replayed, if every one is a regular file.
    pub fn total_of(paths: &[&std::path::Path]) -> Option<u64> {
        paths
            .iter()
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
            })
            .sum()
    }

    /// After a batch: `packets` replayed so far, `bytes` of the captures read.
    pub fn update(&mut self, packets: u64, bytes: u64) {
        let Some(bar) = &self.bar else {
            return;
        };
        let elapsed = self.start.elapsed();
        if !self.shown {
            if elapsed < AFTER {
                return;
            }
            self.shown = true;
            let template = if self.total.is_some() {
                "{elapsed_precise} [{wide_bar}] {percent:>3}% {msg}, {eta} left"
            } else {
                "{spinner} {elapsed_precise} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        }
        let rate = packets as f64 / elapsed.as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "{} packets, {}",
            thousands(packets),
            per_second(rate)
        ));
        bar.set_position(bytes);
    }

    /// Runs `f` (which prints to standard error) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) if self.shown => bar.suspend(f),
            _ => f(),
        }
    }

    /// Removes the bar: the summary follows.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// 1234567 as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_second(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} Mpps", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} kpps", rate / 1e3)
    } else {
        format!("{rate:.0} pps")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(per_second(12.4), "12 pps");
        assert_eq!(per_second(12_400.0), "12.4 kpps");
        assert_eq!(per_second(3_210_000.0), "3.21 Mpps");
    }
}
