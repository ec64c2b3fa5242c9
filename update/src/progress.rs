//! Progress bars for long transfers (downloads, the slot write), on standard error and
//! only when it is a terminal.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `total` bytes (a spinner with a count when the total is unknown).
pub fn bytes_bar(total: u64, what: &str) -> ProgressBar {
    let bar = if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::new_spinner()
    };
    let template = if total > 0 {
        "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}"
    } else {
        "{msg:24} {spinner} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}
