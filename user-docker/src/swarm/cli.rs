//! `corral swarm status|token|leave`: the node's swarm through the user engine's API,
//! and the manager's status file. The `corral` command prints what these return.

use super::status::{self, Phase, Status};
use super::{fingerprint, manager_addrs, with_manager_port};
use bollard::models::{LocalNodeState, SwarmInfo};
use bollard::Docker;
use corral_config::schema::SwarmRole;
use std::fmt::Write as _;
use std::path::Path;

/// Which join token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRole {
    Worker,
    Manager,
}

/// A failure: the user's (fix the command or the machine's role) or the machine's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    User(String),
    System(String),
}

/// The node's swarm as the engine sees it, and the manager's last word on
/// `corral.swarm` (when the status file can be read: root only).
pub fn describe(info: &SwarmInfo, manager: Option<&Status>) -> String {
    let mut out = String::new();
    let state = info.local_node_state.unwrap_or(LocalNodeState::INACTIVE);
    let role = if info.control_available == Some(true) {
        "manager"
    } else {
        "worker"
    };
    match state {
        LocalNodeState::ACTIVE => {
            let _ = writeln!(out, "swarm:    active, this node a {role}");
            if let Some(id) = &info.node_id {
                let _ = writeln!(
                    out,
                    "node:     {id} at {}",
                    info.node_addr.as_deref().unwrap_or("?")
                );
            }
            if let (Some(nodes), Some(managers)) = (info.nodes, info.managers) {
                let _ = writeln!(out, "cluster:  {nodes} nodes, {managers} managers");
            }
            let peers = manager_addrs(info);
            if !peers.is_empty() {
                let _ = writeln!(out, "managers: {}", peers.join(", "));
            }
        }
        LocalNodeState::EMPTY | LocalNodeState::INACTIVE => {
            let _ = writeln!(out, "swarm:    not in a swarm");
        }
        other => {
            let _ = writeln!(out, "swarm:    {other}");
        }
    }
    if let Some(e) = info.error.as_deref().filter(|e| !e.is_empty()) {
        let _ = writeln!(out, "error:    {e}");
    }
    match manager {
        Some(s) => {
            let phase = match s.phase {
                Phase::NotConfigured => "nothing to do",
                Phase::Waiting => "waiting",
                Phase::Retrying => "retrying",
                Phase::Done => "done",
                Phase::LeftAlone => "left alone",
                Phase::Left => "left",
            };
            let _ = writeln!(
                out,
                "corral.swarm: {} ({phase}, {} attempt(s), at {:.1}s since boot): {}",
                s.wanted, s.attempts, s.at, s.message
            );
        }
        None => {
            let _ = writeln!(
                out,
                "corral.swarm: no record from the manager yet ({} is root's; try sudo)",
                status::STATUS_FILE
            );
        }
    }
    out
}

/// The same as JSON: the engine's `state`, `node_id`, `node_addr`, `manager`, `nodes`,
/// `managers`, `remote_managers`, `error`, and the manager's record as `corral`.
pub fn describe_json(info: &SwarmInfo, manager: Option<&Status>) -> serde_json::Value {
    serde_json::json!({
        "state": info.local_node_state.unwrap_or(LocalNodeState::INACTIVE).to_string(),
        "node_id": info.node_id,
        "node_addr": info.node_addr,
        "manager": info.control_available == Some(true),
        "nodes": info.nodes,
        "managers": info.managers,
    "remote_managers": manager_addrs(info),
        "error": info.error.as_deref().filter(|e| !e.is_empty()),
        "corral": manager,
    })
}

/// The engine's view of its swarm.
async fn swarm_info(docker: &Docker) -> Result<SwarmInfo, Failure> {
    Ok(docker
        .info()
        .await
        .map_err(|e| Failure::System(format!("asking the user engine: {e}")))?
        .swarm
        .unwrap_or_default())
}

/// `corral swarm status`, as a table or (`json`) as [`describe_json`].
pub async fn status(docker: &Docker, status_file: &Path, json: bool) -> Result<String, Failure> {
    let info = swarm_info(docker).await?;
    let record = Status::load(status_file);
    Ok(if json {
        format!("{:#}\n", describe_json(&info, record.as_ref()))
    } else {
        describe(&info, record.as_ref())
    })
}

/// The cloud-config a new node needs to join this node's swarm with `role`'s token,
/// through every manager the engine knows (this one's address when it knows none).
pub async fn token(docker: &Docker, role: TokenRole) -> Result<String, Failure> {
    let swarm = docker.inspect_swarm().await.map_err(|e| {
        Failure::User(format!(
            "this node cannot give a join token ({e}); run it on a manager of the swarm"
        ))
    })?;
    let tokens = swarm.join_tokens.unwrap_or_default();
    let token = match role {
        TokenRole::Worker => tokens.worker,
        TokenRole::Manager => tokens.manager,
    }
    .ok_or_else(|| Failure::System("the engine gave no join token".into()))?;
    let info = swarm_info(docker).await?;
    let mut managers = manager_addrs(&info);
    if managers.is_empty() {
        if let Some(addr) = info.node_addr.filter(|a| !a.is_empty()) {
            managers.push(with_manager_port(&addr));
        }
    }
    managers.sort();
    Ok(snippet(&managers, &token))
}

/// The cloud-config that joins through `managers` with `token`.
pub fn snippet(managers: &[String], token: &str) -> String {
    let addrs = managers
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "#cloud-config\ncorral:\n  swarm:\n    join:\n      remote_addrs: [{addrs}]\n      token: {token}\n"
    )
}

/// `corral swarm leave`: the node leaves its swarm (`force` for a manager, which may
/// cost the swarm its quorum), and the settings in force are recorded so that the next
/// boot does not join again with them.
pub async fn leave(
    docker: &Docker,
    force: bool,
    role: &SwarmRole,
    left_file: &Path,
) -> Result<String, Failure> {
    let options = bollard::query_parameters::LeaveSwarmOptions { force };
    let left = docker.leave_swarm(Some(options)).await;
    // Not in a swarm (a join still failing, say): the settings are still recorded, so
    // that the manager stops trying them.
    if let Err(e) = &left {
        if e.to_string().contains("not part of a swarm") {
            return match fingerprint(role) {
                Some(print) => status::record_left(left_file, &print)
                    .map(|()| {
                        "this node is not in a swarm; corral.swarm is not applied again at \
                         boot until it changes\n"
                            .to_string()
                    })
                    .map_err(|e| {
                        Failure::System(format!("recording in {}: {e}", left_file.display()))
                    }),
                None => Err(Failure::User("this node is not in a swarm".into())),
            };
        }
    }
    left.map_err(|e| {
        let text = e.to_string();
        if !force && text.contains("--force") {
            Failure::User(format!(
                "{text}; a manager leaves only with --force (the swarm may lose its quorum)"
            ))
        } else {
            Failure::System(format!("leaving the swarm: {text}"))
        }
    })?;
    let mut out = String::from("left the swarm\n");
    if let Some(print) = fingerprint(role) {
        match status::record_left(left_file, &print) {
            Ok(()) => out.push_str("corral.swarm is not applied again at boot until it changes\n"),
            Err(e) => {
                return Err(Failure::System(format!(
                    "left the swarm, but recording it in {} failed ({e}): the next boot \
                     applies corral.swarm again",
                    left_file.display()
                )))
            }
        }
    }
    Ok(out)
}
