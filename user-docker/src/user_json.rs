//! A user's own `/etc/docker/daemon.json` (RancherOS users write it with `write_files`,
//! since RancherOS's console shared `/etc/docker` with the engine), merged into the one
//! Corral makes from `corral.docker`:
//!
//! - a key `corral.docker` set, or a flag in `extra_args` set, stays as configured
//!   (dockerd refuses a setting given twice), the file's value named in a warning;
//! - a key Corral fixes (the engine's paths, sockets, group, TLS files, the image
//!   store's snapshotter) stays Corral's, with a warning;
//! - `runtimes` are added to Corral's; every other key replaces Corral's default.
//!
//! A file that is not a JSON object is an error and changes nothing.

use crate::daemon::{Plan, STORAGE_DRIVERS};
use serde_json::Value;

/// Where the file is written on a RancherOS machine.
pub const PATH: &str = "/etc/docker/daemon.json";

/// Keys Corral sets for the engine itself.
const FIXED: &[&str] = &[
    "data-root",
    "graph",
    "exec-root",
    "pidfile",
    "hosts",
    "group",
    "features",
    "containerd",
    "containerd-namespace",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
];

/// Merges `text` (the user's daemon.json) into `plan`; returns the warnings, or the
/// error when the file is not a JSON object.
pub fn merge(plan: &mut Plan, text: &[u8]) -> Result<Vec<String>, String> {
    let user = match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(format!(
                "{PATH} (write_files) is not a JSON object; Corral's settings are used"
            ))
        }
        Err(e) => {
            return Err(format!(
                "{PATH} (write_files) is not JSON ({e}); Corral's settings are used"
            ))
        }
    };
    let mut warnings = Vec::new();
    // Corral's default log options are json-file's; another driver from the file takes
    // none of them (dockerd refuses options its driver does not know).
    let driver = user
        .get("log-driver")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(d) = &driver {
        let ours = !plan
            .decided
            .iter()
            .any(|k| k == "log-driver" || k == "log-opts");
        if ours && !matches!(d.as_str(), "json-file" | "local") && !user.contains_key("log-opts") {
            plan.daemon_json.remove("log-opts");
        }
    }
    for (key, value) in user {
        if FIXED.contains(&key.as_str()) {
            warnings.push(format!(
                "{PATH}: {key}: ignored; Corral sets it for the engine"
            ));
            continue;
        }
        if key == "storage-driver" && !value.as_str().is_some_and(|d| STORAGE_DRIVERS.contains(&d))
        {
            warnings.push(format!(
                "{PATH}: storage-driver {value}: ignored; the engine uses overlay2 (or vfs)"
            ));
            continue;
        }
        if plan.decided.contains(&key) {
            if plan.daemon_json.get(&key) != Some(&value) {
                warnings.push(format!(
                    "{PATH}: {key}: corral.docker sets it, which wins over the file's {value}"
                ));
            }
            continue;
        }
        match (key.as_str(), plan.daemon_json.get_mut(&key), value) {
            ("runtimes", Some(Value::Object(ours)), Value::Object(theirs)) => {
                ours.extend(theirs);
            }
            (_, _, value) => {
                plan.daemon_json.insert(key, value);
            }
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(yaml: &str) -> Plan {
        let c: corral_config::schema::CloudConfig =
            yaml_serde::from_str(&format!("corral:\n  docker:\n{yaml}")).expect("yaml");
        crate::daemon::plan(&c.corral.docker, None).expect("plan")
    }

    #[test]
    fn the_users_file_fills_in_what_corral_docker_leaves_to_defaults() {
        let mut p = plan("    debug: true\n    extra_args: [--mtu=1400]\n");
        let warnings = merge(
            &mut p,
            br#"{"log-opts": {"max-size": "50m"}, "debug": false, "mtu": 1500,
                "data-root": "/mnt/docker", "storage-driver": "aufs",
                "runtimes": {"kata": {"path": "/opt/kata"}}, "labels": ["from=file"]}"#,
        )
        .expect("merged");
        assert_eq!(
            p.daemon_json["log-opts"],
            serde_json::json!({"max-size": "50m"})
        );
        assert_eq!(p.daemon_json["labels"], serde_json::json!(["from=file"]));
        assert_eq!(
            p.daemon_json["debug"],
            serde_json::json!(true),
            "corral.docker wins"
        );
        assert!(
            !p.daemon_json.contains_key("mtu"),
            "a flag sets it: dockerd takes it once"
        );
        assert!(!p.daemon_json.contains_key("data-root"));
        assert_eq!(
            p.daemon_json["storage-driver"],
            serde_json::json!("overlay2")
        );
        let runtimes = p.daemon_json["runtimes"].as_object().expect("runtimes");
        assert!(runtimes.contains_key("kata") && runtimes.contains_key("crun"));
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(warnings
            .iter()
            .any(|w| w.contains("debug: corral.docker sets it")));
        assert!(warnings.iter().any(|w| w.contains("data-root: ignored")));
    }

    #[test]
    fn another_log_driver_from_the_file_drops_corrals_json_file_options() {
        let mut p = plan("    debug: true\n");
        merge(&mut p, br#"{"log-driver": "syslog"}"#).expect("merged");
        assert_eq!(p.daemon_json["log-driver"], serde_json::json!("syslog"));
        assert!(!p.daemon_json.contains_key("log-opts"));
    }

    #[test]
    fn a_file_that_is_not_json_changes_nothing() {
        let mut p = plan("    debug: true\n");
        let before = p.daemon_json.clone();
        assert!(merge(&mut p, b"{not json")
            .unwrap_err()
            .contains("not JSON"));
        assert!(merge(&mut p, b"[1]")
            .unwrap_err()
            .contains("not a JSON object"));
        assert_eq!(p.daemon_json, before);
    }
}
