//! The console the machine runs (`corral.console`, `corral console list|switch|enable`):
//! `default` (the root's `corral/console`), a console by name (an image labelled
//! `io.corral.console: NAME`, such as the Debian console shipped as
//! `dist/console-debian.tar`), or a user's own image by reference.
//!
//! A console other than the default keeps `/etc`, `/usr`, `/var` and `/root` in volumes
//! of the system engine (`corral-console-<key>-<dir>`, filled from the image the first
//! time), so what apt installs there stays across reboots, and across upgrades (a store
//! seeded again keeps its volumes); its image's archive is kept in
//! `/var/lib/corral/consoles/<key>.tar` and loaded again when the store lost the image.
//! The host's `corral` is bound over the image's, so `console-init` always matches the
//! manager. A console that cannot be found runs the default one, with a warning; one
//! that does not stay up after a switch is switched back.
//!
//! A console a repository offers (`consoles:` in its `index.yml`, RancherOS's
//! os-services layout) is fetched when it is first asked for: its file's `console`
//! service names the image, which the system engine pulls and tags
//! [`repository_tag`]`(NAME)`, so that the name finds it again (and its kept archive
//! holds that tag).

use crate::enable::{edit_failure, Services};
use crate::services::{self, Outcome};
use bollard::query_parameters::ListImagesOptions;
use bollard::Docker;
use corral_api::protocol::{Console, Response};
use corral_compose::{Service, ServicesFile};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The label that names a console image.
pub const LABEL: &str = "io.corral.console";

/// How many console images are being loaded or pulled now ([`fetching`]).
static FETCHING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether a console's image is being loaded from its kept archive or pulled right
/// now: the rescue watchdog does not count that time as the console being down (the
/// Debian console's 285 MB load took over 90 s under TCG at a trial boot, and the
/// rescue console started on the host in the middle of it).
pub fn fetching() -> bool {
    FETCHING.load(std::sync::atomic::Ordering::SeqCst) > 0
}

/// Counts one fetch in [`FETCHING`] for as long as it lives.
struct Fetching;

impl Fetching {
    fn start() -> Fetching {
        FETCHING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Fetching
    }
}

impl Drop for Fetching {
    fn drop(&mut self) {
        FETCHING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The repository of the tags consoles pulled from a repository get.
const REPOSITORY_CONSOLES: &str = "corral-repository-console";

/// The tag a console pulled from a repository gets, which its name finds.
pub fn repository_tag(name: &str) -> String {
    format!("{REPOSITORY_CONSOLES}/{}:latest", name.to_ascii_lowercase())
}

/// Consoles pulled from repositories that the system engine has: (name, tag), sorted.
async fn pulled(docker: &Docker) -> Vec<(String, String)> {
    let options = ListImagesOptions {
        filters: Some(HashMap::from([(
            "reference".to_string(),
            vec![format!("{REPOSITORY_CONSOLES}/*")],
        )])),
        ..Default::default()
    };
    let images = docker.list_images(Some(options)).await.unwrap_or_default();
    let mut out: Vec<(String, String)> = images
        .into_iter()
        .flat_map(|i| i.repo_tags)
        .filter_map(|tag| {
            let name = tag
                .strip_prefix(REPOSITORY_CONSOLES)?
                .strip_prefix('/')?
                .strip_suffix(":latest")?
                .to_string();
            Some((name, tag))
        })
        .collect();
    out.sort();
    out
}
/// Where consoles' archives are kept (on the state partition).
pub const ARCHIVES: &str = "/var/lib/corral/consoles";
/// The console service.
pub const SERVICE: &str = crate::assemble::ESSENTIAL;
/// What of a console's filesystem is kept in volumes.
const KEPT: &[&str] = &["etc", "usr", "var", "root"];
/// The host's CLI, bound over a console image's.
const HOST_CORRAL: &str = "/usr/bin/corral";
/// How long a switched-to console must stay running to be kept.
const STAYS_UP: Duration = Duration::from_secs(20);

/// Which console a name asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Default,
    /// A console by name: an image labelled [`LABEL`] with it.
    Named(String),
    /// A user's image, by reference (`myorg/console:1`).
    Image(String),
}

impl Choice {
    /// `corral.console`'s value read: nothing, `default` or `corral` is the default
    /// console; a word is a name; anything with `/` or `:` is an image reference.
    pub fn of(value: Option<&str>) -> Choice {
        use corral_config::schema::{console_is_image, DEFAULT_CONSOLE};
        match value.map(str::trim) {
            None | Some("") => Choice::Default,
            Some(v) if DEFAULT_CONSOLE.contains(&v) => Choice::Default,
            Some(v) if console_is_image(v) => Choice::Image(v.to_string()),
            Some(v) => Choice::Named(v.to_string()),
        }
    }

