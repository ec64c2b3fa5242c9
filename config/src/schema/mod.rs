//! The cloud-config schema: RancherOS's keys (under `corral:`, with `rancher:` read as the
//! same section) and cloud-init's basics at the top level. Every value is checked while it
//! is read, so a wrong type or a bad value is an error with the key's path, the line and
//! the column, and a hint. Unknown keys are accepted (and reported as warnings by
//! [`crate::userdata`]), so a RancherOS cloud-config loads unchanged.

use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;

#[macro_use]
mod scalar;
mod cloudinit;
mod commands;
mod datasources;
mod docker;
mod files;
mod mounts;
mod network;
mod registries;
mod services;
mod ssh;
mod state;
mod swarm;
mod users;

pub use cloudinit::*;
pub use commands::*;
pub use datasources::*;
pub use docker::*;
pub use files::*;
pub use mounts::*;
pub use network::*;
pub use registries::*;
pub use scalar::*;
pub use services::*;
pub use ssh::*;
pub use state::*;
pub use swarm::*;
pub use users::*;

/// A machine's configuration (cloud-config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CloudConfig {
    /// Public keys allowed to log in as `corral` over ssh.
    #[serde(default, deserialize_with = "null_is_default")]
    pub ssh_authorized_keys: Vec<String>,
    /// The host name.
    #[serde(default)]
    pub hostname: Option<Hostname>,
    /// Files written at boot, before the services start (or into a service).
    #[serde(default, deserialize_with = "null_is_default")]
    pub write_files: Vec<WriteFile>,
    /// Commands run in the console once it has started, every boot.
    #[serde(default, deserialize_with = "commands")]
    pub runcmd: Vec<Command>,
    /// Commands run on the host before the services start, every boot.
    #[serde(default, deserialize_with = "commands")]
    pub bootcmd: Vec<Command>,
    /// Filesystems mounted before the services start: cloud-init's
    /// `[device, mount point, type, options]` lists.
    #[serde(default, deserialize_with = "null_is_default")]
    pub mounts: Vec<Mount>,
    /// cloud-init's accounts, made in the console beside `corral`.
    #[serde(default, deserialize_with = "null_is_default")]
    pub users: Vec<UserEntry>,
    /// cloud-init's time servers.
    #[serde(default, deserialize_with = "null_is_default")]
    pub ntp: Ntp,
    /// cloud-init's password logins over ssh: Corral's sshd takes keys only, so `false`
    /// is what it does and `true` is a warning.
    #[serde(default)]
    pub ssh_pwauth: Option<yaml_serde::Value>,
    /// cloud-init's time zone (`Europe/Paris`), for the console; one that is not a zone
    /// name is a warning ([`CloudConfig::time_zone`]).
    #[serde(default)]
    pub timezone: Option<Scalar>,
    /// Corral's own section; `rancher:` is read as an alias.
    #[serde(default, alias = "rancher", deserialize_with = "null_is_default")]
    pub corral: Corral,
}

