//! The one error type of the init crate: one variant per operation, each naming what it
//! acted on, so the console message says what failed and where. The system calls' own
//! failures come from corral-host and pass through unchanged.

use std::path::PathBuf;

/// Everything that can go wrong while PID 1 brings the machine up or down.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Host(#[from] corral_host::HostError),
    #[error("the root image '{path}' is missing; rebuild with `make dist`")]
    MissingRootImage { path: PathBuf },
    #[error(
        "no boot medium labelled {label} with the root image: {why}. Boot the ISO or the \
         disk image it came with, or boot kernel + dist/initrd-pxe (which carries the root \
         image) instead of dist/initrd"
    )]
    NoMedium { label: String, why: String },
    #[error(
        "corral.state.required is set and the state partition is not there: {why}. Attach \
         the disk, fix corral.state.dev, or drop corral.state.required to run from RAM"
    )]
    StateRequired { why: String },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, InitError>;
