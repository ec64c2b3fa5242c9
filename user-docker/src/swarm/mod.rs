//! `corral.swarm`: the Docker Swarm the user engine starts or joins (docs/swarm.md).
//!
//! - this module: what to ask the engine for (`request`), and what to do given what
//!   the engine says it is already part of (`decide`); no I/O, unit-tested;
//! - `apply`: the manager's background loop once the user engine answers: init or
//!   join, retried with backoff while a manager is unreachable, never forced on a node
//!   already in a swarm;
//! - `status`: what that loop last did, in `/run/corral/swarm.json` (no secrets), and
//!   the marker `corral swarm leave` leaves so the next boot does not join again;
//! - `cli`: `corral swarm status|token|leave` through the engine's API.

pub mod apply;
pub mod cli;
pub mod status;

use crate::daemon::Plan;
use bollard::models::{LocalNodeState, SwarmInfo, SwarmInitRequest, SwarmJoinRequest};
use corral_config::schema::{
    split_port, Availability, SwarmAddr, SwarmLabel, SwarmLabelValue, SwarmPeer, SwarmRole,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Swarm's manager port, for addresses written without one.
pub const MANAGER_PORT: u16 = 2377;

/// What the engine is asked for. Its `Debug` leaves the join token out.
#[derive(Clone, PartialEq)]
pub enum Request {
    Init(Box<SwarmInitRequest>),
    Join(SwarmJoinRequest),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Init(r) => f.debug_tuple("Init").field(r).finish(),
            Request::Join(r) => f
                .debug_struct("Join")
                .field("listen_addr", &r.listen_addr)
                .field("advertise_addr", &r.advertise_addr)
                .field("data_path_addr", &r.data_path_addr)
                .field("remote_addrs", &r.remote_addrs)
                .field("join_token", &"<hidden>")
                .finish(),
        }
    }
}

/// The request for `role`; `None` when the configuration asks for nothing. The join
/// request holds the token: never log its fields (`Request`'s own `Debug` hides it).
pub fn request(role: &SwarmRole) -> Option<Request> {
    // Without a port, an IPv6 address goes bare (`[fd00::1]` -> `fd00::1`): the engine
    // takes no brackets there.
    let text = |a: &Option<SwarmAddr>| {
        a.as_ref().map(|a| match split_port(&a.0) {
            (host, None) => host.to_string(),
            _ => a.0.clone(),
        })
    };
    // The engine wants a port on the address it listens on; as the docker CLI does,
    // Swarm's is added to one given without.
    let listen = |a: &Option<SwarmAddr>| match a {
        Some(a) => with_manager_port(&a.0),
        None => format!("0.0.0.0:{MANAGER_PORT}"),
    };
    match role {
        SwarmRole::Unset => None,
        SwarmRole::Init(init) => Some(Request::Init(Box::new(SwarmInitRequest {
            listen_addr: Some(listen(&init.listen_addr)),
            advertise_addr: text(&init.advertise_addr),
            data_path_addr: text(&init.data_path_addr),
            default_addr_pool: (!init.default_addr_pool.is_empty())
                .then(|| init.default_addr_pool.iter().map(|c| c.0.clone()).collect()),
            ..Default::default()
        }))),
        SwarmRole::Join(join) => Some(Request::Join(SwarmJoinRequest {
            listen_addr: Some(listen(&join.listen_addr)),
            advertise_addr: text(&join.advertise_addr),
            data_path_addr: text(&join.data_path_addr),
            remote_addrs: Some(join.remote_addrs.iter().map(with_port).collect()),
            join_token: Some(join.token.secret().to_string()),
        })),
    }
}

