//! Bringing services up on an engine. Each service is one container named after it. A
//! container whose definition is unchanged (same `io.corral.config-hash` label) is left
//! alone; a changed one is removed and created again. Services start as soon as what
//! they wait for is done, so independent services start in parallel; a one-shot
//! (`io.rancher.os.detach=false`) is waited for, and when it fails its dependents do not
//! start. Restarts after a crash are the manager's (`restart` and `watch`), not dockerd's,
//! so each one is logged and backs off like PID 1's.

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, StartContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use corral_compose::graph::Graph;
use corral_compose::{Service, ServicesFile, Ulimit};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The label holding a hash of the container's definition.
pub const CONFIG_HASH: &str = "io.corral.config-hash";
/// The label naming the service a container belongs to.
pub const SERVICE: &str = "io.corral.service";
/// The label holding the service's `restart:` policy, which the manager applies.
pub const RESTART: &str = "io.corral.restart";
/// The label holding a hash of the files copied into the container before it starts.
pub const FILES: &str = "io.corral.files";
/// The OCI annotation that makes containerd's runc v2 shim serve every container with
/// the same value from one shim process, and the value the OS services share: one
/// resident shim for all of them instead of one each (docs/services.md). The user
/// engine's container keeps a shim of its own, so that the engines still fail apart.
pub const SHIM_GROUP: (&str, &str) = ("io.containerd.runc.v2.group", "corral-services");

/// Where a service ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Running; `recreated` when its definition changed, `unchanged` when left alone.
    Running { action: Action },
    /// A createonly service's container exists.
    Created { action: Action },
    /// A one-shot exited 0.
    Completed,
    /// Could not be brought up; the reason names the problem.
    Failed(String),
    /// Not started because a service it waits for failed or is blocked.
    Skipped(String),
    /// In a dependency cycle (or waiting on one).
    Blocked(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Recreated,
    Unchanged,
}

impl Outcome {
    /// Whether the service is where it should be: running, created, or completed.
    pub fn succeeded(&self) -> bool {
        matches!(
            self,
            Outcome::Running { .. } | Outcome::Created { .. } | Outcome::Completed
        )
    }
}

/// compose's environment list: `KEY=VALUE`, or a bare `KEY` taken from the manager's own
/// environment (left out when unset there).
fn environment(s: &Service) -> Vec<String> {
    match &s.environment {
        corral_compose::MapOrList::List(items) => items
            .iter()
            .filter_map(|i| match i.split_once('=') {
                Some(_) => Some(i.clone()),
                None => std::env::var(i).ok().map(|v| format!("{i}={v}")),
            })
            .collect(),
        map => map
            .to_map()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
    }
}

fn device(spec: &str) -> DeviceMapping {
    let mut parts = spec.splitn(3, ':');
    let host = parts.next().unwrap_or_default().to_string();
    let inside = parts
        .next()
        .map(str::to_string)
        .unwrap_or_else(|| host.clone());
    let perms = parts.next().unwrap_or("rwm").to_string();
    DeviceMapping {
        path_on_host: Some(host),
        path_in_container: Some(inside),
        cgroup_permissions: Some(perms),
    }
}

