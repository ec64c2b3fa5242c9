//! `corral.docker`: the user engine's settings.

use super::*;

/// `corral.docker` and `corral.system_docker`: an engine's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Engine {
    /// The engine's flags, replacing the defaults (RancherOS's `args`).
    #[serde(default)]
    pub args: Option<Vec<Scalar>>,
    /// Flags added to the defaults.
    #[serde(default, deserialize_with = "null_is_default")]
    pub extra_args: Vec<Scalar>,
    /// The engine's environment (`[HTTP_PROXY=...]` or a mapping).
    #[serde(default, deserialize_with = "null_is_default")]
    pub environment: EnvList,
    #[serde(default)]
    pub storage_driver: Option<String>,
    #[serde(default)]
    pub log_driver: Option<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub log_opts: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub registry_mirror: Option<Url>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub insecure_registry: Vec<String>,
    #[serde(default)]
    pub bip: Option<Cidr>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub debug: Option<bool>,
    #[serde(default)]
    pub tls: Option<bool>,
    /// dockerd's TLS flags when `tls` is on, instead of Corral's (RancherOS's key; file
    /// names are relative to the TLS folder).
    #[serde(default)]
    pub tls_args: Option<Vec<Scalar>>,
    /// The engine image (`corral/engine:<version>` when unset).
    #[serde(default)]
    pub engine: Option<String>,
    /// The bridge containers attach to (`none`: no default bridge).
    #[serde(default)]
    pub bridge: Option<String>,
    #[serde(default)]
    pub live_restore: Option<bool>,
    #[serde(default)]
    pub userland_proxy: Option<bool>,
    /// More sockets for the engine to listen on (`tcp://0.0.0.0:2375`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub host: Vec<String>,
    /// PEM texts to use instead of generated TLS files (RancherOS's keys).
    #[serde(default)]
    pub ca_cert: Option<String>,
    #[serde(default)]
    pub ca_key: Option<String>,
    #[serde(default)]
    pub server_cert: Option<String>,
    #[serde(default)]
    pub server_key: Option<String>,
    /// RancherOS's keys that place the engine's files or pick its process model; Corral
    /// fixes those, so the engine reports any of them as an error naming the key.
    #[serde(default)]
    pub graph: Option<yaml_serde::Value>,
    #[serde(default)]
    pub exec_root: Option<yaml_serde::Value>,
    #[serde(default)]
    pub pid_file: Option<yaml_serde::Value>,
    #[serde(default)]
    pub config_file: Option<yaml_serde::Value>,
    #[serde(default)]
    pub containerd: Option<yaml_serde::Value>,
    #[serde(default)]
    pub restart: Option<yaml_serde::Value>,
    #[serde(default)]
    pub selinux_enabled: Option<yaml_serde::Value>,
    #[serde(default)]
    pub storage_context: Option<yaml_serde::Value>,
    #[serde(default)]
    pub exec: Option<yaml_serde::Value>,
}