/// Adds `labels` (`corral.swarm.labels`) to the user engine's labels, which Swarm
/// shows as the node's `engine.labels`: into `daemon.json`'s `labels` (after a user's
/// own, when their daemon.json has some), or as `--label` flags when the user's flags
/// give labels already (dockerd refuses the same setting in both places).
///
/// A key the user's own labels set already keeps the user's value (dockerd refuses to
/// start with one key given two values); each such key is returned as a warning.
pub fn add_labels(plan: &mut Plan, labels: &BTreeMap<SwarmLabel, SwarmLabelValue>) -> Vec<String> {
    let mut warnings = Vec::new();
    if labels.is_empty() {
        return warnings;
    }
    let own: Vec<String> = flag_labels(&plan.flags)
        .into_iter()
        .chain(
            plan.daemon_json
                .get("labels")
                .and_then(|l| l.as_array())
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string)),
        )
        .collect();
    let own_keys: Vec<&str> = own
        .iter()
        .map(|l| l.split_once('=').map_or(l.as_str(), |(k, _)| k))
        .collect();
    let entries: Vec<String> = labels
        .iter()
        .filter(|(k, v)| {
            let clash = own_keys.contains(&k.0.as_str());
            if clash && !own.contains(&format!("{k}={v}")) {
                warnings.push(format!(
                    "corral.swarm.labels.{k}: the engine's own labels (corral.docker or \
                     /etc/docker/daemon.json) set {k} already; theirs is kept"
                ));
            }
            !clash
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if entries.is_empty() {
        return warnings;
    }
    if plan
        .flags
        .iter()
        .any(|f| f == "--label" || f.starts_with("--label="))
    {
        plan.flags
            .extend(entries.iter().map(|e| format!("--label={e}")));
        return warnings;
    }
    match plan.daemon_json.get_mut("labels") {
        Some(serde_json::Value::Array(own)) => {
            own.extend(entries.into_iter().map(serde_json::Value::String))
        }
        _ => {
            plan.daemon_json.insert(
                "labels".into(),
                serde_json::Value::Array(
                    entries.into_iter().map(serde_json::Value::String).collect(),
                ),
            );
        }
    }
    warnings
}

/// The labels dockerd's `flags` give, as `--label=k=v` or as `--label` then `k=v`.
fn flag_labels(flags: &[String]) -> Vec<String> {
    let mut labels = Vec::new();
    let mut next_is_label = false;
    for flag in flags {
        if std::mem::take(&mut next_is_label) {
            labels.push(flag.clone());
        } else if flag == "--label" {
            next_is_label = true;
        } else if let Some(label) = flag.strip_prefix("--label=") {
            labels.push(label.to_string());
        }
    }
    labels
}

/// What is POSTed to the engine for `request` (`/swarm/init` or `/swarm/join`, see
/// [`Request::path`]): the request's fields and, when `availability` is given, Docker's
/// `Availability` (the node's availability from the moment it is in the swarm, which
/// is how a worker, which cannot update its own node, gets one; bollard's models lack
/// the field).
pub fn body(request: &Request, availability: Option<Availability>) -> serde_json::Value {
    let mut body = match request {
        Request::Init(r) => serde_json::to_value(r),
        Request::Join(r) => serde_json::to_value(r),
    }
    .unwrap_or_default();
    if let (Some(a), Some(fields)) = (availability, body.as_object_mut()) {
        fields.insert("Availability".into(), a.as_str().into());
    }
    body
}

impl Request {
    /// The engine's endpoint for this request.
    pub fn path(&self) -> &'static str {
        match self {
            Request::Init(_) => "/swarm/init",
            Request::Join(_) => "/swarm/join",
        }
    }
}

/// A manager's address with Swarm's port when it has none (`10.0.0.1` ->
/// `10.0.0.1:2377`, `fd00::1` -> `[fd00::1]:2377`).
pub fn with_port(peer: &SwarmPeer) -> String {
    with_manager_port(&peer.0)
}

/// `host` or `host:port` as the engine takes it, Swarm's port added when there is none
/// and an IPv6 address bracketed.
pub fn with_manager_port(addr: &str) -> String {
    match split_port(addr) {
        (_, Some(_)) => addr.to_string(),
        (host, None) if host.contains(':') => format!("[{host}]:{MANAGER_PORT}"),
        (host, None) => format!("{host}:{MANAGER_PORT}"),
    }
}

/// A fingerprint of the swarm settings, the token included (as a hash): `corral swarm
/// leave` records it so that the same settings do not join again at the next boot,
/// while changed ones do.
pub fn fingerprint(role: &SwarmRole) -> Option<String> {
    let text = match request(role)? {
        Request::Init(r) => serde_json::to_string(&r),
        Request::Join(r) => serde_json::to_string(&r),
    }
    .ok()?;
    Some(hex::encode(Sha256::digest(text.as_bytes())))
}

