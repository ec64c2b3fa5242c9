//! The services a boot runs, put together from every place they come from, in order
//! (a later definition of a name replaces an earlier one): the built-in
//! `os-config.yml`; users' files in `/var/lib/corral/conf/services/`; optional services
//! turned on by `corral.services_include`; `corral.services` in the cloud-config; a
//! `#compose` user-data. Then the configuration's environment goes to every service
//! (a service's own value wins), the proxies to the console and the user engine, and
//! the network plan to the network service.

use corral_compose::{self as compose, ServicesFile};
use corral_config::store::Effective;
use std::path::{Path, PathBuf};

/// Where optional services are looked up by name (`<dir>/<name>.yml`), in order.
pub const AVAILABLE_DIRS: &[&str] = &[
    "/usr/share/corral/services",
    "/var/lib/corral/conf/services-available",
];

/// The built-in catalogue of optional services (`corral service enable NAME`), by name:
/// each file's text, `{{VERSION}}` standing for the OS version. A file of the same name
/// in one of [`AVAILABLE_DIRS`] takes its place.
pub const CATALOGUE: &[(&str, &str)] = &[("crond", include_str!("../catalogue/crond.yml"))];

/// The service nobody can disable: the way into the machine.
pub const ESSENTIAL: &str = "console";

/// The services that get the proxy settings of `corral.network`: the console and the
/// user engine (the system engine gets them from `corral-manager` as it starts it).
const PROXIED: &[&str] = &[ESSENTIAL, corral_user_docker::SERVICE];

/// A catalogue file's text with the OS version filled in.
pub fn catalogue(name: &str) -> Option<String> {
    CATALOGUE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| text.replace("{{VERSION}}", env!("CARGO_PKG_VERSION")))
}

/// The file of optional service `name` in `dirs` (`<dir>/<name>.yml`, the first found).
pub fn optional_file(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(format!("{name}.yml")))
        .find(|p| p.is_file())
}

/// Whether `name` is an optional service the machine carries: a file in `dirs` or the
/// built-in catalogue.
pub fn is_optional(dirs: &[PathBuf], name: &str) -> bool {
    optional_file(dirs, name).is_some() || catalogue(name).is_some()
}

/// Inputs that are not in the configuration itself.
pub struct Sources<'a> {
    /// The built-in services file's text.
    pub builtin: &'a str,
    /// Users' services files (`/var/lib/corral/conf/services`).
    pub user_dir: &'a Path,
    /// Where `services_include` looks.
    pub available: &'a [PathBuf],
    /// The network service's environment (see [`crate::network::environment`]).
    pub network_env: Vec<(String, String)>,
}

