//! Progress for long steps: a bar or spinner on a terminal (indicatif hides itself when
//! stderr is not one, as in CI), and always one line per finished step with its time.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

/// A running step.
pub struct Step {
    bar: ProgressBar,
    what: String,
    started: Instant,
}

impl Step {
    /// A step with `len` units of work (0 for a spinner).
    pub fn start(what: &str, len: u64) -> Step {
        let bar = if len == 0 {
            let b = ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            ProgressBar::new(len)
        };
        let style = if len == 0 {
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
        } else {
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
        };
        if let Ok(style) = style {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        Step {
            bar,
            what: what.to_string(),
            started: Instant::now(),
        }
    }

    pub fn inc(&self) {
        self.bar.inc(1);
    }

    pub fn set_detail(&self, detail: &str) {
        self.bar.set_message(format!("{}: {detail}", self.what));
    }

    /// Ends the step with a summary line.
    pub fn done(self, summary: &str) {
        self.bar.finish_and_clear();
        eprintln!(
            "  {:<28} {summary} ({:.1}s)",
            self.what,
            self.started.elapsed().as_secs_f64()
        );
    }
}
