//! The one error type of the host crate: one variant per operation, each naming what it
//! acted on, so the message says what failed and where.

use std::path::PathBuf;

/// Everything a host primitive can fail at.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("mounting {fstype} on '{target}' failed: {source}")]
    Mount {
        fstype: String,
        target: PathBuf,
        source: nix::Error,
    },
    #[error("unmounting '{target}' failed: {source}")]
    Unmount { target: PathBuf, source: nix::Error },
    #[error("creating directory '{path}' failed: {source}")]
    Mkdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("removing directory '{path}' failed: {source}")]
    Rmdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("'{program}' is not installed; install the package that provides it")]
    ProgramMissing { program: String },
    #[error("only root can stop the machine; try `sudo` first")]
    StopNotRoot,
    #[error("signalling PID 1 failed: {0}")]
    SignalInit(nix::Error),
    #[error("reboot(2) failed: {0}; run as root")]
    Reboot(nix::Error),
    /// A value an option cannot take; `problem` says what is wrong and what to write.
    #[error("{value:?} {problem}")]
    Invalid { value: String, problem: String },
    #[error("growing '{partition}' failed: {detail}")]
    Grow { partition: PathBuf, detail: String },
    #[error("reading '{path}' failed: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing '{path}' failed: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("loading kernel module '{name}' from '{path}' failed: {source}")]
    LoadModule {
        name: String,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("kernel module '{name}' is not in '{dep_file}'; rebuild the image with it listed in build/rootfs.yml")]
    UnknownModule { name: String, dep_file: PathBuf },
    #[error("attaching '{file}' to a loop device failed: {source}")]
    Loop { file: PathBuf, source: nix::Error },
    #[error("switching root to '{new_root}' failed at {step}: {source}")]
    SwitchRoot {
        new_root: PathBuf,
        step: &'static str,
        source: nix::Error,
    },
    #[error("setting the hostname to '{name}' failed: {source}")]
    Hostname { name: String, source: nix::Error },
    #[error("starting '{program}' failed: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, HostError>;
