//! RancherOS's service repositories (`corral.repositories.NAME.url`), read as RancherOS
//! laid them out: `<url>/index.yml` lists what the repository offers
//! (`services: [name, ...]`, and `consoles:`, `engines:`), and each service's (or
//! console's)
//! docker-compose file is at `<url>/<first letter>/<name>.yml`. Fetched over http(s) as
//! every other URL ([`crate::datasource::get`]: https checked against the CA bundle, the
//! size capped); a name that could break the path is never asked for.

use crate::error::Result;
use crate::schema::Repository;
use crate::ConfigError;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long one fetch may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// What a repository's `index.yml` lists.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Index {
    pub services: Vec<String>,
    pub consoles: Vec<String>,
    pub engines: Vec<String>,
}

/// A name a repository may offer: a letter or digit, then letters, digits, `_`, `.`
/// and `-` (never `/` or `..`), at most 64.
pub fn is_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !name.contains("..")
}

/// Reads an `index.yml` (`origin` names it in errors); names that are not names are
/// left out.
pub fn parse_index(origin: &str, bytes: &[u8]) -> Result<Index> {
    let bad = |detail: String| ConfigError::Yaml {
        origin: origin.to_string(),
        at: String::new(),
        detail,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not text: {e}")))?;
    crate::userdata::bounded(origin, text)?;
    let lists: BTreeMap<String, yaml_serde::Value> = yaml_serde::from_str(text).map_err(|e| {
        bad(format!(
            "{e}; a repository's index.yml maps services:, consoles: and engines: to lists of names"
        ))
    })?;
    let names = |key: &str| -> Vec<String> {
        lists
            .get(key)
            .and_then(|v| v.as_sequence())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str())
                    .filter(|n| is_name(n))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Index {
        services: names("services"),
        consoles: names("consoles"),
        engines: names("engines"),
    })
}

/// Where a repository at `base` keeps `name`'s file: `<base>/<first letter>/<name>.yml`.
pub fn service_url(base: &str, name: &str) -> Option<String> {
    let first = name.chars().next()?;
    is_name(name).then(|| format!("{}/{first}/{name}.yml", base.trim_end_matches('/')))
}

/// The repositories with a usable URL, in their names' order: (name, base URL).
pub fn bases(repositories: &BTreeMap<String, Repository>) -> Vec<(&str, &str)> {
    repositories
        .iter()
        .filter_map(|(name, r)| Some((name.as_str(), r.base().ok()??)))
        .collect()
}

/// Fetches a repository's index.
pub fn fetch_index(base: &str) -> Result<Index> {
    let url = format!("{}/index.yml", base.trim_end_matches('/'));
    let bytes = crate::datasource::get("repository index", &url, TIMEOUT)?;
    parse_index(&url, &bytes)
}

/// Each repository's index, in their names' order, fetched as the iteration reaches it:
/// (repository, base URL, the index or why not).
pub fn indexes(
    repositories: &BTreeMap<String, Repository>,
) -> impl Iterator<Item = (&str, &str, Result<Index>)> {
    bases(repositories)
        .into_iter()
        .map(|(repo, base)| (repo, base, fetch_index(base)))
}

/// The text of a repository's file at `url` (`what` names it in errors).
pub fn fetch_text(what: &str, url: &str) -> std::result::Result<String, String> {
    let bytes = crate::datasource::get(what, url, TIMEOUT).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| format!("{url} is not UTF-8 text"))
}

/// A service's file from the first repository that has it: (repository, URL, text).
/// Every repository's failure is in the error when none has it.
pub fn fetch_service(
    repositories: &BTreeMap<String, Repository>,
    name: &str,
) -> std::result::Result<(String, String, String), String> {
    let mut tried = Vec::new();
    for (repo, base) in bases(repositories) {
        let Some(url) = service_url(base, name) else {
            return Err(format!(
                "{name:?} is not a service name a repository offers"
            ));
        };
        match fetch_text("service", &url) {
            Ok(text) => return Ok((repo.to_string(), url, text)),
            Err(e) => tried.push(format!("{repo}: {e}")),
        }
    }
    if tried.is_empty() {
        Err("no repository is configured (corral.repositories)".into())
    } else {
        Err(tried.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_lists_names_and_leaves_out_what_is_not_one() {
        let i = parse_index(
            "u",
            b"services: [crontab, open-vm-tools, '../etc/passwd', 'a/b', {x: 1}]\nconsoles: [debian, alpine]\nengines: [docker-28.1.1]\nother: 3\n",
        )
        .expect("index");
        assert_eq!(i.services, ["crontab", "open-vm-tools"]);
        assert_eq!(i.consoles, ["debian", "alpine"]);
        assert_eq!(i.engines, ["docker-28.1.1"]);
        assert_eq!(parse_index("u", b"{}").expect("empty"), Index::default());
        let e = parse_index("https://r/index.yml", b"- a\n- b\n").expect_err("a list");
        assert!(e.to_string().starts_with("https://r/index.yml: "), "{e}");
        assert!(parse_index("u", &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn a_service_is_under_its_first_letter() {
        assert_eq!(
            service_url("https://r.example/os-services/v1.5.2/", "crontab").as_deref(),
            Some("https://r.example/os-services/v1.5.2/c/crontab.yml")
        );
        assert_eq!(service_url("https://r", "../x"), None);
        assert_eq!(service_url("https://r", ""), None);
        assert_eq!(service_url("https://r", "a/b"), None);
    }

    #[test]
    fn only_http_urls_are_repositories() {
        let repos: BTreeMap<String, Repository> = yaml_serde::from_str(
            "core: {url: 'https://r.example/svc/'}\nlocal: {url: 'http://10.0.0.1:8080'}\nbad: {url: 'ftp://x'}\nnone: {}\n",
        )
        .expect("repositories");
        assert_eq!(
            bases(&repos),
            [
                ("core", "https://r.example/svc"),
                ("local", "http://10.0.0.1:8080")
            ]
        );
        assert!(repos["bad"].base().is_err());
        assert_eq!(
            fetch_service(&BTreeMap::new(), "x"),
            Err("no repository is configured (corral.repositories)".into())
        );
    }
}