    /// The name its volumes and archive go by: the name, or the reference with every
    /// character that is not a letter, digit, `_`, `.` or `-` made `-`.
    pub fn key(&self) -> String {
        match self {
            Choice::Default => "default".into(),
            Choice::Named(n) => n.clone(),
            Choice::Image(r) => r
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .collect(),
        }
    }

    /// Where its archive is kept.
    pub fn archive(&self) -> PathBuf {
        Path::new(ARCHIVES).join(format!("{}.tar", self.key()))
    }
}

/// Makes `service` (the console's) run `reference` as console `choice`: its volumes and
/// the host's CLI.
pub fn apply(service: &mut Service, choice: &Choice, reference: &str) {
    service.image = reference.to_string();
    let key = choice.key();
    for dir in KEPT {
        service
            .volumes
            .push(format!("corral-console-{key}-{dir}:/{dir}"));
    }
    service
        .volumes
        .push(format!("{HOST_CORRAL}:{HOST_CORRAL}:ro"));
}

/// Images labelled [`LABEL`]: (console name, reference), sorted.
async fn labelled(docker: &Docker) -> Result<Vec<(String, String)>, String> {
    let options = ListImagesOptions {
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![LABEL.to_string()],
        )])),
        ..Default::default()
    };
    let images = docker
        .list_images(Some(options))
        .await
        .map_err(|e| format!("listing the system engine's images: {e}"))?;
    let mut out: Vec<(String, String)> = images
        .into_iter()
        .filter_map(|i| {
            let name = i.labels.get(LABEL)?.clone();
            let reference = i.repo_tags.into_iter().find(|t| t != "<none>:<none>")?;
            Some((name, reference))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The image that is `choice`, if the system engine has it.
async fn find(docker: &Docker, choice: &Choice) -> Result<Option<String>, String> {
    match choice {
        Choice::Default => Ok(None),
        Choice::Named(name) => {
            if let Some((_, r)) = labelled(docker).await?.into_iter().find(|(n, _)| n == name) {
                return Ok(Some(r));
            }
            let tag = repository_tag(name);
            Ok(docker.inspect_image(&tag).await.ok().map(|_| tag))
        }
        Choice::Image(reference) => Ok(docker
            .inspect_image(reference)
            .await
            .ok()
            .map(|_| reference.clone())),
    }
}

/// Loads an image archive (`docker load`), streamed from the file.
pub async fn load(docker: &Docker, path: &Path) -> Result<(), String> {
    use corral_dockerd::images::{load_file, LoadFailure};
    load_file(docker, path)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            LoadFailure::Open(e) => format!("opening {}: {e}", path.display()),
            LoadFailure::Engine(e) => format!("loading {}: {e}", path.display()),
        })
}

/// The repositories consoles may come from.
pub type Repositories = BTreeMap<String, corral_config::schema::Repository>;

/// The image for `choice`: in the system engine, loaded from its kept archive, or (a
/// name) pulled as the first of `repositories` that offers it says.
pub async fn resolve(
    docker: &Docker,
    choice: &Choice,
    repositories: &Repositories,
) -> Result<Option<String>, String> {
    if let Some(found) = find(docker, choice).await? {
        return Ok(Some(found));
    }
    let _fetching = Fetching::start();
    let archive = choice.archive();
    if archive.is_file() && *choice != Choice::Default {
        log::info!("console {}: loading {}", choice.key(), archive.display());
        load(docker, &archive).await?;
        return find(docker, choice).await;
    }
    match choice {
        Choice::Named(name) if !repositories.is_empty() => {
            from_repository(docker, name, repositories).await
        }
        _ => Ok(None),
    }
}