/// The container definition for a service, with its config hash among the labels.
pub fn container_body(name: &str, s: &Service) -> Result<ContainerCreateBody, String> {
    let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let ulimits: Vec<ResourcesUlimits> = s
        .ulimits
        .iter()
        .map(|(n, u)| {
            let (soft, hard) = match u {
                Ulimit::Single(v) => (*v, *v),
                Ulimit::Pair { soft, hard } => (*soft, *hard),
            };
            ResourcesUlimits {
                name: Some(n.clone()),
                soft: Some(soft),
                hard: Some(hard),
            }
        })
        .collect();
    let host = HostConfig {
        privileged: Some(s.privileged),
        network_mode: s.network().map(str::to_string),
        pid_mode: s.pid.clone(),
        ipc_mode: s.ipc.clone(),
        uts_mode: s.uts.clone(),
        binds: non_empty(s.volumes.clone()),
        volumes_from: non_empty(s.volumes_from.clone()),
        cap_add: non_empty(s.cap_add.clone()),
        cap_drop: non_empty(s.cap_drop.clone()),
        device_cgroup_rules: non_empty(s.device_cgroup_rules.clone()),
        devices: (!s.devices.is_empty()).then(|| s.devices.iter().map(|d| device(d)).collect()),
        tmpfs: {
            let mounts: HashMap<String, String> = s
                .tmpfs
                .to_vec()
                .into_iter()
                .map(|t| match t.split_once(':') {
                    Some((path, opts)) => (path.to_string(), opts.to_string()),
                    None => (t, String::new()),
                })
                .collect();
            (!mounts.is_empty()).then_some(mounts)
        },
        // The manager restarts services itself (crate::service_watch); dockerd must not as well.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        readonly_rootfs: Some(s.read_only),
        oom_score_adj: s.oom_score_adj,
        annotations: (name != corral_user_docker::SERVICE)
            .then(|| HashMap::from([(SHIM_GROUP.0.to_string(), SHIM_GROUP.1.to_string())])),
        ..Default::default()
    };
    crate::restart_policy::Policy::parse(s.restart.as_deref())?;
    let mut labels: HashMap<String, String> = s.labels.to_map().into_iter().collect();
    labels.insert(SERVICE.into(), name.into());
    if !s.files.is_empty() {
        // Other files make another container: they are copied in before its first start.
        let mut digest = Sha256::new();
        for tar in &s.files {
            digest.update(Sha256::digest(tar));
        }
        labels.insert(FILES.into(), hex::encode(digest.finalize()));
    }
    labels.insert(
        RESTART.into(),
        s.restart.clone().unwrap_or_else(|| "no".into()),
    );
    let mut body = ContainerCreateBody {
        image: Some(s.image.clone()),
        cmd: non_empty(s.command.to_vec()),
        entrypoint: non_empty(s.entrypoint.to_vec()),
        env: non_empty(environment(s)),
        working_dir: s.working_dir.clone(),
        user: s.user.clone(),
        tty: Some(s.tty),
        open_stdin: Some(s.stdin_open),
        labels: Some(labels.clone()),
        host_config: Some(host),
        ..Default::default()
    };
    // serde_json's maps are sorted, so the hash does not depend on HashMap order.
    let canonical = serde_json::to_value(&body)
        .map(|v| v.to_string())
        .unwrap_or_default();
    labels.insert(
        CONFIG_HASH.into(),
        hex::encode(Sha256::digest(canonical.as_bytes())),
    );
    body.labels = Some(labels);
    Ok(body)
}

/// Creates the container; an image the machine lacks is pulled first, unless it is one
/// of Corral's own ([`crate::pull`]).
async fn create(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
    image: &str,
) -> Result<(), String> {
    let opts = CreateContainerOptions {
        name: Some(name.to_string()),
        ..Default::default()
    };
    let failed = |e: bollard::errors::Error| format!("creating the container failed: {e}");
    match docker
        .create_container(Some(opts.clone()), body.clone())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("No such image") => {
            if !crate::pull::may_pull(image) {
                return Err(format!(
                    "image {image} is not loaded; build it into images/ or load it first"
                ));
            }
            crate::pull::pull(docker, name, image)
                .await
                .map_err(|e| format!("image {image} is not on this machine, and {e}"))?;
            docker
                .create_container(Some(opts), body)
                .await
                .map(drop)
                .map_err(failed)
        }
        Err(e) => Err(failed(e)),
    }
}

/// Copies `files` (tar archives) into a container that has not started yet, so that its
/// command finds them; one that fails is logged and the service still starts.
async fn copy_files(docker: &Docker, name: &str, files: &[Vec<u8>]) {
    for tar in files {
        let options = bollard::query_parameters::UploadToContainerOptions {
            path: "/".into(),
            ..Default::default()
        };
        let body = bollard::body_full(tar.clone().into());
        if let Err(e) = docker.upload_to_container(name, Some(options), body).await {
            log::error!("cloud-config: write_files into service {name}: {e}");
        }
    }
}

/// Makes one service's container match its definition and starts it as its kind asks.
pub async fn ensure(docker: &Docker, name: &str, s: &Service) -> Outcome {
    let body = match container_body(name, s) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(e),
    };
    let want = body
        .labels
        .as_ref()
        .and_then(|l| l.get(CONFIG_HASH))
        .cloned();
    let mut action = Action::Created;
    let mut running = false;
    if let Ok(existing) = docker.inspect_container(name, None).await {
        let have = existing
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(CONFIG_HASH))
            .cloned();
        if have.is_some() && have == want {
            action = Action::Unchanged;
            running = existing.state.and_then(|st| st.running).unwrap_or(false);
        } else {
            if name == corral_user_docker::SERVICE
                && existing.state.and_then(|st| st.running) == Some(true)
            {
                // The user engine stops its workloads itself rather than die by SIGKILL
                // halfway through (`containers::stop_seconds`). Other services are
                // removed at once: the boot recreates `network` once cloud-config is
                // read, and a clean stop there raced the shared shim's exit with the
                // next service's start in the end-to-end run of 2026-12-03.
                if let Err(e) = crate::containers::stop(docker, name, name).await {
                    log::warn!(
                        "service {name}: stopping the old container: {e}; removing it anyway"
                    );
                }
            }
            let opts = RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            if let Err(e) = docker.remove_container(name, Some(opts)).await {
                return Outcome::Failed(format!("removing the old container failed: {e}"));
            }
            action = Action::Recreated;
        }
    }
    if action != Action::Unchanged {
        if let Err(e) = create(docker, name, body, &s.image).await {
            return Outcome::Failed(e);
        }
        copy_files(docker, name, &s.files).await;
    }
    if s.create_only() {
        return Outcome::Created { action };
    }
    if running && !s.one_shot() {
        return Outcome::Running { action };
    }
    if let Err(e) = docker
        .start_container(name, None::<StartContainerOptions>)
        .await
    {
        return Outcome::Failed(format!("starting failed: {e}"));
    }
    if !s.one_shot() {
        return Outcome::Running { action };
    }
    let mut wait = docker.wait_container(name, None::<WaitContainerOptions>);
    let mut code = None;
    while let Some(r) = wait.next().await {
        code = Some(match r {
            Ok(r) => r.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => code,
            Err(e) => return Outcome::Failed(format!("waiting for it failed: {e}")),
        });
    }
    match code {
        Some(0) => Outcome::Completed,
        Some(c) => Outcome::Failed(format!("exited with code {c}")),
        None => Outcome::Failed("no exit status".into()),
    }
}

