//! What the configuration asks of the system engine: `corral.system_docker`
//! (RancherOS's `rancher.system_docker`: extra flags, environment, registry mirror,
//! insecure registries, debug, logging) and the proxies of `corral.network`, as flags and
//! variables with a warning for each setting the system engine cannot take. The manager
//! adds them to the engine's own as it starts it; `corral config validate` shows the
//! warnings.
//!
//! What Corral fixes for the system engine (its socket, data root, paths, bridge,
//! iptables, runtimes, storage driver) cannot be changed: such a key or flag is a
//! warning naming it, and the rest applies.

use crate::schema::{Corral, Engine};

/// The system engine's flags and environment from the configuration.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SystemEngine {
    /// Flags after the engine's own.
    pub extra_args: Vec<String>,
    /// Variables to set, later ones winning: the proxies, then `environment`.
    pub environment: Vec<(String, String)>,
    /// Settings left out, each naming its key.
    pub warnings: Vec<String>,
}

/// Flags the system engine's own arguments set, which `extra_args` must not repeat.
const FIXED_FLAGS: &[&str] = &[
    "-H",
    "--host",
    "-g",
    "--graph",
    "--data-root",
    "--exec-root",
    "-p",
    "--pidfile",
    "-G",
    "--group",
    "-b",
    "--bridge",
    "--bip",
    "--iptables",
    "--ip6tables",
    "--ip-forward",
    "--ip-masq",
    "--userland-proxy",
    "--add-runtime",
    "--default-runtime",
    "--config-file",
    "-s",
    "--storage-driver",
    "--containerd",
];

/// The flag name of an argument (`--debug`, `--log-level` of `--log-level=warn`).
fn flag_name(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(name, _)| name)
}

/// The fixed flag `arg` sets, if any: `--data-root=/x`, `-H`, and short flags with
/// their value attached (`-Htcp://...`).
fn fixed_flag(arg: &str) -> Option<&'static str> {
    let name = flag_name(arg);
    FIXED_FLAGS.iter().copied().find(|f| {
        *f == name
            || (f.len() == 2
                && !f.starts_with("--")
                && arg.starts_with(f)
                && arg.len() > 2
                && !arg.starts_with("--"))
    })
}

/// The keys of `engine` set that the system engine ignores, by name.
fn ignored_keys(engine: &Engine) -> Vec<&'static str> {
    let set = [
        ("args", engine.args.is_some()),
        ("storage_driver", engine.storage_driver.is_some()),
        ("bip", engine.bip.is_some()),
        ("group", engine.group.is_some()),
        ("tls", engine.tls.is_some()),
        ("tls_args", engine.tls_args.is_some()),
        ("engine", engine.engine.is_some()),
        ("bridge", engine.bridge.is_some()),
        ("live_restore", engine.live_restore.is_some()),
        ("userland_proxy", engine.userland_proxy.is_some()),
        ("host", !engine.host.is_empty()),
        ("ca_cert", engine.ca_cert.is_some()),
        ("ca_key", engine.ca_key.is_some()),
        ("server_cert", engine.server_cert.is_some()),
        ("server_key", engine.server_key.is_some()),
        ("graph", engine.graph.is_some()),
        ("exec_root", engine.exec_root.is_some()),
        ("pid_file", engine.pid_file.is_some()),
        ("config_file", engine.config_file.is_some()),
        ("containerd", engine.containerd.is_some()),
        ("restart", engine.restart.is_some()),
        ("selinux_enabled", engine.selinux_enabled.is_some()),
        ("storage_context", engine.storage_context.is_some()),
        ("exec", engine.exec.is_some()),
    ];
    set.into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect()
}