/// Console `name` from the repositories: its image pulled and tagged
/// [`repository_tag`]; `None` when no repository offers it.
async fn from_repository(
    docker: &Docker,
    name: &str,
    repositories: &Repositories,
) -> Result<Option<String>, String> {
    let (repos, wanted) = (repositories.clone(), name.to_string());
    let offered =
        tokio::task::spawn_blocking(move || crate::repositories::console_image(&repos, &wanted))
            .await
            .map_err(|e| format!("fetching console {name}: {e}"))?
            .map_err(|e| format!("console {name} from the repositories: {e}"))?;
    let Some((repo, image)) = offered else {
        return Ok(None);
    };
    if !crate::pull::may_pull(&image) {
        return Err(format!(
            "console {name}: repository {repo} names {image}, one of Corral's own images, \
             which is never pulled"
        ));
    }
    crate::pull::pull(docker, SERVICE, &image).await?;
    let tag = repository_tag(name);
    let (tag_repo, tag_tag) = crate::pull::split(&tag);
    let options = bollard::query_parameters::TagImageOptions {
        repo: Some(tag_repo),
        tag: Some(tag_tag),
    };
    docker
        .tag_image(&image, Some(options))
        .await
        .map_err(|e| format!("tagging {image} as {tag}: {e}"))?;
    log::info!("console {name}: {image} from repository {repo}, tagged {tag}");
    Ok(Some(tag))
}

/// At boot and for `service up`: the console service made the configured console's.
/// Without its image, the default console runs, with a warning saying how to load it.
pub async fn prepare(
    docker: &Docker,
    configured: Option<&str>,
    repositories: &Repositories,
    file: &mut ServicesFile,
) {
    let choice = Choice::of(configured);
    if choice == Choice::Default {
        return;
    }
    let Some(service) = file.services.get_mut(SERVICE) else {
        return;
    };
    match resolve(docker, &choice, repositories).await {
        Ok(Some(reference)) => {
            apply(service, &choice, &reference);
            // Pulled at boot: its archive kept in the background, as a switch keeps it.
            if reference.starts_with(REPOSITORY_CONSOLES) && !choice.archive().is_file() {
                let docker = docker.clone();
                tokio::spawn(async move {
                    if let Err(e) = keep_archive(&docker, &choice, &reference).await {
                        log::warn!("console {}: {e}", choice.key());
                    }
                });
            }
        }
        Ok(None) => log::warn!(
            "corral.console: {}: no such console image here; the default console runs \
             (corral console switch {} --from FILE loads one)",
            choice.key(),
            choice.key()
        ),
        Err(e) => log::error!("corral.console: {e}; the default console runs"),
    }
}

/// `console list`: the default console, the labelled images, the kept archives not
/// loaded, a configured image, and what the repositories offer; the one running marked.
pub async fn list(
    docker: &Docker,
    configured: Option<&str>,
    repositories: &Repositories,
) -> Response {
    let running = docker
        .inspect_container(SERVICE, None)
        .await
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| c.image)
        .unwrap_or_default();
    let configured = Choice::of(configured);
    let default_image = format!("corral/console:{}", env!("CARGO_PKG_VERSION"));
    let mut out = vec![Console {
        name: "default".into(),
        image: default_image.clone(),
        current: running == default_image,
        configured: configured == Choice::Default,
    }];
    let labelled = match labelled(docker).await {
        Ok(l) => l,
        Err(e) => return Response::system(e),
    };
    for (name, reference) in labelled.into_iter().chain(pulled(docker).await) {
        if out.iter().any(|c| c.name == name) {
            continue;
        }
        out.push(Console {
            current: running == reference,
            configured: configured == Choice::Named(name.clone()),
            name,
            image: reference,
        });
    }
    if let Ok(entries) = std::fs::read_dir(ARCHIVES) {
        for e in entries.flatten() {
            let path = e.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_some_and(|x| x == "tar") && !out.iter().any(|c| c.name == stem) {
                out.push(Console {
                    name: stem.to_string(),
                    image: format!("(kept in {}, loaded when used)", path.display()),
                    current: false,
                    configured: configured.key() == stem,
                });
            }
        }
    }
    let have: Vec<String> = out.iter().map(|c| c.name.clone()).collect();
    let repos = repositories.clone();
    let offered =
        tokio::task::spawn_blocking(move || crate::repositories::offered_consoles(&repos, &have))
            .await
            .unwrap_or_default();
    for (name, repo) in offered {
        out.push(Console {
            image: format!("(repository {repo}: fetched and pulled when used)"),
            current: false,
            configured: configured == Choice::Named(name.clone()),
            name,
        });
    }
    if let Choice::Image(reference) = configured {
        if !out.iter().any(|c| c.image == reference) {
            out.push(Console {
                name: reference.clone(),
                current: running == reference,
                image: reference,
                configured: true,
            });
        }
    }
    Response::ok(&out)
}

