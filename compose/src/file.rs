//! Services files in docker-compose format, with RancherOS's labels, so a service copied
//! from RancherOS's os-config parses unchanged. Keys Corral does not act on are kept as
//! warnings, not errors; a file that does not parse is an error naming the file, the
//! service and the line.

use crate::error::ComposeError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Services files are configuration, and configuration is untrusted: cap the size.
pub const MAX_FILE: usize = 1 << 20;

/// `io.rancher.os.scope`, `after`, `before`, `detach`, `createonly`.
pub const SCOPE: &str = "io.rancher.os.scope";
pub const AFTER: &str = "io.rancher.os.after";
pub const BEFORE: &str = "io.rancher.os.before";
pub const DETACH: &str = "io.rancher.os.detach";
pub const CREATE_ONLY: &str = "io.rancher.os.createonly";

/// A string or a list of strings (`command: a b` or `command: [a, b]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(untagged)]
pub enum StringOrList {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    /// As argv: a string is split on whitespace, as compose does without a shell.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            StringOrList::None => Vec::new(),
            StringOrList::One(s) => s.split_whitespace().map(str::to_string).collect(),
            StringOrList::Many(v) => v.clone(),
        }
    }
}

/// `KEY=VALUE` list or `KEY: VALUE` map (environment, labels).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum MapOrList {
    List(Vec<String>),
    Map(BTreeMap<String, Option<yaml_serde::Value>>),
}

impl Default for MapOrList {
    fn default() -> Self {
        MapOrList::List(Vec::new())
    }
}

impl MapOrList {
    /// As a sorted map; a bare `KEY` in a list maps to the empty string.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        match self {
            MapOrList::List(items) => items
                .iter()
                .map(|i| match i.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (i.clone(), String::new()),
                })
                .collect(),
            MapOrList::Map(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(scalar).unwrap_or_default()))
                .collect(),
        }
    }

    /// Sets `key`; an existing value stays unless `replace`. The result is a list.
    pub fn set(&mut self, key: &str, value: &str, replace: bool) {
        let mut map = self.to_map();
        if replace || !map.contains_key(key) {
            map.insert(key.to_string(), value.to_string());
        }
        *self = MapOrList::List(map.into_iter().map(|(k, v)| format!("{k}={v}")).collect());
    }
}

fn scalar(v: &yaml_serde::Value) -> String {
    match v {
        yaml_serde::Value::String(s) => s.clone(),
        yaml_serde::Value::Bool(b) => b.to_string(),
        yaml_serde::Value::Number(n) => n.to_string(),
        yaml_serde::Value::Null => String::new(),
        other => yaml_serde::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// One ulimit: `nofile: 1024` or `nofile: {soft: 1024, hard: 2048}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Ulimit {
    Single(i64),
    Pair { soft: i64, hard: i64 },
}

/// One service, as docker-compose (v1/v2) and RancherOS define it.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Service {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub command: StringOrList,
    #[serde(default)]
    pub entrypoint: StringOrList,
    #[serde(default)]
    pub environment: MapOrList,
    #[serde(default)]
    pub labels: MapOrList,
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub volumes_from: Vec<String>,
    #[serde(default)]
    pub privileged: bool,
    /// compose v1's `net`; `network_mode` in v2. Either is accepted.
    #[serde(default)]
    pub net: Option<String>,
    #[serde(default)]
    pub network_mode: Option<String>,
    #[serde(default)]
    pub pid: Option<String>,
    #[serde(default)]
    pub ipc: Option<String>,
    #[serde(default)]
    pub uts: Option<String>,
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub devices: Vec<String>,
    /// Device cgroup rules (`c 13:* rm`): devices a service may use without being
    /// privileged, whichever nodes appear later.
    #[serde(default)]
    pub device_cgroup_rules: Vec<String>,
    /// Fresh tmpfs mounts at each start (`/run` or `/run:size=1m`), for pid files and
    /// sockets that must not outlive a crash.
    #[serde(default)]
    pub tmpfs: StringOrList,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub stdin_open: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub oom_score_adj: Option<i64>,
    /// Files put into the container after it is made and before its first start, each a
    /// tar archive (cloud-config's `write_files` with `container:`, which the manager
    /// attaches); not a compose key, never read from a file.
    #[serde(skip)]
    pub files: Vec<Vec<u8>>,
    /// Keys Corral does not act on; reported as warnings.
    #[serde(flatten)]
    pub other: BTreeMap<String, yaml_serde::Value>,
}

/// Compose keys Corral accepts but does not act on without a warning: RancherOS's
/// os-config uses them, and they have no meaning on the system engine.
const QUIET_KEYS: &[&str] = &["log_driver", "log_opt", "container_name", "cgroup_parent"];

