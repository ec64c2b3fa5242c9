//! Watching the engine's events for the services' containers: every start, exit and OOM
//! is logged with its time since boot, and an exit is restarted or left per the service's
//! `restart:` policy (`restart::Tracker`), as each container's restart label says, so
//! that services brought up later (`corral service up`) are watched alike. Runs for as
//! long as the engine run it was started for (the manager starts a new watcher with each
//! engine start) or until shutdown. An event stream that fails or ends while that engine
//! runs is opened again from the last event seen, after a backoff, so no exit is missed.

use crate::restart_policy::{Decision, Policy, Tracker};
use crate::services::{RESTART, SERVICE};
use bollard::models::EventMessage;
use bollard::query_parameters::{EventsOptions, StartContainerOptions};
use bollard::Docker;
use corral_host::respawn::backoff;
use corral_host::since_boot;
use futures_util::stream::BoxStream;
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

/// An event's time (`time_nano`) in the form `since=` takes.
fn stamp_of(time_nano: i64) -> String {
    let nanos = time_nano.max(0);
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

/// Services whose stop was asked for (`service stop`, `disable`): their `die` is taken
/// as a stop on purpose (the tracker's `stopped`), as the engine's `stop` event would
/// say, which under emulation can trail the `die` by more than the restart's delay. A
/// service's next `start` event takes it off.
static STOP_ASKED: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

fn stop_asked() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<String>> {
    STOP_ASKED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks service `name` as stopped on purpose, before its container is asked to stop.
pub fn stopping(name: &str) {
    stop_asked().insert(name.to_string());
}

struct Pending {
    due: Instant,
    container: String,
}

type Events<'a> = BoxStream<'a, Result<EventMessage, bollard::errors::Error>>;

/// Which events this watcher has seen: a stream opened again replays from the time of
/// the last one, and what was handled already is skipped.
#[derive(Debug, Default)]
struct Seen {
    last: Option<(i64, String, String)>,
}

impl Seen {
    /// True (and remembered) when the event is newer than the last one handled.
    fn first_time(&mut self, time_nano: i64, id: &str, action: &str) -> bool {
        if let Some((t, last_id, last_action)) = &self.last {
            if time_nano < *t || (time_nano == *t && id == last_id && action == last_action) {
                return false;
            }
        }
        self.last = Some((time_nano, id.to_string(), action.to_string()));
        true
    }
}

fn events_since(docker: &Docker, since: String) -> Events<'_> {
    let options = EventsOptions {
        since: Some(since),
        filters: Some(HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), vec![SERVICE.to_string()]),
        ])),
        ..Default::default()
    };
    docker.events(Some(options)).boxed()
}

/// The next event of an open stream; never, while there is none.
async fn next_event(
    events: &mut Option<Events<'_>>,
) -> Option<Result<EventMessage, bollard::errors::Error>> {
    match events.as_mut() {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// Watches from `since` (so nothing between `up` and this call is missed) until
/// `shutdown` turns true or `engine_run` closes (its sender is dropped when the engine
/// this watcher was started for exits).
pub async fn run(
    docker: Docker,
    since: String,
    mut shutdown: watch::Receiver<bool>,
    mut engine_run: watch::Receiver<()>,
) {
    // Every service container carries its policy (the restart label, which the event
    // repeats): the one it was created with, whether at boot or by a later `up`.
    let mut tracker = Tracker::default();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut from = since;
    let mut seen = Seen::default();
    let mut events: Option<Events<'_>> = None;
    let mut reopen_at = Some(Instant::now());
    let mut failures = 0u32;
    loop {
        if events.is_none() && reopen_at.is_some_and(|at| at <= Instant::now()) {
            events = Some(events_since(&docker, from.clone()));
            reopen_at = None;
        }
        let next_due = pending.values().map(|p| p.due).chain(reopen_at).min();
        tokio::select! {
            event = next_event(&mut events) => {
                let event = match event {
                    Some(Ok(e)) => e,
                    failed => {
                        let why = match failed {
                            Some(Err(e)) => e.to_string(),
                            _ => "the stream ended".to_string(),
                        };
                        events = None;
                        let delay = backoff(failures);
                        failures = failures.saturating_add(1);
                        reopen_at = Some(Instant::now() + delay);
                        log::warn!(
                            "watching the system engine's events: {why}; watching again in {:.1}s",
                            delay.as_secs_f64()
                        );
                        continue;
                    }
                };
                failures = 0;
                let action = event.action.clone().unwrap_or_default();
                let id = event.actor.as_ref().and_then(|a| a.id.clone()).unwrap_or_default();
                let time_nano = event.time_nano.unwrap_or(0);
                if !seen.first_time(time_nano, &id, &action) {
                    continue;
                }
                from = stamp_of(time_nano);
                let attrs = event.actor.as_ref().and_then(|a| a.attributes.clone()).unwrap_or_default();
                let Some(name) = attrs.get(SERVICE).or_else(|| attrs.get("name")).cloned() else { continue };
                if let Some(policy) = attrs.get(RESTART).and_then(|r| Policy::parse(Some(r)).ok()) {
                    tracker.set_policy(&name, policy);
                }
                let now = Instant::now();
                let at = since_boot();
                match action.as_str() {
                    "start" => {
                        stop_asked().remove(&name);
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
                        if stop_asked().contains(&name) {
                            tracker.stopped(&name);
                        }
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
            _ = sleep_until(next_due) => {
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
            // Closed: the engine this watcher was for has exited.
            _ = engine_run.changed() => return,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_opened_again_skips_what_was_handled() {
        let mut seen = Seen::default();
        assert!(seen.first_time(100, "a", "die"));
        // The replay from the last event's time repeats it: skipped, as is anything older.
        assert!(!seen.first_time(100, "a", "die"));
        assert!(!seen.first_time(99, "b", "start"));
        // Another event in the same nanosecond, and anything later, is new.
        assert!(seen.first_time(100, "a", "start"));
        assert!(seen.first_time(101, "a", "die"));
    }

    #[test]
    fn an_event_time_is_a_since_stamp() {
        assert_eq!(stamp_of(1_700_000_000_123_456_789), "1700000000.123456789");
        assert_eq!(stamp_of(5), "0.000000005");
        assert_eq!(stamp_of(-1), "0.000000000");
    }
}
