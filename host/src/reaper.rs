//! Reaping: every exited child of PID 1 is collected, known or not (orphans are re-parented
//! to PID 1). Signals coalesce, so one SIGCHLD may stand for many exits: drain with
//! non-blocking waits until none is left (kata's `signal.rs` does the same).

use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// A child's exit as a shell would report it: its code, or 128 + the signal number.
pub fn exit_code(status: WaitStatus) -> Option<(Pid, i32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid, code)),
        WaitStatus::Signaled(pid, signal, _) => Some((pid, 128 + signal as i32)),
        _ => None,
    }
}

/// Collects every child that has exited, without blocking. Returns (pid, code) for each.
pub fn reap_all() -> Vec<(Pid, i32)> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => break,
            Ok(status) => reaped.extend(exit_code(status)),
            Err(nix::Error::EINTR) => continue,
            // ECHILD: no children at all.
            Err(nix::Error::ECHILD) => break,
            Err(e) => {
                log::warn!("waitpid failed: {e}");
                break;
            }
        }
    }
    reaped
}

/// Whether this process has any child left, running or exited. WNOWAIT leaves an exited
/// child for [`reap_all`]; it is valid with waitid(2) only, not waitpid(2).
pub fn has_children() -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(waitid(Id::All, flags), Err(nix::Error::ECHILD))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        let pid = Pid::from_raw(42);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 3)), Some((pid, 3)));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some((pid, 137))
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }

    #[test]
    fn reap_all_collects_every_exited_child_and_then_none_is_left() {
        let _alone = crate::CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
        let children: Vec<_> = (0..3)
            .map(|i| {
                std::process::Command::new("sh")
                    .args(["-c", &format!("exit {i}")])
                    .spawn()
                    .expect("spawn sh")
            })
            .collect();
        let pids: Vec<i32> = children.iter().map(|c| c.id() as i32).collect();
        let mut codes = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while codes.len() < 3 && std::time::Instant::now() < deadline {
            for (pid, code) in reap_all() {
                if pids.contains(&pid.as_raw()) {
                    codes.push(code);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        codes.sort();
        assert_eq!(codes, [0, 1, 2]);
        // The other tests that start processes wait for CHILDREN.
        assert!(!has_children(), "every child was reaped");
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        assert!(has_children(), "a running child counts");
        sleeper.kill().expect("kill");
        sleeper.wait().expect("wait");
    }
}
