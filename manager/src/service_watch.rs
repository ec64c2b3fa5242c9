//! Watching the engine's events for the services' containers: every start, exit and OOM
//! is logged with its time since boot, and an exit is restarted or left per the service's
//! `restart:` policy (`restart::Tracker`), as each container's restart label says, so
//! that services brought up later (`corral service up`) are watched alike. Runs until the engine's event stream ends
//! (the engine died; the manager starts a new watcher with the engine) or shutdown.

use crate::restart_policy::{Decision, Policy, Tracker};
use crate::services::{RESTART, SERVICE};
use bollard::query_parameters::{EventsOptions, StartContainerOptions};
use bollard::Docker;
use corral_host::since_boot;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The engine's clock now, in the form `since=` takes, to replay events from there.
pub fn now_stamp() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

struct Pending {
    due: Instant,
    container: String,
}

/// Watches from `since` (so nothing between `up` and this call is missed) until the
/// stream ends or `shutdown` turns true.
pub async fn run(docker: Docker, since: String, mut shutdown: watch::Receiver<bool>) {
    // Every service container carries its policy (the restart label, which the event
    // repeats): the one it was created with, whether at boot or by a later `up`.
    let mut tracker = Tracker::default();
    let options = EventsOptions {
        since: Some(since),
        filters: Some(HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), vec![SERVICE.to_string()]),
        ])),
        ..Default::default()
    };
    let mut events = docker.events(Some(options));
    let mut pending: HashMap<String, Pending> = HashMap::new();
    loop {
        let next_due = pending.values().map(|p| p.due).min();
        let sleep = async {
            match next_due {
                Some(due) => tokio::time::sleep_until(due.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else {
                    log::info!("the system engine's event stream ended");
                    return;
                };
                let event = match event {
                    Ok(e) => e,
                    Err(e) => return log::warn!("watching the system engine's events stopped: {e}"),
                };
                let attrs = event.actor.as_ref().and_then(|a| a.attributes.clone()).unwrap_or_default();
                let Some(name) = attrs.get(SERVICE).or_else(|| attrs.get("name")).cloned() else { continue };
                if let Some(policy) = attrs.get(RESTART).and_then(|r| Policy::parse(Some(r)).ok()) {
                    tracker.set_policy(&name, policy);
                }
                let id = event.actor.and_then(|a| a.id).unwrap_or_default();
                let now = Instant::now();
                let at = since_boot();
                match event.action.as_deref().unwrap_or_default() {
                    "start" => {
                        tracker.started(&name, now);
                        log::info!("service {name}: started at {at:.2}s");
                    }
                    "stop" => {
                        tracker.stopped(&name);
                        if pending.remove(&name).is_some() {
                            log::info!("service {name}: stopped on purpose; restart called off");
                        }
                    }
                    "oom" => log::warn!("service {name}: out of memory at {at:.2}s"),
                    "die" => {
                        let code: i64 = attrs.get("exitCode").and_then(|c| c.parse().ok()).unwrap_or(-1);
                        match tracker.exited(&name, code, now) {
                            Decision::Restart(delay) => {
                                log::warn!(
                                    "service {name}: exited with code {code} at {at:.2}s; restarting in {:.1}s",
                                    delay.as_secs_f64()
                                );
                                pending.insert(name, Pending { due: now + delay, container: id });
                            }
                            Decision::Leave(why) => {
                                let level = if code == 0 { log::Level::Info } else { log::Level::Warn };
                                log::log!(level, "service {name}: exited with code {code} at {at:.2}s; left stopped ({why})");
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ = sleep => {
                let now = Instant::now();
                let due: Vec<String> = pending.iter().filter(|(_, p)| p.due <= now).map(|(n, _)| n.clone()).collect();
                for name in due {
                    let Some(p) = pending.remove(&name) else { continue };
                    if tracker.still_wanted(&name) {
                        restart(&docker, &name, &p.container).await;
                    }
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Starts the service's container again, unless it was replaced or is running already.
async fn restart(docker: &Docker, name: &str, container: &str) {
    match docker.inspect_container(name, None).await {
        Ok(c) if c.id.as_deref() != Some(container) && !container.is_empty() => {
            log::info!("service {name}: its container was replaced; no restart needed");
        }
        Ok(c) if c.state.as_ref().and_then(|s| s.running).unwrap_or(false) => {}
        Ok(_) => {
            if let Err(e) = docker
                .start_container(name, None::<StartContainerOptions>)
                .await
            {
                log::error!("service {name}: restarting failed: {e}");
            }
        }
        Err(e) => log::warn!("service {name}: not restarted: {e}"),
    }
}

/// How long a service gets to stop at shutdown before dockerd kills it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
