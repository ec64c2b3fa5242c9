//! corral-compose's error type: every error names the file, and the service when there
//! is one.

use crate::file::MAX_FILE;

/// Why a services file was not taken.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ComposeError {
    #[error("{file}: {detail}")]
    Parse { file: String, detail: String },
    #[error("{file}: is {size} bytes; services files may be at most {MAX_FILE}")]
    TooLarge { file: String, size: usize },
    #[error("{file}: service {service}: {detail}")]
    Service {
        file: String,
        service: String,
        detail: String,
    },
}