/// What to do, from what the engine says of its swarm membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send the request.
    Apply,
    /// The node is already where the configuration wants it.
    Done(String),
    /// The node is in a swarm the configuration does not describe, or in a state Corral
    /// does not touch: left as it is, with why (a warning).
    LeftAlone(String),
    /// The engine is still joining or leaving: look again.
    Wait(String),
    /// The engine gave up a join or init this run asked for: clear it (leave, forced)
    /// and try again after the backoff, as after a refused attempt.
    Retry(String),
}

/// Whether the node's swarm membership is the one Corral made from the settings in
/// force (the node id recorded with their fingerprint when it joined or started it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadeBy {
    /// These settings made it.
    TheseSettings,
    /// Corral made it from settings that have changed since.
    OtherSettings,
    /// No record for this node: joined by hand, or before the record existed.
    Unknown,
}

/// The addresses of the managers the engine knows (`10.0.0.1:2377`).
pub fn manager_addrs(info: &SwarmInfo) -> Vec<String> {
    info.remote_managers
        .iter()
        .flatten()
        .filter_map(|m| m.addr.clone())
        .collect()
}

/// Decides for `request` given the engine's `info`, who made the membership, and
/// whether this run has sent the request already (`attempted`).
pub fn decide(request: &Request, info: &SwarmInfo, made: MadeBy, attempted: bool) -> Decision {
    let state = info.local_node_state.unwrap_or(LocalNodeState::EMPTY);
    let managers = manager_addrs(info);
    match state {
        // An error this run caused (the engine went on with a join in the background
        // and gave up) is cleared and retried; any other is the user's to look at.
        LocalNodeState::ERROR if attempted => Decision::Retry(format!(
            "the engine gave up: {}",
            info.error.as_deref().unwrap_or("no detail")
        )),
        LocalNodeState::INACTIVE | LocalNodeState::EMPTY => Decision::Apply,
        LocalNodeState::PENDING => Decision::Wait("the engine is joining a swarm".into()),
        LocalNodeState::LOCKED => Decision::LeftAlone(
            "the swarm is locked on this node; unlock it with `docker swarm unlock`".into(),
        ),
        LocalNodeState::ERROR => Decision::LeftAlone(format!(
            "the engine reports a swarm error: {}",
            info.error.as_deref().unwrap_or("no detail")
        )),
        LocalNodeState::ACTIVE if made == MadeBy::TheseSettings => {
            Decision::Done("this node is in the swarm corral.swarm made".into())
        }
        LocalNodeState::ACTIVE if made == MadeBy::OtherSettings => Decision::LeftAlone(
            "corral.swarm has changed since it put this node in its swarm; the change is not \
             forced: `corral swarm leave` and a reboot apply it"
                .into(),
        ),
        LocalNodeState::ACTIVE => {
            let manager = info.control_available == Some(true);
            match request {
                Request::Init(_) if manager => Decision::Done(
                    "this node is a manager of a swarm already; init is not run again".into(),
                ),
                Request::Init(_) => Decision::LeftAlone(
                    "this node is a worker in another swarm, so corral.swarm.init is not applied; \
                     `corral swarm leave` and a reboot start a swarm as configured"
                        .into(),
                ),
                Request::Join(join) => {
                    let wanted = join.remote_addrs.as_deref().unwrap_or_default();
                    // Managers named by host name cannot be compared with the
                    // addresses the engine reports: taken as this swarm.
                    let by_name = wanted
                        .iter()
                        .any(|w| w.parse::<std::net::SocketAddr>().is_err());
                    if managers.is_empty() || by_name || wanted.iter().any(|w| managers.contains(w))
                    {
                        Decision::Done("this node is in the swarm already".into())
                    } else {
                        Decision::LeftAlone(format!(
                            "this node is in another swarm (managers {}), not the one \
                             corral.swarm.join.remote_addrs names ({}); it is left there; \
                             `corral swarm leave` and a reboot join as configured",
                            managers.join(", "),
                            wanted.join(", ")
                        ))
                    }
                }
            }
        }
    }
}

/// `message` with every appearance of `secret` replaced, so that an engine's error that
/// quotes the token never reaches a log.
pub fn redact(message: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => message.replace(s, "<token>"),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests;
