//! Putting configuration layers together. Precedence, later wins: built-in < OEM <
//! datasource user-data < `corral config set` < kernel command line. Maps merge deeply;
//! any other value is replaced by the later layer's, except the ssh keys, which add up
//! (a key from the command line and one from EC2 both log in). `rancher:` is folded into
//! `corral:` before merging, so either spelling in any layer lands in the same place.

use yaml_serde::{Mapping, Value};

/// Lists that accumulate across layers instead of being replaced, as paths.
const ADDITIVE: &[&[&str]] = &[&["ssh_authorized_keys"], &["corral", "ssh_authorized_keys"]];

/// Folds a top-level `rancher:` into `corral:` (`corral:` wins where both set a key).
pub fn normalize(doc: Value) -> Value {
    fold(doc).0
}

/// [`normalize`], with the keys both sections set to different values (dotted, under
/// `corral`'s spelling, e.g. `network.dns.nameservers`), which `corral:` decided.
pub fn fold(doc: Value) -> (Value, Vec<String>) {
    let Value::Mapping(mut map) = doc else {
        return (doc, Vec::new());
    };
    let mut clashes = Vec::new();
    if let Some(rancher) = map.remove("rancher") {
        let corral = map
            .remove("corral")
            .unwrap_or(Value::Mapping(Mapping::new()));
        let mut merged = rancher;
        let mut path = vec!["corral".to_string()];
        merge_at(&mut merged, corral, &mut path, &mut clashes);
        map.insert(Value::String("corral".into()), merged);
    }
    (Value::Mapping(map), clashes)
}

fn additive(path: &[String]) -> bool {
    ADDITIVE
        .iter()
        .any(|p| p.len() == path.len() && p.iter().zip(path).all(|(a, b)| a == b))
}

/// Merges `over` into `base` at `path`; a value `over` replaces with a different one is
/// noted in `clashes` (its path without the first element).
fn merge_at(base: &mut Value, over: Value, path: &mut Vec<String>, clashes: &mut Vec<String>) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let name = k.as_str().unwrap_or_default().to_string();
                path.push(name);
                match b.get_mut(&k) {
                    Some(existing) => merge_at(existing, v, path, clashes),
                    None => {
                        b.insert(k, v);
                    }
                }
                path.pop();
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) if additive(path) => {
            for item in o {
                if !b.contains(&item) {
                    b.push(item);
                }
            }
        }
        (b, o) => {
            if *b != o && !b.is_null() && path.len() > 1 {
                clashes.push(path[1..].join("."));
            }
            *b = o
        }
    }
}

/// Merges `over` into `base` (both normalized first): `over` wins.
pub fn merge(base: Value, over: Value) -> Value {
    let mut base = normalize(base);
    merge_at(&mut base, normalize(over), &mut Vec::new(), &mut Vec::new());
    base
}

/// Merges layers given lowest precedence first.
pub fn layers(docs: impl IntoIterator<Item = Value>) -> Value {
    docs.into_iter().fold(Value::Mapping(Mapping::new()), merge)
}

/// Metadata (a datasource's hostname and public keys) joins the configuration as
/// RancherOS does: its hostname only when none is set, its keys added to the others.
pub fn with_metadata(mut config: Value, hostname: Option<&str>, keys: &[String]) -> Value {
    if !matches!(config, Value::Mapping(_)) {
        config = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = &mut config else {
        return config;
    };
    if let Some(h) = hostname {
        let unset = map.get("hostname").is_none_or(|v| v.is_null());
        if unset {
            map.insert(Value::String("hostname".into()), Value::String(h.into()));
        }
    }
    if !keys.is_empty() {
        let extra = Value::Sequence(keys.iter().map(|k| Value::String(k.clone())).collect());
        let mut doc = Mapping::new();
        doc.insert(Value::String("ssh_authorized_keys".into()), extra);
        return merge(config, Value::Mapping(doc));
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(text: &str) -> Value {
        yaml_serde::from_str(text).expect("yaml")
    }

    #[test]
    fn later_layers_win_and_maps_merge_deeply() {
        let built_in = y("hostname: corral\ncorral:\n  shutdown_timeout: 60\n  docker: {tls: false, storage: overlay2}\n");
        let user = y("hostname: web1\ncorral:\n  docker: {tls: true}\n  modules: [a]\n");
        let cmdline = y("corral:\n  modules: [b]\n");
        let m = layers([built_in, user, cmdline]);
        assert_eq!(m["hostname"], y("web1"));
        assert_eq!(m["corral"]["shutdown_timeout"], y("60"));
        assert_eq!(m["corral"]["docker"], y("{tls: true, storage: overlay2}"));
        assert_eq!(m["corral"]["modules"], y("[b]"), "lists are replaced");
    }

    #[test]
    fn a_file_with_both_sections_folds_them_and_names_what_corral_decided() {
        let (doc, clashes) = fold(y(
            "rancher:\n  console: ubuntu\n  network: {dns: {nameservers: [8.8.8.8]}}\n  docker: {tls: true}\ncorral:\n  network: {dns: {nameservers: [1.1.1.1]}}\n  docker: {tls: true}\n  upgrade: {url: 'http://x/'}\n",
        ));
        assert_eq!(doc["corral"]["console"], y("ubuntu"));
        assert_eq!(
            doc["corral"]["network"]["dns"]["nameservers"],
            y("[1.1.1.1]")
        );
        assert_eq!(doc["corral"]["upgrade"]["url"], y("http://x/"));
        assert!(doc.get("rancher").is_none());
        assert_eq!(
            clashes,
            ["network.dns.nameservers"],
            "the same value is no clash"
        );
    }

    #[test]
    fn ssh_keys_add_up_across_layers_once_each() {
        let m = layers([
            y("ssh_authorized_keys: [a, b]"),
            y("ssh_authorized_keys: [b, c]\nrancher: {ssh_authorized_keys: [x]}"),
            y("corral: {ssh_authorized_keys: [y]}"),
        ]);
        assert_eq!(m["ssh_authorized_keys"], y("[a, b, c]"));
        assert_eq!(m["corral"]["ssh_authorized_keys"], y("[x, y]"));
    }

    #[test]
    fn rancher_is_folded_into_corral_and_corral_wins() {
        let n = normalize(y("rancher: {a: 1, b: 1}\ncorral: {b: 2}"));
        assert_eq!(n, y("corral: {a: 1, b: 2}"));
        assert_eq!(
            normalize(y("[1]")),
            y("[1]"),
            "not a mapping: left as it is"
        );
    }

    #[test]
    fn metadata_hostname_only_when_unset_and_its_keys_added() {
        let m = with_metadata(
            y("hostname: mine\nssh_authorized_keys: [a]"),
            Some("ip-10-0-0-1"),
            &["k".into()],
        );
        assert_eq!(m["hostname"], y("mine"));
        assert_eq!(m["ssh_authorized_keys"], y("[a, k]"));
        let m = with_metadata(y("{}"), Some("ip-10-0-0-1"), &[]);
        assert_eq!(m["hostname"], y("ip-10-0-0-1"));
        let m = with_metadata(Value::Null, None, &["k".into()]);
        assert_eq!(m, y("ssh_authorized_keys: [k]"));
    }
}
