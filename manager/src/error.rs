//! The manager's error type: what stops the manager itself (everything else is logged
//! and the boot goes on).

/// Why the manager could not run or answer.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("starting the async runtime failed: {0}")]
    Runtime(std::io::Error),
    #[error("listening for SIGTERM and SIGINT failed: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Engine(#[from] corral_dockerd::DockerdError),
    #[error("{what} failed: {source}")]
    Api {
        what: &'static str,
        source: bollard::errors::Error,
    },
    #[error("the system engine's task ended abnormally: {0}")]
    EngineTask(tokio::task::JoinError),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, ManagerError>;
