//! `corral config validate`: every problem in a cloud-config, with its file, line,
//! column, key and a hint. `-i FILE` checks a file (on a laptop, before it is used);
//! without it, the machine's own configuration: the saved layers, the last rejected
//! user-data and the kernel command line.

use corral_config::store::{self, Store};
use corral_config::userdata::{self, UserData};
use corral_config::validate::{self, Report};
use corral_config::CloudConfig;
use std::io::Read;
use std::path::Path;

/// A cloud-config file's bytes (`-` is stdin), read up to one byte past the user-data
/// limit so that a larger one is reported as too large, not cut short.
pub fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let reader = if path == Path::new("-") {
        Box::new(std::io::stdin()) as Box<dyn Read>
    } else {
        Box::new(std::fs::File::open(path)?)
    };
    reader
        .take(corral_config::userdata::MAX_USER_DATA as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Checks one file.
pub fn file(path: &Path) -> std::io::Result<Report> {
    Ok(bytes_of(&path.display().to_string(), &read_input(path)?))
}

/// Checks a cloud-config's bytes; `origin` names it in the messages.
pub fn bytes_of(origin: &str, bytes: &[u8]) -> Report {
    let mut report = validate::layer(origin, bytes);
    if report.errors.is_empty() {
        let doc = validate::as_user_data(bytes);
        if let Ok(UserData::CloudConfig { config, .. }) = userdata::parse(origin, &doc) {
            add_engine(&mut report, origin, &config);
        }
    }
    report
}

/// What the engines cannot honour in `config` (`corral.docker`, `corral.system_docker`),
/// the way the manager will report it at boot.
fn add_engine(report: &mut Report, origin: &str, config: &CloudConfig) {
    let c = &config.corral;
    let system = corral_config::system_engine::settings(c);
    report
        .warnings
        .extend(system.warnings.iter().map(|w| format!("{origin}: {w}")));
    match corral_user_docker::daemon::plan(&c.docker, c.shutdown_timeout) {
        Ok(plan) => report
            .warnings
            .extend(plan.warnings.iter().map(|w| format!("{origin}: {w}"))),
        Err(errors) => report.errors.extend(errors.iter().map(|e| {
            format!("{origin}: {e} (at boot the user engine would start with Corral's default settings)")
        })),
    }
}

/// Checks the machine's configuration as the manager reads it at boot.
pub fn machine(store: &Store, oem: &Path, cmdline: &str) -> Report {
    let mut all = Report::default();
    let mut add = |r: Report| {
        all.errors.extend(r.errors);
        all.warnings.extend(r.warnings);
    };
    for path in [oem.to_path_buf(), store.set_path()] {
        if let Ok(bytes) = std::fs::read(&path) {
            add(validate::layer(&path.display().to_string(), &bytes));
        }
    }
    for path in [store.user_data_path(), store.rejected_path()] {
        if let Ok(bytes) = std::fs::read(&path) {
            add(validate::user_data(&path.display().to_string(), &bytes));
        }
    }
    let (_, option_errors) = corral_config::cmdline::checked(cmdline);
    add(Report {
        errors: option_errors.iter().map(|e| e.to_string()).collect(),
        warnings: Vec::new(),
    });
    let effective = store::effective(store, oem, cmdline);
    add_engine(&mut all, "the configuration in force", &effective.config);
    all
}

/// The machine's report with the real paths.
pub fn this_machine() -> Report {
    let cmdline = std::fs::read_to_string(corral_config::PROC_CMDLINE).unwrap_or_default();
    machine(
        &Store::new(store::CONF_DIR),
        Path::new(store::OEM_FILE),
        &cmdline,
    )
}

/// Prints the report; true when there are no errors.
pub fn print(what: &str, r: &Report) -> bool {
    for e in &r.errors {
        println!("error: {e}");
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
    if r.errors.is_empty() {
        println!("{what}: valid ({} warnings)", r.warnings.len());
    } else {
        println!(
            "{what}: {} errors, {} warnings",
            r.errors.len(),
            r.warnings.len()
        );
    }
    r.errors.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_report_covers_every_layer_and_the_rejected_user_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        std::fs::write(store.set_path(), "corral:\n  console: two words\n").expect("w");
        std::fs::write(store.user_data_path(), "#cloud-config\nfoo: 1\n").expect("w");
        std::fs::write(store.rejected_path(), "#cloud-config\nhostname: [x\n").expect("w");
        let r = machine(
            &store,
            Path::new("/nonexistent"),
            "corral.shutdown_timeout=x",
        );
        assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
        assert!(r.errors[0].contains("cloud-config.yml: line 2 column 12: corral.console"));
        assert!(r.errors[1].contains("user-data.rejected: line 3 column 1"));
        assert!(r.errors[2].starts_with("kernel command line: corral.shutdown_timeout"));
        assert_eq!(r.warnings.len(), 1);
    }

    #[test]
    fn a_file_is_checked_with_or_without_its_header() {
        let f = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(f.path(), "hostname: web1\n").expect("w");
        assert!(file(f.path()).expect("reads").errors.is_empty());
        std::fs::write(f.path(), "#cloud-config\nhostname: web_1\n").expect("w");
        let r = file(f.path()).expect("reads");
        assert!(
            r.errors[0].contains("line 2 column 11: hostname"),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn what_the_user_engine_cannot_honour_is_reported_by_key() {
        let f = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(
            f.path(),
            "rancher:\n  docker:\n    log_driver: journald\n    group: wheel\n",
        )
        .expect("w");
        let r = file(f.path()).expect("reads");
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(
            r.errors
                .iter()
                .any(|e| e.contains("corral.docker.group: \"wheel\"")),
            "{:?}",
            r.errors
        );
        // What Corral fixes (a RancherOS driver) is a warning.
        std::fs::write(f.path(), "rancher:\n  docker:\n    storage_driver: zfs\n").expect("w");
        let r = file(f.path()).expect("reads");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("corral.docker.storage_driver: \"zfs\"")),
            "{:?}",
            r.warnings
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        std::fs::write(
            store.set_path(),
            "corral:\n  docker:\n    log_driver: journald\n",
        )
        .expect("w");
        let r = machine(&store, Path::new("/nonexistent"), "");
        assert!(
            r.errors
                .iter()
                .any(|e| e.starts_with("the configuration in force: corral.docker.log_driver")),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn what_the_system_engine_cannot_take_is_a_warning_by_key() {
        let f = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(
            f.path(),
            "rancher:\n  system_docker:\n    storage_driver: overlay\n    extra_args: [--data-root=/x, --debug]\n",
        )
        .expect("w");
        let r = file(f.path()).expect("reads");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        for says in [
            "corral.system_docker.storage_driver: ignored",
            "corral.system_docker.extra_args: --data-root=/x: ignored",
        ] {
            assert!(
                r.warnings.iter().any(|w| w.contains(says)),
                "{says}: {:?}",
                r.warnings
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        std::fs::write(
            store.set_path(),
            "corral:\n  system_docker:\n    bip: 10.9.0.1/16\n",
        )
        .expect("w");
        let r = machine(&store, Path::new("/nonexistent"), "");
        assert!(
            r.warnings
                .iter()
                .any(|w| w
                    .starts_with("the configuration in force: corral.system_docker.bip: ignored")),
            "{:?}",
            r.warnings
        );
    }
}
