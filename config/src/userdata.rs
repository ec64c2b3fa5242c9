//! User-data: what a datasource hands over, in the forms RancherOS and cloud-init take:
//! `#cloud-config` YAML, `#!` scripts, `#compose` services files, and gzip of any of
//! them. It is untrusted input: capped at [`MAX_USER_DATA`] before and after
//! decompression, text only, YAML errors with line and column, never a panic.

use crate::{CloudConfig, ConfigError};
use std::io::Read;

/// The most user-data Corral reads (EC2 itself allows 16 KiB).
pub const MAX_USER_DATA: usize = 1 << 20;

/// What a piece of user-data is.
#[derive(Debug, Clone, PartialEq)]
pub enum UserData {
    /// Nothing (empty or blank): no configuration from this source.
    Empty,
    /// `#cloud-config`: the configuration, and warnings for keys Corral does not apply.
    CloudConfig {
        config: Box<CloudConfig>,
        /// The document as written, for merging with the other layers.
        value: yaml_serde::Value,
        warnings: Vec<String>,
    },
    /// `#!`: a script, run once per boot in the console.
    Script(String),
    /// `#compose`: a services file for the manager.
    Compose(String),
}

/// Parses user-data from `source` (a path or a datasource's name, for messages).
pub fn parse(source: &str, bytes: &[u8]) -> Result<UserData, ConfigError> {
    let too_large = |size| ConfigError::TooLarge {
        origin: source.to_string(),
        size,
    };
    if bytes.len() > MAX_USER_DATA {
        return Err(too_large(bytes.len()));
    }
    let unpacked;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_USER_DATA as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| ConfigError::Gzip {
                origin: source.to_string(),
                detail: e.to_string(),
            })?;
        if out.len() > MAX_USER_DATA {
            return Err(too_large(out.len()));
        }
        unpacked = out;
        &unpacked[..]
    } else {
        bytes
    };
    let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::NotText {
        origin: source.to_string(),
        offset: e.valid_up_to(),
    })?;
    if text.trim().is_empty() {
        return Ok(UserData::Empty);
    }
    let first = text.lines().next().unwrap_or_default().trim_end();
    if first == "#cloud-config" {
        cloud_config(source, text)
    } else if first.starts_with("#!") {
        Ok(UserData::Script(text.to_string()))
    } else if first == "#compose" {
        Ok(UserData::Compose(text.to_string()))
    } else {
        Err(ConfigError::UnknownForm {
            origin: source.to_string(),
            first_line: first.chars().take(40).collect(),
        })
    }
}

fn yaml_error(source: &str, e: yaml_serde::Error) -> ConfigError {
    let mut detail = e.to_string();
    let at = match e.location() {
        Some(l) => {
            // The parser's text repeats the position at its end; say it once, up front.
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(i) = detail.find(&suffix) {
                detail.replace_range(i..i + suffix.len(), "");
            }
            format!("line {} column {}: ", l.line(), l.column())
        }
        None => String::new(),
    };
    ConfigError::Yaml {
        origin: source.to_string(),
        at,
        detail,
    }
}

