//! Reading the configuration by key, and changing it: `corral config get`, `set`,
//! `merge` and `export`. Changes go to the `corral config set` layer
//! (`cloud-config.yml` in the store) and only when the result still validates, alone
//! and merged with the other layers; a refused change leaves the file as it was. The
//! manager reads the layers at boot, so a change takes effect at the next boot.

use crate::store::{self, Effective, Store};
use crate::userdata::UserData;
use crate::validate::Report;
use crate::{merge, ConfigError};
use std::path::PathBuf;
use yaml_serde::{Mapping, Value};

/// Maps whose own keys hold dots (`corral.sysctl.net.ipv4.ip_forward`): below one, the
/// rest of a key is a single name.
const DOTTED: &[&[&str]] = &[&["corral", "sysctl"]];

/// The first line of the file `set` and `merge` write.
const HEADER: &str =
    "# Written by `corral config set` and `corral config merge`; the manager reads it at boot.\n";

/// Why a change was refused: every problem, each naming the file, line, key and fix.
#[derive(Debug)]
pub struct Refusal {
    pub change: String,
    pub errors: Vec<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is refused and nothing was saved: the configuration would not validate",
            self.change
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// A key as a path of names: `rancher.` is `corral.`, and below `corral.sysctl` the rest
/// is one name.
pub fn key_path(key: &str) -> Result<Vec<String>, ConfigError> {
    let bad = |why: &str| ConfigError::BadKey {
        key: key.to_string(),
        why: why.to_string(),
    };
    if key.is_empty() {
        return Err(bad("it is empty"));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it holds a space or a control character"));
    }
    let mut path: Vec<String> = Vec::new();
    let mut rest = key;
    while !rest.is_empty() {
        let dotted = DOTTED
            .iter()
            .any(|d| d.len() == path.len() && d.iter().zip(&path).all(|(a, b)| a == b));
        let (name, more) = if dotted {
            (rest, "")
        } else {
            match rest.split_once('.') {
                Some((_, "")) => return Err(bad("it ends with a dot")),
                Some((n, m)) => (n, m),
                None => (rest, ""),
            }
        };
        if name.is_empty() {
            return Err(bad(
                "it has an empty part (two dots in a row, or a leading dot)",
            ));
        }
        let name = if path.is_empty() && name == "rancher" {
            "corral"
        } else {
            name
        };
        path.push(name.to_string());
        rest = more;
    }
    Ok(path)
}

/// The value at `path` in `doc`.
pub fn lookup<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, name| match v {
        Value::Mapping(m) => m.get(name.as_str()),
        _ => None,
    })
}

/// Sets `path` in `doc` to `value`, making the sections on the way. `key` names the
/// change in errors.
pub fn assign(
    doc: &mut Value,
    key: &str,
    path: &[String],
    value: Value,
) -> Result<(), ConfigError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(ConfigError::BadKey {
            key: key.to_string(),
            why: "it is empty".into(),
        });
    };
    if matches!(doc, Value::Null) {
        *doc = Value::Mapping(Mapping::new());
    }
    let mut here = doc;
    for (i, name) in parents.iter().enumerate() {
        let Value::Mapping(map) = here else {
            return Err(ConfigError::NotASection {
                key: key.to_string(),
                at: path[..i].join("."),
            });
        };
        let entry = map
            .entry(Value::String(name.clone()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if matches!(entry, Value::Null) {
            *entry = Value::Mapping(Mapping::new());
        }
        here = entry;
    }
    let Value::Mapping(map) = here else {
        return Err(ConfigError::NotASection {
            key: key.to_string(),
            at: parents.join("."),
        });
    };
    map.insert(Value::String(last.clone()), value);
    Ok(())
}

/// A value as `get` prints it: a scalar bare, anything else as YAML.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => yaml_serde::to_string(other)
            .unwrap_or_default()
            .trim_end()
            .to_string(),
    }
}

/// A document as a YAML file's text (an empty mapping for nothing).
pub fn render(value: &Value) -> String {
    match value {
        Value::Mapping(m) if m.is_empty() => String::new(),
        Value::Null => String::new(),
        v => yaml_serde::to_string(v).unwrap_or_default(),
    }
}

/// A layer that parsed as something other than a cloud-config (a script or a services
/// file), which `set` and `merge` cannot work on.
fn not_cloud_config(origin: &str) -> ConfigError {
    ConfigError::UnknownForm {
        origin: origin.to_string(),
        first_line: "a script or a services file".into(),
    }
}

/// The configuration layers of one machine: its store, its OEM file and its kernel
/// command line.
#[derive(Debug, Clone)]
pub struct Machine {
    pub store: Store,
    pub oem: PathBuf,
    pub cmdline: String,
}

impl Machine {
    /// This machine, with the real paths.
    pub fn here() -> Machine {
        Machine {
            store: Store::new(store::CONF_DIR),
            oem: PathBuf::from(store::OEM_FILE),
            cmdline: std::fs::read_to_string(crate::PROC_CMDLINE).unwrap_or_default(),
        }
    }

