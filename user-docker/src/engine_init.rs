//! What `corral-engine` runs inside the engine's container: containerd first, waited on
//! for as long as it takes to answer, then dockerd pointed at it.
//!
//! dockerd started alone starts its own containerd and gives it 15 s to answer
//! (moby's `startupTimeout`), then exits with code 1. Under emulation, with every other
//! service starting at the same moment, containerd can take longer than that, and each
//! failed start cost a restart and another minute. So containerd is started here with the
//! configuration dockerd would give it (same root, state and socket under dockerd's data
//! and exec roots, the CRI plugin off: `corral_dockerd::containerd`, which the manager
//! uses the same way for the system engine), and dockerd gets `--containerd=` once the
//! socket answers. This process stays as the container's main process: it passes SIGTERM,
//! SIGINT, SIGQUIT and SIGHUP on to dockerd, starts containerd again if it dies while
//! dockerd runs (as dockerd does with its own), reaps what it is given, and when dockerd
//! exits stops containerd and exits with dockerd's code. Before containerd starts, the
//! runtime state an earlier run left for its containers is deleted ([`crate::stale`]).
//!
//! With `live-restore` on (dockerd's `--live-restore`, or `"live-restore": true` in the
//! file its `--config-file` names), a dockerd that exits without being asked to (a crash,
//! the OOM killer, a `kill` by hand) is started again here, against the same containerd,
//! so the workloads keep running and the new dockerd restores them: what live-restore
//! does for a dockerd under systemd. The container itself stays up; ending it ends
//! every process in its cgroup, the workloads among them, whatever the setting. After
//! [`RESTARTS`] such exits within [`CRASH_WINDOW`] it gives up and exits with dockerd's
//! code, and the system engine's restart policy takes over.
//!
//! Synchronous and small (nix: a signalfd and `waitpid`); it links none of the tokio
//! code the manager uses from this crate.

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::EXEC_ROOT;
use corral_dockerd::containerd::Containerd;

/// dockerd's defaults for the two roots, when its arguments do not name them (the exec
/// root's is Corral's too, [`EXEC_ROOT`]).
const DATA_ROOT: &str = "/var/lib/docker";
/// How long containerd gets to stop once dockerd has exited.
pub const CONTAINERD_STOP: Duration = Duration::from_secs(10);
/// How many unasked exits of dockerd within [`CRASH_WINDOW`] are restarted in place
/// (live-restore only) before corral-engine exits with dockerd's code.
pub const RESTARTS: usize = 3;
/// The window [`RESTARTS`] counts in.
pub const CRASH_WINDOW: Duration = Duration::from_secs(120);
/// The most of the `daemon.json` that is read for `live-restore`.
const MAX_CONFIG: u64 = 1 << 20;

/// The containerd dockerd would start for itself with these arguments (`--data-root=`,
/// `--exec-root=`, either form; dockerd's defaults otherwise).
pub fn containerd_for(args: &[String]) -> Containerd {
    let data = flag(args, "--data-root").unwrap_or_else(|| DATA_ROOT.into());
    let exec = flag(args, "--exec-root").unwrap_or_else(|| EXEC_ROOT.into());
    Containerd::under(Path::new(&data), Path::new(&exec))
}

/// The value of `--name=value` or `--name value` in `args` (the last one counts).
fn flag(args: &[String], name: &str) -> Option<String> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
        } else if a == name {
            found = it.next().cloned();
        }
    }
    found
}

/// Whether dockerd run with `args` keeps its containers running when it exits:
/// `--live-restore` (`=true`, `=false`) on its command line, else `live-restore` in the
/// file its `--config-file` names (dockerd refuses the two together). Unreadable: no.
pub fn live_restore(args: &[String]) -> bool {
    let mut on = None;
    for a in args {
        match a.as_str() {
            "--live-restore" | "--live-restore=true" => on = Some(true),
            "--live-restore=false" => on = Some(false),
            _ => {}
        }
    }
    on.unwrap_or_else(|| {
        flag(args, "--config-file")
            .and_then(|f| crate::read_json::<serde_json::Value>(Path::new(&f), MAX_CONFIG))
            .and_then(|json| json.get("live-restore")?.as_bool())
            .unwrap_or(false)
    })
}

/// Unasked exits of dockerd, and whether the next one is started again in place.
#[derive(Debug, Default)]
struct Crashes {
    at: Vec<Instant>,
}

impl Crashes {
    /// dockerd exited at `now` without being asked: true when it is to be started again
    /// (fewer than [`RESTARTS`] exits in the [`CRASH_WINDOW`] before, this one counted).
    fn again(&mut self, now: Instant) -> bool {
        self.at
            .retain(|t| now.saturating_duration_since(*t) < CRASH_WINDOW);
        self.at.push(now);
        self.at.len() <= RESTARTS
    }
}

