//! `corral.ssh`: the daemon, its port and address, host keys.

use super::*;

/// `corral.ssh`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Ssh {
    /// Host keys to use instead of generated ones: `ed25519`, `ed25519-pub`, `ecdsa`,
    /// `ecdsa-pub` (RancherOS also had `rsa`, `dsa`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub keys: BTreeMap<String, String>,
    /// sshd's port (default 22).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub listen_address: Option<IpAddr>,
    /// Whether sshd runs at all (default true).
    #[serde(default)]
    pub daemon: Option<bool>,
}
