//! The way down: ask the manager to stop (it stops the services and the engines), then
//! SIGTERM everything left, SIGKILL what ignores it, sync, unmount in reverse order,
//! remount the root read-only and call reboot(2). Also the one terminal path for a boot
//! that cannot go on.

use crate::mounts::unmount_order;
use corral_host::cmdline::Recovery;
use corral_host::command::spawn;
use corral_host::power::Action;
use corral_host::reaper;
use corral_host::respawn::{stop, wait_until, Respawn};
use corral_host::sys::Sys;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long processes get between SIGTERM and SIGKILL once the manager is gone.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// Stops everything and ends with reboot(2) in the requested mode. Never returns.
pub fn shutdown(
    sys: &dyn Sys,
    children: &mut [&mut Respawn],
    action: Action,
    timeout: Duration,
) -> ! {
    log::info!("shutting down: {}", action.verb());
    stop(children, timeout);
    // kill(-1) reaches every process but PID 1 and kernel threads.
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    if !wait_until(Instant::now() + TERM_GRACE, |_| !reaper::has_children()) {
        log::warn!(
            "processes left after {}s; killing them",
            TERM_GRACE.as_secs()
        );
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        wait_until(Instant::now() + TERM_GRACE, |_| !reaper::has_children());
    }
    nix::unistd::sync();
    let (unmounted, failed) = unmount_all(sys);
    let ro = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Err(e) = sys.mount(None, Path::new("/"), None, ro, None) {
        log::warn!("{e}");
    }
    nix::unistd::sync();
    log::info!(
        "{unmounted} filesystems unmounted, {failed} failed; root read-only; {}",
        action.verb()
    );
    final_reboot(action)
}

/// Unmounts everything but the root, the API filesystems and the root's medium, in
/// reverse order; how many went and how many failed. A mount point that is no longer one
/// when its turn comes (EINVAL) went with a peer: the state partition's directories are
/// bind mounts with shared propagation, so a container root the system engine mounted
/// under one path is listed under the other too, and unmounting one takes both (this
/// shows when the engine is killed at the way down instead of unmounting its
/// containers' roots itself). That is not a failure.
fn unmount_all(sys: &dyn Sys) -> (usize, usize) {
    let mounts = sys
        .read_to_string(Path::new("/proc/self/mounts"))
        .unwrap_or_default();
    let (mut unmounted, mut failed) = (0, 0);
    for target in unmount_order(&mounts) {
        match sys.umount(&target, MntFlags::empty()) {
            Ok(()) => unmounted += 1,
            Err(corral_host::HostError::Unmount {
                source: nix::Error::EINVAL,
                ..
            }) => unmounted += 1,
            Err(e) => {
                failed += 1;
                log::warn!("{e}");
            }
        }
    }
    (unmounted, failed)
}

/// The last call: reboot(2). If even that fails, PID 1 waits forever rather than exit
/// (an exiting PID 1 panics the kernel).
pub fn final_reboot(action: Action) -> ! {
    nix::unistd::sync();
    let Err(e) = nix::sys::reboot::reboot(action.reboot_mode());
    log::error!("reboot(2) failed: {e}");
    loop {
        nix::unistd::pause();
    }
}

/// A boot that cannot go on: say why on the console, then open a recovery shell, power
/// off or reboot, as `corral.recovery` asks. Never returns.
pub fn fatal(error: &dyn std::fmt::Display, recovery: Recovery) -> ! {
    log::error!("boot failed: {error}");
    eprintln!("\ncorral-init: boot failed: {error}");
    nix::unistd::sync();
    match recovery {
        Recovery::Poweroff => final_reboot(Action::Poweroff),
        Recovery::Reboot => final_reboot(Action::Reboot),
        Recovery::Shell => {}
    }
    eprintln!("corral-init: opening a recovery shell on the console; `exit` powers off.");
    match spawn(Path::new("/bin/sh"), &[], Some(Path::new("/dev/console"))) {
        Ok(shell) => {
            // No deadline: the shell is the operator's, for as long as they need it.
            // Other children are reaped meanwhile.
            while !reaper::reap_all().iter().any(|(p, _)| *p == shell) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Err(e) => {
            eprintln!("corral-init: no recovery shell ({e}); powering off in 30 s");
            std::thread::sleep(Duration::from_secs(30));
        }
    }
    final_reboot(Action::Poweroff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_host::sys::fake::{Call, FakeSys};

    #[test]
    fn a_mount_gone_with_its_peer_is_not_a_failure_but_a_busy_one_is() {
        let mounts = "/dev/root / ext4 rw 0 0\nproc /proc proc rw 0 0\n\
                      /dev/vda5 /run/corral/state ext4 rw 0 0\n\
                      /dev/vda5 /var/lib/system-docker ext4 rw 0 0\n\
                      overlay /var/lib/system-docker/overlay2/a/merged overlay rw 0 0\n\
                      overlay /run/corral/state/system-docker/overlay2/a/merged overlay rw 0 0\n\
                      /dev/vdb1 /mnt/data ext4 rw 0 0\n";
        let sys = FakeSys::default()
            .with_file("/proc/self/mounts", mounts)
            .gone("/var/lib/system-docker/overlay2/a/merged")
            .failing("/mnt/data");
        assert_eq!(unmount_all(&sys), (4, 1));
        let calls = sys.calls.borrow();
        assert_eq!(
            calls.first(),
            Some(&Call::Umount("/mnt/data".into())),
            "the last mounted goes first"
        );
        assert!(!calls.contains(&Call::Umount("/proc".into())));
        assert!(!calls.contains(&Call::Umount("/".into())));
    }
}
