//! Datasources: where a machine's user-data and metadata come from, one module each
//! behind the [`Datasource`] trait (afterburn's providers have the same shape). Each
//! configured source is tried in its own thread, with retries and backoff until a
//! deadline; the first that answers wins. A source that is not there (no `cidata`
//! volume, no `cloud_config_url`) says so at once (`Ok(None)`) instead of holding the
//! boot up.
//!
//! - [`nocloud`]: a volume labelled `cidata` with `user-data` and `meta-data`.
//! - [`configdrive`]: OpenStack's config drive, a volume labelled `config-2` with
//!   `openstack/latest/user_data` and `meta_data.json`.
//! - [`ec2`]: IMDSv2 (a token from a PUT, then GETs with it), IMDSv1 when the PUT is
//!   refused. Tried by default only on EC2 (DMI says Amazon), as cloud-init's
//!   ds-identify does, so a laptop boot does not wait for 169.254.169.254; named in
//!   `cloud_init.datasources` it is always tried.
//! - [`url`]: `url:` and `cmdline` (`corral.cloud_config_url=`); [`file`]: `file:`.
//!
//! To add a source: a module with a type that implements [`Datasource`], a name in
//! [`crate::schema::DatasourceName`], and one arm in [`from_name`]. The file sources'
//! tests read the fixture trees in `config/tests/fixtures/`; the network ones talk to
//! a fake metadata service on 127.0.0.1 (`corral_harness::imds`).

pub mod configdrive;
pub mod ec2;
pub mod file;
pub mod http;
pub mod nocloud;
pub mod url;
pub mod volume;

pub use ec2::on_ec2;
pub use http::{get, transport_warning, CA_BUNDLE};
pub use volume::{Media, RealMedia};

use crate::error::{ConfigError, Result};
use crate::schema::DatasourceName;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// What a datasource knows about the machine besides its user-data.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub public_keys: Vec<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// A datasource's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Which source answered, as written in `datasources` plus where (`nocloud:/dev/sr1`).
    pub source: String,
    /// The user-data as fetched (empty when the source has none).
    pub user_data: Vec<u8>,
    pub meta: Metadata,
}

/// Everything the sources need from the machine; tests point it at fakes.
#[derive(Clone)]
pub struct Env {
    pub media: Arc<dyn Media>,
    /// The metadata service's base URL, `http://169.254.169.254`.
    pub imds: String,
    /// Where DMI facts are (`/sys/class/dmi/id`).
    pub dmi: PathBuf,
    /// `corral.cloud_config_url`, if set.
    pub cmdline_url: Option<String>,
    /// Whether the datasource list was configured (then EC2 is tried even off EC2).
    pub explicit: bool,
    /// One HTTP request's time limit.
    pub request_timeout: Duration,
}

