//! # corral-config
//!
//! Corral's configuration: the cloud-config schema (RancherOS's, with `rancher:` read as
//! `corral:`) and the sources it comes from. Today the source is the kernel command line
//! (`corral.<path>=<yaml>`); the datasources and merging of saved user-data land with
//! the cloud-config issue.

pub mod cmdline;
pub mod datasource;
pub mod error;
pub mod merge;
pub mod schema;
pub mod store;
pub mod userdata;

pub use error::ConfigError;
pub use schema::{Autologin, CloudConfig};

/// Where the kernel command line is read from.
pub const PROC_CMDLINE: &str = "/proc/cmdline";

/// The configuration in force on this machine: the kernel command line's options, and
/// an error for each option that was left out (see [`cmdline::parse`]).
pub fn load() -> Result<(CloudConfig, Vec<ConfigError>), ConfigError> {
    let text = std::fs::read_to_string(PROC_CMDLINE)
        .map_err(|e| ConfigError::Read(PROC_CMDLINE.into(), e))?;
    Ok(cmdline::parse(&text))
}
