//! Applying the configuration once per boot: user-data fetched from the datasources,
//! saved or rejected (the last good one kept), then applied on the host (hostname,
//! sysctl, modules, mounts, bootcmd), with a report on the console and in [`REPORT`].

use crate::apply;
use corral_config::datasource;
use corral_config::state_seed;
use corral_config::store::{self, Effective, Store};
use corral_config::userdata::UserData;

/// The configuration from what is saved and the kernel command line.
pub fn current_config() -> Effective {
    let cmdline = std::fs::read_to_string(corral_config::PROC_CMDLINE).unwrap_or_default();
    store::effective(
        &Store::new(store::CONF_DIR),
        std::path::Path::new(store::OEM_FILE),
        &cmdline,
    )
}

/// Whether [`configure`] ran already in this boot: it writes [`store::EFFECTIVE`] (on
/// /run, a tmpfs) once the user-data is fetched and saved, before it applies anything.
/// A manager started again after the last one was killed finds it and does not
/// fetch or apply again (bootcmd runs at most once per boot).
pub fn configured_this_boot() -> bool {
    std::path::Path::new(store::EFFECTIVE).exists()
}

/// Where the boot's configuration report goes (root only, mode 0600).
const REPORT: &str = "/var/log/cloud-config.log";

/// How long the datasources get, all together, before the boot goes on without them.
const DATASOURCE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// How long one bootcmd may run.
const BOOTCMD_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Fetches user-data from the datasources, saves it (or rejects it, keeping the last
/// good one), and applies the result on the host: hostname, sysctl, modules, mounts,
/// bootcmd. Everything it did and every problem goes to the log and to [`REPORT`].
pub async fn configure(saved: &Effective) -> Effective {
    use log::Level::{Error, Info, Warn};
    let mut report: Vec<(log::Level, String)> = Vec::new();
    let (sources, env) = datasource::configured(&saved.config.corral);
    let names: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    let started = std::time::Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        datasource::first_answer(&sources, &env, DATASOURCE_DEADLINE)
    })
    .await
    .unwrap_or_default();
    for f in &outcome.failures {
        report.push((Warn, format!("datasource: {f}")));
    }
    // Saving takes the store's lock and fsyncs; applying mounts and loads modules: none
    // of it may stall the manager's one thread (the API, the watcher, SIGTERM).
    let applied =
        tokio::task::spawn_blocking(move || save_and_apply(&outcome, started, &names)).await;
    let effective = match applied {
        Ok((lines, effective)) => {
            report.extend(lines);
            effective
        }
        Err(e) => {
            report.push((Error, format!("saving and applying the configuration: {e}")));
            current_config()
        }
    };
    let c = &effective.config;
    for line in apply::run_commands("bootcmd", &c.bootcmd, BOOTCMD_LIMIT).await {
        report.push((Info, line));
    }
    let mut text = String::new();
    for (level, line) in &report {
        log::log!(*level, "cloud-config: {line}");
        let tag = match level {
            Error => "error",
            Warn => "warning",
            _ => "info",
        };
        text.push_str(&format!("{tag}: {line}\n"));
    }
    // Root only: the report quotes the configuration, which may hold secrets.
    if let Err(e) = store::write_private(std::path::Path::new(REPORT), text.as_bytes()) {
        log::error!("writing {REPORT}: {e}");
    }
    effective
}

/// Saves the fetched user-data (or rejects it, keeping the last good one), writes the
/// merged configuration and the `#!` script, and applies the host's part: hostname,
/// sysctl, modules, mounts. Blocking; returns the report's lines and the configuration.
fn save_and_apply(
    outcome: &datasource::Outcome,
    started: std::time::Instant,
    names: &[String],
) -> (Vec<(log::Level, String)>, Effective) {
    use log::Level::{Error, Info, Warn};
    let mut report: Vec<(log::Level, String)> = Vec::new();
    let store = Store::new(store::CONF_DIR);
    match &outcome.fetched {
        Some(fetched) => {
            report.push((
                Info,
                format!(
                    "user-data from {} ({} bytes) in {:.1}s",
                    fetched.source,
                    fetched.user_data.len(),
                    started.elapsed().as_secs_f64()
                ),
            ));
            match store.save(fetched) {
                // Its warnings come with the merged configuration's, below; its own state
                // settings (the command line's were PID 1's to apply) may come too late.
                Ok(store::Verdict::Accepted(UserData::CloudConfig { config, .. })) => {
                    let mountinfo =
                        std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
                    let live = corral_host::mountinfo::state_device(&mountinfo).is_none();
                    let state = &config.corral.state;
                    let late = state_seed::late_warning(state, &fetched.source, live);
                    report.extend(late.map(|w| (Warn, w)));
                }
                Ok(store::Verdict::Accepted(_)) => {}
                Ok(store::Verdict::Rejected(e)) => report.push((
                    Error,
                    format!(
                        "{e}; this user-data is rejected whole and the machine boots with \
                         the last good configuration (see `corral config validate`)"
                    ),
                )),
                Err(e) => report.push((
                    Error,
                    format!("saving the user-data in {}: {e}", store.dir.display()),
                )),
            }
        }
        None => report.push((
            Info,
            format!(
                "no datasource had user-data (tried {}); the saved configuration applies",
                names.join(", ")
            ),
        )),
    }
    let effective = current_config();
    report.extend(effective.errors.iter().map(|e| (Error, e.clone())));
    report.extend(effective.warnings.iter().map(|w| (Warn, w.clone())));
    match yaml_serde::to_string(&effective.value) {
        Ok(text) => {
            let _ = std::fs::create_dir_all("/run/corral");
            let path = std::path::Path::new(store::EFFECTIVE);
            if let Err(e) = store::write_private(path, text.as_bytes()) {
                report.push((Error, format!("writing {}: {e}", store::EFFECTIVE)));
            }
        }
        Err(e) => report.push((Error, format!("{}: {e}", store::EFFECTIVE))),
    }
    // A `#!` user-data for the console to run (`corral runcmd`).
    let script = std::path::Path::new(store::USER_SCRIPT);
    match &effective.script {
        Some(text) => {
            let written = store::write_private(script, text.as_bytes()).and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o700))
            });
            if let Err(e) = written {
                report.push((Error, format!("writing {}: {e}", store::USER_SCRIPT)));
            }
        }
        None => {
            let _ = std::fs::remove_file(script);
        }
    }
    let sys = corral_host::sys::Linux;
    let c = &effective.config;
    let mut problems = Vec::new();
    if let Some(name) = c.host_name() {
        problems.extend(apply::hostname(&sys, name));
        report.push((Info, format!("hostname {name}")));
    }
    problems.extend(apply::sysctl(&sys, &c.corral.sysctl));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    problems.extend(apply::modules(&sys, release.trim(), &c.corral.modules));
    problems.extend(apply::mounts(&sys, &c.mounts));
    report.extend(problems.into_iter().map(|p| (Error, p)));
    (report, effective)
}