impl Env {
    /// The real machine's.
    pub fn real(cmdline_url: Option<String>, explicit: bool) -> Env {
        Env {
            media: Arc::new(RealMedia),
            imds: "http://169.254.169.254".into(),
            dmi: PathBuf::from("/sys/class/dmi/id"),
            cmdline_url,
            explicit,
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// The sources a configuration names (`cloud_init.datasources`, else the defaults) and
/// the real machine's environment for them.
pub fn configured(corral: &crate::schema::Corral) -> (Vec<DatasourceName>, Env) {
    let explicit = corral.cloud_init.datasources.is_some();
    let sources = corral
        .cloud_init
        .datasources
        .clone()
        .unwrap_or_else(crate::schema::default_datasources);
    let url = corral.cloud_config_url.as_ref().map(|u| u.0.clone());
    (sources, Env::real(url, explicit))
}

/// One source of user-data and metadata.
pub trait Datasource: Send + Sync {
    /// The source as `cloud_init.datasources` writes it, for messages.
    fn name(&self) -> String;
    /// Tries once. `Ok(None)`: the source is not there (no volume, no URL, not on EC2),
    /// so nothing waits for it; an error that [`ConfigError::is_retryable`] is tried
    /// again until the deadline.
    fn fetch(&self, env: &Env) -> Result<Option<Fetched>>;
}

/// The source a configured name stands for: the one place names meet modules.
pub fn from_name(name: &DatasourceName) -> Box<dyn Datasource> {
    match name {
        DatasourceName::Cmdline => Box::new(url::Cmdline),
        DatasourceName::Url(u) => Box::new(url::Url(u.clone())),
        DatasourceName::File(p) => Box::new(file::File(p.clone())),
        DatasourceName::NoCloud(dir) => Box::new(nocloud::NoCloud { dir: dir.clone() }),
        DatasourceName::ConfigDrive(dir) => Box::new(configdrive::ConfigDrive { dir: dir.clone() }),
        DatasourceName::Ec2 => Box::new(ec2::Ec2),
    }
}

/// Tries the named source once. `Ok(None)`: the source is not there.
pub fn fetch(name: &DatasourceName, env: &Env) -> Result<Option<Fetched>> {
    from_name(name).fetch(env)
}

/// An error worth another try (a network that is not up yet, a 5xx).
pub(crate) fn retry(what: impl Into<String>, detail: impl std::fmt::Display) -> ConfigError {
    ConfigError::Unreachable {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// An error another try would not mend (a malformed answer, a 4xx, an unreadable file).
pub(crate) fn fatal(what: impl Into<String>, detail: impl std::fmt::Display) -> ConfigError {
    ConfigError::BadAnswer {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// The outcome of trying every source.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The first answer, if any source had one.
    pub fetched: Option<Fetched>,
    /// Sources that failed, with why (the last error of each).
    pub failures: Vec<String>,
}

/// Tries `sources` in parallel until one answers or `deadline` passes; each source
/// retries with backoff (0.5 s, doubling to 4 s) while its errors are worth retrying.
pub fn first_answer(sources: &[DatasourceName], env: &Env, deadline: Duration) -> Outcome {
    let end = Instant::now() + deadline;
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Result<Option<Fetched>>>();
    for source in sources {
        let (source, env, done, tx) = (source.clone(), env.clone(), done.clone(), tx.clone());
        std::thread::spawn(move || {
            let mut wait = Duration::from_millis(500);
            loop {
                let result = fetch(&source, &env);
                match result {
                    Ok(answer) => {
                        let _ = tx.send(Ok(answer));
                        return;
                    }
                    Err(e) if !e.is_retryable() => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    Err(e) => {
                        if done.load(Ordering::Relaxed) || Instant::now() + wait >= end {
                            let _ = tx.send(Err(e));
                            return;
                        }
                        log::debug!("{source}: {e}; retrying in {wait:?}");
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(Duration::from_secs(4));
                    }
                }
            }
        });
    }
    drop(tx);
    let mut outcome = Outcome::default();
    let mut pending = sources.len();
    while pending > 0 {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left + Duration::from_millis(100)) {
            Ok(Ok(Some(fetched))) => {
                outcome.fetched = Some(fetched);
                break;
            }
            Ok(Ok(None)) => pending -= 1,
            Ok(Err(e)) if e.is_retryable() => {
                outcome
                    .failures
                    .push(format!("{e} (gave up at the deadline)"));
                pending -= 1;
            }
            Ok(Err(e)) => {
                outcome.failures.push(e.to_string());
                pending -= 1;
            }
            Err(_) => {
                outcome.failures.push(format!(
                    "{pending} datasource(s) gave no answer in {deadline:?}"
                ));
                break;
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    outcome
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::testing::{env, instance, NoMedia};
    use super::*;
    use corral_harness::imds::FakeImds;

    #[test]
    fn every_name_maps_to_its_module() {
        for text in [
            "cmdline",
            "nocloud",
            "nocloud:/x",
            "configdrive",
            "ec2",
            "url:http://h/u",
            "file:/f",
        ] {
            let name: DatasourceName = text.parse().expect(text);
            assert_eq!(from_name(&name).name(), text);
        }
    }

    #[test]
    fn the_first_answer_wins_and_absent_sources_do_not_wait() {
        let fake = FakeImds::start(instance()).expect("fake");
        let e = env(&fake.url(), Arc::new(NoMedia));
        let started = Instant::now();
        let out = first_answer(
            &[
                DatasourceName::Cmdline,
                DatasourceName::NoCloud(None),
                DatasourceName::Ec2,
            ],
            &e,
            Duration::from_secs(20),
        );
        assert_eq!(out.fetched.expect("ec2 answered").source, "ec2");
        assert!(started.elapsed() < Duration::from_secs(10));
        // Nothing there: every source says so and nothing waits for the deadline.
        let mut off_ec2 = env("", Arc::new(NoMedia));
        off_ec2.explicit = false;
        let out = first_answer(
            &crate::schema::default_datasources(),
            &off_ec2,
            Duration::from_secs(60),
        );
        assert!(
            out.fetched.is_none() && out.failures.is_empty(),
            "{:?}",
            out.failures
        );
    }

    #[test]
    fn an_unreachable_service_is_retried_until_the_deadline() {
        // A port nobody listens on: connection refused, retried, then given up.
        let port = corral_harness::free_port().expect("port");
        let e = env(&format!("http://127.0.0.1:{port}"), Arc::new(NoMedia));
        let started = Instant::now();
        let out = first_answer(&[DatasourceName::Ec2], &e, Duration::from_secs(2));
        assert!(out.fetched.is_none());
        assert!(
            out.failures[0].contains("gave up at the deadline"),
            "{:?}",
            out.failures
        );
        assert!(started.elapsed() >= Duration::from_millis(1400));
    }
}
