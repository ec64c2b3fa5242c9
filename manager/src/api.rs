//! The manager's side of `/run/corral/api.sock` (protocol in `corral-api`): a socket
//! that only root can open, one request and one answer per connection, each answered
//! from the system engine's API, the boot timeline or the kernel; never from another
//! command's output.

use crate::enable::Services;
use bollard::query_parameters::{LogsOptions, RestartContainerOptions, StartContainerOptions};
use bollard::Docker;
use corral_api::protocol::{Logs, Request, Response, Service, Version};
use futures_util::StreamExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// A service label naming the file a service logs to instead of its output (syslog's
/// /var/log/messages): `corral service logs` reads that file's end.
pub const LOGS_LABEL: &str = "io.corral.logs";

/// The most of a log file `service logs` reads, from its end.
const LOG_FILE_TAIL: u64 = 1 << 20;

/// The last `lines` lines (all when `None`) of at most the last [`LOG_FILE_TAIL`] bytes
/// of `path`; a line cut by that limit is dropped.
pub fn tail_file(path: &Path, lines: Option<u32>) -> std::io::Result<Vec<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let from = len.saturating_sub(LOG_FILE_TAIL);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<String> = text.lines().map(str::to_string).collect();
    if from > 0 && !all.is_empty() {
        all.remove(0);
    }
    Ok(last(all, lines))
}

/// The last `n` of `lines` (all of them when `None`).
fn last(mut lines: Vec<String>, n: Option<u32>) -> Vec<String> {
    if let Some(n) = n {
        let drop = lines.len().saturating_sub(n as usize);
        lines.drain(..drop);
    }
    lines
}

/// Binds `path` (replacing a stale socket) for root only.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// What the api answers from: the system engine, and the services' configuration.
pub struct Context {
    pub docker: Docker,
    pub services: Services,
    /// The user engine's files (`tls generate` renews its certificates there).
    pub engine_dirs: corral_user_docker::service::Dirs,
}

/// Answers connections on `listener` until the task is dropped.
pub async fn serve(listener: UnixListener, context: Arc<Context>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let context = context.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &context).await {
                        log::warn!("api: {e}");
                    }
                });
            }
            Err(e) => {
                log::warn!("api: accepting a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

async fn answer(stream: UnixStream, context: &Context) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    (&mut reader)
        .take(corral_api::MAX_MESSAGE as u64 + 1)
        .read_until(b'\n', &mut line)
        .await?;
    let response = match corral_api::client::line_text(line) {
        Err(e) => Response::user(format!("the request: {e}")),
        Ok(text) => match serde_json::from_str::<Request>(&text) {
            Ok(Request::ServiceLogs {
                name,
                lines,
                follow: true,
            }) => {
                // Until the client hangs up (its side of the socket reads as ended).
                let mut gone = [0u8; 1];
                return tokio::select! {
                    r = follow(&context.docker, &name, lines, &mut write) => r,
                    _ = reader.read(&mut gone) => Ok(()),
                };
            }
            Ok(request) => handle(context, request).await,
            Err(e) => Response::user(format!(
                "the request is not understood ({e}); use a `corral` of this Corral version"
            )),
        },
    };
    send(&mut write, &response).await
}

/// Writes one answer line.
async fn send(
    write: &mut (impl AsyncWriteExt + Unpin),
    response: &Response,
) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec());
    out.push(b'\n');
    write.write_all(&out).await
}

/// One request's answer.
pub async fn handle(context: &Context, request: Request) -> Response {
    let docker = &context.docker;
    match request {
        Request::OsVersion => os_version(docker).await,
        Request::ServiceList => match list(docker).await {
            Ok(mut services) => {
                let have: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
                services.extend(context.services.offered(&have).await);
                Response::ok(&services)
            }
            Err(e) => Response::system(format!("listing the services: {e}")),
        },
        Request::ServiceStart { name } => act(docker, &name, Action::Start).await,
        Request::ServiceStop { name } => match refuse_stop(&name) {
            Some(refused) => refused,
            None => act(docker, &name, Action::Stop).await,
        },
        Request::ServiceRestart { name } => act(docker, &name, Action::Restart).await,
        Request::ServiceLogs { name, lines, .. } => logs(docker, &name, lines).await,
        Request::ServiceEnable { name, definition } => {
            context.services.enable(&name, definition.as_deref()).await
        }
        Request::ServiceDisable { name } => context.services.disable(docker, &name).await,
        Request::ServiceUp { names } => context.services.up(docker, &names).await,
        Request::EngineList => crate::engine_images::list(docker).await,
        Request::ConsoleList => {
            let corral = context.services.machine.in_force().config.corral;
            crate::consoles::list(docker, corral.console.as_deref(), &corral.repositories).await
        }
        Request::ConsoleSwitch { name, now, archive } => {
            let archive = archive.as_deref().map(std::path::Path::new);
            crate::consoles::switch(docker, &context.services, &name, now, archive).await
        }
        Request::EngineSwitch { image } => {
            crate::engine_switch::switch(docker, &context.services, &image).await
        }
        Request::BootReport => Response::ok(&crate::timeline::report()),
        Request::TlsGenerate { hostnames } => crate::tls::generate(
            &context.services.machine.in_force(),
            &context.engine_dirs,
            &corral_user_docker::service::server_names(),
            &hostnames,
        ),
    }
}