fn cloud_config(source: &str, text: &str) -> Result<UserData, ConfigError> {
    // Bounded first: what the aliases expand to is counted before anything is built.
    bounded(source, text)?;
    // Syntax first (with positions), then the schema's types (with positions too).
    let mut value: yaml_serde::Value =
        yaml_serde::from_str(text).map_err(|e| yaml_error(source, e))?;
    // YAML 1.1 merge keys (`<<: *defaults`), which RancherOS's go-yaml honours: merged
    // into the value first, and the schema read from it (without positions then).
    let mut merged = corral_yaml::has_merge_keys(&value);
    if merged {
        value.apply_merge().map_err(|e| yaml_error(source, e))?;
    }
    // `rancher:` and `corral:` in one file (a RancherOS file plus a Corral key): folded
    // into one section, `corral:` winning where both set a key, and read from the
    // folded value (without positions then).
    let mut warnings = Vec::new();
    let both = value
        .as_mapping()
        .is_some_and(|m| m.contains_key("rancher") && m.contains_key("corral"));
    if both {
        let (folded, clashes) = crate::merge::fold(value);
        value = folded;
        merged = true;
        for key in clashes {
            warnings.push(format!(
                "{source}: `rancher.{key}` and `corral.{key}` are both set; `corral.{key}` is used"
            ));
        }
    }
    let config: CloudConfig =
        match &value {
            yaml_serde::Value::Null => CloudConfig::default(),
            yaml_serde::Value::Mapping(_) if merged => {
                yaml_serde::from_value(value.clone()).map_err(|e| yaml_error(source, e))?
            }
            yaml_serde::Value::Mapping(_) => {
                yaml_serde::from_str(text).map_err(|e| yaml_error(source, e))?
            }
            _ => return Err(ConfigError::Yaml {
                origin: source.to_string(),
                at: "line 2 column 1: ".into(),
                detail:
                    "a cloud-config is a mapping of keys (`hostname: n1`), not a list or a value"
                        .into(),
            }),
        };
    warnings.extend(unknown_keys(source, &value));
    warnings.extend(unshipped_console(source, &config));
    for (i, u) in config.users.iter().enumerate() {
        if let crate::schema::UserEntry::Invalid(why) = u {
            warnings.push(format!(
                "{source}: users[{i}]: {why}; that user is left out"
            ));
        }
    }
    for (name, repo) in &config.corral.repositories {
        if let Err(why) = repo.base() {
            warnings.push(format!(
                "{source}: repositories.{name}.url: {why}; that repository is not used"
            ));
        }
    }
    if let Err(why) = config.time_zone() {
        warnings.push(format!("{source}: {why}; the console stays on UTC"));
    }
    for (name, why) in config.corral.network.problems() {
        warnings.push(format!(
            "{source}: network.interfaces.{name}: {why}; the interface it names is left unconfigured"
        ));
    }
    if config.ssh_pwauth.as_ref().and_then(|v| v.as_bool()) == Some(true) {
        warnings.push(format!(
            "{source}: `ssh_pwauth: true` is ignored: Corral's sshd takes keys only"
        ));
    }
    Ok(UserData::CloudConfig {
        config: Box::new(config),
        value,
        warnings,
    })
}

/// Refuses a document that expands to more values than [`corral_yaml::MAX_NODES`]; a
/// syntax error is left for the parse that reports its position.
pub(crate) fn bounded(source: &str, text: &str) -> Result<(), ConfigError> {
    corral_yaml::bounded(text).map_err(|e| ConfigError::Yaml {
        origin: source.to_string(),
        at: String::new(),
        detail: e.to_string(),
    })
}

/// A warning for a console Corral does not ship (RancherOS's `ubuntu`, `alpine`, ...):
/// the machine comes up on the default console, with the user's keys, unless an image
/// of that name was loaded. An image reference (a user's own console) is not warned of.
fn unshipped_console(source: &str, config: &CloudConfig) -> Option<String> {
    let name = config.corral.console.as_deref()?;
    let image = crate::schema::console_is_image(name);
    (!image && !crate::schema::CONSOLES.contains(&name)).then(|| {
        format!(
            "{source}: `corral.console: {name}` is not a console Corral ships; the machine comes up on the default console unless an image of that name is loaded (corral console list)"
        )
    })
}

/// Warnings for keys Corral does not read (RancherOS and cloud-init have many).
fn unknown_keys(source: &str, value: &yaml_serde::Value) -> Vec<String> {
    let mut warnings = Vec::new();
    for (section, known) in crate::schema::KNOWN_KEYS {
        let mut spellings = vec![section.to_string()];
        if let Some(rest) = section.strip_prefix("corral") {
            spellings.push(format!("rancher{rest}"));
        }
        for spelled in spellings {
            let path: Vec<&str> = spelled.split('.').filter(|p| !p.is_empty()).collect();
            for (at, node) in nodes_at(value, &path, String::new()) {
                let Some(map) = node.as_mapping() else {
                    continue;
                };
                for k in map.keys() {
                    let name = k
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{k:?}"));
                    if !known.contains(&name.as_str()) {
                        let full = if at.is_empty() {
                            name
                        } else {
                            format!("{at}.{name}")
                        };
                        warnings.push(format!(
                            "{source}: `{full}` is not supported and is ignored"
                        ));
                    }
                }
            }
        }
    }
    warnings
}

