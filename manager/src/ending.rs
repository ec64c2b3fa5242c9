//! The services ended for the machine's way down: each one's stop signal through the
//! engine's API, then a wait for its first process to exit (SIGKILL after the time it
//! is given), the console last. Unlike `docker stop`, nothing waits for the system
//! engine to tear the containers down afterwards (delete each task, its shim's exit and
//! containerd's clean-up after it): under TCG, five of those at once took the two CPUs
//! for 8-10 s after every service had exited (docs/benchmarks.md, "The way down").
//! When every service's process has exited the system engine's dockerd is killed rather
//! than stopped ([`crate::system_engine::Stop::Kill`]); its store is crash-consistent, and the
//! next start finds those containers' tasks gone and records them as exited.
//!
//! Owns nothing but the order and the waiting; talks to the system engine's API and
//! reads /proc to see a process gone. Used at shutdown only: `corral service stop`
//! still stops through the engine.

use bollard::query_parameters::KillContainerOptions;
use bollard::Docker;
use corral_dockerd::engine::runs;
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// How often the way down looks whether a service's process has exited.
const EXIT_POLL: Duration = Duration::from_millis(50);

/// How long a process may take to go after SIGKILL (it can be in the kernel, or be the
/// init of a PID namespace whose other processes the kernel kills first).
const KILL_WAIT: Duration = Duration::from_secs(3);

/// How a service ended at the way down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It was not running: nothing to do.
    NotRunning,
    /// Its process exited on its stop signal, after this long.
    Exited(Duration),
    /// It was killed after its time; its process is gone.
    Killed,
    /// Its process may still run (the engine did not answer, or it outlived SIGKILL);
    /// the engine must then stop it itself.
    Left(String),
}

/// Ends every service in `names`, all at once, then `last` (the console, so that a
/// session on it sees the machine go down). Each gets `timeout` after its stop signal.
/// Those in `longer` get the time given there and do not hold `last` back: they go on
/// ending beside it (the user engine stopping its workloads). Returns how each one
/// ended: the others and `last` in the order they ended, then those in `longer`.
pub async fn end_all(
    docker: &Docker,
    names: &[String],
    last: &str,
    timeout: Duration,
    longer: &[(&str, Duration)],
) -> Vec<(String, Ended)> {
    let end = |name: String| async move {
        let timeout = longer
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(timeout, |(_, t)| *t);
        let ended = end_one(docker, &name, timeout).await;
        match &ended {
            Ended::Exited(took) => {
                log::info!("service {name}: exited in {:.1}s", took.as_secs_f64())
            }
            Ended::Killed => log::warn!(
                "service {name}: still running {}s after its stop signal; killed it",
                timeout.as_secs()
            ),
            Ended::Left(why) => log::warn!("service {name}: {why}"),
            Ended::NotRunning => {}
        }
        (name, ended)
    };
    let (slow, first): (Vec<String>, Vec<String>) = names
        .iter()
        .filter(|n| *n != last)
        .cloned()
        .partition(|n| longer.iter().any(|(l, _)| l == n));
    let first_then_last = async {
        let mut ended: Vec<(String, Ended)> =
            futures_util::future::join_all(first.into_iter().map(end)).await;
        if names.iter().any(|n| n == last) {
            ended.push(end(last.to_string()).await);
        }
        ended
    };
    let slow = futures_util::future::join_all(slow.into_iter().map(end));
    let (mut ended, slow) = futures_util::future::join(first_then_last, slow).await;
    ended.extend(slow);
    ended
}

/// Whether every service's process is known to be gone, so that the engine need not
/// stop any of them itself.
pub fn all_gone(ended: &[(String, Ended)]) -> bool {
    ended.iter().all(|(_, e)| !matches!(e, Ended::Left(_)))
}

/// Ends one service: its stop signal (the image's `StopSignal`, SIGTERM without one),
/// then waits for its first process to be gone; SIGKILL after `timeout`.
async fn end_one(docker: &Docker, name: &str, timeout: Duration) -> Ended {
    let info = match docker.inspect_container(name, None).await {
        Ok(info) => info,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ended::NotRunning,
        Err(e) => return Ended::Left(format!("reading its state: {e}")),
    };
    let state = info.state.unwrap_or_default();
    let pid = state.pid.and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    if state.running != Some(true) || pid <= 0 {
        return Ended::NotRunning;
    }
    let pid = Pid::from_raw(pid);
    let signal = info
        .config
        .and_then(|c| c.stop_signal)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "SIGTERM".to_string());
    let started = Instant::now();
    if let Err(e) = signal_it(docker, name, &signal).await {
        return Ended::Left(format!("sending {signal}: {e}"));
    }
    if gone_within(pid, timeout, runs).await {
        return Ended::Exited(started.elapsed());
    }
    if let Err(e) = signal_it(docker, name, "SIGKILL").await {
        return Ended::Left(format!("sending SIGKILL: {e}"));
    }
    if gone_within(pid, KILL_WAIT, runs).await {
        Ended::Killed
    } else {
        Ended::Left(format!(
            "its process {pid} still runs {}s after SIGKILL",
            KILL_WAIT.as_secs()
        ))
    }
}

/// Sends `signal` to the container; one that has stopped meanwhile (409) or is gone
/// (404) is no error.
async fn signal_it(
    docker: &Docker,
    name: &str,
    signal: &str,
) -> Result<(), bollard::errors::Error> {
    let options = KillContainerOptions {
        signal: signal.to_string(),
    };
    match docker.kill_container(name, Some(options)).await {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => Ok(()),
        other => other,
    }
}

/// Waits until `pid` no longer runs, at most `within`; true when it is gone. `runs` is
/// [`corral_dockerd::engine::runs`] (a fake in tests).
async fn gone_within(pid: Pid, within: Duration, runs: fn(Pid) -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !runs(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    static POLLS: AtomicU32 = AtomicU32::new(0);

    fn gone_at_the_third_look(_: Pid) -> bool {
        POLLS.fetch_add(1, Ordering::SeqCst) < 2
    }

    fn never_gone(_: Pid) -> bool {
        true
    }

    #[tokio::test]
    async fn a_process_is_waited_for_until_it_is_gone_or_the_time_is_up() {
        POLLS.store(0, Ordering::SeqCst);
        assert!(
            gone_within(
                Pid::from_raw(12345),
                Duration::from_secs(5),
                gone_at_the_third_look
            )
            .await
        );
        assert_eq!(POLLS.load(Ordering::SeqCst), 3);
        let started = Instant::now();
        assert!(!gone_within(Pid::from_raw(12345), Duration::from_millis(200), never_gone).await);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn the_engine_is_killed_only_when_no_service_was_left_running() {
        let d = Duration::from_secs(1);
        let mut ended = vec![
            ("ntp".to_string(), Ended::Exited(d)),
            ("acpid".to_string(), Ended::Killed),
            ("gone".to_string(), Ended::NotRunning),
        ];
        assert!(all_gone(&ended));
        ended.push(("console".to_string(), Ended::Left("engine gone".into())));
        assert!(!all_gone(&ended));
    }
}
