//! Configuration from the kernel command line: `corral.<path>=<yaml>` sets `<path>` in the
//! `corral:` section (`rancher.<path>=` is the same), `corral.<path>` alone sets it to
//! `true`. The value is YAML (`[a, b]`, `true`, `3`); text that is not YAML stays text.
//! Quote an option that holds spaces: `"corral.ssh_authorized_keys=[ssh-ed25519 AAAA...]"`.

use crate::{CloudConfig, ConfigError};
use yaml_serde::{Mapping, Value};

/// An option's key path under `corral:` and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The option as written, for messages.
    pub option: String,
    pub path: Vec<String>,
    pub value: Value,
}

/// The configuration options on a command line, in order.
pub fn settings(cmdline: &str) -> Vec<Setting> {
    corral_host::cmdline::split(cmdline)
        .into_iter()
        .filter_map(|word| {
            let rest = word
                .strip_prefix("corral.")
                .or_else(|| word.strip_prefix("rancher."))?;
            let (key, value) = match rest.split_once('=') {
                Some((k, v)) => (k, value_of(v)),
                None => (rest, Value::Bool(true)),
            };
            let path: Vec<String> = key.split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return None;
            }
            Some(Setting {
                option: word.split('=').next().unwrap_or(&word).to_string(),
                path,
                value,
            })
        })
        .collect()
}

/// An option's or `corral config set`'s value: YAML (`[a, b]`, `true`, `3`), or the text
/// itself when it is not YAML; nothing at all is null.
pub fn value_of(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    yaml_serde::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Sets `path` to `value` inside `root`, making the mappings on the way.
fn set(root: &mut Mapping, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut map = root;
    for p in parents {
        let key = Value::String(p.clone());
        if !matches!(map.get(&key), Some(Value::Mapping(_))) {
            map.insert(key.clone(), Value::Mapping(Mapping::new()));
        }
        let Some(Value::Mapping(inner)) = map.get_mut(&key) else {
            return;
        };
        map = inner;
    }
    map.insert(Value::String(last.clone()), value);
}

/// The settings as a cloud-config document: `{corral: {...}}`.
pub fn document(settings: &[Setting]) -> Value {
    let mut corral = Mapping::new();
    for s in settings {
        set(&mut corral, &s.path, s.value.clone());
    }
    let mut root = Mapping::new();
    root.insert(Value::String("corral".into()), Value::Mapping(corral));
    Value::Mapping(root)
}

/// The options that fit the schema, and an error for each that does not (checked one
/// by one, so a bad option never takes a good one with it).
pub fn checked(cmdline: &str) -> (Vec<Setting>, Vec<ConfigError>) {
    let mut good = Vec::new();
    let mut errors = Vec::new();
    for s in settings(cmdline) {
        match yaml_serde::from_value::<CloudConfig>(document(std::slice::from_ref(&s))) {
            Ok(_) => good.push(s),
            Err(e) => errors.push(ConfigError::Option {
                option: s.option.clone(),
                problem: format!("{e}; see docs/cloud-config.md for the option's form"),
            }),
        }
    }
    (good, errors)
}

/// The configuration the command line sets, plus an error for each option that does not
/// fit the schema; those options are left out and the others still apply.
pub fn parse(cmdline: &str) -> (CloudConfig, Vec<ConfigError>) {
    let (good, errors) = checked(cmdline);
    let config = yaml_serde::from_value(document(&good)).unwrap_or_default();
    (config, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Autologin;

    /// The command line's configuration; the first bad option is an error.
    fn config(cmdline: &str) -> Result<CloudConfig, ConfigError> {
        let (config, mut errors) = parse(cmdline);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors.remove(0))
        }
    }

    #[test]
    fn keys_with_spaces_come_through_quotes() {
        let c = config(
            "console=ttyS0 \"corral.ssh_authorized_keys=[ssh-ed25519 AAAAC3Nz dev@corral]\" quiet",
        )
        .expect("parses");
        assert_eq!(c.authorized_keys(), ["ssh-ed25519 AAAAC3Nz dev@corral"]);
    }

    #[test]
    fn rancher_options_are_aliases_and_bare_options_are_true() {
        let c = config("rancher.autologin=ttyS0 corral.debug_shell=ttyS1").expect("parses");
        assert_eq!(c.corral.autologin, Autologin::Ttys(vec!["ttyS0".into()]));
        assert_eq!(
            config("corral.autologin").expect("parses").corral.autologin,
            Autologin::All
        );
    }

    #[test]
    fn nested_paths_build_mappings() {
        let s = settings("corral.a.b=1 corral.a.c=[x] corral..bad=1 corral.url=http://h/p?q=1");
        assert_eq!(s.len(), 3);
        let doc = document(&s);
        assert_eq!(doc["corral"]["a"]["b"], Value::Number(1.into()));
        assert_eq!(doc["corral"]["url"], Value::String("http://h/p?q=1".into()));
    }

    #[test]
    fn a_bad_option_is_named_and_the_others_still_apply() {
        let (c, errors) = parse("\"corral.autologin={a: 1}\" \"corral.ssh_authorized_keys=[k1]\"");
        assert_eq!(c.authorized_keys(), ["k1"]);
        assert_eq!(errors.len(), 1);
        let msg = errors[0].to_string();
        assert!(
            msg.starts_with("kernel command line: corral.autologin:"),
            "{msg}"
        );
    }

    #[test]
    fn text_that_is_not_yaml_stays_text() {
        assert_eq!(value_of("[unclosed"), Value::String("[unclosed".into()));
        assert_eq!(value_of(""), Value::Null);
    }
}
