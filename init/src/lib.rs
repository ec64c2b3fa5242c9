//! # corral-init: Corral's PID 1
//!
//! The kernel starts `/init` from the initrd. It mounts the API filesystems, loads the
//! modules the root needs, assembles the root (the squashfs image under a tmpfs overlay),
//! switches into it, mounts cgroups and the engines' tmpfs data roots, sets the hostname,
//! loads the remaining modules, and starts the manager (`corral-manager`). Then it stays
//! as the reaper and the signal handler, and on a shutdown request stops everything in
//! order and calls reboot(2). The same binary is `poweroff`, `reboot` and `halt` on the
//! host: by name, it asks PID 1 to stop.
//!
//! - **Owns:** the early mounts, the root switch, kernel module loading at boot, the
//!   hostname at boot, reaping, the shutdown sequence, `/run/corral/lower` and
//!   `/run/corral/rw`.
//! - **Must not touch:** dockerd or any container (the manager does), configuration
//!   files (the `config` crate does), the network.
//! - **Talks to:** the kernel (system calls, through [`sys::Sys`]), the manager (starts
//!   it, SIGTERM at shutdown), the console and /dev/kmsg.
//!
//! PID 1 never exits and never panics: every error either degrades (logged, boot goes
//! on) or takes the one terminal path, [`shutdown::fatal`].

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::exit)
)]

pub mod boot;
pub mod cmdline;
pub mod error;
pub mod grow;
pub mod kmsg;
pub mod label;
pub mod memcg;
pub mod modules;
pub mod mounts;
pub mod power;
pub mod reaper;
pub mod root;
pub mod shutdown;
pub mod spawn;
pub mod state;
pub mod supervisor;
pub mod sys;
pub mod timeline;

use cmdline::BootOptions;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::path::PathBuf;
use std::time::Duration;
use supervisor::Respawn;

/// Seconds since the kernel started (CLOCK_BOOTTIME), for log lines and the boot report.
pub fn since_boot() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// The signals PID 1 reads through its signalfd.
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
    let mut manager = Respawn::new("manager", supervisor::MANAGER, &[], None);
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
    let action = supervisor::run(&sfd, &mut children);
    shutdown::shutdown(
        &sys,
        &mut children,
        action,
        Duration::from_secs(opts.shutdown_timeout),
    )
}

/// `poweroff`, `reboot`, `halt`: ask PID 1 to stop, or with `-f` stop at once.
pub fn request(action: power::Action, force: bool) -> Result<(), String> {
    if force {
        nix::unistd::sync();
        return nix::sys::reboot::reboot(action.reboot_mode())
            .map(|_| ())
            .map_err(|e| format!("reboot(2) failed: {e}; run as root"));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), action.signal()).map_err(|e| match e {
        nix::Error::EPERM => "only root can stop the machine; try `sudo` first".to_string(),
        e => format!("signalling PID 1 failed: {e}"),
    })
}