/// The services, by name, with their state from the engine.
pub async fn list(docker: &Docker) -> Result<Vec<Service>, String> {
    let mut out = Vec::new();
    for (name, id) in crate::containers::service_containers(docker).await? {
        let c = docker
            .inspect_container(&id, None)
            .await
            .map_err(|e| format!("inspecting {name}: {e}"))?;
        let state = c.state.unwrap_or_default();
        let status = state
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        let running = state.running.unwrap_or(false);
        let since = if running {
            state.started_at
        } else {
            state.finished_at
        };
        out.push(Service {
            name,
            image: c.config.and_then(|c| c.image).unwrap_or_default(),
            state: status,
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            since: since.filter(|s| !s.starts_with("0001-")),
            offered_by: None,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Start,
    Stop,
    Restart,
}

/// The container of service `name`, or the user's error naming the services there are.
async fn find(docker: &Docker, name: &str) -> Result<String, Response> {
    let all = crate::containers::service_containers(docker)
        .await
        .map_err(|e| Response::system(format!("listing the services: {e}")))?;
    all.get(name).cloned().ok_or_else(|| {
        let mut names: Vec<&String> = all.keys().collect();
        names.sort();
        let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
        Response::user(format!(
            "there is no service {name:?}; the services are: {} (`corral service list`)",
            names.join(", ")
        ))
    })
}

/// The console cannot be stopped, as it cannot be disabled: sshd and the gettys run in
/// it, so a stopped console locks everyone out until the next boot. A restart is
/// allowed (it comes back by itself).
fn refuse_stop(name: &str) -> Option<Response> {
    (name == crate::assemble::ESSENTIAL).then(|| {
        Response::user(
            "the console cannot be stopped: it is how anyone reaches this machine (sshd and \
             the gettys run in it); `corral service restart console` restarts it",
        )
    })
}

async fn act(docker: &Docker, name: &str, action: Action) -> Response {
    let id = match find(docker, name).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let result = match action {
        Action::Start => {
            docker
                .start_container(&id, None::<StartContainerOptions>)
                .await
        }
        Action::Stop => crate::containers::stop(docker, name, &id).await,
        Action::Restart => {
            crate::containers::stop_workloads_first(name).await;
            let options = RestartContainerOptions {
                t: Some(crate::containers::stop_seconds(name)),
                signal: None,
            };
            docker.restart_container(&id, Some(options)).await
        }
    };
    match result {
        Ok(()) => {
            log::info!("service {name}: {action:?} asked through the api");
            Response::ok(&serde_json::Value::Null)
        }
        // Already running (start) or already stopped (stop): the wish holds.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Response::ok(&serde_json::Value::Null),
        Err(e) => Response::system(format!("service {name}: {action:?}: {e}")),
    }
}

/// Service `name`'s container, and the file it logs to when its label names one.
async fn log_source(docker: &Docker, name: &str) -> Result<(String, Option<String>), Response> {
    let id = find(docker, name).await?;
    let file = docker
        .inspect_container(&id, None)
        .await
        .ok()
        .and_then(|c| c.config?.labels?.get(LOGS_LABEL).cloned());
    Ok((id, file))
}

/// The engine's logs of a container: both streams, the last `lines` (or all).
fn logs_options(lines: Option<u32>, follow: bool) -> LogsOptions {
    LogsOptions {
        stdout: true,
        stderr: true,
        follow,
        tail: lines.map(|n| n.to_string()).unwrap_or_else(|| "all".into()),
        ..Default::default()
    }
}

async fn logs(docker: &Docker, name: &str, lines: Option<u32>) -> Response {
    let (id, file) = match log_source(docker, name).await {
        Ok(source) => source,
        Err(r) => return r,
    };
    if let Some(file) = file {
        return match tail_file(Path::new(&file), lines) {
            Ok(lines) => Response::ok(&Logs { lines }),
            Err(e) => Response::system(format!("service {name}: reading {file}: {e}")),
        };
    }
    let mut stream = docker.logs(&id, Some(logs_options(lines, false)));
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(out) => text.push_str(&String::from_utf8_lossy(&out.into_bytes())),
            Err(e) => return Response::system(format!("service {name}: reading its logs: {e}")),
        }
        if text.len() > corral_api::MAX_MESSAGE / 2 {
            break;
        }
    }
    let all: Vec<String> = text.lines().map(str::to_string).collect();
    Response::ok(&Logs {
        lines: last(all, lines),
    })
}

/// How often a followed log file is looked at for new lines.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// `service logs -f`: the last `lines` lines, then each new one, as answers of one or
/// more lines each, until the service's output ends or the client hangs up.
async fn follow(
    docker: &Docker,
    name: &str,
    lines: Option<u32>,
    write: &mut (impl AsyncWriteExt + Unpin),
) -> std::io::Result<()> {
    let (id, file) = match log_source(docker, name).await {
        Ok(source) => source,
        Err(r) => return send(write, &r).await,
    };
    if let Some(file) = file {
        return follow_file(Path::new(&file), lines, write).await;
    }
    let mut stream = docker.logs(&id, Some(logs_options(lines, true)));
    let mut pending = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(out) => pending.push_str(&String::from_utf8_lossy(&out.into_bytes())),
            Err(e) => {
                let r = Response::system(format!("service {name}: reading its logs: {e}"));
                return send(write, &r).await;
            }
        }
        let lines = complete_lines(&mut pending);
        if !lines.is_empty() {
            send(write, &Response::ok(&Logs { lines })).await?;
        }
    }
    Ok(())
}

