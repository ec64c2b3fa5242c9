//! Datasources: where a machine's user-data and metadata come from. Each configured
//! source is tried in its own thread, with retries and backoff until a deadline; the
//! first that answers wins. A source that is not there (no `cidata` volume, no
//! `cloud_config_url`) says so at once instead of holding the boot up.
//!
//! - NoCloud: a volume labelled `cidata` with `user-data` and `meta-data`.
//! - OpenStack config drive: a volume labelled `config-2` with
//!   `openstack/latest/user_data` and `meta_data.json`.
//! - EC2: IMDSv2 (a token from a PUT, then GETs with it), IMDSv1 when the PUT is refused.
//!   Tried by default only on EC2 (DMI says Amazon), as cloud-init's ds-identify does, so
//!   a laptop boot does not wait for 169.254.169.254; named in `cloud_init.datasources`
//!   it is always tried.
//! - `url:` and `file:`, and `cmdline` (`corral.cloud_config_url=`).

use crate::schema::Datasource;
use crate::userdata::MAX_USER_DATA;
use std::io::Read;
use std::path::{Path, PathBuf};
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

/// Why a source did not answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Worth another try (a network that is not up yet, a 5xx).
    #[error("{0}")]
    Retry(String),
    /// Another try would not help (a malformed answer, a missing file).
    #[error("{0}")]
    Fatal(String),
}

/// Mounting the volumes NoCloud and the config drive come on.
pub trait Media: Send + Sync {
    /// Devices carrying a filesystem with one of `labels`.
    fn find(&self, labels: &[&str]) -> Vec<PathBuf>;
    /// Mounts `device` read-only and returns where.
    fn mount(&self, device: &Path) -> std::io::Result<PathBuf>;
    fn unmount(&self, dir: &Path);
}

/// The real machine's block devices, mounted under `/run/corral/media`.
pub struct RealMedia;

impl Media for RealMedia {
    fn find(&self, labels: &[&str]) -> Vec<PathBuf> {
        corral_host::label::find(Path::new("/sys/class/block"), Path::new("/dev"), labels)
            .into_iter()
            .map(|(dev, _)| dev)
            .collect()
    }

    fn mount(&self, device: &Path) -> std::io::Result<PathBuf> {
        use nix::mount::MsFlags;
        let name = device.file_name().unwrap_or_default();
        let dir = Path::new("/run/corral/media").join(name);
        std::fs::create_dir_all(&dir)?;
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let mut last = nix::Error::ENODEV;
        for fstype in ["iso9660", "vfat", "ext4"] {
            match nix::mount::mount(Some(device), &dir, Some(fstype), flags, None::<&str>) {
                Ok(()) => return Ok(dir),
                Err(e) => last = e,
            }
        }
        Err(std::io::Error::from(last))
    }

    fn unmount(&self, dir: &Path) {
        let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(dir);
    }
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

/// Whether DMI says this is an EC2 instance (Nitro: the vendor; Xen: the BIOS version
/// or a UUID starting with ec2).
pub fn on_ec2(dmi: &Path) -> bool {
    let read = |f: &str| {
        std::fs::read_to_string(dmi.join(f))
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    read("sys_vendor").contains("amazon")
        || read("bios_version").contains("amazon")
        || read("product_uuid").starts_with("ec2")
}

/// Tries one source once. `Ok(None)`: the source is not there.
pub fn fetch(source: &Datasource, env: &Env) -> Result<Option<Fetched>, FetchError> {
    match source {
        Datasource::Cmdline => match &env.cmdline_url {
            Some(url) => http_user_data("cmdline", url, env).map(Some),
            None => Ok(None),
        },
        Datasource::Url(url) => http_user_data(&source.to_string(), url, env).map(Some),
        Datasource::File(path) => {
            let path = Path::new(path);
            if !path.exists() {
                return Ok(None);
            }
            Ok(Some(Fetched {
                source: source.to_string(),
                user_data: read_capped(path)?,
                meta: Metadata::default(),
            }))
        }
        Datasource::NoCloud(dir) => on_volume(source, dir, &["cidata"], env, nocloud),
        Datasource::ConfigDrive(dir) => on_volume(source, dir, &["config-2"], env, config_drive),
        Datasource::Ec2 => {
            if !env.explicit && !on_ec2(&env.dmi) {
                return Ok(None);
            }
            ec2(&env.imds, env.request_timeout).map(Some)
        }
    }
}

type Reader = fn(&Path, String) -> Result<Fetched, FetchError>;

/// A volume source: a directory when one is given, else the first labelled device.
fn on_volume(
    source: &Datasource,
    dir: &Option<String>,
    labels: &[&str],
    env: &Env,
    read: Reader,
) -> Result<Option<Fetched>, FetchError> {
    if let Some(dir) = dir {
        let dir = Path::new(dir);
        return if dir.is_dir() {
            read(dir, source.to_string()).map(Some)
        } else {
            Ok(None)
        };
    }
    let Some(device) = env.media.find(labels).into_iter().next() else {
        return Ok(None);
    };
    let at = env
        .media
        .mount(&device)
        .map_err(|e| FetchError::Fatal(format!("{source}: mounting {}: {e}", device.display())))?;
    let result = read(&at, format!("{source}:{}", device.display()));
    env.media.unmount(&at);
    result.map(Some)
}

fn read_capped(path: &Path) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_USER_DATA as u64 + 1).read_to_end(&mut out))
        .map_err(|e| FetchError::Fatal(format!("reading {}: {e}", path.display())))?;
    Ok(out)
}

