//! The crate's one error type. Every message names what was being done, to what, and
//! what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{what} '{}': {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the update was refused, {what}: {detail}\nfix: {fix}")]
    Metadata {
        what: String,
        detail: String,
        fix: &'static str,
    },
    #[error("fetching {url} failed: {detail}\nfix: check the URL (corral.upgrade.url) and that the machine reaches it")]
    Fetch { url: String, detail: String },
    #[error("the update file '{}' is not a Corral update: {detail}", path.display())]
    Bundle { path: PathBuf, detail: String },
    #[error("no release {version} in the repository (it offers: {})", if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") })]
    NoSuchVersion {
        version: String,
        offered: Vec<String>,
    },
    #[error("{0}")]
    Refused(String),
    #[error("signing the update failed ({what}): {detail}")]
    Sign { what: String, detail: String },
    #[error("{what}: {detail}")]
    Verify { what: String, detail: String },
}

pub type Result<T> = std::result::Result<T, UpdateError>;

/// An I/O error on `path` while doing `what`.
pub fn io(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> UpdateError {
    let path = path.into();
    move |source| UpdateError::Io { what, path, source }
}