/// Every `*.yml` in `dir`, in name order.
fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The services for this boot; files that do not parse are named in `errors` and left
/// out, the others apply.
pub fn services(effective: &Effective, src: &Sources) -> ServicesFile {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut add = |r: Result<ServicesFile, compose::ComposeError>, errors: &mut Vec<String>| match r
    {
        Ok(f) => files.push(f),
        Err(e) => errors.push(format!("{e}; its services are left out, the others start")),
    };
    add(
        compose::parse("built-in os-config.yml", src.builtin),
        &mut errors,
    );
    for path in yml_files(src.user_dir) {
        add(compose::load(&path), &mut errors);
    }
    let corral = &effective.config.corral;
    for (name, on) in &corral.services_include {
        if !on {
            continue;
        }
        match (optional_file(src.available, &name.0), catalogue(&name.0)) {
            (Some(path), _) => add(compose::load(&path), &mut errors),
            (None, Some(text)) => add(
                compose::parse(&format!("built-in catalogue {name}.yml"), &text),
                &mut errors,
            ),
            (None, None) => errors.push(format!(
                "corral.services_include.{name}: no such optional service; put its file at {}/{name}.yml",
                src.available
                    .last()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            )),
        }
    }
    if !corral.services.is_empty() {
        let mut map = yaml_serde::Mapping::new();
        for (name, spec) in &corral.services {
            map.insert(yaml_serde::Value::String(name.clone()), spec.0.clone());
        }
        let mut top = yaml_serde::Mapping::new();
        top.insert("services".into(), yaml_serde::Value::Mapping(map));
        match yaml_serde::to_string(&top) {
            Ok(text) => add(
                compose::parse("cloud-config corral.services", &text),
                &mut errors,
            ),
            Err(e) => errors.push(format!("cloud-config corral.services: {e}")),
        }
    }
    if let Some(text) = &effective.compose {
        add(compose::parse("#compose user-data", text), &mut errors);
    }
    let mut file = compose::merge(files);
    // `services_include.NAME: false` turns off any service, a built-in one included
    // (`corral service disable`), but never the console.
    for (name, on) in &corral.services_include {
        if *on {
            continue;
        }
        if name.0 == ESSENTIAL {
            errors.push(format!(
                "corral.services_include.{ESSENTIAL}: false is ignored: the console is how \
                 anyone reaches this machine"
            ));
        } else if file.services.remove(&name.0).is_some() {
            log::info!("service {name}: disabled (corral.services_include.{name}: false)");
        }
    }
    file.errors.extend(errors);
    let env: Vec<(String, String)> = corral
        .environment
        .iter()
        .map(|(k, v)| (k.0.clone(), v.0.clone()))
        .collect();
    for service in file.services.values_mut() {
        for (k, v) in &env {
            service.environment.set(k, v, false);
        }
    }
    // RancherOS's proxies (`corral.network.http_proxy`, ...) go to the console and the
    // user engine, as RancherOS gave them to its console and engines; a value the
    // service or `corral.environment` sets wins.
    let proxies = corral.network.proxy_environment();
    for name in PROXIED {
        if let Some(service) = file.services.get_mut(*name) {
            for (k, v) in &proxies {
                service.environment.set(k, v, false);
            }
        }
    }
    // cloud-init's `ntp.servers`/`pools`: chronyd's directives on its command line
    // (with them it ignores the image's configuration file).
    if let Some(directives) = effective.config.ntp.chrony_directives() {
        if let Some(ntp) = file.services.get_mut("ntp") {
            ntp.command = compose::StringOrList::Many(directives);
        }
    }
    if let Some(network) = file.services.get_mut("network") {
        for (k, v) in &src.network_env {
            network.environment.set(k, v, true);
        }
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILTIN: &str = "services:\n  network:\n    image: corral/network:1\n  console:\n    image: corral/console:1\n    environment: [HTTP_PROXY=own]\n";

    fn effective(yaml: &str, compose: Option<&str>) -> Effective {
        let value: yaml_serde::Value = yaml_serde::from_str(yaml).expect("yaml");
        Effective {
            config: yaml_serde::from_value(value.clone()).expect("config"),
            value,
            compose: compose.map(str::to_string),
            ..Effective::default()
        }
    }

    #[test]
    fn every_source_adds_services_and_later_ones_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("services");
        let avail = dir.path().join("available");
        std::fs::create_dir_all(&user).expect("mkdir");
        std::fs::create_dir_all(&avail).expect("mkdir");
        std::fs::write(
            user.join("a.yml"),
            "services:\n  mine:\n    image: mine:1\n",
        )
        .expect("w");
        std::fs::write(user.join("b.yml"), "services: [broken").expect("w");
        std::fs::write(
            avail.join("extra.yml"),
            "services:\n  extra:\n    image: extra:1\n",
        )
        .expect("w");
        let e = effective(
            "corral:\n  services_include: {extra: true, off: false, missing: true, network: false, \
             console: false, crond: true}\n  services:\n    \
             hello: {image: 'hello:1'}\n    mine: {image: 'mine:2'}\n  environment: {HTTP_PROXY: http://p:3128, NO_PROXY: local}\n",
            Some("#compose\nservices:\n  composed:\n    image: c:1\n"),
        );
        let available = [avail.clone()];
        let src = Sources {
            builtin: BUILTIN,
            user_dir: &user,
            available: &available,
            network_env: vec![("CORRAL_NETWORK".into(), "eth0 dhcp".into())],
        };
        let f = services(&e, &src);
        let names: Vec<&str> = f.services.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["composed", "console", "crond", "extra", "hello", "mine"],
            "network disabled, crond from the built-in catalogue, the console kept"
        );
        assert_eq!(
            f.services["crond"].image,
            format!("corral/console:{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(
            f.services["mine"].image, "mine:2",
            "cloud-config over the user's file"
        );
        assert_eq!(f.errors.len(), 3, "{:?}", f.errors);
        assert!(f
            .errors
            .iter()
            .any(|e| e.starts_with("corral.services_include.console: false is ignored")));
        assert!(f.errors.iter().any(|e| e.contains("b.yml")));
        assert!(f
            .errors
            .iter()
            .any(|e| e.starts_with("corral.services_include.missing: no such optional service")));
        let console_env = f.services["console"].environment.to_map();
        assert_eq!(
            console_env["HTTP_PROXY"], "own",
            "a service's own value wins"
        );
        assert_eq!(console_env["NO_PROXY"], "local");
    }

    #[test]
    fn the_proxies_go_to_the_console_and_the_user_engine_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = effective(
            "corral:\n  network:\n    http_proxy: http://proxy:3128\n    no_proxy: localhost\n  environment: {NO_PROXY: mine}\n  services:\n    docker: {image: 'corral/engine:1'}\n",
            None,
        );
        let src = Sources {
            builtin: BUILTIN,
            user_dir: dir.path(),
            available: &[],
            network_env: Vec::new(),
        };
        let f = services(&e, &src);
        let docker = f.services["docker"].environment.to_map();
        assert_eq!(docker["HTTP_PROXY"], "http://proxy:3128");
        assert_eq!(docker["http_proxy"], "http://proxy:3128");
        assert_eq!(docker["no_proxy"], "localhost");
        assert_eq!(docker["NO_PROXY"], "mine", "corral.environment wins");
        let console = f.services["console"].environment.to_map();
        assert_eq!(console["HTTP_PROXY"], "own", "the service's own value wins");
        assert_eq!(console["http_proxy"], "http://proxy:3128");
        let network = f.services["network"].environment.to_map();
        assert!(!network.contains_key("http_proxy"), "{network:?}");
    }

    #[test]
    fn cloud_init_ntp_servers_become_chronys_directives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let builtin =
            "services:\n  ntp:\n    image: corral/ntp:1\n  console:\n    image: corral/console:1\n";
        let src = Sources {
            builtin,
            user_dir: dir.path(),
            available: &[],
            network_env: Vec::new(),
        };
        let e = effective(
            "ntp:\n  servers: [10.0.2.2, time.corp]\n  pools: [pool.corp]\n",
            None,
        );
        let f = services(&e, &src);
        let args = f.services["ntp"].command.to_vec();
        assert!(
            args.contains(&"server 10.0.2.2 iburst".to_string()),
            "{args:?}"
        );
        assert!(
            args.contains(&"server time.corp iburst".to_string()),
            "{args:?}"
        );
        assert!(
            args.contains(&"pool pool.corp iburst".to_string()),
            "{args:?}"
        );
        assert!(args.contains(&"driftfile /var/lib/chrony/chrony.drift".to_string()));
        let plain = services(&effective("hostname: x\n", None), &src);
        assert!(
            plain.services["ntp"].command.to_vec().is_empty(),
            "the image's file"
        );
    }

    #[test]
    fn the_network_service_gets_the_network_plan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = effective(
            "corral:\n  environment: {HTTP_PROXY: http://p:3128}\n",
            None,
        );
        let src = Sources {
            builtin: BUILTIN,
            user_dir: dir.path(),
            available: &[],
            network_env: vec![("CORRAL_NETWORK".into(), "eth0 dhcp".into())],
        };
        let f = services(&e, &src);
        let net_env = f.services["network"].environment.to_map();
        assert_eq!(net_env["CORRAL_NETWORK"], "eth0 dhcp");
        assert_eq!(net_env["HTTP_PROXY"], "http://p:3128");
    }

    #[test]
    fn every_catalogue_service_parses() {
        for (name, _) in CATALOGUE {
            let text = catalogue(name).expect("listed");
            let f = compose::parse(name, &text).expect("parses");
            assert!(f.services.contains_key(*name), "{name} defines itself");
            assert!(f.warnings.is_empty(), "{name}: {:?}", f.warnings);
        }
    }
}
