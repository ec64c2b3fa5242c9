//! # corral-config
//!
//! Corral's configuration: the cloud-config schema (RancherOS's, with `rancher:` read as
//! `corral:`), the kernel command line, user-data and its forms, the datasources,
//! merging in precedence order, the saved configuration under `/var/lib/corral/conf/`
//! and validation that names every problem. See README.md for what it owns.

pub mod cmdline;
pub mod datasource;
pub mod edit;
pub mod error;
pub mod merge;
pub mod schema;
pub mod store;
pub mod userdata;
pub mod validate;

pub use error::ConfigError;
pub use schema::{Autologin, CloudConfig};

/// Where the kernel command line is read from.
pub const PROC_CMDLINE: &str = "/proc/cmdline";

/// The configuration in force on this machine: what the manager wrote at boot
/// ([`store::EFFECTIVE`]), or, before it has (or when it cannot be read), the kernel
/// command line's options with an error for each option that was left out.
pub fn load() -> Result<(CloudConfig, Vec<ConfigError>), ConfigError> {
    let effective = std::path::Path::new(store::EFFECTIVE);
    match store::read_layer(effective) {
        Ok(Some(userdata::UserData::CloudConfig { config, .. })) => {
            return Ok((*config, Vec::new()))
        }
        Ok(_) => {}
        Err(e) => log::warn!("{e}; using the kernel command line's configuration"),
    }
    let text = std::fs::read_to_string(PROC_CMDLINE)
        .map_err(|e| ConfigError::Read(PROC_CMDLINE.into(), e))?;
    Ok(cmdline::parse(&text))
}
