//! `corral config get`, `set`, `merge` and `export`: this machine's configuration read
//! by key and changed through corral-config's `edit`, every change checked first with
//! `config validate`'s checks (the user engine's included). The files are root's; the
//! manager reads them at boot, so a change takes effect at the next boot.

use crate::api::Failure;
use corral_config::edit::{self, Machine};
use corral_config::ConfigError;
use std::path::Path;

fn failure(e: ConfigError) -> Failure {
    if e.is_user_error() {
        Failure::user(e.to_string())
    } else {
        Failure::system(e.to_string())
    }
}

/// What `set` and `merge` check: the same as `config validate -i`.
fn check(origin: &str, bytes: &[u8]) -> corral_config::validate::Report {
    crate::validate::bytes_of(origin, bytes)
}

/// The value at `key` in the configuration in force.
pub fn get(m: &Machine, key: &str) -> Result<String, Failure> {
    let path = edit::key_path(key).map_err(failure)?;
    let force = m.in_force();
    match edit::lookup(&force.value, &path) {
        Some(v) => Ok(edit::show(v)),
        None => Err(Failure::user(format!(
            "{key} is not set on this machine; `corral config export --full` shows what is"
        ))),
    }
}

/// Sets `key` to `value` in the `config set` layer; says where it went.
pub fn set(m: &Machine, key: &str, value: &str) -> Result<String, Failure> {
    let path = m.set(key, value, &check).map_err(failure)?;
    Ok(format!(
        "{key} saved in {}; it takes effect at the next boot",
        path.display()
    ))
}

/// Merges a cloud-config (a file, `-` or none for stdin) over the `config set` layer.
pub fn merge(m: &Machine, input: Option<&Path>) -> Result<String, Failure> {
    let (origin, bytes) = read_input(input)?;
    let path = m.merge(&origin, &bytes, &check).map_err(failure)?;
    Ok(format!(
        "{origin} merged into {}; it takes effect at the next boot",
        path.display()
    ))
}

/// `input`'s bytes (stdin for none or `-`), named for messages.
fn read_input(input: Option<&Path>) -> Result<(String, Vec<u8>), Failure> {
    let path = input.unwrap_or(Path::new("-"));
    let origin = if path == Path::new("-") {
        "stdin".to_string()
    } else {
        path.display().to_string()
    };
    let bytes = crate::validate::read_input(path)
        .map_err(|e| Failure::user(format!("reading {origin}: {e}")))?;
    Ok((origin, bytes))
}

/// The machine's own configuration (its user-data and `config set` layer), or with
/// `full` every layer in force (OEM, metadata and the kernel command line included), as
/// YAML.
pub fn export(m: &Machine, full: bool) -> Result<String, Failure> {
    let doc = if full {
        m.in_force().value
    } else {
        m.own().map_err(failure)?
    };
    Ok(edit::render(&doc))
}

/// The configuration's files are root's: a clear error for anyone else.
pub fn need_root(command: &str) -> Result<(), Failure> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(Failure::user(format!(
        "corral config {command} reads and writes {}, which only root may: run sudo corral config {command} ...",
        corral_config::store::CONF_DIR
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_api::ErrorKind;

    fn machine(dir: &Path) -> Machine {
        Machine::under(dir, "corral.debug")
    }

    #[test]
    fn set_then_get_and_export_see_the_change() {
        let dir = tempfile::tempdir().unwrap();
        let m = machine(dir.path());
        let said = set(&m, "rancher.docker.engine", "corral/engine:next").expect("set");
        assert!(said.contains("takes effect at the next boot"), "{said}");
        assert_eq!(
            get(&m, "corral.docker.engine").expect("get"),
            "corral/engine:next"
        );
        let own = export(&m, false).expect("export");
        assert!(own.contains("engine: corral/engine:next"), "{own}");
        assert!(
            !own.contains("debug"),
            "the command line is not the machine's own"
        );
        let full = export(&m, true).expect("export --full");
        assert!(full.contains("debug: true"), "{full}");
        let e = get(&m, "corral.nothing").expect_err("unset");
        assert_eq!(e.kind, ErrorKind::User);
        assert!(e.message.contains("export --full"), "{}", e.message);
    }

    #[test]
    fn the_user_engine_checks_apply_to_a_set() {
        let dir = tempfile::tempdir().unwrap();
        let m = machine(dir.path());
        // A log driver the engine does not have: the engine's check refuses it.
        let e = set(&m, "corral.docker.log_driver", "journald").expect_err("refused");
        assert_eq!(e.kind, ErrorKind::User);
        assert!(e.message.contains("nothing was saved"), "{}", e.message);
        assert!(!m.store.set_path().exists());
    }

    #[test]
    fn merge_reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let m = machine(dir.path());
        let f = dir.path().join("in.yml");
        std::fs::write(&f, "hostname: merged\n").unwrap();
        merge(&m, Some(&f)).expect("merged");
        assert_eq!(get(&m, "hostname").unwrap(), "merged");
        let e = merge(&m, Some(&dir.path().join("missing.yml"))).expect_err("no file");
        assert!(e.message.starts_with("reading "), "{}", e.message);
    }
}