/// How a watched container stopped being what it was when first seen (`first_start`
/// holds that start's time, set at the first look): not running, or started again
/// since (the manager restarts services itself: a new start is a process that exited in
/// between). Each carries the container's last exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Exited(i64),
    Restarted(i64),
}

/// `None` while the container still runs the start first seen; see [`Stopped`].
pub fn stopped_since(
    state: &bollard::models::ContainerState,
    first_start: &mut Option<String>,
) -> Option<Stopped> {
    let started = state.started_at.clone().unwrap_or_default();
    let first = first_start.get_or_insert_with(|| started.clone());
    let code = state.exit_code.unwrap_or_default();
    if !state.running.unwrap_or(false) {
        Some(Stopped::Exited(code))
    } else {
        (*first != started).then_some(Stopped::Restarted(code))
    }
}

/// Brings every service of `file` up in dependency order. Returns each one's outcome.
pub async fn up(docker: &Docker, file: &ServicesFile) -> BTreeMap<String, Outcome> {
    up_each(docker, file, |_, _| {}).await
}

/// [`up`], calling `done` with each service's outcome as soon as it is known: a started
/// service's when its bring-up ends (services started together finish at different
/// times, and the boot report wants each one's), one that never starts (a dependency
/// cycle, a dependency that failed) when that is decided.
pub async fn up_each(
    docker: &Docker,
    file: &ServicesFile,
    mut done: impl FnMut(&str, &Outcome),
) -> BTreeMap<String, Outcome> {
    let graph = Graph::new(&file.services);
    let mut outcomes = BTreeMap::new();
    for cycle in graph.cycles() {
        let text = format!(
            "{}: dependency cycle {}",
            file.path.display(),
            cycle.join(" -> ")
        );
        for n in &cycle {
            outcomes.insert(n.clone(), Outcome::Blocked(text.clone()));
        }
    }
    for n in graph.blocked() {
        outcomes
            .entry(n.clone())
            .or_insert_with(|| Outcome::Blocked("waits on a service in a dependency cycle".into()));
    }
    for (name, outcome) in &outcomes {
        done(name, outcome);
    }
    let mut started: BTreeSet<String> = outcomes.keys().cloned().collect();
    let mut settle = |outcomes: &mut BTreeMap<String, Outcome>, name: &str, outcome| {
        done(name, &outcome);
        outcomes.insert(name.to_string(), outcome);
    };
    let mut running = FuturesUnordered::new();
    loop {
        // Start everything whose dependencies are done; skip what can no longer start.
        for (name, deps) in &graph.deps {
            if started.contains(name) {
                continue;
            }
            if let Some(bad) = deps
                .iter()
                .find(|d| outcomes.get(*d).is_some_and(|o| !o.succeeded()))
            {
                let why = format!("{bad} did not come up");
                settle(&mut outcomes, name, Outcome::Skipped(why));
                started.insert(name.clone());
                continue;
            }
            if deps
                .iter()
                .all(|d| outcomes.get(d).is_some_and(Outcome::succeeded))
            {
                started.insert(name.clone());
                let service = file.services[name].clone();
                let name = name.clone();
                running.push(async move {
                    let outcome = ensure(docker, &name, &service).await;
                    (name, outcome)
                });
            }
        }
        match running.next().await {
            Some((name, outcome)) => settle(&mut outcomes, &name, outcome),
            None if started.len() == graph.deps.len() => return outcomes,
            // Nothing running and nothing startable: the rest is skipped.
            None => {
                for name in graph.deps.keys() {
                    if started.insert(name.clone()) {
                        let why = "its dependencies never came up".into();
                        settle(&mut outcomes, name, Outcome::Skipped(why));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_container_that_exits_or_starts_again_is_told_apart() {
        let state = |running: bool, started: &str, code: i64| bollard::models::ContainerState {
            running: Some(running),
            started_at: Some(started.to_string()),
            exit_code: Some(code),
            ..Default::default()
        };
        let mut first = None;
        assert_eq!(stopped_since(&state(true, "t1", 0), &mut first), None);
        assert_eq!(stopped_since(&state(true, "t1", 0), &mut first), None);
        assert_eq!(
            stopped_since(&state(true, "t2", 3), &mut first),
            Some(Stopped::Restarted(3))
        );
        assert_eq!(
            stopped_since(&state(false, "t1", 137), &mut first),
            Some(Stopped::Exited(137))
        );
    }
    use corral_compose::parse;

    fn service(yaml: &str) -> Service {
        parse("s.yml", &format!("services:\n  a:\n    image: x\n{yaml}"))
            .expect("parses")
            .services["a"]
            .clone()
    }

    #[test]
    fn the_hash_changes_with_the_definition_only() {
        let a = container_body(
            "a",
            &service("    labels: {k: v, l: w}\n    command: [a, b]\n"),
        )
        .expect("body");
        let b = container_body(
            "a",
            &service("    labels: {l: w, k: v}\n    command: [a, b]\n"),
        )
        .expect("body");
        let c = container_body(
            "a",
            &service("    labels: {k: v, l: w}\n    command: [a, c]\n"),
        )
        .expect("body");
        let hash =
            |b: &ContainerCreateBody| b.labels.as_ref().and_then(|l| l.get(CONFIG_HASH)).cloned();
        assert_eq!(hash(&a), hash(&b), "label order does not matter");
        assert_ne!(hash(&a), hash(&c), "the command does");
        assert_eq!(
            a.labels
                .as_ref()
                .and_then(|l| l.get(SERVICE))
                .map(String::as_str),
            Some("a")
        );
    }

    #[test]
    fn compose_fields_map_onto_the_container() {
        let b = container_body(
            "a",
            &service(
                "    net: host\n    pid: host\n    privileged: true\n    restart: on-failure:3\n\
                 \x20   volumes: [/var/log:/var/log]\n    devices: [/dev/kmsg]\n    ulimits: {nofile: 100}\n\
                 \x20   environment: [A=1]\n    read_only: true\n    tmpfs: [/run, '/tmp:size=1m']\n\
                 \x20   cap_add: [SYS_TIME]\n    cap_drop: [MKNOD]\n    device_cgroup_rules: ['c 13:* rm']\n",
            ),
        )
        .expect("body");
        let h = b.host_config.expect("host config");
        assert_eq!(h.network_mode.as_deref(), Some("host"));
        assert_eq!(h.pid_mode.as_deref(), Some("host"));
        assert_eq!(h.privileged, Some(true));
        assert_eq!(h.readonly_rootfs, Some(true));
        let r = h.restart_policy.expect("restart");
        assert_eq!(
            r.name,
            Some(RestartPolicyNameEnum::NO),
            "the manager restarts"
        );
        let labels = b.labels.expect("labels");
        assert_eq!(
            labels.get(RESTART).map(String::as_str),
            Some("on-failure:3")
        );
        assert_eq!(h.binds, Some(vec!["/var/log:/var/log".to_string()]));
        let d = &h.devices.expect("devices")[0];
        assert_eq!(d.path_in_container.as_deref(), Some("/dev/kmsg"));
        assert_eq!(h.ulimits.expect("ulimits")[0].hard, Some(100));
        assert_eq!(b.env, Some(vec!["A=1".to_string()]));
        let t = h.tmpfs.expect("tmpfs");
        assert_eq!(t["/run"], "");
        assert_eq!(t["/tmp"], "size=1m");
        assert_eq!(h.cap_add, Some(vec!["SYS_TIME".to_string()]));
        assert_eq!(h.cap_drop, Some(vec!["MKNOD".to_string()]));
        assert_eq!(h.device_cgroup_rules, Some(vec!["c 13:* rm".to_string()]));
    }

    #[test]
    fn the_os_services_share_one_shim_and_the_user_engine_has_its_own() {
        let group = |name: &str| {
            container_body(name, &service(""))
                .expect("body")
                .host_config
                .and_then(|h| h.annotations)
                .and_then(|a| a.get(SHIM_GROUP.0).cloned())
        };
        for name in ["network", "syslog", "console", "a-users-service"] {
            assert_eq!(group(name).as_deref(), Some(SHIM_GROUP.1), "{name}");
        }
        assert_eq!(group(corral_user_docker::SERVICE), None);
    }

    #[test]
    fn a_bad_restart_policy_is_named() {
        let err = container_body("a", &service("    restart: sometimes\n")).expect_err("bad");
        assert!(err.contains("\"sometimes\""), "{err}");
    }
}
