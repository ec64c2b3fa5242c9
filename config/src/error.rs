//! What can go wrong reading configuration; each error names its source and the fix.

use std::path::PathBuf;

/// Everything that can go wrong reading, fetching, checking or changing configuration.
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
    /// A value a key cannot take; `problem` says what is wrong and what to write.
    #[error("{value:?} {problem}")]
    Invalid { value: String, problem: String },
    /// A secret a key cannot take (a join token): what is wrong, without the value.
    #[error("the value (not shown: a secret) {0}")]
    Secret(String),
    /// A value checked by the rule PID 1 applies to the same kernel option.
    #[error(transparent)]
    Checked(#[from] corral_host::HostError),
    /// A `write_files` entry that cannot be written as given.
    #[error("write_files entry for {path}: {problem}")]
    WriteFile { path: String, problem: String },
    /// `write_files` content that does not decode as its encoding says.
    #[error("content is not valid {encoding} ({detail}); check the encoding")]
    Content {
        encoding: &'static str,
        detail: String,
    },
    /// `write_files` content larger than Corral writes.
    #[error("content unpacks to more than {max} bytes")]
    ContentTooLarge { max: usize },
    /// A kernel option whose value does not fit the schema.
    #[error("kernel command line: {option}: {problem}")]
    Option { option: String, problem: String },
    /// A datasource that did not answer, worth another try (a network that is not up
    /// yet, a 5xx).
    #[error("{what}: {detail}")]
    Unreachable { what: String, detail: String },
    /// A datasource whose answer another try would not mend (malformed, a 4xx, a file
    /// that cannot be read).
    #[error("{what}: {detail}")]
    BadAnswer { what: String, detail: String },
    #[error("{key:?} is not a key: {why}; a key is a dotted path such as hostname or corral.docker.engine")]
    BadKey { key: String, why: String },
    #[error("{key}: {at} holds a value, not a section; set {at} itself instead")]
    NotASection { key: String, at: String },
    #[error("{0}")]
    Refused(crate::edit::Refusal),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    /// Whether trying the same again later may succeed (a datasource not reachable yet).
    pub fn is_retryable(&self) -> bool {
        matches!(self, ConfigError::Unreachable { .. })
    }

    /// Whether fixing the command or its input is the cure (exit 1); a failed write is
    /// the machine's (exit 2).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ConfigError::Write { .. })
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, ConfigError>;