impl Service {
    pub fn label(&self, key: &str) -> Option<String> {
        self.labels.to_map().get(key).cloned()
    }
    fn list_label(&self, key: &str) -> Vec<String> {
        self.label(key)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Services this one starts after (`io.rancher.os.after`).
    pub fn after(&self) -> Vec<String> {
        self.list_label(AFTER)
    }
    /// Services this one starts before (`io.rancher.os.before`).
    pub fn before(&self) -> Vec<String> {
        self.list_label(BEFORE)
    }
    /// A one-shot: started, then waited for (`io.rancher.os.detach=false`).
    pub fn one_shot(&self) -> bool {
        self.label(DETACH).as_deref() == Some("false")
    }
    /// Created, never started (`io.rancher.os.createonly=true`).
    pub fn create_only(&self) -> bool {
        self.label(CREATE_ONLY).as_deref() == Some("true")
    }
    /// `net` or `network_mode`.
    pub fn network(&self) -> Option<&str> {
        self.network_mode.as_deref().or(self.net.as_deref())
    }
}

/// A parsed services file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServicesFile {
    pub path: PathBuf,
    pub services: BTreeMap<String, Service>,
    pub warnings: Vec<String>,
    /// Services left out because their definition is bad, each message naming the file,
    /// the service and the problem. The file's other services still apply.
    pub errors: Vec<String>,
}

/// Top-level keys of compose's later formats that are not services.
const V2_TOP_KEYS: &[&str] = &[
    "services", "version", "networks", "volumes", "secrets", "configs", "name",
];

#[derive(Deserialize)]
struct Top {
    #[serde(default)]
    services: BTreeMap<String, yaml_serde::Value>,
    #[serde(flatten)]
    _other: BTreeMap<String, yaml_serde::Value>,
}

/// Parses a services file's text. A service that does not parse is an error naming it;
/// compose keys Corral ignores are warnings.
pub fn parse(file: &str, text: &str) -> Result<ServicesFile, ComposeError> {
    if text.len() > MAX_FILE {
        return Err(ComposeError::TooLarge {
            file: file.to_string(),
            size: text.len(),
        });
    }
    corral_yaml::bounded(text).map_err(|e| ComposeError::Parse {
        file: file.to_string(),
        detail: e.to_string(),
    })?;
    let parse_error = |e: yaml_serde::Error| ComposeError::Parse {
        file: file.to_string(),
        detail: e.to_string(),
    };
    let mut value: yaml_serde::Value = yaml_serde::from_str(text).map_err(parse_error)?;
    // docker-compose's `<<: *defaults` (YAML 1.1 merge keys), merged before reading.
    let top: Top = if corral_yaml::has_merge_keys(&value) {
        value.apply_merge().map_err(parse_error)?;
        yaml_serde::from_value(value).map_err(parse_error)?
    } else {
        yaml_serde::from_str(text).map_err(parse_error)?
    };
    let mut out = ServicesFile {
        path: PathBuf::from(file),
        ..Default::default()
    };
    // Compose's first format (RancherOS's service repositories write it): no
    // `services:` and no `version:`, every other top-level entry a service.
    let services = if top.services.is_empty() && !top._other.contains_key("version") {
        top._other
            .into_iter()
            .filter(|(k, _)| !V2_TOP_KEYS.contains(&k.as_str()) && !k.starts_with("x-"))
            .collect()
    } else {
        top.services
    };
    for (name, value) in services {
        let err = |detail: String| ComposeError::Service {
            file: file.to_string(),
            service: name.clone(),
            detail,
        };
        let service: Service = match yaml_serde::from_value(value) {
            Ok(s) => s,
            Err(e) => {
                out.errors.push(err(e.to_string()).to_string());
                continue;
            }
        };
        if service.image.is_empty() {
            out.errors
                .push(err("has no image; add `image: <name>`".into()).to_string());
            continue;
        }
        for key in service
            .other
            .keys()
            .filter(|k| !QUIET_KEYS.contains(&k.as_str()))
        {
            out.warnings.push(format!(
                "{file}: service {name}: `{key}` is not supported and is ignored"
            ));
        }
        out.services.insert(name, service);
    }
    Ok(out)
}

