//! RancherOS's service repositories (`corral.repositories`), for the manager: a service
//! that `services_include` or `corral service enable NAME` names and the machine does not
//! carry (not built in, not in the catalogue, no file in the services folders) is
//! fetched from the first repository that offers it (`corral_config::repository`: its
//! `<url>/<first letter>/<name>.yml`), checked as a services file, and kept in
//! `services-available/NAME.yml`, so that later boots need no network for it. What the
//! repositories offer is listed by `corral service list`.

use corral_api::protocol::Service;
use corral_config::repository::{self, Index};
use corral_config::schema::Repository;
use std::collections::BTreeMap;
use std::path::Path;

/// Why a services file was not kept.
#[derive(Debug, PartialEq, Eq)]
pub enum NotKept {
    /// It is not a services file with a service: the sender's to fix.
    Invalid(String),
    /// Writing it failed: the machine's.
    Write(String),
}

impl std::fmt::Display for NotKept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotKept::Invalid(why) | NotKept::Write(why) => f.write_str(why),
        }
    }
}

/// Checks `text` as `name`'s services file (`origin` names it in errors) and keeps it
/// as `dir/NAME.yml`.
pub fn keep(dir: &Path, name: &str, origin: &str, text: &str) -> Result<(), NotKept> {
    let file = corral_compose::parse(origin, text).map_err(|e| NotKept::Invalid(e.to_string()))?;
    if let Some(e) = file.errors.first() {
        return Err(NotKept::Invalid(e.to_string()));
    }
    if file.services.is_empty() {
        return Err(NotKept::Invalid(format!("{origin} defines no service")));
    }
    let path = dir.join(format!("{name}.yml"));
    std::fs::create_dir_all(dir)
        .and_then(|()| corral_config::store::write_private(&path, text.as_bytes()))
        .map_err(|e| NotKept::Write(format!("keeping {}: {e}", path.display())))
}

/// Fetches `name` from the repositories and keeps it in `dir`; returns the repository
/// and URL it came from. Blocking (the network): run it off the async thread.
pub fn fetch(
    repositories: &BTreeMap<String, Repository>,
    dir: &Path,
    name: &str,
) -> Result<(String, String), String> {
    let (repo, url, text) = repository::fetch_service(repositories, name)?;
    if let Some(warning) = corral_config::datasource::transport_warning(&url) {
        log::warn!("{warning}");
    }
    keep(dir, name, &url, &text).map_err(|e| format!("{url}: {e}"))?;
    log::info!("service {name}: fetched from repository {repo} ({url})");
    Ok((repo, url))
}

/// At boot: each service `services_include` turns on that no services folder (`dirs`)
/// nor the catalogue has is fetched into `dirs`' last (the kept services), so that the
/// boot runs it and later boots need no network for it. Failures are logged; the boot
/// goes on without that service (assemble reports it missing). Blocking.
pub fn fetch_included(effective: &corral_config::store::Effective, dirs: &[std::path::PathBuf]) {
    let corral = &effective.config.corral;
    if corral.repositories.is_empty() {
        return;
    }
    let Some(keep_in) = dirs.last() else {
        return;
    };
    for (name, on) in &corral.services_include {
        let carried =
            crate::assemble::is_optional(dirs, &name.0) || corral.services.contains_key(&name.0);
        if *on && !carried {
            if let Err(why) = fetch(&corral.repositories, keep_in, &name.0) {
                log::error!("corral.services_include.{name}: {why}");
            }
        }
    }
}

/// The image of console `name` from the first repository whose index lists it under
/// `consoles:`: its file (`<url>/<first letter>/<name>.yml`, RancherOS's layout) defines
/// a service `console` (or a single service) whose image it is. Returns (repository,
/// image), or `None` when no repository offers it. Blocking.
pub fn console_image(
    repositories: &BTreeMap<String, Repository>,
    name: &str,
) -> Result<Option<(String, String)>, String> {
    let Some((repo, base)) = first_listing(repositories, name, |i| &i.consoles) else {
        return Ok(None);
    };
    let url = repository::service_url(base, name)
        .ok_or_else(|| format!("{name:?} is not a console name a repository offers"))?;
    if let Some(warning) = corral_config::datasource::transport_warning(&url) {
        log::warn!("{warning}");
    }
    let text = repository::fetch_text("console", &url)?;
    let file = corral_compose::parse(&url, &text).map_err(|e| e.to_string())?;
    let only = (file.services.len() == 1)
        .then(|| file.services.values().next())
        .flatten();
    let Some(service) = file.services.get(crate::consoles::SERVICE).or(only) else {
        return Err(format!(
            "{url} defines no service `console` (a console's file defines one)"
        ));
    };
    if service.image.is_empty() {
        return Err(format!("{url}: the console service names no image"));
    }
    Ok(Some((repo.to_string(), service.image.clone())))
}

/// The first repository whose index lists engine `name` (RancherOS's `engines:`).
/// Blocking.
pub fn offering_engine(repositories: &BTreeMap<String, Repository>, name: &str) -> Option<String> {
    first_listing(repositories, name, |i| &i.engines).map(|(repo, _)| repo.to_string())
}

/// The consoles the repositories offer that `have` does not list: (name, repository).
/// A repository that does not answer is logged and left out. Blocking.
pub fn offered_consoles(
    repositories: &BTreeMap<String, Repository>,
    have: &[String],
) -> Vec<(String, String)> {
    listed(repositories, have, |i| i.consoles)
        .into_iter()
        .filter_map(Result::ok)
        .collect()
}