/// The configuration's settings for the system engine, and a warning for each one it
/// cannot take.
pub fn settings(corral: &Corral) -> SystemEngine {
    let sd = &corral.system_docker;
    let mut out = SystemEngine::default();
    let warnings = &mut out.warnings;
    for key in ignored_keys(sd) {
        warnings.push(format!(
            "corral.system_docker.{key}: ignored; Corral fixes it for the system engine (its store is seeded for it)"
        ));
    }
    let args: Vec<&str> = sd.extra_args.iter().map(|a| a.0.trim()).collect();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        i += 1;
        if arg.is_empty() {
            continue;
        }
        if arg.contains('\0') {
            warnings.push(
                "corral.system_docker.extra_args: an argument with a NUL byte: ignored".into(),
            );
            continue;
        }
        if let Some(fixed) = fixed_flag(arg) {
            // Its value too, when it is the next argument (`-H tcp://...`).
            let value = if flag_name(arg) == arg && !args.get(i).is_some_and(|a| a.starts_with('-'))
            {
                i += 1;
                args.get(i - 1).copied().unwrap_or_default()
            } else {
                ""
            };
            let shown = if value.is_empty() {
                arg.to_string()
            } else {
                format!("{arg} {value}")
            };
            warnings.push(format!(
                "corral.system_docker.extra_args: {shown}: ignored; Corral sets {fixed} for the system engine"
            ));
        } else {
            out.extra_args.push(arg.to_string());
        }
    }
    if let Some(mirror) = &sd.registry_mirror {
        out.extra_args
            .push(format!("--registry-mirror={}", &**mirror));
    }
    for registry in &sd.insecure_registry {
        out.extra_args
            .push(format!("--insecure-registry={registry}"));
    }
    if sd.debug == Some(true) {
        out.extra_args.push("--debug".into());
    }
    if let Some(driver) = &sd.log_driver {
        out.extra_args.push(format!("--log-driver={driver}"));
    }
    for (k, v) in &sd.log_opts {
        out.extra_args.push(format!("--log-opt={k}={}", v.0));
    }
    // The proxies first, so that `system_docker.environment` wins where both set one.
    let mut env = corral.network.proxy_environment();
    env.extend(sd.environment.0.iter().cloned());
    for (k, v) in env {
        if k.is_empty() || k.contains(['\0', '=']) || v.contains('\0') {
            warnings.push(format!(
                "corral.system_docker.environment: {:?}: ignored; not a variable the engine can get",
                k.replace('\0', "\\0")
            ));
            continue;
        }
        out.environment.push((k, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corral(yaml: &str) -> Corral {
        let c: crate::schema::CloudConfig = yaml_serde::from_str(yaml).expect("yaml");
        c.corral
    }

    #[test]
    fn rancheros_system_docker_settings_become_flags_and_variables() {
        let c = corral(
            "rancher:\n  network:\n    http_proxy: http://proxy:3128\n    no_proxy: localhost\n  system_docker:\n    environment: [NO_PROXY=mine, CORRAL_SYS=1]\n    extra_args: [--debug, --log-level=warn]\n    registry_mirror: https://mirror.test\n    insecure_registry: [reg.local:5000]\n    log_opts: {max-size: 10m}\n",
        );
        let s = settings(&c);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(
            s.extra_args,
            [
                "--debug",
                "--log-level=warn",
                "--registry-mirror=https://mirror.test",
                "--insecure-registry=reg.local:5000",
                "--log-opt=max-size=10m",
            ]
        );
        let env: std::collections::HashMap<_, _> = s.environment.into_iter().collect();
        assert_eq!(env["HTTP_PROXY"], "http://proxy:3128");
        assert_eq!(env["NO_PROXY"], "mine", "system_docker.environment wins");
        assert_eq!(env["no_proxy"], "localhost");
        assert_eq!(env["CORRAL_SYS"], "1");
    }

    #[test]
    fn what_corral_fixes_is_a_warning_and_the_rest_applies() {
        let c = corral(
            "corral:\n  system_docker:\n    storage_driver: vfs\n    args: [daemon]\n    extra_args: [--data-root=/x, -H, --debug]\n",
        );
        let s = settings(&c);
        assert_eq!(s.warnings.len(), 4, "{:?}", s.warnings);
        assert!(s
            .warnings
            .iter()
            .any(|w| w.starts_with("corral.system_docker.storage_driver: ignored")));
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("--data-root=/x: ignored")));
        assert_eq!(s.extra_args, ["--debug"]);
        assert!(s.environment.is_empty());
    }

    #[test]
    fn a_fixed_flags_value_and_its_attached_form_are_left_out_too() {
        let c = corral(
            "corral:\n  system_docker:\n    extra_args: [-H, 'tcp://0.0.0.0:2375', '-Htcp://0.0.0.0:2376', --debug]\n    environment: {\"A\": \"x\\0y\", B: ok}\n",
        );
        let s = settings(&c);
        assert_eq!(s.warnings.len(), 3, "{:?}", s.warnings);
        assert_eq!(s.extra_args, ["--debug"]);
        assert_eq!(s.environment, [("B".to_string(), "ok".to_string())]);
    }
}