/// Takes the whole lines out of `pending`, leaving a line still being written.
fn complete_lines(pending: &mut String) -> Vec<String> {
    let Some(end) = pending.rfind('\n') else {
        return Vec::new();
    };
    let rest = pending.split_off(end + 1);
    let lines = pending.lines().map(str::to_string).collect();
    *pending = rest;
    lines
}

/// A log file's end, then what is added to it; a file that shrinks (rotated) is read
/// again from its start.
async fn follow_file(
    path: &Path,
    lines: Option<u32>,
    write: &mut (impl AsyncWriteExt + Unpin),
) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let first = match tail_file(path, lines) {
        Ok(l) => l,
        Err(e) => {
            let r = Response::system(format!("reading {}: {e}", path.display()));
            return send(write, &r).await;
        }
    };
    send(write, &Response::ok(&Logs { lines: first })).await?;
    let mut at = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut pending = String::new();
    loop {
        tokio::time::sleep(FOLLOW_POLL).await;
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len < at {
            at = 0;
            pending.clear();
        }
        if len == at {
            continue;
        }
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path).and_then(|mut f| {
            f.seek(SeekFrom::Start(at))?;
            f.take(LOG_FILE_TAIL).read_to_end(&mut bytes)
        });
        if read.is_err() {
            continue;
        }
        at += bytes.len() as u64;
        pending.push_str(&String::from_utf8_lossy(&bytes));
        let lines = complete_lines(&mut pending);
        if !lines.is_empty() {
            send(write, &Response::ok(&Logs { lines })).await?;
        }
    }
}

/// `VERSION_ID` and `BUILD_ID` from an os-release file's text (corral-update's, which
/// the upgrade reads the running release with too).
pub use corral_update::release::os_release;

async fn os_version(docker: &Docker) -> Response {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let (os, build_id) = os_release(&release);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let system_engine = match docker.version().await {
        Ok(v) => v.version.unwrap_or_default(),
        Err(e) => return Response::system(format!("asking the system engine its version: {e}")),
    };
    let system_runtime = docker.info().await.ok().and_then(|i| i.default_runtime);
    let (user_engine, user_runtime) = match corral_user_docker::client::connect().await {
        Some(user) => (
            user.version().await.ok().and_then(|v| v.version),
            user.info().await.ok().and_then(|i| i.default_runtime),
        ),
        None => (None, None),
    };
    Response::ok(&Version {
        os: os.unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string()),
        kernel,
        system_engine,
        system_runtime,
        user_engine,
        user_engine_name: crate::engine_images::in_use_name(docker).await,
        user_runtime,
        build_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_cannot_be_stopped_as_it_cannot_be_disabled() {
        match refuse_stop("console") {
            Some(Response::Error { kind, message }) => {
                assert_eq!(kind, corral_api::ErrorKind::User);
                assert!(message.contains("cannot be stopped"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(refuse_stop("ntp").is_none());
    }

    #[test]
    fn a_log_file_is_read_from_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages");
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        assert_eq!(tail_file(&path, Some(2)).unwrap(), ["two", "three"]);
        assert_eq!(tail_file(&path, None).unwrap().len(), 3);
        // Longer than the limit: only its end, the cut line left out.
        let big = format!("{}\nlast\n", "x".repeat(LOG_FILE_TAIL as usize));
        std::fs::write(&path, big).unwrap();
        assert_eq!(tail_file(&path, None).unwrap(), ["last"]);
        assert!(tail_file(&dir.path().join("none"), None).is_err());
    }

    #[test]
    fn only_whole_lines_are_taken() {
        let mut pending = "one\ntwo\nthr".to_string();
        assert_eq!(complete_lines(&mut pending), ["one", "two"]);
        assert_eq!(pending, "thr");
        assert!(complete_lines(&mut pending).is_empty());
        pending.push_str("ee\n");
        assert_eq!(complete_lines(&mut pending), ["three"]);
        assert!(pending.is_empty());
    }

    #[test]
    fn os_release_fields() {
        let text = "NAME=\"Corral\"\nVERSION_ID=\"0.1.0\"\nBUILD_ID=abc123\n";
        assert_eq!(
            os_release(text),
            (Some("0.1.0".into()), Some("abc123".into()))
        );
        assert_eq!(os_release("NAME=x\nVERSION_ID=\n"), (None, None));
    }
}
