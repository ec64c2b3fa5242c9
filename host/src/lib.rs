//! # corral-host: what a running Corral machine's programs share
//!
//! The primitives that PID 1 (`corral-init`), the manager (`corral-manager`) and the host
//! CLI (`corral`) all need, in one leaf crate so none of them depends on another: the
//! system calls behind the [`sys::Sys`] trait (and its recording fake, feature `fake`),
//! filesystem labels, kernel module loading, the kernel log, the since-boot clock,
//! keeping processes running with backoff, the kernel command line's boot options,
//! power requests, the hosts file, the paths PID 1 lays out and what mountinfo says is
//! mounted where. Its one command runner
//! ([`command`]) also serves the build, the ISO tools and the test harness, so a
//! failed command reads the same wherever it ran.
//!
//! - **Owns:** nothing on a machine by itself; each function acts for its caller.
//! - **Must not touch:** dockerd or any container, configuration files, the network.
//! - **Talks to:** the kernel (system calls, /dev/kmsg, /sys/class/block), the programs
//!   its callers run, and corral-disk for the partition table.
//!
//! Synchronous and small (nix, log, thiserror, corral-disk; no tokio), because PID 1 links
//! it; the manager calls the blocking parts off its runtime threads. Nothing here panics:
//! clippy denies `unwrap`, `expect`, `panic` and `exit` outside tests.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::exit)
)]

pub mod cmdline;
pub mod command;
pub mod error;
pub mod grow;
pub mod hosts;
pub mod kmsg;
pub mod label;
pub mod layout;
pub mod modules;
pub mod mountinfo;
pub mod power;
pub mod reaper;
pub mod respawn;
pub mod sys;
pub mod timeline;

pub use error::{HostError, Result};

/// Tests that start processes hold this: the reaper's test collects every child of the
/// test process with waitpid(-1), which would take a child from under another test.
#[cfg(test)]
pub(crate) static CHILDREN: std::sync::Mutex<()> = std::sync::Mutex::new(());

use nix::sys::signal::{SigSet, Signal};

/// Seconds since the kernel started (CLOCK_BOOTTIME), for log lines and the boot report.
pub fn since_boot() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// The signals a process that reaps and respawns its children reads through a signalfd
/// (PID 1 and the console's init): children's exits and the shutdown requests of
/// [`power::Action::from_signal`].
pub fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPWR,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set
}
