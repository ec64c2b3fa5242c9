//! # corral-init: Corral's PID 1
//!
//! The kernel starts `/init` from the initrd. It mounts the API filesystems, loads the
//! modules the root needs, finds the root image (in the initrd, or on the boot medium: the
//! ISO or the booted disk slot, mounted read-only at `/run/corral/medium`), assembles the
//! root (the squashfs image under a tmpfs overlay),
//! switches into it, mounts cgroups and the engines' tmpfs data roots, sets the hostname,
//! loads the remaining modules, and starts the manager (`corral-manager`). Then it stays
//! as the reaper and the signal handler, and on a shutdown request stops everything in
//! order and calls reboot(2). The same binary is `poweroff`, `reboot` and `halt` on the
//! host: by name, it asks PID 1 to stop.
//!
//! - **Owns:** the early mounts (one table, `mounts`), finding and mounting the boot
//!   medium (`medium`), the root switch (`root`), kernel
//!   module loading at boot, the hostname at boot (`boot`), the state partition (`state`:
//!   find, autoformat a blank disk, grow, mount at `/run/corral/state`, bind the persisted
//!   directories; fatal when `corral.state.required`), the early memory cgroup (`memcg`), the manager's life and the shutdown
//!   sequence (`shutdown`), `/run/corral/medium`, `/run/corral/lower`, `/run/corral/rw` and its steps of the boot
//!   report in `/run/corral/init-steps`.
//! - **Must not touch:** dockerd or any container (the manager does), configuration
//!   files (the `config` crate does), the network.
//! - **Talks to:** the kernel, through corral-host (the `Sys` trait and its recording
//!   fake, module loading, labels, reaping and respawning, the kernel log);
//!   mkfs.ext4 and resize2fs (e2fsprogs, in the root); `corral config state-seed` (the
//!   CLI in the root, which reads a local datasource's `corral.state` for it, so that
//!   PID 1 parses no cloud-config itself); the manager (starts it, SIGTERM at shutdown);
//!   the console.
//!
//! A leaf: no other crate depends on it (`tests/tests/architecture.rs` checks). Small and
//! synchronous (nix and corral-host; no tokio). PID 1 never exits and never panics: every
//! error either degrades (logged, boot goes on) or takes the one terminal path,
//! [`shutdown::fatal`]; clippy denies `unwrap`, `expect`, `panic` and `exit` outside
//! tests.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::exit)
)]

pub mod boot;
pub mod error;
pub mod medium;
pub mod memcg;
pub mod mounts;
pub mod root;
pub mod shutdown;
pub mod state;

use corral_host::cmdline::{self, BootOptions};
use corral_host::respawn::{self, Respawn};
use corral_host::{handled_signals, kmsg, since_boot, sys, timeline};
use nix::sys::signal::{SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::path::PathBuf;
use std::time::Duration;

/// The manager's program, which PID 1 keeps running.
pub const MANAGER: &str = "/usr/bin/corral-manager";

/// PID 1's whole life. Never returns.
pub fn run() -> ! {
    std::panic::set_hook(Box::new(|info| {
        // With panic = "abort" the kernel panics next; leave the reason on the console.
        eprintln!("corral-init: internal error: {info}");
        log::error!("internal error: {info}");
    }));
    kmsg::KmsgLogger::init("corral-init", log::LevelFilter::Info);
    let started = since_boot();
    log::info!(
        "Corral init {} starting at {started:.2}s",
        env!("CARGO_PKG_VERSION"),
    );
    // Block first, so no signal is lost between here and the signalfd.
    let signals = handled_signals();
    if let Err(e) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None) {
        shutdown::fatal(&e, cmdline::Recovery::Shell);
    }
    // Ctrl-Alt-Del becomes SIGINT to PID 1 (a clean reboot) instead of an instant reset.
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        log::warn!("disabling the Ctrl-Alt-Del reset failed: {e}");
    }
    let sys = sys::Linux;
    let recovery_of = |sys: &sys::Linux| {
        use sys::Sys;
        sys.read_to_string(std::path::Path::new("/proc/cmdline"))
            .map(|c| BootOptions::parse(&c).recovery)
            .unwrap_or(cmdline::Recovery::Shell)
    };
    let opts = match boot::initramfs_stage(&sys) {
        Ok(opts) => opts,
        Err(e) => shutdown::fatal(&e, recovery_of(&sys)),
    };
    let switched = since_boot();
    if let Err(e) = boot::root_stage(&sys, &opts) {
        shutdown::fatal(&e, opts.recovery);
    }
    timeline::write(&sys, started, switched, since_boot());
    let sfd = match SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
        Ok(sfd) => sfd,
        Err(e) => shutdown::fatal(&e, opts.recovery),
    };
    let mut manager = Respawn::new("manager", MANAGER, &[], None);
    let mut shell = opts.debug_shell.as_ref().map(|tty| {
        log::warn!("debug shell enabled on {tty} (corral.debug_shell)");
        let tty = Some(PathBuf::from("/dev").join(tty));
        let mut shell = Respawn::new("debug shell", "/bin/sh", &[], tty);
        // An interactive shell ignores SIGTERM; it holds no state worth a grace period.
        shell.stop = (Signal::SIGKILL, Some(Duration::from_secs(2)));
        shell
    });
    let mut children: Vec<&mut Respawn> = vec![&mut manager];
    if let Some(shell) = shell.as_mut() {
        children.push(shell);
    }
    let action = respawn::run(&sfd, &mut children);
    shutdown::shutdown(
        &sys,
        &mut children,
        action,
        Duration::from_secs(opts.shutdown_timeout),
    )
}
