//! # corral-config
//!
//! Corral's configuration: the cloud-config schema (RancherOS's, `rancher:` read as
//! `corral:`; cloud-init's basics at the top level), each value checked as it is read so
//! errors carry the key's path, line, column and a hint (`schema/`, one module per section,
//! every key in `examples/full.yml`); the kernel command line's `corral.<path>=<yaml>` options
//! (`cmdline.rs`); user-data and its forms, `#cloud-config`, `#!`, `#compose` and gzip,
//! capped at 1 MiB, with unknown keys as warnings (`userdata.rs`); the datasources, NoCloud,
//! config drive, EC2 IMDSv2/v1, `url:`, `file:`, `cmdline`, one module each behind the
//! `Datasource` trait, tried in parallel with backoff (`datasource/`); merging in precedence order with RancherOS's metadata rules
//! (`merge.rs`); the saved configuration under `/var/lib/corral/conf/` with the last good
//! user-data kept when a new one is rejected, and the layered configuration in force
//! (`store.rs`); reading it by key and changing the `corral config set` layer only when
//! the result validates (`edit.rs`); validation that reports every problem, not just the first
//! (`validate.rs`); and RancherOS's service repositories, their `index.yml` and service
//! files fetched over http(s) (`repository.rs`); what `corral.system_docker` asks of the
//! system engine, as flags, variables and warnings (`system_engine.rs`); and the state
//! settings of a local datasource's user-data that PID 1 asks for before the state is
//! mounted (`state_seed.rs`, through `corral config state-seed`). The reference is
//! docs/cloud-config.md.
//!
//! One error type, `ConfigError` (`error.rs`), for reading, fetching, checking and
//! changing configuration.
//!
//! Tests: every key, the merge order, each datasource against fixture trees
//! (`tests/fixtures/`) or a fake metadata service (a real HTTP server on 127.0.0.1,
//! from the harness), a 34-case malformed corpus with exact errors, and
//! a mutation test of the parsers; `make fuzz` runs the cargo-fuzz targets in `fuzz/`.
//!
//! - **Owns:** the schema, parsing, the datasources and `/var/lib/corral/conf/`.
//! - **Must not touch:** running services or engines (the manager applies configuration;
//!   the console applies `write_files` and `runcmd`), files of other crates.
//! - **Talks to:** the datasources (block devices it mounts read-only under
//!   `/run/corral/media`, the metadata service and service repositories over HTTP); its callers (the manager, the
//!   console's `corral console-init`, `corral config validate`) use it as a library.

pub mod cmdline;
pub mod datasource;
pub mod edit;
pub mod error;
pub mod merge;
pub mod repository;
pub mod schema;
pub mod state_seed;
pub mod store;
pub mod system_engine;
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
