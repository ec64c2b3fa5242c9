//! The way down at SIGTERM, inside the time PID 1 gives the manager before it kills
//! everything (`corral.shutdown_timeout` on the kernel command line, 60 s by default):
//! the services, then the console (each one's process waited for, not its container's
//! teardown: [`crate::ending`]), with the user engine stopping its own workloads beside
//! both ([`stop_containers`]), then the system engine (killed when every service's
//! process is gone, stopped otherwise). Each of the three container phases (the
//! services, the console, and the user engine's extra time) may wait the
//! configuration's `shutdown_timeout` (10 s by default)
//! and the engine [`STOP_WITHIN`]; when that adds up to more than PID 1's time, every
//! phase is shortened to fit ([`budget`]) and the log says so, rather than have PID 1
//! SIGKILL the engines halfway through their stop.

use crate::system_engine::STOP_WITHIN;
use corral_dockerd::engine::EngineSpec;
use std::time::Duration;

/// Set once the way down has begun: what still runs (a console switch waiting to see its
/// console stay up) then takes stopped services for the shutdown's doing, not theirs.
pub static SHUTTING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the way down has begun.
pub fn shutting_down() -> bool {
    SHUTTING_DOWN.load(std::sync::atomic::Ordering::SeqCst)
}

/// Kept back from PID 1's time for the manager's own exit and PID 1's bookkeeping.
const MARGIN: Duration = Duration::from_secs(5);

/// How long each phase of the way down may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// What each container gets to stop (`docker stop -t`), in each of the three phases.
    pub containers: Duration,
    /// What the system engine gets between SIGTERM and SIGKILL.
    pub engine: Duration,
    /// True when the configuration's time was shortened to fit PID 1's.
    pub shortened: bool,
}

/// Fits three container phases of `wanted` each and the engine's stop into `pid1`.
pub fn budget(wanted: Duration, pid1: Duration) -> Budget {
    let spare = pid1.saturating_sub(MARGIN);
    if wanted.saturating_mul(3).saturating_add(STOP_WITHIN) <= spare {
        return Budget {
            containers: wanted,
            engine: STOP_WITHIN,
            shortened: false,
        };
    }
    let engine = STOP_WITHIN.min(spare / 4);
    let containers = wanted.min(spare.saturating_sub(engine) / 3);
    Budget {
        containers,
        engine,
        shortened: containers < wanted,
    }
}

/// Ends the services (the console last), each container within `timeout`, and the user
/// engine's workloads with them. True when every service's process is gone, so that the
/// system engine can be killed rather than stopped ([`crate::system_engine::Stop::Kill`]).
///
/// The workloads are stopped by their own dockerd at its SIGTERM, as `systemctl stop
/// docker` does on Debian: the `docker` service gets all three phases' time (its
/// workloads' stop time, then its own exit), ending beside the other services and then
/// beside the console. A stop through the engine's API would mark each workload as
/// stopped by hand, and dockerd would not start an `unless-stopped` one at the next boot.
/// With `live-restore` dockerd leaves its containers running when it stops, so they are
/// stopped through the API first, in a phase of their own, and the service gets the
/// other two.
pub async fn stop_containers(
    spec: &EngineSpec,
    file: &corral_compose::ServicesFile,
    timeout: Duration,
) -> bool {
    let config = std::path::Path::new(corral_user_docker::CONFIG_DIR);
    if !corral_user_docker::service::live_restore(config) {
        return end_services(spec, file, timeout, timeout.saturating_mul(3)).await;
    }
    let started = std::time::Instant::now();
    let (stopped, failures) = corral_user_docker::client::stop_workloads(timeout).await;
    for f in failures {
        log::warn!("user engine: stopping {f}");
    }
    if stopped > 0 {
        log::info!(
            "user engine (live-restore): {stopped} containers stopped in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    end_services(spec, file, timeout, timeout.saturating_mul(2)).await
}

/// Ends the services before the engine, the console last ([`crate::ending`]), the user
/// engine's within `engine`; true when every one's process is gone.
async fn end_services(
    spec: &EngineSpec,
    file: &corral_compose::ServicesFile,
    timeout: Duration,
    engine: Duration,
) -> bool {
    let Ok(docker) = corral_dockerd::engine::connect(spec).await else {
        return false;
    };
    let started = std::time::Instant::now();
    // Every service's container there is: those brought up after the boot (`corral
    // service up`) too. The boot's list if the engine cannot say.
    let names: Vec<String> = match crate::containers::service_containers(&docker).await {
        Ok(containers) => containers.into_keys().collect(),
        Err(e) => {
            log::warn!("listing the services to stop: {e}; stopping the boot's");
            file.services.keys().cloned().collect()
        }
    };
    let longer = [(corral_user_docker::SERVICE, engine)];
    let ended = crate::ending::end_all(&docker, &names, "console", timeout, &longer).await;
    log::info!("services ended in {:.1}s", started.elapsed().as_secs_f64());
    crate::ending::all_gone(&ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_defaults_fit_unchanged() {
        // 3 x 10 s + 25 s within 60 s less the margin.
        assert_eq!(
            budget(s(10), s(60)),
            Budget {
                containers: s(10),
                engine: STOP_WITHIN,
                shortened: false
            }
        );
    }

    #[test]
    fn a_long_configured_time_is_shortened_to_pid1_s() {
        for (wanted, pid1) in [
            (30, 60),
            (600, 60),
            (10, 20),
            (u32::MAX as u64, 3600),
            (5, 0),
        ] {
            let b = budget(s(wanted), s(pid1));
            let total = b.containers * 3 + b.engine;
            assert!(
                total + MARGIN <= s(pid1).max(MARGIN),
                "{wanted} s in {pid1} s: {b:?} takes {total:?}"
            );
            assert!(b.containers <= s(wanted));
        }
        let b = budget(s(30), s(60));
        assert!(b.shortened);
        assert!(
            b.containers >= s(13),
            "{b:?}: most of the time goes to containers"
        );
        // A long PID 1 time and a short configured one: nothing shortened.
        assert!(!budget(s(30), s(300)).shortened);
    }
}
