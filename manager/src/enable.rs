//! `corral service enable`, `disable` and `up`: which services a machine runs, kept as
//! `corral.services_include` in the `corral config set` layer (so it lasts across
//! reboots, and `corral config export` shows it), and bringing the services to what the
//! saved configuration asks for now.

use crate::assemble::{self, ESSENTIAL};
use crate::repositories::NotKept;
use crate::services::{self, Outcome};
use bollard::query_parameters::RemoveContainerOptions;
use bollard::Docker;
use corral_api::protocol::{Brought, Response, Service};
use corral_compose::ServicesFile;
use corral_config::edit::Machine;
use futures_util::future::BoxFuture;
use std::path::{Path, PathBuf};

/// The services the saved configuration asks for, put together as a boot would; with
/// `true`, ready to start (the user engine's flags and files prepared too).
pub type Assemble = std::sync::Arc<dyn Fn(bool) -> BoxFuture<'static, ServicesFile> + Send + Sync>;

/// What `enable`, `disable` and `up` work on besides the engine.
#[derive(Clone)]
pub struct Services {
    /// The configuration's layers: `services_include` goes in the `config set` layer.
    pub machine: Machine,
    /// Where a service enabled from a file or URL is kept (`<dir>/<name>.yml`).
    pub available: PathBuf,
    /// Where optional services are looked up by name, before the built-in catalogue.
    pub lookup: Vec<PathBuf>,
    pub assemble: Assemble,
}

/// A failed change of the saved configuration as an answer: the user's, unless the
/// write itself failed.
pub fn edit_failure(e: corral_config::ConfigError) -> Response {
    if e.is_user_error() {
        Response::user(e.to_string())
    } else {
        Response::system(e.to_string())
    }
}

/// A service name as compose and `services_include` take it: stricter than the schema's
/// (no `.`, which would split the `services_include` key; at most 64).
fn check_name(name: &str) -> Result<(), Response> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if fine {
        Ok(())
    } else {
        Err(Response::user(format!(
            "{name:?} is not a service name: letters, digits, - and _, starting with a letter or digit, at most 64"
        )))
    }
}

impl Services {
    /// Whether `name` is an optional service: a file in `lookup` or the catalogue.
    fn optional(&self, name: &str) -> bool {
        assemble::is_optional(&self.lookup, name)
    }

    /// Whether the saved configuration turns `name` off.
    fn disabled(&self, name: &str) -> bool {
        self.machine
            .in_force()
            .config
            .corral
            .services_include
            .iter()
            .any(|(n, on)| n.0 == name && !on)
    }