/// Puts several files' services together, in order: a later file's service replaces an
/// earlier one of the same name (so a user's file can replace a built-in service), with a
/// warning saying so.
pub fn merge(files: Vec<ServicesFile>) -> ServicesFile {
    let mut out = ServicesFile {
        path: PathBuf::from(
            files
                .iter()
                .map(|f| f.path.display().to_string())
                .collect::<Vec<_>>()
                .join(" + "),
        ),
        ..Default::default()
    };
    let mut from: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        out.warnings.extend(f.warnings);
        out.errors.extend(f.errors);
        for (name, service) in f.services {
            if let Some(earlier) = from.insert(name.clone(), f.path.clone()) {
                out.warnings.push(format!(
                    "{}: service {name} replaces the one from {}",
                    f.path.display(),
                    earlier.display()
                ));
            }
            out.services.insert(name, service);
        }
    }
    out
}

/// Reads and parses a services file.
pub fn load(path: &Path) -> Result<ServicesFile, ComposeError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ComposeError::Parse {
        file: file.clone(),
        detail: e.to_string(),
    })?;
    parse(&file, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Service definitions as RancherOS's os-config.tpl.yml ships them (rancher/os), with
    /// the template's image variables filled in.
    const RANCHEROS: &str = r#"
services:
  network:
    image: rancher/os-base:v1.5.8
    command: netconf
    labels:
      io.rancher.os.scope: system
      io.rancher.os.after: udev
      io.rancher.os.reloadconfig: "true"
    net: host
    uts: host
    pid: host
    privileged: true
    volumes_from:
    - system-volumes
    - command-volumes
    volumes:
    - /usr/bin/iptables:/sbin/iptables:ro
  console:
    image: rancher/os-console:v1.5.8
    command: ros console-init
    labels:
      io.rancher.os.scope: system
      io.rancher.os.after: network
      io.docker.compose.rebuild: "false"
      io.rancher.os.console: default
    environment:
    - HTTP_PROXY
    - HTTPS_PROXY
    - NO_PROXY
    net: host
    uts: host
    pid: host
    ipc: host
    privileged: true
    oom_score_adj: -100
    restart: always
    volumes_from:
    - all-volumes
    volumes:
    - /media:/media:shared
    - /mnt:/mnt:shared
  cloud-init-execute:
    image: rancher/os-base:v1.5.8
    command: cloud-init-execute -pre-console
    labels:
      io.rancher.os.detach: "false"
      io.rancher.os.scope: system
      io.rancher.os.after: ntp
    net: host
    uts: host
    privileged: true
    volumes_from:
    - system-volumes
    volumes:
    - /usr/bin/ros:/usr/bin/ros:ro
  container-data-volumes:
    image: rancher/os-base:v1.5.8
    command: echo
    labels:
      io.rancher.os.createonly: "true"
      io.rancher.os.scope: system
    log_driver: json-file
    net: none
    privileged: true
    read_only: true
    volumes:
    - /var/lib/user-docker:/var/lib/docker
    - /var/lib/m-user-docker:/var/lib/m-user-docker
"#;

    #[test]
    fn a_services_file_that_expands_without_bound_is_refused() {
        let items = vec!["x"; 10_000].join(", ");
        let aliases = vec!["*a"; 10_000].join(", ");
        let text =
            format!("x-a: &a [{items}]\nservices:\n  s:\n    image: i\n    command: [{aliases}]\n");
        match parse("bomb.yml", &text) {
            Err(ComposeError::Parse { file, detail }) => {
                assert_eq!(file, "bomb.yml");
                assert!(detail.starts_with("expands to more than"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn compose_first_format_is_read_as_rancheros_repositories_write_it() {
        let f = parse(
            "c/crontab.yml",
            "crontab:\n  image: rancher/os-crontab:v0.5.0\n  labels:\n    io.rancher.os.scope: system\n  \
             restart: always\nx-note: {a: 1}\n",
        )
        .expect("parses");
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.services.len(), 1);
        assert_eq!(f.services["crontab"].image, "rancher/os-crontab:v0.5.0");
        // A file with `version:` or `services:` is never read that way.
        let later = parse("v.yml", "version: '2'\nnetworks: {}\n").expect("parses");
        assert!(later.services.is_empty() && later.errors.is_empty());
    }

    #[test]
    fn compose_merge_keys_merge() {
        let f = parse(
            "m.yml",
            "x-defaults: &d\n  image: busybox\n  restart: always\nservices:\n  a:\n    <<: *d\n    command: ['true']\n",
        )
        .expect("parses");
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.services["a"].image, "busybox");
        assert_eq!(f.services["a"].command.to_vec(), ["true"]);
    }

    #[test]
    fn rancheros_service_definitions_parse_unchanged() {
        let f = parse("os-config.yml", RANCHEROS).expect("parses");
        assert_eq!(f.services.len(), 4);
        let net = &f.services["network"];
        assert_eq!(net.command.to_vec(), ["netconf"]);
        assert_eq!(net.network(), Some("host"));
        assert_eq!(net.after(), ["udev"]);
        assert!(net.privileged);
        assert_eq!(net.volumes_from, ["system-volumes", "command-volumes"]);
        let console = &f.services["console"];
        assert_eq!(console.oom_score_adj, Some(-100));
        assert_eq!(console.environment.to_map()["HTTP_PROXY"], "");
        assert_eq!(
            console.volumes,
            ["/media:/media:shared", "/mnt:/mnt:shared"]
        );
        assert!(f.services["cloud-init-execute"].one_shot());
        assert!(f.services["container-data-volumes"].create_only());
        assert!(f.services["container-data-volumes"].read_only);
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    }

    #[test]
    fn lists_maps_and_strings_are_all_accepted() {
        let f = parse(
            "s.yml",
            "services:\n  a:\n    image: x\n    command: [sh, -c, 'echo hi']\n    entrypoint: /init --flag\n\
             \x20   environment: {A: 1, B: true, C: null}\n    labels: [io.rancher.os.before=b, plain]\n\
             \x20   ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}\n    network_mode: host\n",
        )
        .expect("parses");
        let a = &f.services["a"];
        assert_eq!(a.command.to_vec(), ["sh", "-c", "echo hi"]);
        assert_eq!(a.entrypoint.to_vec(), ["/init", "--flag"]);
        let env = a.environment.to_map();
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "true");
        assert_eq!(env["C"], "");
        assert_eq!(a.before(), ["b"]);
        assert_eq!(a.labels.to_map()["plain"], "");
        assert_eq!(
            a.ulimits["nofile"],
            Ulimit::Pair {
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(a.ulimits["nproc"], Ulimit::Single(512));
        assert_eq!(a.network(), Some("host"));
    }

    #[test]
    fn bad_files_name_the_file_the_service_and_the_problem() {
        let err = parse("s.yml", "services: [a").expect_err("a file-level error");
        assert!(err.to_string().starts_with("s.yml: "), "{err}");
        let cases = [
            (
                "services:\n  a:\n    command: x\n",
                "service a: has no image",
            ),
            (
                "services:\n  a:\n    image: x\n    privileged: maybe\n",
                "service a:",
            ),
            (
                "services:\n  a:\n    image: x\n    volumes: /not-a-list\n",
                "service a:",
            ),
        ];
        for (text, want) in cases {
            let text = format!("{text}  good:\n    image: y\n");
            let f = parse("s.yml", &text).expect("the file parses");
            assert_eq!(f.errors.len(), 1, "{text}: {:?}", f.errors);
            let err = &f.errors[0];
            assert!(
                err.contains(want) && err.starts_with("s.yml"),
                "{text}: {err}"
            );
            assert!(
                f.services.contains_key("good") && !f.services.contains_key("a"),
                "the bad service is left out, the good one kept"
            );
        }
        let err = parse("s.yml", "services:\n  a: [\n").expect_err("not YAML");
        assert!(err.to_string().contains("line"), "{err}");
        let huge = "#".repeat(MAX_FILE + 1);
        assert!(matches!(
            parse("s.yml", &huge),
            Err(ComposeError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_built_in_services_parse_and_form_a_graph() {
        let text = include_str!("../../manager/os-config.yml").replace("{{VERSION}}", "0.0.0");
        let f = parse("os-config.yml", &text).expect("built-in os-config.yml parses");
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        let g = crate::graph::Graph::new(&f.services);
        assert!(g.cycles().is_empty() && g.warnings.is_empty(), "{g:?}");
        for s in f.services.values() {
            assert!(
                s.image.starts_with("corral/") && s.image.ends_with(":0.0.0"),
                "{}",
                s.image
            );
        }
    }

    #[test]
    fn a_later_file_replaces_a_service_and_says_so() {
        let a = parse(
            "a.yml",
            "services:\n  x:\n    image: one\n  y:\n    image: y\n",
        )
        .expect("a");
        let b = parse("b.yml", "services:\n  x:\n    image: two\n").expect("b");
        let m = merge(vec![a, b]);
        assert_eq!(m.services["x"].image, "two");
        assert_eq!(m.services["y"].image, "y");
        assert_eq!(m.warnings, ["b.yml: service x replaces the one from a.yml"]);
        assert_eq!(m.path, PathBuf::from("a.yml + b.yml"));
    }

    #[test]
    fn unsupported_keys_are_warnings() {
        let f = parse("s.yml", "services:\n  a:\n    image: x\n    healthcheck: {test: true}\n    log_driver: json-file\n")
            .expect("parses");
        assert_eq!(
            f.warnings,
            ["s.yml: service a: `healthcheck` is not supported and is ignored"]
        );
    }
}