    /// A machine whose files all live under `dir` (`conf/`, `oem.yml`), with
    /// `cmdline` as its kernel command line: for tests and tools.
    pub fn under(dir: &std::path::Path, cmdline: &str) -> Machine {
        Machine {
            store: Store::new(dir.join("conf")),
            oem: dir.join("oem.yml"),
            cmdline: cmdline.to_string(),
        }
    }

    /// The configuration in force: every layer merged (`export --full`, `get`).
    pub fn in_force(&self) -> Effective {
        store::effective(&self.store, &self.oem, &self.cmdline)
    }

    /// What was given to this machine: its user-data and its `config set` layer, merged
    /// (`export`; without the OEM's, the metadata's and the command line's).
    pub fn own(&self) -> Result<Value, ConfigError> {
        let user = match self.store.user_data()? {
            Some(UserData::CloudConfig { value, .. }) => value,
            _ => Value::Null,
        };
        Ok(merge::layers([user, self.set_layer()?]))
    }

    /// The `config set` layer's document (an empty mapping when there is none).
    pub fn set_layer(&self) -> Result<Value, ConfigError> {
        match store::read_layer(&self.store.set_path())? {
            Some(UserData::CloudConfig { value, .. }) => Ok(merge::normalize(value)),
            Some(_) => Err(not_cloud_config(
                &self.store.set_path().display().to_string(),
            )),
            None => Ok(Value::Mapping(Mapping::new())),
        }
    }

    /// Applies `edit` to the `config set` layer and saves it, when the new layer passes
    /// `check` (a validator, given the file's name and its new bytes) and, merged with
    /// the other layers, brings no error that was not there before. `change` names the
    /// change in a refusal. Returns the file written.
    pub fn change(
        &self,
        change: &str,
        check: &dyn Fn(&str, &[u8]) -> Report,
        edit: impl FnOnce(&mut Value) -> Result<(), ConfigError>,
    ) -> Result<PathBuf, ConfigError> {
        let path = self.store.set_path();
        // Read, check and write under the store's lock: a change made meanwhile is
        // neither lost nor overwritten.
        let _lock = self.store.lock().map_err(|source| ConfigError::Write {
            path: self.store.dir.join(".lock"),
            source,
        })?;
        let mut doc = self.set_layer()?;
        edit(&mut doc)?;
        let text = format!("{HEADER}{}", render(&merge::normalize(doc)));
        let origin = path.display().to_string();
        let refuse = |errors: Vec<String>| {
            ConfigError::Refused(Refusal {
                change: change.to_string(),
                errors,
            })
        };
        let report = check(&origin, text.as_bytes());
        if !report.errors.is_empty() {
            return Err(refuse(report.errors));
        }
        let before = self.in_force().errors;
        let after = store::effective_with(
            &self.store,
            &self.oem,
            &self.cmdline,
            store::parse_layer(&origin, text.as_bytes()).map(Some),
        )
        .errors;
        let new: Vec<String> = after.into_iter().filter(|e| !before.contains(e)).collect();
        if !new.is_empty() {
            return Err(refuse(new));
        }
        let write = |source| ConfigError::Write {
            path: path.clone(),
            source,
        };
        self.store.make_dir().map_err(write)?;
        store::write_private(&path, text.as_bytes()).map_err(write)?;
        Ok(path)
    }

    /// `set KEY VALUE`: `value` is YAML (`3`, `[a, b]`, `true`), or text when it is not.
    pub fn set(
        &self,
        key: &str,
        value: &str,
        check: &dyn Fn(&str, &[u8]) -> Report,
    ) -> Result<PathBuf, ConfigError> {
        let path = key_path(key)?;
        let value = crate::cmdline::value_of(value);
        self.change(&format!("`corral config set {key}`"), check, |doc| {
            assign(doc, key, &path, value)
        })
    }

