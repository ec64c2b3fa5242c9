//! What can go wrong reading configuration; each error names its source and the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    /// A kernel option whose value does not fit the schema.
    #[error("kernel command line: {option}: {problem}")]
    Option { option: String, problem: String },
}
