//! The manager's engine supervision against a real dockerd (Debian's docker.io, installed
//! by the setup step) on a private socket under a temporary directory.

use corral_dockerd::engine::EngineSpec;
use corral_manager::system_engine::{supervise, EngineEvent};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

async fn next(rx: &mut mpsc::UnboundedReceiver<EngineEvent>) -> EngineEvent {
    tokio::time::timeout(Duration::from_secs(90), rx.recv())
        .await
        .expect("an engine event within 90 s")
        .expect("the supervisor is still running")
}

#[tokio::test(flavor = "current_thread")]
async fn engine_is_restarted_after_it_dies_and_stopped_on_shutdown() {
    corral_harness::require_dockerd();
    let root = tempfile::tempdir().expect("temp dir");
    let spec = EngineSpec::system_at(root.path());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(supervise(spec.clone(), stop_rx, Some(tx)));

    let EngineEvent::Ready {
        pid: first,
        version,
        ..
    } = next(&mut rx).await
    else {
        panic!("expected the engine to become ready first");
    };
    assert!(
        version.starts_with("20.10"),
        "Debian 12's dockerd, got {version:?}"
    );
    assert!(spec.socket.exists(), "socket at {}", spec.socket.display());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill dockerd");
    let event = next(&mut rx).await;
    assert!(
        matches!(event, EngineEvent::Exited { pid, .. } if pid == first),
        "{event:?}"
    );
    let event = next(&mut rx).await;
    let EngineEvent::Ready { pid: second, .. } = event else {
        let log = std::fs::read_to_string(&spec.log_file).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        panic!(
            "expected the engine to come back, got {event:?}; log ends:\n{}",
            tail.join("\n")
        );
    };
    assert_ne!(first, second, "a new dockerd process");

    stop_tx.send(true).expect("send stop");
    assert_eq!(next(&mut rx).await, EngineEvent::Stopped);
    task.await.expect("supervisor task");
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(second as i32), None).is_ok();
    assert!(!alive, "dockerd {second} still running after stop");
    let log = std::fs::read_to_string(&spec.log_file).expect("engine log written");
    assert!(
        log.contains("API listen on"),
        "dockerd's own output is kept in the log"
    );
}