fn read_optional(path: &Path) -> Result<Vec<u8>, FetchError> {
    if path.exists() {
        read_capped(path)
    } else {
        Ok(Vec::new())
    }
}

/// NoCloud's `meta-data`: YAML (or JSON) with `instance-id`, `local-hostname` and
/// optionally `public-keys`.
fn nocloud(dir: &Path, source: String) -> Result<Fetched, FetchError> {
    let user_data = read_optional(&dir.join("user-data"))?;
    let meta_text = read_optional(&dir.join("meta-data"))?;
    let mut meta = Metadata::default();
    if !meta_text.iter().all(u8::is_ascii_whitespace) {
        let v: yaml_serde::Value = yaml_serde::from_slice(&meta_text)
            .map_err(|e| FetchError::Fatal(format!("{source}: meta-data is not YAML: {e}")))?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        meta.instance_id = text("instance-id");
        meta.hostname = text("local-hostname").or_else(|| text("hostname"));
        meta.public_keys = match v.get("public-keys") {
            Some(yaml_serde::Value::String(k)) => vec![k.clone()],
            Some(yaml_serde::Value::Sequence(ks)) => ks
                .iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
    }
    Ok(Fetched {
        source,
        user_data,
        meta,
    })
}

/// The config drive's `openstack/latest/`: `user_data` and `meta_data.json`.
fn config_drive(dir: &Path, source: String) -> Result<Fetched, FetchError> {
    let base = dir.join("openstack/latest");
    let user_data = read_optional(&base.join("user_data"))?;
    let meta_bytes = read_optional(&base.join("meta_data.json"))?;
    let mut meta = Metadata::default();
    if !meta_bytes.is_empty() {
        let v: serde_json::Value = serde_json::from_slice(&meta_bytes)
            .map_err(|e| FetchError::Fatal(format!("{source}: meta_data.json is not JSON: {e}")))?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        meta.instance_id = text("uuid");
        meta.hostname = text("hostname").or_else(|| text("name"));
        meta.region = text("availability_zone");
        if let Some(keys) = v.get("public_keys").and_then(|k| k.as_object()) {
            meta.public_keys = keys
                .values()
                .filter_map(|k| k.as_str().map(|s| s.trim().to_string()))
                .collect();
        }
    }
    Ok(Fetched {
        source,
        user_data,
        meta,
    })
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// A body, capped; `Ok(None)` on 404.
fn body(
    what: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Option<Vec<u8>>, FetchError> {
    let mut response = response.map_err(|e| FetchError::Retry(format!("{what}: {e}")))?;
    let status = response.status().as_u16();
    match status {
        200 => {
            let mut out = Vec::new();
            response
                .body_mut()
                .as_reader()
                .take(MAX_USER_DATA as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| FetchError::Retry(format!("{what}: reading the answer: {e}")))?;
            Ok(Some(out))
        }
        404 => Ok(None),
        s if s >= 500 || s == 429 => Err(FetchError::Retry(format!("{what}: HTTP {s}"))),
        s => Err(FetchError::Fatal(format!("{what}: HTTP {s}"))),
    }
}

fn http_user_data(source: &str, url: &str, env: &Env) -> Result<Fetched, FetchError> {
    let data = get(
        source,
        url,
        env.request_timeout.max(Duration::from_secs(10)),
    )?;
    Ok(Fetched {
        source: source.to_string(),
        user_data: data,
        meta: Metadata::default(),
    })
}

/// A document at `url` (at most [`MAX_USER_DATA`] bytes; 404 is an error): user-data,
/// or a services file for `corral service enable URL`. `what` names it in errors.
pub fn get(what: &str, url: &str, timeout: Duration) -> Result<Vec<u8>, FetchError> {
    body(
        &format!("{what}: GET {url}"),
        agent(timeout).get(url).call(),
    )?
    .ok_or_else(|| FetchError::Fatal(format!("{what}: GET {url}: HTTP 404")))
}

/// The header IMDSv2's token travels in, and the one asking for it.
const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";
const TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";

/// EC2's metadata: IMDSv2 first; IMDSv1 when the token PUT is refused.
pub fn ec2(base: &str, timeout: Duration) -> Result<Fetched, FetchError> {
    let agent = agent(timeout);
    let token_url = format!("{base}/latest/api/token");
    let put = agent.put(&token_url).header(TTL_HEADER, "300").send_empty();
    let token = match put {
        Ok(mut r) if r.status() == 200 => {
            let t = r
                .body_mut()
                .read_to_string()
                .map_err(|e| FetchError::Retry(format!("ec2: reading the token: {e}")))?;
            Some(t.trim().to_string())
        }
        // 403/404/405: IMDSv2 is off or absent; IMDSv1 it is.
        Ok(r) if matches!(r.status().as_u16(), 403..=405) => None,
        Ok(r) => {
            return Err(FetchError::Retry(format!(
                "ec2: PUT {token_url}: HTTP {}",
                r.status()
            )))
        }
        Err(e) => return Err(FetchError::Retry(format!("ec2: PUT {token_url}: {e}"))),
    };
    let get = |path: &str| -> Result<Option<Vec<u8>>, FetchError> {
        let url = format!("{base}/latest/{path}");
        let mut req = agent.get(&url);
        if let Some(t) = &token {
            req = req.header(TOKEN_HEADER, t);
        }
        body(&format!("ec2: GET {url}"), req.call())
    };
    let text = |path: &str| -> Result<Option<String>, FetchError> {
        Ok(get(path)?
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .filter(|s| !s.is_empty()))
    };
    let mut meta = Metadata {
        instance_id: text("meta-data/instance-id")?,
        hostname: text("meta-data/local-hostname")?,
        region: text("meta-data/placement/region")?,
        public_keys: Vec::new(),
    };
    if let Some(list) = text("meta-data/public-keys/")? {
        for line in list.lines() {
            let index = line.split('=').next().unwrap_or_default().trim();
            if index.parse::<u32>().is_err() {
                continue;
            }
            if let Some(key) = text(&format!("meta-data/public-keys/{index}/openssh-key"))? {
                meta.public_keys.push(key);
            }
        }
    }
    let user_data = get("user-data")?.unwrap_or_default();
    Ok(Fetched {
        source: if token.is_some() {
            "ec2"
        } else {
            "ec2 (IMDSv1)"
        }
        .to_string(),
        user_data,
        meta,
    })
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
pub fn first_answer(sources: &[Datasource], env: &Env, deadline: Duration) -> Outcome {
    let end = Instant::now() + deadline;
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Result<Option<Fetched>, String>>();
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
                    Err(FetchError::Fatal(e)) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    Err(FetchError::Retry(e)) => {
                        if done.load(Ordering::Relaxed) || Instant::now() + wait >= end {
                            let _ = tx.send(Err(format!("{e} (gave up at the deadline)")));
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
            Ok(Err(e)) => {
                outcome.failures.push(e);
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
mod tests {
    use super::*;
    use corral_harness::imds::{FakeImds, Instance};

    struct NoMedia;
    impl Media for NoMedia {
        fn find(&self, _: &[&str]) -> Vec<PathBuf> {
            Vec::new()
        }
        fn mount(&self, _: &Path) -> std::io::Result<PathBuf> {
            Err(std::io::Error::other("no media"))
        }
        fn unmount(&self, _: &Path) {}
    }

    /// One "device" whose "mount" is a prepared directory.
    struct DirMedia(PathBuf);
    impl Media for DirMedia {
        fn find(&self, labels: &[&str]) -> Vec<PathBuf> {
            if labels.contains(&"cidata") {
                vec![PathBuf::from("/dev/sr1")]
            } else {
                Vec::new()
            }
        }
        fn mount(&self, _: &Path) -> std::io::Result<PathBuf> {
            Ok(self.0.clone())
        }
        fn unmount(&self, _: &Path) {}
    }

    fn env(imds: &str, media: Arc<dyn Media>) -> Env {
        Env {
            media,
            imds: imds.into(),
            dmi: PathBuf::from("/nonexistent"),
            cmdline_url: None,
            explicit: true,
            request_timeout: Duration::from_secs(2),
        }
    }

    fn instance() -> Instance {
        Instance {
            instance_id: "i-0123456789abcdef0".into(),
            local_hostname: "ip-10-0-0-7.ec2.internal".into(),
            region: "eu-west-1".into(),
            public_keys: vec![("laptop".into(), "ssh-ed25519 AAAAKEY laptop".into())],
            user_data: Some(b"#cloud-config\nhostname: from-ec2\n".to_vec()),
            require_token: true,
            v1_only: false,
        }
    }

    #[test]
    fn ec2_imdsv2_takes_a_token_first_and_sends_it_every_time() {
        let fake = FakeImds::start(instance()).expect("fake imds");
        let f = ec2(&fake.url(), Duration::from_secs(2)).expect("fetches");
        assert_eq!(f.source, "ec2");
        assert_eq!(f.user_data, b"#cloud-config\nhostname: from-ec2\n");
        assert_eq!(f.meta.instance_id.as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(f.meta.hostname.as_deref(), Some("ip-10-0-0-7.ec2.internal"));
        assert_eq!(f.meta.region.as_deref(), Some("eu-west-1"));
        assert_eq!(f.meta.public_keys, ["ssh-ed25519 AAAAKEY laptop"]);
        let requests = fake.requests();
        assert_eq!(requests[0], "PUT /latest/api/token token=no");
        assert!(
            requests[1..]
                .iter()
                .all(|r| r.starts_with("GET ") && r.ends_with("token=yes")),
            "{requests:?}"
        );
    }

    #[test]
    fn ec2_falls_back_to_imdsv1_when_the_token_is_refused() {
        let fake = FakeImds::start(Instance {
            v1_only: true,
            require_token: false,
            user_data: None,
            ..instance()
        })
        .expect("fake imds");
        let f = ec2(&fake.url(), Duration::from_secs(2)).expect("fetches");
        assert_eq!(f.source, "ec2 (IMDSv1)");
        assert!(f.user_data.is_empty(), "404 on user-data: none");
        assert_eq!(f.meta.public_keys.len(), 1);
        assert!(fake.requests()[1..].iter().all(|r| r.ends_with("token=no")));
    }

    #[test]
    fn ec2_off_ec2_is_skipped_unless_named() {
        let mut e = env("http://127.0.0.1:9", Arc::new(NoMedia));
        e.explicit = false;
        assert!(fetch(&Datasource::Ec2, &e).expect("skipped").is_none());
        let dmi = tempfile::tempdir().expect("tempdir");
        std::fs::write(dmi.path().join("sys_vendor"), "Amazon EC2\n").expect("write");
        assert!(on_ec2(dmi.path()));
        e.dmi = dmi.path().to_path_buf();
        assert!(matches!(
            fetch(&Datasource::Ec2, &e),
            Err(FetchError::Retry(_))
        ));
    }

    #[test]
    fn nocloud_from_a_labelled_volume_and_a_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("user-data"),
            "#cloud-config\nhostname: nc\n",
        )
        .expect("w");
        std::fs::write(
            dir.path().join("meta-data"),
            "instance-id: iid-local01\nlocal-hostname: cloudy\npublic-keys: [ssh-ed25519 AAAA nc]\n",
        )
        .expect("w");
        let e = env("http://127.0.0.1:9", Arc::new(DirMedia(dir.path().into())));
        let f = fetch(&Datasource::NoCloud(None), &e)
            .expect("ok")
            .expect("found");
        assert_eq!(f.source, "nocloud:/dev/sr1");
        assert_eq!(f.meta.hostname.as_deref(), Some("cloudy"));
        assert_eq!(f.meta.instance_id.as_deref(), Some("iid-local01"));
        assert_eq!(f.meta.public_keys, ["ssh-ed25519 AAAA nc"]);
        let by_dir = Datasource::NoCloud(Some(dir.path().display().to_string()));
        let f2 = fetch(&by_dir, &env("", Arc::new(NoMedia)))
            .expect("ok")
            .expect("found");
        assert_eq!(f2.user_data, f.user_data);
        assert!(
            fetch(&Datasource::NoCloud(None), &env("", Arc::new(NoMedia)))
                .expect("ok")
                .is_none()
        );
        std::fs::write(dir.path().join("meta-data"), "[unclosed").expect("w");
        assert!(
            matches!(fetch(&by_dir, &e), Err(FetchError::Fatal(m)) if m.contains("meta-data is not YAML"))
        );
    }

    #[test]
    fn config_drive_reads_openstack_latest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("openstack/latest");
        std::fs::create_dir_all(&base).expect("mkdir");
        std::fs::write(base.join("user_data"), "#cloud-config\n").expect("w");
        std::fs::write(
            base.join("meta_data.json"),
            r#"{"uuid": "u-1", "hostname": "os1", "public_keys": {"k": "ssh-rsa AAAA os\n"}}"#,
        )
        .expect("w");
        let src = Datasource::ConfigDrive(Some(dir.path().display().to_string()));
        let f = fetch(&src, &env("", Arc::new(NoMedia)))
            .expect("ok")
            .expect("found");
        assert_eq!(f.meta.instance_id.as_deref(), Some("u-1"));
        assert_eq!(f.meta.hostname.as_deref(), Some("os1"));
        assert_eq!(f.meta.public_keys, ["ssh-rsa AAAA os"]);
    }

    #[test]
    fn url_file_and_cmdline_sources() {
        let fake = FakeImds::start(Instance {
            require_token: false,
            ..instance()
        })
        .expect("fake");
        let url = format!("{}/latest/user-data", fake.url());
        let mut e = env("", Arc::new(NoMedia));
        let f = fetch(&Datasource::Url(url.clone()), &e)
            .expect("ok")
            .expect("answer");
        assert_eq!(f.user_data, b"#cloud-config\nhostname: from-ec2\n");
        assert!(fetch(&Datasource::Cmdline, &e).expect("ok").is_none());
        e.cmdline_url = Some(url);
        assert_eq!(
            fetch(&Datasource::Cmdline, &e)
                .expect("ok")
                .expect("answer")
                .source,
            "cmdline"
        );
        let missing = Datasource::Url(format!("{}/nothing", fake.url()));
        assert!(matches!(fetch(&missing, &e), Err(FetchError::Fatal(m)) if m.contains("HTTP 404")));
        let file = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(file.path(), "#cloud-config\n").expect("w");
        let src = Datasource::File(file.path().display().to_string());
        assert_eq!(
            fetch(&src, &e).expect("ok").expect("answer").user_data,
            b"#cloud-config\n"
        );
        assert!(fetch(&Datasource::File("/nonexistent".into()), &e)
            .expect("ok")
            .is_none());
    }

    #[test]
    fn the_first_answer_wins_and_absent_sources_do_not_wait() {
        let fake = FakeImds::start(instance()).expect("fake");
        let e = env(&fake.url(), Arc::new(NoMedia));
        let started = Instant::now();
        let out = first_answer(
            &[
                Datasource::Cmdline,
                Datasource::NoCloud(None),
                Datasource::Ec2,
            ],
            &e,
            Duration::from_secs(20),
        );
        assert_eq!(out.fetched.expect("ec2 answered").source, "ec2");
        assert!(started.elapsed() < Duration::from_secs(10));
        // Nothing there: every source says so and nothing waits for the deadline.
        let out = first_answer(
            &crate::schema::default_datasources(),
            &env("", Arc::new(NoMedia)).with_explicit(false),
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
        let out = first_answer(&[Datasource::Ec2], &e, Duration::from_secs(2));
        assert!(out.fetched.is_none());
        assert!(
            out.failures[0].contains("gave up at the deadline"),
            "{:?}",
            out.failures
        );
        assert!(started.elapsed() >= Duration::from_millis(1400));
    }

    impl Env {
        fn with_explicit(mut self, explicit: bool) -> Env {
            self.explicit = explicit;
            self
        }
    }
}