    /// The optional services' names, for messages.
    fn optional_names(&self) -> Vec<String> {
        let mut names: Vec<String> = assemble::CATALOGUE
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        for dir in &self.lookup {
            if let Ok(entries) = std::fs::read_dir(dir) {
                names.extend(entries.filter_map(|e| {
                    let p = e.ok()?.path();
                    (p.extension()? == "yml")
                        .then(|| p.file_stem()?.to_str().map(str::to_string))?
                }));
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// Sets `corral.services_include.NAME` in the saved configuration. The store's lock
    /// and fsyncs are waited for on a blocking thread, not the manager's one async thread.
    async fn include(&self, name: &str, on: bool) -> Result<(), Response> {
        let key = format!("corral.services_include.{name}");
        let machine = self.machine.clone();
        tokio::task::spawn_blocking(move || {
            machine
                .set(
                    &key,
                    if on { "true" } else { "false" },
                    &corral_config::validate::layer,
                )
                .map(|_| ())
                .map_err(edit_failure)
        })
        .await
        .unwrap_or_else(|e| Err(Response::system(format!("saving the configuration: {e}"))))
    }

    /// `enable NAME [definition]`.
    pub async fn enable(&self, name: &str, definition: Option<&str>) -> Response {
        if let Err(r) = check_name(name) {
            return r;
        }
        if let Some(text) = definition {
            let origin = format!("the services file for {name}");
            match crate::repositories::keep(&self.available, name, &origin, text) {
                Ok(()) => {}
                Err(NotKept::Invalid(why)) => {
                    return Response::user(format!("{why}; nothing was enabled"))
                }
                Err(NotKept::Write(why)) => return Response::system(why),
            }
        } else {
            let defined = (self.assemble)(false).await.services.contains_key(name);
            if !defined && !self.optional(name) && !self.disabled(name) {
                // Not carried here: the repositories, as RancherOS looked.
                let repositories = self.machine.in_force().config.corral.repositories.clone();
                let (dir, wanted) = (self.available.clone(), name.to_string());
                let fetched = tokio::task::spawn_blocking(move || {
                    crate::repositories::fetch(&repositories, &dir, &wanted)
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                if let Err(why) = fetched {
                    return Response::user(format!(
                        "there is no service {name:?} to enable; the catalogue has: {} \
                         (or give a services file: corral service enable ./{name}.yml, or a URL); \
                         the repositories: {why}",
                        self.optional_names().join(", ")
                    ));
                }
            }
        }
        if let Err(r) = self.include(name, true).await {
            return r;
        }
        log::info!("service {name}: enabled through the api");
        Response::ok(&serde_json::Value::Null)
    }

    /// What the machine can run and does not (`have` lists what runs): the catalogue's
    /// and the services folders' optional services, then what the repositories offer
    /// (fetched off the async thread).
    pub async fn offered(&self, have: &[String]) -> Vec<Service> {
        let mut out: Vec<Service> = self
            .optional_names()
            .into_iter()
            .filter(|n| !have.contains(n))
            .map(|name| crate::repositories::offer(&name, "catalogue", "available"))
            .collect();
        let repositories = self.machine.in_force().config.corral.repositories.clone();
        if repositories.is_empty() {
            return out;
        }
        let mut listed: Vec<String> = have.to_vec();
        listed.extend(out.iter().map(|s| s.name.clone()));
        let more = tokio::task::spawn_blocking(move || {
            crate::repositories::offered(&repositories, &listed)
        })
        .await
        .unwrap_or_default();
        out.extend(more);
        out
    }

    /// `disable NAME`: off in the saved configuration, then stopped and removed.
    pub async fn disable(&self, docker: &Docker, name: &str) -> Response {
        if let Err(r) = check_name(name) {
            return r;
        }
        if name == ESSENTIAL {
            return Response::user(
                "the console cannot be disabled: it is how anyone reaches this machine \
                 (sshd and the gettys run in it)",
            );
        }
        let defined = (self.assemble)(false).await.services.contains_key(name);
        let containers = match crate::containers::service_containers(docker).await {
            Ok(c) => c,
            Err(e) => return Response::system(format!("listing the services: {e}")),
        };
        if !defined && !self.optional(name) && !containers.contains_key(name) {
            return Response::user(format!(
                "there is no service {name:?}; `corral service list` shows the running ones"
            ));
        }
        if let Err(r) = self.include(name, false).await {
            return r;
        }
        if let Some(id) = containers.get(name) {
            let options = RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            // A clean stop first, as `service stop` does; then the container goes.
            let _ = crate::containers::stop(docker, name, id).await;
            if let Err(e) = docker.remove_container(id, Some(options)).await {
                return Response::system(format!(
                    "service {name} is disabled for later boots, but removing its container failed: {e}"
                ));
            }
        }
        log::info!("service {name}: disabled through the api");
        Response::ok(&serde_json::Value::Null)
    }

    /// `up [NAME...]`: the named services (all when none) as the saved configuration
    /// defines them.
    pub async fn up(&self, docker: &Docker, names: &[String]) -> Response {
        let mut file = (self.assemble)(true).await;
        if !names.is_empty() {
            if let Some(missing) = names.iter().find(|n| !file.services.contains_key(*n)) {
                let known: Vec<&str> = file.services.keys().map(String::as_str).collect();
                let hint = if self.optional(missing) || self.disabled(missing) {
                    format!("it is not enabled: corral service enable {missing}")
                } else {
                    format!("the services are: {}", known.join(", "))
                };
                return Response::user(format!(
                    "there is no service {missing:?} to bring up; {hint}"
                ));
            }
            file.services.retain(|n, _| names.contains(n));
        }
        let brought: Vec<Brought> = services::up(docker, &file)
            .await
            .into_iter()
            .map(|(name, outcome)| {
                let (ok, text) = describe(&outcome);
                log::info!("service {name}: {text} (service up)");
                Brought {
                    name,
                    ok,
                    outcome: text,
                }
            })
            .collect();
        Response::ok(&brought)
    }
}

/// An outcome as `service up` reports it.
fn describe(outcome: &Outcome) -> (bool, String) {
    let action = |a: &services::Action| format!("{a:?}").to_lowercase();
    let text = match outcome {
        Outcome::Running { action: a } => format!("running ({})", action(a)),
        Outcome::Created { action: a } => format!("created ({})", action(a)),
        Outcome::Completed => "completed".into(),
        Outcome::Failed(why) => format!("failed: {why}"),
        Outcome::Skipped(why) | Outcome::Blocked(why) => format!("not started: {why}"),
    };
    (outcome.succeeded(), text)
}

/// The real machine's: the store, `conf/services-available`, and [`assemble::AVAILABLE_DIRS`].
pub fn here(assemble: Assemble) -> Services {
    Services {
        machine: Machine::here(),
        available: Path::new(corral_config::store::CONF_DIR).join("services-available"),
        lookup: assemble::AVAILABLE_DIRS.iter().map(PathBuf::from).collect(),
        assemble,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_checked() {
        assert!(check_name("crond").is_ok());
        assert!(check_name("my_svc-2").is_ok());
        for bad in ["", "-x", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn outcomes_read_as_what_happened() {
        assert_eq!(
            describe(&Outcome::Running {
                action: services::Action::Created
            }),
            (true, "running (created)".into())
        );
        assert_eq!(
            describe(&Outcome::Failed("no image".into())),
            (false, "failed: no image".into())
        );
    }
}
