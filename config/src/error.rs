//! What can go wrong reading configuration; each error names its source and the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("{origin}: is {size} bytes; user-data may be at most 1048576 (1 MiB)")]
    TooLarge { origin: String, size: usize },
    #[error("{origin}: not valid gzip ({detail}); send the user-data plain or gzip it whole")]
    Gzip { origin: String, detail: String },
    #[error("{origin}: not text (invalid UTF-8 at byte {offset}); user-data is UTF-8 text, or gzip of it")]
    NotText { origin: String, offset: usize },
    #[error("{origin}: user-data starting with {first_line:?} is not a form Corral knows; start it with #cloud-config, #! (a script) or #compose (services)")]
    UnknownForm { origin: String, first_line: String },
    /// `at` is `line L column C: ` when the parser knew where, else empty.
    #[error("{origin}: {at}{detail}")]
    Yaml {
        origin: String,
        at: String,
        detail: String,
    },
    /// A kernel option whose value does not fit the schema.
    #[error("kernel command line: {option}: {problem}")]
    Option { option: String, problem: String },
}