/// The `corral:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Corral {
    /// More authorized keys: what `corral.ssh_authorized_keys=[...]` on the kernel
    /// command line sets.
    #[serde(default, deserialize_with = "null_is_default")]
    pub ssh_authorized_keys: Vec<String>,
    /// Consoles that log `corral` in without a prompt.
    #[serde(default)]
    pub autologin: Autologin,
    #[serde(default, deserialize_with = "null_is_default")]
    pub network: Network,
    /// Extra system services, in docker-compose form (checked by the manager).
    #[serde(default, deserialize_with = "null_is_default")]
    pub services: BTreeMap<String, ServiceSpec>,
    /// Optional services to turn on (`true`) or off, by name.
    #[serde(default, deserialize_with = "null_is_default")]
    pub services_include: BTreeMap<ServiceName, bool>,
    /// RancherOS's service repositories, by name: where `services_include` and `corral
    /// service enable NAME` find services the machine does not carry.
    #[serde(default, deserialize_with = "null_is_default")]
    pub repositories: BTreeMap<String, Repository>,
    /// Kernel modules to load at boot (a list, or `a,b` as PID 1 takes it from the
    /// kernel command line).
    #[serde(default, deserialize_with = "list_or_commas")]
    pub modules: Vec<ModuleName>,
    /// The host name from the kernel command line (`corral.hostname=`); wins over
    /// `hostname:`.
    #[serde(default)]
    pub hostname: Option<Hostname>,
    /// Kernel parameters (`net.ipv4.ip_forward: 1`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub sysctl: BTreeMap<SysctlKey, Scalar>,
    /// Variables every system service gets (`HTTP_PROXY: http://...`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub environment: BTreeMap<EnvName, Scalar>,
    /// The user engine (issue "the user engine" reads it).
    #[serde(default, deserialize_with = "null_is_default")]
    pub docker: Engine,
    /// The system engine.
    #[serde(default, deserialize_with = "null_is_default")]
    pub system_docker: Engine,
    /// Credentials for image registries, by address (`https://index.docker.io/v1/`):
    /// docker's client configuration for `corral` and root in the console.
    #[serde(default, deserialize_with = "null_is_default")]
    pub registry_auths: BTreeMap<String, RegistryAuth>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub ssh: Ssh,
    /// Where the state partition is and whether to format it.
    #[serde(default, deserialize_with = "null_is_default")]
    pub state: State,
    /// The console: `default`, a console's name (`debian`) or an image
    /// (manager/src/consoles.rs).
    #[serde(default)]
    pub console: Option<ConsoleName>,
    /// Seconds the services get to stop at shutdown.
    #[serde(default)]
    pub shutdown_timeout: Option<u32>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub cloud_init: CloudInit,
    /// User-data from this URL (`corral.cloud_config_url=` on the kernel command line).
    #[serde(default)]
    pub cloud_config_url: Option<Url>,
    /// Where `corral os upgrade` and `corral os list` look, and how long a trial boot
    /// gets to become healthy.
    #[serde(default, deserialize_with = "null_is_default")]
    pub upgrade: Upgrade,
    /// The Docker Swarm the user engine starts or joins (docs/swarm.md).
    #[serde(default, deserialize_with = "null_is_default")]
    pub swarm: Swarm,
}

/// `corral.upgrade` (RancherOS's `rancher.upgrade.url` is read as `corral.upgrade.url`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Upgrade {
    /// The update repository (a folder served over http or https).
    #[serde(default)]
    pub url: Option<Url>,
    /// Seconds a trial boot gets to become healthy before it is rolled back (default
    /// 300, at least 60).
    #[serde(default)]
    pub health_timeout: Option<u32>,
}

impl CloudConfig {
    /// The host name to set: `corral.hostname` (the kernel command line's) or
    /// `hostname`.
    pub fn host_name(&self) -> Option<&Hostname> {
        self.corral.hostname.as_ref().or(self.hostname.as_ref())
    }

    /// `timezone` when it is a tz database name (`Europe/Paris`, `UTC`,
    /// `America/Argentina/Buenos_Aires`): letters, digits, `_`, `+`, `-`, in parts
    /// separated by `/`, none of them `.` or `..`; otherwise why not.
    pub fn time_zone(&self) -> Result<Option<&str>, String> {
        let Some(tz) = &self.timezone else {
            return Ok(None);
        };
        let tz = tz.0.trim();
        let ok = !tz.is_empty()
            && tz.len() <= 64
            && tz.split('/').all(|p| {
                !p.is_empty()
                    && p.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
            });
        if ok {
            Ok(Some(tz))
        } else {
            Err(format!(
                "timezone {tz:?} is not a time zone's name; write it as the tz database does, like Europe/Paris or UTC"
            ))
        }
    }

