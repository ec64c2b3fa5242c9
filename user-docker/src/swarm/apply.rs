//! The manager's swarm work, run in the background once the user engine answers (the
//! boot never waits for it): asks the engine what swarm it is in, then starts or joins
//! the configured one, or leaves the node alone with a warning when it is in another.
//! A failed attempt (a manager not reachable yet) is tried again after 5 s, doubling
//! up to 5 minutes, for as long as the machine runs. Every step is written to the
//! status file for `corral swarm status`; the join token never reaches a log or the
//! file.

use super::status::{self, Phase, Status};
use super::{decide, fingerprint, redact, request, Decision, MadeBy, Request};
use bollard::models::{LocalNodeState, NodeSpecAvailabilityEnum, SwarmInfo};
use bollard::Docker;
use corral_config::schema::{Availability, SwarmRole};
use std::path::PathBuf;
use std::time::Duration;

/// The first wait after a failed attempt ...
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
/// ... doubling up to this.
pub const MAX_RETRY: Duration = Duration::from_secs(300);
/// How often a node the engine is still joining is looked at.
const PENDING_POLL: Duration = Duration::from_secs(2);

/// Where the loop keeps its records (the real paths, or a test's).
#[derive(Debug, Clone)]
pub struct Paths {
    pub status: PathBuf,
    pub left: PathBuf,
    pub made: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            status: status::STATUS_FILE.into(),
            left: status::LEFT_FILE.into(),
            made: status::MADE_FILE.into(),
        }
    }
}

/// How the loop waits and tells the time (tests shorten the waits).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub first_retry: Duration,
    pub max_retry: Duration,
    pub now: fn() -> f64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            first_retry: FIRST_RETRY,
            max_retry: MAX_RETRY,
            now: corral_host::since_boot,
        }
    }
}

/// Brings the node to what `role` asks, retrying until that is done or the node is to
/// be left alone; returns the last status written.
pub async fn run(
    docker: &Docker,
    role: &SwarmRole,
    availability: Option<Availability>,
    paths: &Paths,
    timing: Timing,
) -> Status {
    let mut record = Record {
        paths,
        now: timing.now,
        wanted: "none",
        attempts: 0,
        secret: None,
    };
    let Some(req) = request(role) else {
        return record.write(Phase::NotConfigured, "corral.swarm asks for nothing".into());
    };
    let (wanted, secret) = match &req {
        Request::Init(_) => ("init", None),
        Request::Join(j) => ("join", j.join_token.clone()),
    };
    record.wanted = wanted;
    record.secret = secret;
    let print = fingerprint(role).unwrap_or_default();
    let left = || status::left_with(&paths.left, &print);
    let left_message = "`corral swarm leave` was run with these settings, so they are not \
                        applied again; change corral.swarm to start or join a swarm again";
    if left() {
        return record.write(Phase::Left, left_message.into());
    }
    let mut delay = timing.first_retry;
    let mut last_error: Option<String> = None;
    // Whether this run sent a request: a join the engine goes on with in the background
    // (its answer timed out) is still this run's doing.
    let mut attempted = false;
    loop {
        let info = match docker.info().await {
            Ok(info) => info.swarm.unwrap_or_default(),
            Err(e) => {
                let why = format!("asking the user engine for its swarm state: {e}");
                log::warn!("swarm: {}", record.redact(&why));
                record.write(Phase::Retrying, why);
                back_off(&mut delay, timing.max_retry).await;
                continue;
            }
        };
        let state = info.local_node_state.unwrap_or(LocalNodeState::EMPTY);
        let mut made = status::made_by(&paths.made, &print, info.node_id.as_deref());
        // A membership this run made, through whatever address: recorded as these
        // settings' (the engine may report it active only a while after the request).
        if attempted && state == LocalNodeState::ACTIVE {
            if let Some(node) = info.node_id.as_deref().filter(|id| !id.is_empty()) {
                if let Err(e) = status::record_made(&paths.made, &print, node) {
                    log::warn!("swarm: writing {}: {e}", paths.made.display());
                }
                made = MadeBy::TheseSettings;
            }
        }
        // Our own join that the engine gave up in the background: cleared, and tried
        // again after the backoff, as a refused one is.
        if attempted && state == LocalNodeState::ERROR {
            let why = format!(
                "the engine gave up joining: {}; trying again in {}s",
                info.error.as_deref().unwrap_or("no detail"),
                delay.as_secs()
            );
            log::warn!("swarm: {}", record.redact(&why));
            record.write(Phase::Retrying, why);
            let force = bollard::query_parameters::LeaveSwarmOptions { force: true };
            let _ = docker.leave_swarm(Some(force)).await;
            back_off(&mut delay, timing.max_retry).await;
            continue;
        }
        match decide(&req, &info, made) {
            Decision::Done(why) => {
                let why = if attempted {
                    let done = match &req {
                        Request::Init(_) => "started a swarm; this node is its first manager",
                        Request::Join(_) => "joined the swarm",
                    };
                    match availability {
                        Some(a) => format!("{done}; {}", set_availability(docker, &info, a).await),
                        None => done.to_string(),
                    }
                } else {
                    why
                };
                log::info!("swarm: {}", record.redact(&why));
                return record.write(Phase::Done, why);
            }
            Decision::LeftAlone(why) => {
                log::warn!("swarm: {}", record.redact(&why));
                return record.write(Phase::LeftAlone, why);
            }
            Decision::Wait(why) => {
                let why = match &last_error {
                    Some(e) => format!("{why} (the last attempt said: {e})"),
                    None => why,
                };
                record.write(Phase::Waiting, why);
                tokio::time::sleep(PENDING_POLL).await;
            }
            // `corral swarm leave` run while this waited: stop here.
            Decision::Apply if left() => {
                return record.write(Phase::Left, left_message.into());
            }
            Decision::Apply => {
                record.attempts += 1;
                attempted = true;
                let result = match &req {
                    Request::Init(r) => docker.init_swarm((**r).clone()).await.map(|_| ()),
                    Request::Join(r) => docker.join_swarm(r.clone()).await,
                };
                if let Err(e) = result {
                    let why = format!(
                        "{wanted} attempt {} failed: {e}; trying again in {}s",
                        record.attempts,
                        delay.as_secs()
                    );
                    log::warn!("swarm: {}", record.redact(&why));
                    record.write(Phase::Retrying, why);
                    last_error = Some(record.redact(&e.to_string()));
                    back_off(&mut delay, timing.max_retry).await;
                }
            }
        }
    }
}

