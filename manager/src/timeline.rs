//! This boot's timeline as the manager records it, for `corral boot-report`: PID 1's
//! steps (read from [`corral_host::timeline::STEPS`]), then the manager's own: the
//! system engine (and its parts: its containerd listening, then dockerd's API), the
//! system images, the network, the configuration, each service, sshd listening and the
//! user engine (its containerd, dockerd's API, the preloaded images).

use corral_api::report::{BootReport, Step};
use std::sync::Mutex;

static STEPS: Mutex<Vec<Step>> = Mutex::new(Vec::new());

/// Names of the manager's steps that others wait for.
pub const ENGINE: &str = "system engine";
pub const IMAGES: &str = "system images";
pub const CONFIGURATION: &str = "configuration";
pub const SSHD: &str = "sshd listening";
pub const USER_ENGINE: &str = "user engine";
/// The engines' parts: from the engine's start to its containerd accepting connections,
/// and from then to dockerd's API answering.
pub const ENGINE_CONTAINERD: &str = "system engine: containerd";
pub const ENGINE_API: &str = "system engine: dockerd API";
pub const USER_CONTAINERD: &str = "user engine: containerd";
pub const USER_API: &str = "user engine: dockerd API";
/// PID 1's last step, which the manager's first one follows.
pub const ROOT_STAGE: &str = "root: mounts, modules, state";

/// Records a step; a step of the same name recorded before (an engine restart, a
/// second bring-up) is kept: the report is about the boot.
pub fn record(name: &str, start: f64, end: f64, after: Option<&str>) {
    let mut steps = STEPS.lock().unwrap_or_else(|p| p.into_inner());
    if !steps.iter().any(|s| s.name == name) {
        steps.push(Step::new(name, start, end, after));
    }
}

/// When the step `name` ended, if it is recorded.
pub fn end_of(name: &str) -> Option<f64> {
    STEPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.end)
}

/// Records an engine's two parts once its API answered at `ready`: its containerd from
/// `started` (recorded by [`when_socket`] as `containerd`), then its API until `ready`.
pub fn engine_parts(containerd: &str, api: &str, ready: f64) {
    if let Some(up) = end_of(containerd) {
        record(api, up, ready, Some(containerd));
    }
}

/// PID 1's steps from the text of its file (lines `name\tstart\tend\tafter`); a line
/// that does not parse is left out.
pub fn parse_init(text: &str) -> Vec<Step> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let name = f.next()?.trim();
            let start = f.next()?.trim().parse::<f64>().ok()?;
            let end = f.next()?.trim().parse::<f64>().ok()?;
            let after = f.next().map(str::trim).filter(|a| !a.is_empty());
            (!name.is_empty()).then(|| Step::new(name, start, end, after))
        })
        .collect()
}

/// The report so far: PID 1's steps and the manager's.
pub fn report() -> BootReport {
    let mut steps = std::fs::read_to_string(corral_host::timeline::STEPS)
        .map(|t| parse_init(&t))
        .unwrap_or_default();
    steps.extend(STEPS.lock().unwrap_or_else(|p| p.into_inner()).clone());
    BootReport::new(steps)
}

/// Records `name` from `start` to the moment `accepts` first answers true, after
/// `after`; asked every `poll` for up to `within`, then given up.
async fn when_accepting<F, Fut>(
    name: &str,
    start: f64,
    after: &str,
    within: std::time::Duration,
    poll: std::time::Duration,
    mut accepts: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if accepts().await {
            record(name, start, corral_host::since_boot(), Some(after));
            return;
        }
        tokio::time::sleep(poll).await;
    }
}

/// Waits (up to `within`) until something accepts TCP connections on 127.0.0.1:`port`
/// and records `name` from `start` to then, after `after`.
pub async fn when_listening(
    name: &'static str,
    port: u16,
    start: f64,
    after: &'static str,
    within: std::time::Duration,
) {
    let poll = std::time::Duration::from_millis(100);
    when_accepting(name, start, after, within, poll, || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await
}

/// Waits (up to `within`) until something accepts connections on the unix socket `path`
/// (a stale socket file refuses them) and records `name` from `start` to then, after
/// `after`.
pub async fn when_socket(
    name: &'static str,
    path: std::path::PathBuf,
    start: f64,
    after: String,
    within: std::time::Duration,
) {
    let poll = std::time::Duration::from_millis(50);
    let path = &path;
    when_accepting(name, start, &after, within, poll, || async move {
        tokio::net::UnixStream::connect(path).await.is_ok()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_1s_steps_are_read_back() {
        let text = corral_host::timeline::lines(1.2, 1.5, 2.8) + "garbage\nx\tno\t1\t\n";
        let steps = parse_init(&text);
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0], Step::new("kernel", 0.0, 1.2, None));
        assert_eq!(steps[2].name, ROOT_STAGE);
        assert_eq!(steps[2].after.as_deref(), Some("initramfs: modules, root"));
    }

    #[tokio::test]
    async fn an_engines_parts_are_its_containerd_listening_then_its_api() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("containerd.sock");
        let waiting = tokio::spawn(when_socket(
            "test containerd",
            sock.clone(),
            1.0,
            "test start".into(),
            std::time::Duration::from_secs(10),
        ));
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        assert_eq!(end_of("test containerd"), None, "nothing listens yet");
        let _listener = tokio::net::UnixListener::bind(&sock).expect("listen");
        waiting.await.expect("the wait ends");
        let up = end_of("test containerd").expect("recorded once it listens");
        engine_parts("test containerd", "test api", up + 2.0);
        let r = report();
        let api = r.steps.iter().find(|s| s.name == "test api").expect("api");
        assert_eq!((api.start, api.end), (up, up + 2.0));
        assert_eq!(api.after.as_deref(), Some("test containerd"));
        engine_parts("never started", "no api", 9.0);
        assert!(!report().steps.iter().any(|s| s.name == "no api"));
    }

    #[test]
    fn a_step_is_recorded_once() {
        record("test step", 1.0, 2.0, None);
        record("test step", 5.0, 9.0, None);
        let r = report();
        let mine: Vec<&Step> = r.steps.iter().filter(|s| s.name == "test step").collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].end, 2.0);
    }
}