    /// Every authorized key, from both places, each once, in order.
    pub fn authorized_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for k in self
            .ssh_authorized_keys
            .iter()
            .chain(&self.corral.ssh_authorized_keys)
        {
            let k = k.trim();
            if !k.is_empty() && !keys.iter().any(|have| have == k) {
                keys.push(k.to_string());
            }
        }
        keys
    }
}

/// The keys the schema reads, section by section, for the unknown-key warnings. `*`
/// stands for any name (an interface, a service).
pub const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "ssh_authorized_keys",
            "hostname",
            "ntp",
            "ssh_pwauth",
            "timezone",
            "users",
            "write_files",
            "runcmd",
            "bootcmd",
            "mounts",
            "corral",
            "rancher",
        ],
    ),
    (
        "corral",
        &[
            "ssh_authorized_keys",
            "autologin",
            "network",
            "services",
            "services_include",
            "repositories",
            "modules",
            "sysctl",
            "environment",
            "docker",
            "system_docker",
            "registry_auths",
            "ssh",
            "state",
            "console",
            "shutdown_timeout",
            "cloud_init",
            "cloud_config_url",
            "upgrade",
            "swarm",
            "hostname",
            // Boot options PID 1 reads from the kernel command line.
            "cgroup",
            "debug_shell",
            "recovery",
            "rescue_after",
        ],
    ),
    (
        "corral.network",
        &[
            "interfaces",
            "dns",
            "http_proxy",
            "https_proxy",
            "no_proxy",
            "pre_cmds",
            "post_cmds",
        ],
    ),
    ("corral.upgrade", &["url", "health_timeout"]),
    (
        "corral.swarm",
        &[
            "init",
            "advertise_addr",
            "listen_addr",
            "data_path_addr",
            "default_addr_pool",
            "join",
            "labels",
            "availability",
        ],
    ),
    (
        "corral.swarm.join",
        &[
            "remote_addrs",
            "token",
            "advertise_addr",
            "listen_addr",
            "data_path_addr",
        ],
    ),
    ("corral.repositories.*", &["url"]),
    (
        "corral.network.interfaces.*",
        &[
            "dhcp",
            "address",
            "addresses",
            "gateway",
            "gateway_ipv6",
            "mtu",
            "bond",
            "bond_opts",
            "vlans",
            "bridge",
            "pre_up",
            "post_up",
        ],
    ),
    ("corral.network.dns", &["nameservers", "search"]),
    ("ntp", &["servers", "pools", "enabled"]),
    (
        "users.*",
        &[
            "name",
            "groups",
            "sudo",
            "ssh_authorized_keys",
            "shell",
            "gecos",
            "uid",
            "lock_passwd",
        ],
    ),
    (
        "corral.registry_auths.*",
        &["auth", "username", "password", "identitytoken", "email"],
    ),
    (
        "write_files.*",
        &[
            "path",
            "content",
            "encoding",
            "permissions",
            "owner",
            "append",
            "container",
        ],
    ),
    ("corral.docker", ENGINE_KEYS),
    ("corral.system_docker", ENGINE_KEYS),
    ("corral.ssh", &["keys", "port", "listen_address", "daemon"]),
    (
        "corral.state",
        &[
            "dev",
            "fstype",
            "autoformat",
            "wait",
            "required",
            "formatzero",
        ],
    ),
    ("corral.cloud_init", &["datasources"]),
];

const ENGINE_KEYS: &[&str] = &[
    "args",
    "extra_args",
    "environment",
    "storage_driver",
    "log_driver",
    "log_opts",
    "registry_mirror",
    "insecure_registry",
    "bip",
    "group",
    "debug",
    "tls",
    "tls_args",
    "engine",
    "bridge",
    "live_restore",
    "userland_proxy",
    "host",
    "ca_cert",
    "ca_key",
    "server_cert",
    "server_key",
    "graph",
    "exec_root",
    "pid_file",
    "config_file",
    "containerd",
    "restart",
    "selinux_enabled",
    "storage_context",
    "exec",
];

#[cfg(test)]
mod tests;
