//! Keeping processes running, for a process that reaps its own children: PID 1 (the
//! manager and a debug shell) and the console container's init (sshd and the gettys).
//! [`run`] starts each [`Respawn`], restarts it with [`backoff`] when it exits, reaps
//! every child, and returns the shutdown request that ends it. Synchronous: one
//! signalfd, one poll with a timeout for the next restart.

use crate::command::spawn;
use crate::power::Action;
use crate::reaper;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Delay before restarting a process that has failed `failures` times in a row: 0.5 s,
/// doubling, at most 30 s, so a crash loop neither spins nor leaves the machine without
/// its manager for long.
pub fn backoff(failures: u32) -> Duration {
    let ms = 500u64.saturating_mul(1 << failures.min(6));
    Duration::from_millis(ms.min(30_000))
}

/// A run this long counts as healthy, and resets the failure count.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// A program PID 1 keeps running.
#[derive(Debug)]
pub struct Respawn {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub tty: Option<PathBuf>,
    pub pid: Option<Pid>,
    /// How it is asked to stop at shutdown, and how long it gets (`None`: the shutdown
    /// timeout from the boot options).
    pub stop: (Signal, Option<Duration>),
    started: Instant,
    failures: u32,
    next_start: Option<Instant>,
}

impl Respawn {
    pub fn new(name: &str, program: &str, args: &[&str], tty: Option<PathBuf>) -> Self {
        Respawn {
            name: name.to_string(),
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            tty,
            pid: None,
            stop: (Signal::SIGTERM, None),
            started: Instant::now(),
            failures: 0,
            next_start: Some(Instant::now()),
        }
    }

    fn start_if_due(&mut self, now: Instant) {
        if self.next_start.is_none_or(|due| due > now) {
            return;
        }
        self.next_start = None;
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        match spawn(&self.program, &args, self.tty.as_deref()) {
            Ok(pid) => {
                log::info!("started {} (pid {pid})", self.name);
                self.pid = Some(pid);
                self.started = now;
            }
            Err(e) => {
                log::error!("{e}");
                self.schedule_restart(now);
            }
        }
    }

    fn schedule_restart(&mut self, now: Instant) {
        let delay = backoff(self.failures);
        self.failures = self.failures.saturating_add(1);
        self.next_start = Some(now + delay);
        log::warn!("restarting {} in {:.1}s", self.name, delay.as_secs_f64());
    }

    /// Handles an exit; true when it was this program's.
    fn on_exit(&mut self, pid: Pid, code: i32, now: Instant) -> bool {
        if self.pid != Some(pid) {
            return false;
        }
        self.pid = None;
        log::warn!("{} (pid {pid}) exited with code {code}", self.name);
        if now.duration_since(self.started) >= HEALTHY_RUN {
            self.failures = 0;
        }
        self.schedule_restart(now);
        true
    }
}

/// Reads pending signals; returns a shutdown request if one came.
fn drain_signals(sfd: &SignalFd, children: &mut [&mut Respawn]) -> Option<Action> {
    let mut request = None;
    while let Ok(Some(info)) = sfd.read_signal() {
        let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if signal == Signal::SIGCHLD {
            let now = Instant::now();
            for (pid, code) in reaper::reap_all() {
                if !children.iter_mut().any(|c| c.on_exit(pid, code, now)) {
                    log::debug!("reaped pid {pid} (code {code})");
                }
            }
        } else if let Some(action) = Action::from_signal(signal) {
            log::info!("{signal} received: {}", action.verb());
            request = request.or(Some(action));
        }
    }
    request
}

/// Reaps until `done` holds or the deadline passes; true when `done` held.
pub fn wait_until(deadline: Instant, mut done: impl FnMut(&[(Pid, i32)]) -> bool) -> bool {
    loop {
        let reaped = reaper::reap_all();
        if done(&reaped) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the children one by one, in order: each gets its stop signal and its time
/// (`timeout` when it has none of its own) before the next is asked.
pub fn stop(children: &mut [&mut Respawn], timeout: Duration) {
    for child in children.iter_mut() {
        let Some(pid) = child.pid.take() else {
            continue;
        };
        let (signal, within) = child.stop;
        let within = within.unwrap_or(timeout);
        if let Err(e) = nix::sys::signal::kill(pid, signal) {
            log::warn!("asking {} to stop failed: {e}", child.name);
            continue;
        }
        let mut gone = false;
        // A deadline past the clock's range waits as long as the clock allows.
        let deadline = Instant::now()
            .checked_add(within)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        let stopped = wait_until(deadline, |reaped| {
            gone |= reaped.iter().any(|(p, _)| *p == pid);
            gone
        });
        if !stopped {
            log::warn!("{} did not stop within {}s", child.name, within.as_secs());
        }
    }
}

/// Runs until a shutdown is requested; returns the request.
pub fn run(sfd: &SignalFd, children: &mut [&mut Respawn]) -> Action {
    loop {
        let now = Instant::now();
        for child in children.iter_mut() {
            child.start_if_due(now);
        }
        let next = children.iter().filter_map(|c| c.next_start).min();
        let timeout = match next {
            Some(due) => {
                let ms = due.saturating_duration_since(Instant::now()).as_millis();
                PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => log::warn!("poll on the signal descriptor failed: {e}"),
        }
        if let Some(action) = drain_signals(sfd, children) {
            return action;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let delays: Vec<u64> = (0..9).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn an_exit_schedules_a_restart_and_a_long_run_resets_failures() {
        let mut r = Respawn::new("manager", "/bin/true", &[], None);
        let t0 = Instant::now();
        r.next_start = None;
        r.pid = Some(Pid::from_raw(10));
        r.started = t0;
        assert!(
            !r.on_exit(Pid::from_raw(11), 0, t0),
            "another pid is not ours"
        );
        assert!(r.on_exit(Pid::from_raw(10), 1, t0 + Duration::from_secs(1)));
        assert_eq!(r.failures, 1);
        assert_eq!(r.next_start, Some(t0 + Duration::from_secs(1) + backoff(0)));
        r.pid = Some(Pid::from_raw(12));
        r.on_exit(Pid::from_raw(12), 1, t0 + Duration::from_secs(120));
        assert_eq!(
            r.failures, 1,
            "a healthy run resets the count before this failure"
        );
    }
}