/// The values at `path` (`*` is every entry of a mapping or list), with their paths.
fn nodes_at<'a>(
    value: &'a yaml_serde::Value,
    path: &[&str],
    at: String,
) -> Vec<(String, &'a yaml_serde::Value)> {
    let Some((first, rest)) = path.split_first() else {
        return vec![(at, value)];
    };
    let join = |name: &str| {
        if at.is_empty() {
            name.to_string()
        } else {
            format!("{at}.{name}")
        }
    };
    match (*first, value) {
        ("*", yaml_serde::Value::Mapping(m)) => m
            .iter()
            .flat_map(|(k, v)| nodes_at(v, rest, join(k.as_str().unwrap_or("?"))))
            .collect(),
        ("*", yaml_serde::Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| nodes_at(v, rest, format!("{at}[{i}]")))
            .collect(),
        (name, yaml_serde::Value::Mapping(m)) => match m.get(name) {
            Some(v) => nodes_at(v, rest, join(name)),
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    #[test]
    fn the_forms_are_told_apart() {
        let c = parse(
            "user-data",
            b"#cloud-config\nhostname: n1\nssh_authorized_keys: [k]\nrancher:\n  autologin: ttyS0\n",
        )
        .expect("parses");
        let UserData::CloudConfig {
            config, warnings, ..
        } = c
        else {
            panic!("{c:?}")
        };
        assert_eq!(config.hostname.as_deref(), Some("n1"));
        assert_eq!(config.authorized_keys(), ["k"]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            parse("u", b"#!/bin/sh\necho hi\n").expect("script"),
            UserData::Script("#!/bin/sh\necho hi\n".into())
        );
        assert!(matches!(
            parse("u", b"#compose\nservices: {}\n").expect("compose"),
            UserData::Compose(_)
        ));
        assert_eq!(parse("u", b"  \n\n").expect("blank"), UserData::Empty);
        assert_eq!(
            parse("u", b"#cloud-config\n").expect("only the header"),
            UserData::CloudConfig {
                config: Box::default(),
                value: yaml_serde::Value::Null,
                warnings: vec![]
            }
        );
    }

    #[test]
    fn gzip_of_any_form_is_unpacked() {
        let c = parse("u", &gzip(b"#cloud-config\nhostname: zipped\n")).expect("gzip");
        assert!(
            matches!(c, UserData::CloudConfig { config, .. } if config.hostname.as_deref() == Some("zipped"))
        );
    }

    #[test]
    fn the_full_example_has_no_unknown_keys() {
        let c = parse("full.yml", include_bytes!("../examples/full.yml")).expect("parses");
        let UserData::CloudConfig { warnings, .. } = c else {
            panic!("{c:?}")
        };
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_rancheros_file_with_a_corral_section_keeps_both_and_the_keys() {
        let c = parse(
            "u",
            b"#cloud-config\nssh_authorized_keys: [k]\nrancher:\n  console: ubuntu\n  network:\n    dns: {nameservers: [8.8.8.8]}\ncorral:\n  upgrade: {url: 'https://u/'}\n  network:\n    dns: {nameservers: [1.1.1.1]}\n",
        )
        .expect("reads");
        let UserData::CloudConfig {
            config, warnings, ..
        } = c
        else {
            panic!("cloud-config");
        };
        assert_eq!(config.ssh_authorized_keys, ["k"]);
        assert_eq!(config.corral.upgrade.url.as_deref(), Some("https://u/"));
        assert_eq!(
            config.corral.network.dns.nameservers,
            ["1.1.1.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(
            warnings,
            [
                "u: `rancher.network.dns.nameservers` and `corral.network.dns.nameservers` are both set; `corral.network.dns.nameservers` is used",
                "u: `corral.console: ubuntu` is not a console Corral ships; the machine comes up on the default console unless an image of that name is loaded (corral console list)",
            ]
        );
    }

    #[test]
    fn unknown_keys_are_warnings_not_failures() {
        let c = parse(
            "u",
            b"#cloud-config\nphone_home: []\nrancher:\n  upgrade: {image: rancher/os}\n  network:\n    interfaces:\n      eth0: {dhcp: true, dhcp_args: -6}\nwrite_files:\n  - {path: /a, mode: 1}\n",
        )
        .expect("parses");
        let UserData::CloudConfig { warnings, .. } = c else {
            panic!()
        };
        assert_eq!(
            warnings,
            [
                "u: `phone_home` is not supported and is ignored",
                "u: `rancher.upgrade.image` is not supported and is ignored",
                "u: `rancher.network.interfaces.eth0.dhcp_args` is not supported and is ignored",
                "u: `write_files[0].mode` is not supported and is ignored",
            ]
        );
    }

    /// YAML 1.1 merge keys, as RancherOS's go-yaml reads them: defaults under a key
    /// Corral ignores (`x-common`), merged into a service.
    #[test]
    fn merge_keys_merge_as_rancheros_reads_them() {
        let c = parse(
            "u",
            b"#cloud-config\nx-common: &common\n  image: busybox\n  restart: always\nrancher:\n  services:\n    foo:\n      <<: *common\n      restart: 'no'\n",
        )
        .expect("parses");
        let UserData::CloudConfig { config, value, .. } = c else {
            panic!()
        };
        assert!(config.corral.services.contains_key("foo"));
        let foo = &value["rancher"]["services"]["foo"];
        assert_eq!(foo["image"].as_str(), Some("busybox"), "{foo:?}");
        assert_eq!(
            foo["restart"].as_str(),
            Some("no"),
            "the service's own key wins"
        );
        assert!(foo.get("<<").is_none(), "{foo:?}");
        // A merge of something that is not a mapping is an error naming the file.
        let e = parse(
            "u",
            b"#cloud-config\nrancher:\n  services:\n    foo:\n      <<: 3\n",
        )
        .expect_err("a bad merge")
        .to_string();
        assert!(e.starts_with("u:"), "{e}");
    }

    /// Malformed user-data: each gives its exact error, none panics.
    #[test]
    fn a_quadratic_alias_document_is_refused_before_it_is_built() {
        let items = vec!["x"; 10_000].join(", ");
        let aliases = vec!["*a"; 10_000].join(", ");
        let text = format!("#cloud-config\nrancher:\n  a: &a [{items}]\n  b: [{aliases}]\n");
        let started = std::time::Instant::now();
        let err = parse("u", text.as_bytes()).expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("u: expands to more than 1000000 values"),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn malformed_user_data_is_named_precisely() {
        let bomb = "#cloud-config\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
                    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
                    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
                    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
        let huge = format!("#cloud-config\n#{}\n", "x".repeat(MAX_USER_DATA));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"#cloud-config\nhostname: [a\n".to_vec(), "u: line 3 column 1: did not find expected ',' or ']', while parsing a flow sequence at line 2 column 11"),
            (b"#cloud-config\n  - a\nb: 1\n".to_vec(), "u: deserializing from YAML containing more than one document is not supported"),
            (b"#cloud-config\nhostname: a\nhostname: b\n".to_vec(), "u: line 2 column 1: duplicate entry with key \"hostname\""),
            (b"#cloud-config\nssh_authorized_keys: 3\n".to_vec(), "u: line 2 column 22: ssh_authorized_keys: invalid type: integer `3`, expected a sequence"),
            (b"#cloud-config\nssh_authorized_keys: {a: 1}\n".to_vec(), "u: line 2 column 22: ssh_authorized_keys: invalid type: map, expected a sequence"),
            (b"#cloud-config\nrancher:\n  autologin: {a: 1}\n".to_vec(), "u: line 3 column 3: rancher: expected true, false, a tty name or a list of them"),
            (b"#cloud-config\n- a\n- b\n".to_vec(), "u: line 2 column 1: a cloud-config is a mapping of keys"),
            (b"#cloud-config\njust text\n".to_vec(), "u: line 2 column 1: a cloud-config is a mapping of keys"),
            (bomb.as_bytes().to_vec(), "u: repetition limit exceeded"),
            (huge.into_bytes(), "u: is 1048592 bytes; user-data may be at most 1048576 (1 MiB)"),
            (gzip(&vec![b'#'; MAX_USER_DATA + 10]), "u: is 1048577 bytes; user-data may be at most"),
            (vec![0x1f, 0x8b, 0x08, 0, 1, 2, 3], "u: not valid gzip (unexpected end of file)"),
            (vec![0xff, 0xfe, 0x00, 0x41], "u: not text (invalid UTF-8 at byte 0)"),
            (b"hostname: n1\n".to_vec(), "u: user-data starting with \"hostname: n1\" is not a form Corral knows"),
            (b"#cloud-config\n\t- tab\n".to_vec(), "u: line 2 column 1: found character that cannot start any token, while scanning for the next token"),
            (b"#cloud-config\nhostname: \"unterminated\n".to_vec(), "u: line 3 column 1: found unexpected end of stream, while scanning a quoted scalar at line 2 column 11"),
            (b"#cloud-config\nwrite_files:\n  - path: /a\n    encoding: b64\n    content: '%%%'\n".to_vec(), "u: line 3 column 3: write_files: write_files entry for /a: content is not valid base64 (Invalid symbol 37, offset 0.); check the encoding"),
            (b"#cloud-config\nwrite_files:\n  - path: /a\n    encoding: gzip\n    content: plain\n".to_vec(), "u: line 3 column 3: write_files: write_files entry for /a: content is not valid gzip (unexpected end of file); check the encoding"),
            (b"#cloud-config\nwrite_files:\n  - path: /a\n    permissions: rwxr-xr-x\n".to_vec(), "u: line 3 column 5: write_files[0]: \"rwxr-xr-x\" is not a file mode; write it in octal as a string, like \"0644\""),
            (b"#cloud-config\nwrite_files: {path: /a}\n".to_vec(), "u: line 2 column 14: write_files: invalid type: map, expected a sequence"),
            (b"#cloud-config\nruncmd: echo hi\n".to_vec(), "u: line 2 column 9: runcmd: invalid type: string \"echo hi\", expected a sequence"),
            (b"#cloud-config\nmounts: [/dev/vdb, /mnt]\n".to_vec(), "u: line 2 column 9: mounts: a mount is a list: [device, mount point, type, options], like [/dev/vdb, /mnt/data, ext4, defaults]"),
            (b"#cloud-config\ncorral:\n  network:\n    dns:\n      nameservers: [10.0.0.300]\n".to_vec(), "u: line 5 column 21: corral.network.dns.nameservers[0]: invalid IP address syntax"),
            (b"#cloud-config\ncorral:\n  sysctl: [a, b]\n".to_vec(), "u: line 3 column 11: corral.sysctl: invalid type: sequence, expected a map"),
            (b"#cloud-config\ncorral:\n  shutdown_timeout: -5\n".to_vec(), "u: line 3 column 21: corral.shutdown_timeout: invalid type: integer `-5`, expected u32"),
            (b"#cloud-config\ncorral:\n  cloud_init:\n    datasources: ec2\n".to_vec(), "u: line 4 column 18: corral.cloud_init.datasources: invalid type: string \"ec2\", expected a sequence"),
            (b"#cloud-config\ncorral:\n  modules: [a]\n  modules: [b]\n".to_vec(), "u: line 3 column 3: corral: duplicate entry with key \"modules\""),
            (b"#cloud-config\nhostname: *undefined\n".to_vec(), "u: line 2 column 11: unknown anchor"),
            (b"#cloud-config\nhostname: a\n---\nhostname: b\n".to_vec(), "u: deserializing from YAML containing more than one document is not supported"),
            (format!("#cloud-config\nx: {}1{}\n", "[".repeat(200), "]".repeat(200)).into_bytes(), "u: line 2 column 131: recursion limit exceeded"),
            (b"#cloud-config\nhostname: ok\x00\n".to_vec(), "u: line 1 column 1: control characters are not allowed at position 26"),
            ((0..2048u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(), "u: not text (invalid UTF-8 at byte 1)"),
            (gzip(&[0xc3, 0x28, 0x00]), "u: not text (invalid UTF-8 at byte 0)"),
            (b"#cloud-config\nssh_authorized_keys: !!binary aGk=\n".to_vec(), "u: line 2 column 22: ssh_authorized_keys: invalid type: string \"aGk=\", expected a sequence"),
        ];
        assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
        let mut wrong = Vec::new();
        for (bytes, want) in &cases {
            match parse("u", bytes) {
                Err(e) if e.to_string().starts_with(want) => {}
                other => wrong.push(format!("want {want:?}, got {other:?}")),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
