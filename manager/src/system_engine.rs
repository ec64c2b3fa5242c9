//! Keeps an engine running: start, wait for the API, report ready, and when dockerd dies
//! start it again after a backoff; on shutdown stop it cleanly.

use corral_dockerd::engine::{stop_leftover_containerd, wait_ready, Engine, EngineSpec};
use corral_host::respawn::backoff;
use corral_host::since_boot;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long dockerd gets to answer its API after a start. Under TCG a cold dockerd takes
/// several seconds; two minutes leaves room for a slow disk without hiding a hang.
const READY_WITHIN: Duration = Duration::from_secs(120);
/// dockerd stops its containers within 15 s on SIGTERM; give it that and some margin.
pub const STOP_WITHIN: Duration = Duration::from_secs(25);
/// A run this long resets the restart backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What happened to the engine, for the boot report and for tests.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// The API answered; `pid` is dockerd's, `since_boot` seconds since the kernel started.
    Ready {
        pid: u32,
        version: String,
        since_boot: f64,
    },
    /// dockerd exited on its own with this code (-1: killed by a signal).
    Exited { pid: u32, code: i32 },
    /// Stopped at shutdown.
    Stopped,
}

/// Runs the engine until `shutdown` turns true. Events go to `events` when given.
pub async fn supervise(
    spec: EngineSpec,
    mut shutdown: watch::Receiver<bool>,
    events: Option<mpsc::UnboundedSender<EngineEvent>>,
) {
    let send = |e: EngineEvent| {
        if let Some(tx) = &events {
            let _ = tx.send(e);
        }
    };
    let mut failures = 0u32;
    while !*shutdown.borrow() {
        let started = Instant::now();
        let mut engine = match Engine::start(&spec) {
            Ok(engine) => engine,
            Err(e) => {
                log::error!("{e}");
                if wait_or_shutdown(&mut shutdown, backoff(failures)).await {
                    break;
                }
                failures = failures.saturating_add(1);
                continue;
            }
        };
        let pid = engine.pid().unwrap_or(0);
        // Set once the wait for the API has ended, by an answer or by its timeout.
        let settled = std::sync::atomic::AtomicBool::new(false);
        let report_ready = async {
            match wait_ready(&spec, READY_WITHIN).await {
                Ok(docker) => {
                    let version = match docker.version().await {
                        Ok(v) => v.version.unwrap_or_default(),
                        Err(_) => String::new(),
                    };
                    let at = since_boot();
                    log::info!(
                        "{} engine ready at {at:.2}s since boot (pid {pid}, docker {version})",
                        spec.name
                    );
                    send(EngineEvent::Ready {
                        pid,
                        version,
                        since_boot: at,
                    });
                }
                Err(e) => log::error!("{e}"),
            }
            settled.store(true, std::sync::atomic::Ordering::Relaxed);
            // Nothing more to report; the other arms end this run.
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = report_ready => {}
            status = engine.child.wait() => {
                let code = status.ok().and_then(|s| s.code()).unwrap_or(-1);
                let when = if settled.load(std::sync::atomic::Ordering::Relaxed) { "" } else { " before it was ready" };
                log::error!("{} engine (pid {pid}) exited with code {code}{when}; see '{}'", spec.name, spec.log_file.display());
                send(EngineEvent::Exited { pid, code });
                stop_leftover_containerd(&spec).await;
                if settled.load(std::sync::atomic::Ordering::Relaxed) && started.elapsed() >= HEALTHY_RUN {
                    failures = 0;
                }
                let delay = backoff(failures);
                failures = failures.saturating_add(1);
                log::warn!("restarting the {} engine in {:.1}s", spec.name, delay.as_secs_f64());
                if wait_or_shutdown(&mut shutdown, delay).await {
                    break;
                }
            }
            _ = shutdown.changed() => {
                engine.stop(STOP_WITHIN).await;
                send(EngineEvent::Stopped);
                return;
            }
        }
    }
    send(EngineEvent::Stopped);
}

/// Sleeps for `delay`; true if shutdown was asked meanwhile.
async fn wait_or_shutdown(shutdown: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}
