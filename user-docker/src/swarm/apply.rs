//! The manager's swarm work, run in the background once the user engine answers (the
//! boot never waits for it): asks the engine what swarm it is in, then starts or joins
//! the configured one, or leaves the node alone with a warning when it is in another.
//! A failed attempt (a manager not reachable yet) is tried again after 5 s, doubling
//! up to 5 minutes, for as long as the machine runs. Every step is written to the
//! status file for `corral swarm status`; the join token never reaches a log or the
//! file.

use super::status::{self, Phase, Status};
use super::{body, decide, fingerprint, redact, request, Decision, MadeBy, Request};
use crate::client::{post_json, PostError};
use bollard::models::LocalNodeState;
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
/// How long the engine may take to answer an init or join (it answers a join that is
/// slow to finish after 20 s, and goes on with it in the background).
const ANSWER: Duration = Duration::from_secs(120);

/// Where the loop finds the engine and keeps its records (the real paths, or a
/// test's).
#[derive(Debug, Clone)]
pub struct Paths {
    /// The engine's socket, for the init or join request.
    pub socket: PathBuf,
    pub status: PathBuf,
    pub left: PathBuf,
    pub made: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            socket: crate::SOCKET.into(),
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
                record.warn(Phase::Retrying, why);
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
        match decide(&req, &info, made, attempted) {
            Decision::Done(why) => {
                let why = if attempted {
                    let done = match &req {
                        Request::Init(_) => "started a swarm; this node is its first manager",
                        Request::Join(_) => "joined the swarm",
                    };
                    match availability {
                        Some(a) => format!("{done}; availability {}", a.as_str()),
                        None => done.to_string(),
                    }
                } else {
                    why
                };
                log::info!("swarm: {}", record.redact(&why));
                return record.write(Phase::Done, why);
            }
            Decision::LeftAlone(why) => {
                return record.warn(Phase::LeftAlone, why);
            }
            // Our own join that the engine gave up in the background: cleared, and
            // tried again after the backoff, as a refused one is.
            Decision::Retry(why) => {
                let why = format!("{why}; trying again in {}s", delay.as_secs());
                record.warn(Phase::Retrying, why);
                let force = bollard::query_parameters::LeaveSwarmOptions { force: true };
                let _ = docker.leave_swarm(Some(force)).await;
                back_off(&mut delay, timing.max_retry).await;
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
                // Sent as plain JSON: bollard's models lack `Availability`.
                let result =
                    post_json(&paths.socket, req.path(), &body(&req, availability), ANSWER).await;
                match result {
                    // The engine answers a join slow to finish (about 20 s) so, and goes
                    // on with it: waited for (the engine says pending), not retried.
                    Err(e) if still_joining(&e) => {
                        log::info!("swarm: the engine goes on joining in the background");
                        last_error = None;
                    }
                    Err(e) => {
                        let why = format!(
                            "{wanted} attempt {} failed: {e}; trying again in {}s",
                            record.attempts,
                            delay.as_secs()
                        );
                        record.warn(Phase::Retrying, why);
                        last_error = Some(record.redact(&e.to_string()));
                        back_off(&mut delay, timing.max_retry).await;
                    }
                    Ok(_) => last_error = None,
                }
            }
        }
    }
}

/// Whether the engine's answer says it goes on with the join in the background.
fn still_joining(e: &PostError) -> bool {
    matches!(e, PostError::Status { message, .. } if message.contains("continue in the background"))
}

/// Waits `delay`, then doubles it up to `max` for the next failure.
async fn back_off(delay: &mut Duration, max: Duration) {
    tokio::time::sleep(*delay).await;
    *delay = (*delay * 2).min(max);
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

    /// Logs `message` as a warning, then writes it.
    fn warn(&self, phase: Phase, message: String) -> Status {
        log::warn!("swarm: {}", self.redact(&message));
        self.write(phase, message)
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