/// dockerd's arguments with the containerd socket added (one already given wins: then
/// dockerd uses that containerd and this one only costs its start).
pub fn dockerd_args(args: &[String], containerd: &Containerd) -> Vec<String> {
    let mut out = args.to_vec();
    if flag(args, "--containerd").is_none() {
        out.push(format!("--containerd={}", containerd.socket.display()));
    }
    out
}

/// The exit code a shell would report for `status`.
fn code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// The running pair.
struct Engine {
    signals: SignalFd,
    containerd: Containerd,
    containerd_pid: Option<Pid>,
}

impl Engine {
    fn start_containerd(&mut self) -> std::io::Result<()> {
        self.containerd.prepare()?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&self.containerd.config)
            .spawn()?;
        self.containerd_pid = Some(Pid::from_raw(child.id() as i32));
        Ok(())
    }

    /// Waits up to `within` for a signal; returns those that came.
    fn signals(&mut self, within: Duration) -> Vec<Signal> {
        let ms = within.as_millis().min(u16::MAX as u128) as u16;
        let mut fds = [nix::poll::PollFd::new(
            self.signals.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.signals.read_signal() {
            if let Ok(s) = Signal::try_from(info.ssi_signo as i32) {
                out.push(s);
            }
        }
        out
    }

    /// Reaps every child that exited: (pid, exit code).
    fn reap(&mut self) -> Vec<(Pid, i32)> {
        let mut out = Vec::new();
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return out,
                Ok(status) => {
                    if let (Some(pid), Some(c)) = (status.pid(), code(status)) {
                        if Some(pid) == self.containerd_pid {
                            self.containerd_pid = None;
                        }
                        out.push((pid, c));
                    }
                }
            }
        }
    }

    /// Waits until containerd answers on its socket; `Err` with the exit code to leave
    /// with when it exited first or a signal asked to stop.
    fn wait_for_containerd(&mut self) -> Result<(), i32> {
        let started = Instant::now();
        let mut said = false;
        loop {
            if self.containerd.listening() {
                return Ok(());
            }
            for s in self.signals(Duration::from_millis(100)) {
                if matches!(s, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) {
                    eprintln!("corral-engine: {s} before containerd answered; stopping");
                    self.stop_containerd();
                    return Err(0);
                }
            }
            self.reap();
            if self.containerd_pid.is_none() {
                eprintln!("corral-engine: containerd exited before it answered");
                return Err(1);
            }
            if !said && started.elapsed() > Duration::from_secs(15) {
                eprintln!(
                    "corral-engine: containerd has not answered for 15s (a busy machine); \
                     still waiting"
                );
                said = true;
            }
        }
    }

    fn stop_containerd(&mut self) {
        let Some(pid) = self.containerd_pid else {
            return;
        };
        let _ = kill(pid, Signal::SIGTERM);
        let until = Instant::now() + CONTAINERD_STOP;
        while self.containerd_pid.is_some() && Instant::now() < until {
            self.signals(Duration::from_millis(100));
            self.reap();
        }
        if let Some(pid) = self.containerd_pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// Clears what an earlier run left in the runtime's state under the exec root that
/// `args` name ([`crate::stale`]), and says what it did.
fn clear_stale(args: &[String]) {
    let exec = flag(args, "--exec-root").unwrap_or_else(|| EXEC_ROOT.into());
    let (cleared, left) = crate::stale::clear(Path::new(&exec), &mut crate::stale::Installed);
    if !cleared.is_empty() {
        eprintln!(
            "corral-engine: deleted the runtime state an earlier run left for {} containers: {}",
            cleared.len(),
            cleared.join(" ")
        );
    }
    for why in left {
        eprintln!("corral-engine: runtime state: {why}");
    }
}

/// Runs containerd and then dockerd with `args`; returns the code to exit with.
pub fn run(args: &[String]) -> i32 {
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ] {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        eprintln!("corral-engine: blocking signals: {e}");
        return 1;
    }
    let signals = match SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
    {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("corral-engine: a signalfd: {e}");
            return 1;
        }
    };
    let mut engine = Engine {
        signals,
        containerd: containerd_for(args),
        containerd_pid: None,
    };
    clear_stale(args);
    if let Err(e) = engine.start_containerd() {
        eprintln!("corral-engine: starting containerd: {e}");
        return 1;
    }
    if let Err(code) = engine.wait_for_containerd() {
        return code;
    }
    let dockerd_args = dockerd_args(args, &engine.containerd);
    let start_dockerd = || Command::new("dockerd").args(&dockerd_args).spawn();
    let mut dockerd = match start_dockerd() {
        Ok(c) => Pid::from_raw(c.id() as i32),
        Err(e) => {
            eprintln!("corral-engine: starting dockerd: {e}");
            engine.stop_containerd();
            return 1;
        }
    };
    let live = live_restore(args);
    let mut asked_to_stop = false;
    let mut crashes = Crashes::default();
    let exit = loop {
        for s in engine.signals(Duration::from_secs(1)) {
            if s != Signal::SIGCHLD {
                asked_to_stop |= matches!(s, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT);
                let _ = kill(dockerd, s);
            }
        }
        let reaped = engine.reap();
        if let Some((_, c)) = reaped.iter().find(|(p, _)| *p == dockerd) {
            if !live || asked_to_stop || engine.containerd_pid.is_none() {
                break *c;
            }
            if !crashes.again(Instant::now()) {
                eprintln!(
                    "corral-engine: dockerd exited with code {c}, the {}th time in {}s; \
                     giving up",
                    RESTARTS + 1,
                    CRASH_WINDOW.as_secs()
                );
                break *c;
            }
            eprintln!(
                "corral-engine: dockerd exited with code {c} unasked; live-restore is on, so \
                 it is started again and the containers keep running"
            );
            match start_dockerd() {
                Ok(child) => dockerd = Pid::from_raw(child.id() as i32),
                Err(e) => {
                    eprintln!("corral-engine: starting dockerd again: {e}");
                    break 1;
                }
            }
            continue;
        }
        if engine.containerd_pid.is_none() {
            eprintln!("corral-engine: containerd exited; starting it again");
            if let Err(e) = engine.start_containerd() {
                eprintln!("corral-engine: starting containerd again: {e}; stopping dockerd");
                let _ = kill(dockerd, Signal::SIGTERM);
            }
        }
    };
    engine.stop_containerd();
    exit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn containerd_lives_where_dockerd_would_keep_its_own() {
        let c = containerd_for(&args(&[
            "--data-root=/var/lib/docker",
            "--exec-root",
            "/var/run/docker",
        ]));
        assert_eq!(c.root, Path::new("/var/lib/docker/containerd/daemon"));
        assert_eq!(
            c.socket,
            Path::new("/var/run/docker/containerd/containerd.sock")
        );
        let other = containerd_for(&args(&["--data-root=/data", "--exec-root=/x"]));
        assert_eq!(other.root, Path::new("/data/containerd/daemon"));
        assert_eq!(other.socket, Path::new("/x/containerd/containerd.sock"));
        assert_eq!(containerd_for(&[]), c, "dockerd's defaults");
    }

    #[test]
    fn dockerd_is_pointed_at_it_unless_told_another() {
        let c = containerd_for(&[]);
        assert_eq!(
            dockerd_args(&args(&["--debug"]), &c),
            args(&[
                "--debug",
                "--containerd=/var/run/docker/containerd/containerd.sock"
            ])
        );
        let own = args(&["--containerd=/run/other.sock"]);
        assert_eq!(dockerd_args(&own, &c), own);
    }

    #[test]
    fn live_restore_is_read_from_the_flag_or_the_config_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let json = tmp.path().join("daemon.json");
        let file = format!("--config-file={}", json.display());
        assert!(!live_restore(&args(&[&file])), "no file: off");
        std::fs::write(&json, r#"{"debug": true}"#).expect("write");
        assert!(!live_restore(&args(&[
            "--config-file",
            &json.to_string_lossy()
        ])));
        std::fs::write(&json, r#"{"live-restore": true}"#).expect("write");
        assert!(live_restore(&args(&[&file])));
        assert!(
            !live_restore(&args(&[&file, "--live-restore=false"])),
            "the flag wins"
        );
        std::fs::write(&json, r#"{"live-restore": "yes"}"#).expect("write");
        assert!(!live_restore(&args(&[&file])), "not a bool: off");
        std::fs::write(&json, "{not json").expect("write");
        assert!(!live_restore(&args(&[&file])), "not JSON: off");
        assert!(live_restore(&args(&["--live-restore"])));
        assert!(live_restore(&args(&["--live-restore=true"])));
        assert!(!live_restore(&args(&["--debug"])));
    }

    #[test]
    fn a_crashing_dockerd_is_restarted_a_few_times_within_the_window_then_left() {
        let mut crashes = Crashes::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        for i in 0..RESTARTS {
            assert!(crashes.again(t0 + s(i as u64)), "exit {i}: again");
        }
        assert!(
            !crashes.again(t0 + s(10)),
            "one more within the window: given up"
        );
        let later = t0 + s(10) + CRASH_WINDOW;
        assert!(crashes.again(later), "the window passed: counted afresh");
    }

    #[test]
    fn exit_codes_are_a_shell_s() {
        let pid = Pid::from_raw(7);
        assert_eq!(code(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(
            code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
    }
}