/// The first repository (name, base URL) whose index has `name` in the list `kind`
/// picks; one that does not answer is logged and passed over.
fn first_listing<'a>(
    repositories: &'a BTreeMap<String, Repository>,
    name: &str,
    kind: fn(&Index) -> &Vec<String>,
) -> Option<(&'a str, &'a str)> {
    repository::indexes(repositories).find_map(|(repo, base, index)| match index {
        Ok(index) => kind(&index)
            .iter()
            .any(|n| n == name)
            .then_some((repo, base)),
        Err(e) => {
            log::warn!("repository {repo}: {e}");
            None
        }
    })
}

/// The names the repositories list in `kind` that `have` does not, each once, in the
/// repositories' order: `Ok((name, repository))`, or `Err((repository, why))` for one
/// that does not answer (logged).
fn listed(
    repositories: &BTreeMap<String, Repository>,
    have: &[String],
    kind: fn(Index) -> Vec<String>,
) -> Vec<Result<(String, String), (String, String)>> {
    let mut out: Vec<Result<(String, String), (String, String)>> = Vec::new();
    for (repo, _, index) in repository::indexes(repositories) {
        match index {
            Ok(index) => {
                for name in kind(index) {
                    let seen = out.iter().any(|l| matches!(l, Ok((n, _)) if *n == name));
                    if !have.contains(&name) && !seen {
                        out.push(Ok((name, repo.to_string())));
                    }
                }
            }
            Err(e) => {
                log::warn!("repository {repo}: {e}");
                out.push(Err((repo.to_string(), e.to_string())));
            }
        }
    }
    out
}

/// The services the repositories offer that `have` does not list, as `service list`
/// shows them (state `available`, `offered_by` the repository); a repository that does
/// not answer is one entry with state `unreachable` and why. Blocking.
pub fn offered(repositories: &BTreeMap<String, Repository>, have: &[String]) -> Vec<Service> {
    listed(repositories, have, |i| i.services)
        .into_iter()
        .map(|l| match l {
            Ok((name, repo)) => offer(&name, &format!("repository {repo}"), "available"),
            Err((repo, why)) => offer(
                &format!("({repo})"),
                &format!("repository {repo}"),
                &format!("unreachable: {why}"),
            ),
        })
        .collect()
}

/// A service the machine can run and does not, as `service list` shows it: no image yet,
/// `state` (`available`, or why not), and where it comes from.
pub fn offer(name: &str, from: &str, state: &str) -> Service {
    Service {
        name: name.to_string(),
        image: String::new(),
        state: state.to_string(),
        health: None,
        since: None,
        offered_by: Some(from.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetched_file_is_kept_only_when_it_is_a_services_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        keep(
            dir.path(),
            "hello",
            "u",
            "services:\n  hello:\n    image: corral/base:1\n",
        )
        .expect("kept");
        assert!(dir.path().join("hello.yml").exists());
        let empty = keep(dir.path(), "none", "u", "services: {}\n").expect_err("no service");
        assert_eq!(empty, NotKept::Invalid("u defines no service".into()));
        assert!(matches!(
            keep(dir.path(), "bad", "u", "services: [x\n"),
            Err(NotKept::Invalid(_))
        ));
        assert!(!dir.path().join("none.yml").exists() && !dir.path().join("bad.yml").exists());
    }

    #[test]
    fn consoles_and_engines_are_read_from_the_index() {
        let site = tempfile::tempdir().expect("tempdir");
        let dir = site.path();
        std::fs::create_dir_all(dir.join("a")).expect("mkdir");
        std::fs::create_dir_all(dir.join("b")).expect("mkdir");
        std::fs::write(
            dir.join("index.yml"),
            "services: [x]\nconsoles: [alpine, bad, debian]\nengines: [docker-18.09.2]\n",
        )
        .expect("w");
        // RancherOS's first compose format, with the console service and another.
        std::fs::write(
            dir.join("a/alpine.yml"),
            "console:\n  image: rancher/os-alpineconsole:v1.5.2\nother:\n  image: x\n",
        )
        .expect("w");
        std::fs::write(
            dir.join("b/bad.yml"),
            "one:\n  image: a\ntwo:\n  image: b\n",
        )
        .expect("w");
        let web = corral_harness::files::FileServer::start(dir, None).expect("server");
        let repos: BTreeMap<String, Repository> =
            yaml_serde::from_str(&format!("os: {{url: 'http://127.0.0.1:{}'}}\n", web.port))
                .expect("repositories");
        assert_eq!(
            offered_consoles(&repos, &["debian".to_string()]),
            [
                ("alpine".to_string(), "os".to_string()),
                ("bad".to_string(), "os".to_string())
            ]
        );
        assert_eq!(
            console_image(&repos, "alpine"),
            Ok(Some((
                "os".to_string(),
                "rancher/os-alpineconsole:v1.5.2".to_string()
            )))
        );
        assert_eq!(console_image(&repos, "ubuntu"), Ok(None), "not offered");
        let bad = console_image(&repos, "bad").expect_err("two services, no console");
        assert!(bad.contains("defines no service `console`"), "{bad}");
        assert_eq!(
            offering_engine(&repos, "docker-18.09.2").as_deref(),
            Some("os")
        );
        assert_eq!(offering_engine(&repos, "docker-99"), None);
    }

    #[test]
    fn without_repositories_nothing_is_offered_or_fetched() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(offered(&BTreeMap::new(), &[]), []);
        let e = fetch(&BTreeMap::new(), dir.path(), "x").expect_err("none");
        assert!(e.contains("no repository is configured"), "{e}");
    }
}