/// Waits `delay`, then doubles it up to `max` for the next failure.
async fn back_off(delay: &mut Duration, max: Duration) {
    tokio::time::sleep(*delay).await;
    *delay = (*delay * 2).min(max);
}

/// Sets this node's availability (a manager can; a worker cannot set its own); says
/// what was done.
async fn set_availability(docker: &Docker, info: &SwarmInfo, wanted: Availability) -> String {
    let word = wanted.as_str();
    let Some(id) = info.node_id.as_deref().filter(|id| !id.is_empty()) else {
        return format!("availability {word} not set: the engine gave no node id");
    };
    if info.control_available != Some(true) {
        let why = format!(
            "availability {word} not set: a worker cannot change its own; on a manager: \
             docker node update --availability {word} {id}"
        );
        log::warn!("swarm: {why}");
        return why;
    }
    let updated = async {
        let node = docker.inspect_node(id).await?;
        let mut spec = node.spec.unwrap_or_default();
        spec.availability = Some(match wanted {
            Availability::Active => NodeSpecAvailabilityEnum::ACTIVE,
            Availability::Pause => NodeSpecAvailabilityEnum::PAUSE,
            Availability::Drain => NodeSpecAvailabilityEnum::DRAIN,
        });
        let version = node.version.and_then(|v| v.index).unwrap_or_default() as i64;
        docker
            .update_node(
                id,
                spec,
                bollard::query_parameters::UpdateNodeOptions { version },
            )
            .await
    };
    match updated.await {
        Ok(()) => format!("availability {word}"),
        Err(e) => {
            log::warn!("swarm: setting availability {word}: {e}");
            format!("availability {word} not set: {e}")
        }
    }
}

/// Writes each step to the status file, the token taken out of every message.
struct Record<'a> {
    paths: &'a Paths,
    now: fn() -> f64,
    wanted: &'static str,
    attempts: u32,
    secret: Option<String>,
}

impl Record<'_> {
    fn redact(&self, message: &str) -> String {
        redact(message, self.secret.as_deref())
    }

    fn write(&self, phase: Phase, message: String) -> Status {
        let status = Status {
            wanted: self.wanted.to_string(),
            phase,
            message: self.redact(&message),
            attempts: self.attempts,
            at: (self.now)(),
        };
        if let Err(e) = status.save(&self.paths.status) {
            log::warn!("swarm: writing {}: {e}", self.paths.status.display());
        }
        status
    }
}
