//! corral-dockerd's error type: one variant per operation, naming the engine or image and
//! what failed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DockerdError {
    #[error("starting the {engine} engine ('{program}') failed: {source}; is docker.io in the root image?")]
    StartEngine {
        engine: String,
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("opening the {engine} engine's log '{path}' failed: {source}")]
    EngineLog {
        engine: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("preparing the {engine} engine's containerd ('{path}') failed: {source}")]
    Containerd {
        engine: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the {engine} engine's containerd exited with code {code} before it answered; see '{log}'"
    )]
    ContainerdExited {
        engine: String,
        code: i32,
        log: PathBuf,
    },
    #[error("the {engine} engine did not answer on '{socket}' within {seconds}s; see '{log}'")]
    NotReady {
        engine: String,
        socket: PathBuf,
        seconds: u64,
        log: PathBuf,
    },
    #[error("seeding the image store at '{path}' failed: {detail}")]
    Seed { path: PathBuf, detail: String },
    #[error("moving the broken store aside at '{path}' failed: {detail}")]
    MoveAside { path: PathBuf, detail: String },
    #[error("reading the image index '{path}' failed: {detail}")]
    ImageIndex { path: PathBuf, detail: String },
    #[error("image {name} ('{path}'): {detail}")]
    Image {
        name: String,
        path: PathBuf,
        detail: String,
    },
    #[error("talking to the {engine} engine on '{socket}' failed: {source}")]
    Api {
        engine: String,
        socket: PathBuf,
        source: bollard::errors::Error,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, DockerdError>;
