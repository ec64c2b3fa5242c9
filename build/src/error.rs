//! corral-build's error type: one variant per operation, each naming the file, package or
//! tool, and the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{step}: {source}")]
    Step {
        step: &'static str,
        source: Box<BuildError>,
    },
    #[error(
        "a build step ran before the {needs} step it needs; the order of dist::STEPS is wrong"
    )]
    StepOrder { needs: &'static str },
    #[error("host tool '{tool}' is missing; install it with `apt-get install {package}` (or run `make setup`)")]
    MissingTool { tool: String, package: String },
    #[error("running `{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error(transparent)]
    Run(#[from] corral_host::HostError),
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
    #[error("'{path}' is not valid: {detail}")]
    Spec { path: PathBuf, detail: String },
    #[error("apt could not resolve {packages} in {suite}: {detail}\nfix: check the package names in build/rootfs.yml and images/*/image.yml, then run `corral-build lock` to fetch the package lists anew")]
    Resolve {
        packages: String,
        suite: String,
        detail: String,
    },
    #[error("Debian {suite} has no package '{package}'{locked}\nfix: correct the name in build/rootfs.yml or the image's image.yml, or take it from another suite (`suite:`, `newer:`)")]
    NotInSuite {
        package: String,
        suite: String,
        /// ` (build/packages.lock has ...)` when the lock knows the package.
        locked: String,
    },
    #[error("downloading Debian package '{package}' ({version}) failed: {detail}\nfix: check the network, then run the build again (`corral-build lock` fetches the package lists anew)")]
    Download {
        package: String,
        version: String,
        detail: String,
    },
    #[error("'{path}' has sha256 {actual}, apt expects {expected}; it was deleted, run the build again to fetch it anew")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("the packages differ from build/packages.lock and --locked was given:\n{drift}\nfix: run `corral-build lock` to record the new versions")]
    Locked { drift: String },
    #[error("{detail}\nfix: the build loads the system images into a private dockerd; check that `dockerd` runs here (make setup installs docker.io)")]
    Seed { detail: String },
    #[error("signing the update: {detail}")]
    Update { detail: String },
    #[error("kernel modules: {detail}")]
    Modules { detail: String },
    #[error(transparent)]
    Iso(#[from] corral_iso::IsoError),
}

pub type Result<T> = std::result::Result<T, BuildError>;

impl BuildError {
    pub fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Read { path, source }
    }
    pub fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Write { path, source }
    }
}