    /// `merge`: a cloud-config document (checked on its own first, so its errors carry
    /// its own lines) merged over the `config set` layer.
    pub fn merge(
        &self,
        origin: &str,
        bytes: &[u8],
        check: &dyn Fn(&str, &[u8]) -> Report,
    ) -> Result<PathBuf, ConfigError> {
        let report = check(origin, bytes);
        let change = format!("merging {origin}");
        if !report.errors.is_empty() {
            return Err(ConfigError::Refused(Refusal {
                change,
                errors: report.errors,
            }));
        }
        let over = match store::parse_layer(origin, bytes)? {
            UserData::CloudConfig { value, .. } => value,
            UserData::Empty => Value::Null,
            _ => return Err(not_cloud_config(origin)),
        };
        self.change(&change, check, |doc| {
            *doc = merge::merge(std::mem::take(doc), over);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn machine(dir: &Path) -> Machine {
        Machine::under(dir, "")
    }

    fn check(origin: &str, bytes: &[u8]) -> Report {
        crate::validate::layer(origin, bytes)
    }

    #[test]
    fn changes_made_at_once_are_all_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let m = machine(dir.path());
                std::thread::spawn(move || {
                    m.set(&format!("corral.environment.K{i}"), "v", &check)
                        .expect("set")
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let layer = machine(dir.path()).set_layer().expect("layer");
        let env = &layer["corral"]["environment"];
        for i in 0..8 {
            assert_eq!(env[format!("K{i}").as_str()], Value::from("v"), "{layer:?}");
        }
        assert!(
            dir.path().join("conf/.lock").exists(),
            "the store's lock file"
        );
    }

    #[test]
    fn keys_are_dotted_paths_with_rancher_as_corral_and_sysctl_names_whole() {
        assert_eq!(key_path("hostname").unwrap(), ["hostname"]);
        assert_eq!(
            key_path("rancher.docker.engine").unwrap(),
            ["corral", "docker", "engine"]
        );
        assert_eq!(
            key_path("corral.sysctl.net.ipv4.ip_forward").unwrap(),
            ["corral", "sysctl", "net.ipv4.ip_forward"]
        );
        for bad in ["", "a..b", ".a", "a.", "a b"] {
            assert!(
                matches!(key_path(bad), Err(ConfigError::BadKey { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_set_is_saved_root_only_and_read_back_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let m = machine(dir.path());
        std::fs::create_dir_all(&m.store.dir).unwrap();
        std::fs::write(
            m.store.user_data_path(),
            "#cloud-config\nhostname: from-user-data\ncorral:\n  shutdown_timeout: 20\n",
        )
        .unwrap();
        let written = m.set("hostname", "web-1", &check).expect("saved");
        assert_eq!(written, m.store.set_path());
        m.set("rancher.sysctl.net.ipv4.ip_forward", "1", &check)
            .expect("saved");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&written).unwrap().mode() & 0o777, 0o600);
        let force = m.in_force();
        assert!(force.errors.is_empty(), "{:?}", force.errors);
        assert_eq!(force.config.hostname.as_deref(), Some("web-1"));
        let got = lookup(
            &force.value,
            &key_path("corral.sysctl.net.ipv4.ip_forward").unwrap(),
        )
        .expect("set");
        assert_eq!(show(got), "1");
        assert_eq!(
            show(lookup(&force.value, &key_path("corral.shutdown_timeout").unwrap()).unwrap()),
            "20",
            "the user-data's keys stay"
        );
        // export: user-data and the set layer, merged.
        let own = m.own().unwrap();
        assert_eq!(
            show(lookup(&own, &key_path("hostname").unwrap()).unwrap()),
            "web-1"
        );
    }

    #[test]
    fn a_change_that_does_not_validate_is_refused_and_the_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let m = machine(dir.path());
        m.set("corral.shutdown_timeout", "30", &check)
            .expect("saved");
        let before = std::fs::read(m.store.set_path()).unwrap();
        let e = m
            .set("corral.shutdown_timeout", "soon", &check)
            .expect_err("not a number");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "`corral config set corral.shutdown_timeout` is refused and nothing was saved"
            ),
            "{text}"
        );
        assert!(text.contains("corral.shutdown_timeout"), "{text}");
        assert_eq!(std::fs::read(m.store.set_path()).unwrap(), before);
        // A key below a value is not a section.
        let e = m
            .set("corral.shutdown_timeout.x", "1", &check)
            .expect_err("below a number");
        assert!(
            matches!(&e, ConfigError::NotASection { at, .. } if at == "corral.shutdown_timeout"),
            "{e}"
        );
        assert_eq!(std::fs::read(m.store.set_path()).unwrap(), before);
    }

    #[test]
    fn merge_checks_the_input_with_its_own_lines_then_merges_it_over() {
        let dir = tempfile::tempdir().unwrap();
        let m = machine(dir.path());
        m.set("corral.sysctl.vm.swappiness", "10", &check)
            .expect("saved");
        let e = m
            .merge(
                "extra.yml",
                b"hostname: ok\nssh_authorized_keys: 3\n",
                &check,
            )
            .expect_err("bad keys");
        assert!(e.to_string().contains("extra.yml: line 2"), "{e}");
        m.merge(
            "extra.yml",
            b"#cloud-config\nrancher:\n  sysctl: {vm.overcommit_memory: 1}\n",
            &check,
        )
        .expect("merged");
        let layer = m.set_layer().unwrap();
        let sysctl = lookup(&layer, &key_path("corral.sysctl").unwrap()).unwrap();
        assert_eq!(sysctl.as_mapping().unwrap().len(), 2, "{sysctl:?}");
    }

    #[test]
    fn values_show_bare_or_as_yaml() {
        assert_eq!(show(&crate::cmdline::value_of("[a, b]")), "- a\n- b");
        assert_eq!(show(&crate::cmdline::value_of("true")), "true");
        assert_eq!(show(&crate::cmdline::value_of("x y")), "x y");
    }
}
