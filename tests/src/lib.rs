//! # corral-harness
//!
//! Boots Corral's real artifacts in `qemu-system-x86_64 -accel tcg` (ISO on a virtio-scsi
//! CD, a disk, or kernel + initrd; extra drives; hostfwd and guestfwd on 127.0.0.1; a
//! private segment between machines through a hub on the loopback, `src/lan.rs`;
//! SeaBIOS or OVMF), reads the serial console with deadlines, answers boot prompts, runs commands
//! through the debug shell on ttyS1, and keeps every log under `target/e2e/<test>/`.
//! `tests/*.rs` hold the end-to-end tests; `examples/guest.rs` boots a build and runs
//! commands in it; `src/bench.rs` is one benchmark boot and its figures (console markers,
//! ssh, memory, poweroff) with the statistics over runs, driven by `corral-build bench`. See [docs/testing.md](../docs/testing.md).
//!
//! - **Owns:** QEMU command lines, `target/e2e/`.
//! - **Must not touch:** `dist/` (read only).
//! - **Talks to:** qemu-system-x86_64; the guest through serial sockets and forwarded ports;
//!   host tools (xorriso, cp) through corral-host's command runner.
//!
//! `tests/architecture.rs` holds the workspace's dependency rules (over `cargo metadata`)
//! and checks that every crate's README is its crate documentation.

pub mod bench;
pub mod channel;
pub mod files;
pub mod imds;
pub mod lan;
pub mod qemu;
pub mod ssh;
pub mod vm;

pub use qemu::{Boot, Drive, Firmware, Serial, VmConfig};
pub use ssh::{free_port, KeyPair, Ssh};
pub use vm::Vm;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("QEMU exited early: {0}; see its qemu.log")]
    QemuExited(String),
    #[error("`{command}` exited with {code}:\n{output}")]
    Command {
        command: String,
        code: i32,
        output: String,
    },
    #[error(transparent)]
    Run(#[from] corral_host::HostError),
}

pub type Result<T> = std::result::Result<T, HarnessError>;

/// Runs `attempt` every 2 s until it reports exit 0 or `timeout` passes; returns the
/// successful output. The error names `command` and the last outcome. Behind
/// [`Ssh::eventually`] and [`Vm::eventually`].
pub fn retry(
    command: &str,
    timeout: std::time::Duration,
    mut attempt: impl FnMut() -> Result<(i32, String)>,
) -> Result<String> {
    let end = std::time::Instant::now() + timeout;
    loop {
        match attempt() {
            Ok((0, out)) => return Ok(out),
            other if std::time::Instant::now() > end => {
                return Err(HarnessError::Timeout(format!(
                    "`{command}` to succeed; last: {other:?}"
                )))
            }
            _ => std::thread::sleep(std::time::Duration::from_secs(2)),
        }
    }
}

/// The repository's root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The workspace's `cargo metadata` (format 1, its own crates only) as JSON text, read
/// offline with the cargo that runs the tests: what the dependency and README rules
/// (`tests/tests/architecture.rs`, `tests/tests/readmes.rs`) check.
pub fn workspace_metadata() -> Result<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    corral_host::command::output(
        std::process::Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .arg("--manifest-path")
            .arg(repo_root().join("Cargo.toml")),
    )
    .map_err(HarnessError::from)
}

/// The upstream version (`26.1.5` of `26.1.5+dfsg1-9+deb13u1+b1`) of package `name` in
/// `suite` (`trixie`, `unstable`) as `build/packages.lock` records it: the tests compare
/// with what the build took, never with version literals, since Debian replaces old
/// versions in its archives. Panics with the fix when the lock lacks it.
pub fn locked_upstream(suite: &str, name: &str) -> String {
    let path = repo_root().join("build/packages.lock");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let version = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [archive, n, version, _] = f[..] else {
                return None;
            };
            (n == name && archive.split('-').next() == Some(suite)).then_some(version)
        })
        .unwrap_or_else(|| {
            panic!(
                "{} has no {suite} {name}; run `corral-build lock`",
                path.display()
            )
        });
    upstream(version).to_string()
}