/// Keeps the image's archive for `choice` (`docker save`), unless it is there: a
/// store seeded again (an upgrade) loses images it did not ship.
async fn keep_archive(docker: &Docker, choice: &Choice, reference: &str) -> Result<(), String> {
    let path = choice.archive();
    if path.is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(ARCHIVES).map_err(|e| format!("making {ARCHIVES}: {e}"))?;
    let tmp = path.with_extension("tar.part");
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    let mut stream = docker.export_image(reference);
    use tokio::io::AsyncWriteExt;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("saving {reference}: {e}"))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    }
    file.sync_all()
        .await
        .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|e| format!("keeping {}: {e}", path.display()))
}

/// Why a console was not kept.
enum NotUp {
    /// It exited, or was started again: it does not work.
    Exited(String),
    /// The system engine did not answer (the machine is shutting down): nothing is
    /// known of the console, so nothing is switched back.
    Unknown(String),
}

/// Whether the console's container runs and keeps running for [`STAYS_UP`].
async fn stays_up(docker: &Docker) -> Result<(), NotUp> {
    let mut first: Option<String> = None;
    let deadline = std::time::Instant::now() + STAYS_UP;
    loop {
        if crate::shutdown::shutting_down() {
            return Err(NotUp::Unknown("the machine is shutting down".into()));
        }
        let state = docker
            .inspect_container(SERVICE, None)
            .await
            .map_err(|e| NotUp::Unknown(format!("inspecting the console: {e}")))?
            .state
            .unwrap_or_default();
        if crate::shutdown::shutting_down() {
            return Err(NotUp::Unknown("the machine is shutting down".into()));
        }
        if let Some(services::Stopped::Exited(code) | services::Stopped::Restarted(code)) =
            services::stopped_since(&state, &mut first)
        {
            return Err(NotUp::Exited(format!(
                "it exited (code {code}); `sudo system-docker logs console` shows why"
            )));
        }
        if std::time::Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Brings the console service up as the saved configuration has it now.
async fn bring_up(docker: &Docker, services: &Services) -> Result<(), NotUp> {
    let mut file = (services.assemble)(true).await;
    file.services.retain(|n, _| n == SERVICE);
    match services::up(docker, &file).await.remove(SERVICE) {
        Some(Outcome::Running { .. }) => stays_up(docker).await,
        Some(other) => Err(NotUp::Exited(format!("{other:?}"))),
        None => Err(NotUp::Exited("it was not brought up".into())),
    }
}

/// `console switch NAME` (`now`) or `console enable NAME`: the console saved as
/// `corral.console`, its archive kept; with `now`, the console replaced a moment after
/// the answer (the request usually comes from a session in the console it replaces, so
/// the answer must reach it first), and put back as it was if the new one does not stay
/// up ([`replace`], which logs how it went).
pub async fn switch(
    docker: &Docker,
    services: &Services,
    wanted: &str,
    now: bool,
    archive: Option<&Path>,
) -> Response {
    // One switch at a time, its watch included: a second waits for the first to end, so
    // that a switch back never overwrites a newer choice.
    let turn = SWITCHING.lock().await;
    let value = yaml_serde::Value::String(wanted.to_string());
    if <corral_config::schema::ConsoleName as serde::Deserialize>::deserialize(value).is_err() {
        return Response::user(format!(
            "{wanted:?} is not a console: `default`, a name from `corral console list`, or an image"
        ));
    }
    let choice = Choice::of(Some(wanted));
    if let Some(archive) = archive {
        // Only what the CLI put in the consoles' folder.
        let inside = archive.parent() == Some(Path::new(ARCHIVES))
            && archive
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".incoming-") && n.ends_with(".tar"));
        if !inside || choice == Choice::Default {
            return Response::user(format!(
                "{} is not an archive for console {wanted}",
                archive.display()
            ));
        }
        if let Err(e) = load(docker, archive).await {
            let _ = std::fs::remove_file(archive);
            return Response::user(format!("{e}; the console is unchanged"));
        }
        let kept = choice.archive();
        if let Err(e) = std::fs::rename(archive, &kept) {
            return Response::system(format!("keeping {}: {e}", kept.display()));
        }
    }
    if choice != Choice::Default {
        let repositories = services.machine.in_force().config.corral.repositories;
        let reference = match resolve(docker, &choice, &repositories).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Response::user(format!(
                    "there is no console {wanted:?} here and no repository offers it; \
                     `corral console list` shows them (load one with --from FILE or URL: the \
                     Debian console is dist/console-debian.tar)"
                ))
            }
            Err(e) => return Response::system(e),
        };
        if let Err(e) = keep_archive(docker, &choice, &reference).await {
            return Response::system(format!("{e}; the console is unchanged"));
        }
    }
    let before = services.machine.in_force().config.corral.console.clone();
    if let Err(r) = save(services, wanted).await {
        return r;
    }
    if !now {
        log::info!("console {wanted}: runs from the next boot");
        return Response::ok(&serde_json::Value::Null);
    }
    log::info!("console {wanted}: switching now");
    let back = before.as_ref().map_or("default", |c| &c.0).to_string();
    let (docker, services, wanted) = (docker.clone(), services.clone(), wanted.to_string());
    tokio::spawn(async move {
        tokio::time::sleep(ANSWER_FIRST).await;
        replace(&docker, &services, &wanted, &back).await;
        drop(turn);
    });
    Response::ok(&serde_json::Value::Null)
}

