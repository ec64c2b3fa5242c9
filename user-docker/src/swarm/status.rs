//! What the manager's swarm loop last did, for `corral swarm status`:
//! `/run/corral/swarm.json` (root only; no token in it); on the state partition, the
//! record of the membership Corral made (node id and the settings' fingerprint) and the
//! marker `corral swarm leave` keeps so that the next boot does not join again with the
//! same settings.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The manager's record of this boot's swarm work.
pub const STATUS_FILE: &str = "/run/corral/swarm.json";
/// The fingerprint of the settings a node left with (`corral swarm leave`).
pub const LEFT_FILE: &str = "/var/lib/corral/swarm-left";
/// The node id and settings' fingerprint of the membership Corral made.
pub const MADE_FILE: &str = "/var/lib/corral/swarm-made";
/// The most of the status file that is read.
const MAX_STATUS: u64 = 64 * 1024;

/// Where the manager's work stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `corral.swarm` asks for nothing.
    NotConfigured,
    /// Waiting for the engine, or for a join or leave the engine is part-way through.
    Waiting,
    /// The last attempt failed; another follows.
    Retrying,
    /// The node is where the configuration wants it.
    Done,
    /// The node is in a swarm or state the configuration does not describe; untouched.
    LeftAlone,
    /// `corral swarm leave` was run with these settings; they are not applied again.
    Left,
}

/// The status file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `init`, `join` or `none`.
    pub wanted: String,
    pub phase: Phase,
    /// What happened last, in words (never the token).
    pub message: String,
    /// Attempts made this boot.
    pub attempts: u32,
    /// Seconds since boot when this was written.
    pub at: f64,
}

impl Status {
    /// Writes the status file (whole or not at all).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write(path, &text)
    }

    /// The status file, if there is one that reads.
    pub fn load(path: &Path) -> Option<Status> {
        crate::read_json(path, MAX_STATUS)
    }
}

/// Whether `corral swarm leave` was run with the settings whose fingerprint is `print`.
pub fn left_with(path: &Path, print: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.trim() == print)
}

/// Records that the node left with the settings whose fingerprint is `print`.
pub fn record_left(path: &Path, print: &str) -> std::io::Result<()> {
    write(path, format!("{print}\n").as_bytes())
}

/// Records that the settings whose fingerprint is `print` put node `node_id` in its
/// swarm.
pub fn record_made(path: &Path, print: &str, node_id: &str) -> std::io::Result<()> {
    write(path, format!("{print} {node_id}\n").as_bytes())
}

/// Writes one of these files, root's only, whole or not at all, its folder made first.
fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    corral_config::store::write_private(path, bytes)
}

/// Who made the membership of node `node_id`, from the record at `path`.
pub fn made_by(path: &Path, print: &str, node_id: Option<&str>) -> super::MadeBy {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next(), node_id) {
        (Some(p), Some(id), Some(node)) if id == node && p == print => super::MadeBy::TheseSettings,
        (Some(_), Some(id), Some(node)) if id == node => super::MadeBy::OtherSettings,
        _ => super::MadeBy::Unknown,
    }
}