/// The upstream part of a Debian version: no epoch, revision or repack suffix.
pub fn upstream(version: &str) -> &str {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    let v = v.rsplit_once('-').map_or(v, |(u, _)| u);
    v.split(['+', '~']).next().unwrap_or(v)
}

/// An engine's name from its Docker version: `28.5.2` -> `docker-28.5`.
pub fn engine_name(upstream: &str) -> Option<String> {
    let mut parts = upstream.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    Some(format!("docker-{major}.{minor}"))
}

/// The kernel release the build took, from `dist/manifest.json`.
pub fn built_kernel() -> String {
    let path = dist_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let v = l.trim().strip_prefix("\"kernel\": \"")?;
            Some(v.trim_end_matches(',').trim_end_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("{} names no kernel; run `make dist`", path.display()))
}

/// The artifact directory, `dist/` unless CORRAL_DIST says otherwise.
pub fn dist_dir() -> PathBuf {
    std::env::var_os("CORRAL_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist"))
}

/// An artifact in [`dist_dir`]; panics with the fix when it has not been built (the
/// end-to-end tests' precondition).
pub fn artifact(name: &str) -> PathBuf {
    let path = dist_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing; run `make dist` first",
        path.display()
    );
    path
}

/// An image archive from `tests/images/` (built by `corral-build test-images`, which
/// `make e2e` runs); panics with the fix when it has not been built.
pub fn test_image(name: &str) -> PathBuf {
    let path = repo_root()
        .join("target/corral/test-images")
        .join(format!("{name}.tar"));
    assert!(
        path.exists(),
        "{} is missing; run `target/debug/corral-build test-images` (make e2e does)",
        path.display()
    );
    path
}

/// Panics with the fix unless the build host has Debian's dockerd, which the
/// integration tests run on a private socket.
pub fn require_dockerd() {
    assert!(
        std::process::Command::new("dockerd")
            .arg("--version")
            .output()
            .is_ok(),
        "dockerd is not installed; run `make setup` (Debian package docker.io)"
    );
}

/// A fresh log folder for a test: `target/e2e/<name>/`.
pub fn log_dir(name: &str) -> PathBuf {
    let dir = repo_root().join("target/e2e").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A disk of `bytes` at `disk` holding the raw image `image` (a sparse copy, grown): an
/// image written to a bigger disk, as on EC2 or by `dd`.
pub fn disk_from_image(image: &Path, disk: &Path, bytes: u64) -> Result<()> {
    corral_host::command::output(
        std::process::Command::new("cp")
            .arg("--sparse=always")
            .arg(image)
            .arg(disk),
    )?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .and_then(|f| f.set_len(bytes))
        .map_err(|e| HarnessError::Io(disk.to_path_buf(), e))
}

/// Cloud-config lines (a `bootcmd:` key) that copy `file` from the NoCloud seed into the
/// user engine's preload folder before the engine starts, as a user's provisioning
/// would. The seed must carry `file` next to its user-data.
pub fn preload_bootcmd(file: &str) -> String {
    format!(
        "bootcmd:\n\
         \x20 - mkdir -p /run/seed /var/lib/corral/preload/docker\n\
         \x20 - mount -o ro $(findfs LABEL=cidata) /run/seed\n\
         \x20 - cp /run/seed/{file} /var/lib/corral/preload/docker/\n\
         \x20 - umount /run/seed\n"
    )
}

/// A NoCloud seed: an ISO 9660 volume labelled `cidata` holding `user-data` and
/// `meta-data`, as cloud-localds makes it (built with xorriso).
pub fn nocloud_iso(dir: &Path, user_data: &[u8], meta_data: &str) -> Result<PathBuf> {
    let seed = dir.join("cidata");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| HarnessError::Io(p, e)
    };
    std::fs::create_dir_all(&seed).map_err(io(&seed))?;
    std::fs::write(seed.join("user-data"), user_data).map_err(io(&seed))?;
    std::fs::write(seed.join("meta-data"), meta_data).map_err(io(&seed))?;
    let iso = dir.join("cidata.iso");
    corral_host::command::output(
        std::process::Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-r", "-o"])
            .arg(&iso)
            .arg(&seed),
    )?;
    Ok(iso)
}