/// Held by a switch from its start to the end of its watch.
static SWITCHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a switch waits after its answer before it stops the console.
const ANSWER_FIRST: Duration = Duration::from_secs(1);

/// Brings up the console saved as `wanted`, and `back` again if it does not stay up.
async fn replace(docker: &Docker, services: &Services, wanted: &str, back: &str) {
    match bring_up(docker, services).await {
        Ok(()) => log::info!("console {wanted}: running"),
        Err(NotUp::Unknown(why)) => log::warn!("console {wanted}: {why}; it stays configured"),
        Err(NotUp::Exited(why)) => {
            log::error!("console {wanted}: {why}; switching back to {back}");
            if let Err(r) = save(services, back).await {
                log::error!("console {back}: saving it again: {r:?}");
            }
            match bring_up(docker, services).await {
                Err(NotUp::Exited(e) | NotUp::Unknown(e)) => log::error!("console {back}: {e}"),
                Ok(()) => log::info!("console {back}: running again"),
            }
        }
    }
}

/// Saves `corral.console` in the `config set` layer (off the async thread).
async fn save(services: &Services, value: &str) -> Result<(), Response> {
    let machine = services.machine.clone();
    let value = value.to_string();
    tokio::task::spawn_blocking(move || {
        machine
            .set("corral.console", &value, &corral_config::validate::layer)
            .map(|_| ())
            .map_err(edit_failure)
    })
    .await
    .unwrap_or_else(|e| Err(Response::system(format!("saving the configuration: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_counts_as_long_as_it_lasts() {
        assert!(!fetching());
        let one = Fetching::start();
        let two = Fetching::start();
        assert!(fetching());
        drop(one);
        assert!(fetching(), "the other still runs");
        drop(two);
        assert!(!fetching());
    }

    #[test]
    fn a_console_is_the_default_a_name_or_an_image() {
        assert_eq!(Choice::of(None), Choice::Default);
        assert_eq!(Choice::of(Some("corral")), Choice::Default);
        assert_eq!(Choice::of(Some("debian")), Choice::Named("debian".into()));
        let mine = Choice::of(Some("registry.corp:5000/team/console:2"));
        assert_eq!(
            mine,
            Choice::Image("registry.corp:5000/team/console:2".into())
        );
        assert_eq!(mine.key(), "registry.corp-5000-team-console-2");
        assert_eq!(
            Choice::Named("debian".into()).archive(),
            Path::new("/var/lib/corral/consoles/debian.tar")
        );
    }

    #[test]
    fn another_console_keeps_its_system_in_volumes_and_runs_the_hosts_cli() {
        let mut s: Service =
            yaml_serde::from_str("image: corral/console:1\nvolumes: [/home:/home]\n")
                .expect("service");
        apply(
            &mut s,
            &Choice::Named("debian".into()),
            "corral/console-debian:1",
        );
        assert_eq!(s.image, "corral/console-debian:1");
        assert_eq!(
            s.volumes,
            [
                "/home:/home",
                "corral-console-debian-etc:/etc",
                "corral-console-debian-usr:/usr",
                "corral-console-debian-var:/var",
                "corral-console-debian-root:/root",
                "/usr/bin/corral:/usr/bin/corral:ro",
            ]
        );
    }
}
