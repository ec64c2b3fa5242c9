//! corral-iso's error type: one variant per operation, each naming the file or tool.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("'{path}' is missing (Debian package {package})")]
    MissingFile {
        path: PathBuf,
        package: &'static str,
    },
    #[error(transparent)]
    Command(#[from] corral_host::HostError),
    #[error(transparent)]
    Disk(#[from] corral_disk::DiskError),
    #[error("writing '{path}' failed: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, IsoError>;
