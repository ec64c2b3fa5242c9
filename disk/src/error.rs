//! The crate's one error type.

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{what} failed: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("no GPT on the disk (no 'EFI PART' header in sector 1)")]
    NoTable,
    #[error("the GPT is damaged: bad {0}")]
    Corrupt(String),
    #[error("bad partition layout: {0}")]
    Layout(String),
    #[error("'{0}' is not a GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)")]
    BadGuid(String),
    #[error("GRUB's {what} is not what this code patches: {why}")]
    Grub { what: &'static str, why: String },
}
