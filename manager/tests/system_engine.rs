//! The manager's engine supervision against a real dockerd (Debian's docker.io, installed
//! by the setup step) on a private socket under a temporary directory.

use corral_dockerd::engine::EngineSpec;
use corral_manager::system_engine::{supervise, EngineEvent, Stop};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

async fn next(rx: &mut mpsc::UnboundedReceiver<EngineEvent>) -> EngineEvent {
    tokio::time::timeout(Duration::from_secs(90), rx.recv())
        .await
        .expect("an engine event within 90 s")
        .expect("the supervisor is still running")
}

/// The pid in the engine's containerd pid file (the manager writes it).
fn containerd_pid(spec: &EngineSpec) -> i32 {
    std::fs::read_to_string(spec.containerd().pidfile)
        .expect("containerd's pid file")
        .trim()
        .parse()
        .expect("a pid")
}

/// Whether `pid` runs and is not a zombie ([`corral_dockerd::engine::runs`]).
fn alive(pid: i32) -> bool {
    corral_dockerd::engine::runs(nix::unistd::Pid::from_raw(pid))
}

/// A containerd started as the manager starts one (its configuration and pid file
/// written), and listening: what a manager killed after starting it leaves.
async fn left_containerd(spec: &EngineSpec) -> std::process::Child {
    let containerd = spec.containerd();
    containerd.prepare().expect("containerd's configuration");
    let child = std::process::Command::new("containerd")
        .arg("--config")
        .arg(&containerd.config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("containerd starts");
    std::fs::write(&containerd.pidfile, child.id().to_string()).expect("pid file");
    while !containerd.listening() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

#[tokio::test(flavor = "current_thread")]
async fn engine_is_restarted_after_it_dies_and_stopped_on_shutdown() {
    corral_harness::require_dockerd();
    let root = tempfile::tempdir().expect("temp dir");
    let spec = EngineSpec::system_at(root.path()).for_build_host();
    // A pid file left by a crash whose pid now belongs to another live program (this
    // test): not an engine to take over, and no reason for dockerd to refuse to start.
    std::fs::create_dir_all(spec.pidfile.parent().expect("run dir")).expect("mkdir");
    std::fs::write(&spec.pidfile, std::process::id().to_string()).expect("stale pid file");
    let (stop_tx, stop_rx) = watch::channel(None);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(supervise(spec.clone(), None, stop_rx, Some(tx)));

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
    let containerd = spec.containerd();
    let first_containerd = containerd_pid(&spec);
    assert!(alive(first_containerd), "containerd runs beside dockerd");

    // containerd dies under a running dockerd: started again, dockerd goes on.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first_containerd),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill containerd");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !(containerd_pid(&spec) != first_containerd && containerd.listening()) {
        assert!(
            std::time::Instant::now() < deadline,
            "containerd started again within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let docker = corral_dockerd::engine::wait_ready(&spec, Duration::from_secs(90))
        .await
        .expect("dockerd answers on the new containerd");
    docker
        .list_containers(None)
        .await
        .expect("dockerd talks to the new containerd");
    assert!(rx.try_recv().is_err(), "dockerd did not exit");
    let second_containerd = containerd_pid(&spec);

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
    assert!(
        !alive(second_containerd),
        "the dead dockerd's containerd is stopped before the next start"
    );
    let third_containerd = containerd_pid(&spec);
    assert!(alive(third_containerd), "the new dockerd has its own");

    stop_tx
        .send(Some(Stop::Within(Duration::from_secs(25))))
        .expect("send stop");
    assert_eq!(next(&mut rx).await, EngineEvent::Stopped);
    task.await.expect("supervisor task");
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(second as i32), None).is_ok();
    assert!(!alive, "dockerd {second} still running after stop");
    assert!(
        !self::alive(third_containerd),
        "containerd {third_containerd} still running after stop"
    );
    let log = std::fs::read_to_string(&spec.log_file).expect("engine log written");
    assert!(
        log.contains("API listen on"),
        "dockerd's own output is kept in the log"
    );
}

/// A manager killed with SIGKILL leaves its dockerd running, re-parented to PID 1. The
/// next manager's supervisor takes that engine over instead of starting a second one,
/// notices when it dies, starts a new one, and stops it at shutdown.
#[tokio::test(flavor = "current_thread")]
async fn an_engine_left_by_a_killed_manager_is_taken_over() {
    corral_harness::require_dockerd();
    let root = tempfile::tempdir().expect("temp dir");
    let spec = EngineSpec::system_at(root.path()).for_build_host();
    std::fs::create_dir_all(spec.log_file.parent().expect("log dir")).expect("mkdir");
    // The earlier manager's engine: started here, not by the supervisor, as the manager
    // starts it (containerd first, its pid file written, then dockerd).
    let mut left_containerd = left_containerd(&spec).await;
    let mut left = std::process::Command::new(&spec.program)
        .args(spec.args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dockerd starts");
    corral_dockerd::engine::wait_ready(&spec, Duration::from_secs(90))
        .await
        .expect("the left engine answers");

    let (stop_tx, stop_rx) = watch::channel(None);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(supervise(spec.clone(), None, stop_rx, Some(tx)));
    let event = next(&mut rx).await;
    assert!(
        matches!(event, EngineEvent::Ready { pid, .. } if pid == left.id()),
        "the running engine is taken over, not a second started: {event:?}"
    );
    let dockerds = std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| {
            let flag = format!("--pidfile={}", spec.pidfile.display());
            c.split(|b| *b == 0).any(|a| a == flag.as_bytes())
        })
        .count();
    assert_eq!(dockerds, 1, "one dockerd for this engine");

    // The adopted engine dies: seen through /proc (PID 1 would reap it; here the test,
    // its parent, does).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(left.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the left dockerd");
    left.wait().expect("reap the left dockerd");
    let event = next(&mut rx).await;
    assert!(
        matches!(event, EngineEvent::Exited { pid, .. } if pid == left.id()),
        "{event:?}"
    );
    let event = next(&mut rx).await;
    let EngineEvent::Ready { pid: second, .. } = event else {
        panic!("expected a new engine, got {event:?}");
    };
    assert_ne!(second, left.id());
    left_containerd
        .wait()
        .expect("the left containerd is stopped once its dockerd died");

    stop_tx
        .send(Some(Stop::Within(Duration::from_secs(25))))
        .expect("send stop");
    assert_eq!(next(&mut rx).await, EngineEvent::Stopped);
    task.await.expect("supervisor task");
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(second as i32), None).is_err(),
        "dockerd {second} stopped"
    );
}

/// A manager killed after it started the engine's containerd and before its dockerd
/// (or whose dockerd died since) leaves that containerd running: the next supervisor
/// stops it before it starts the engine's own, which would wait on the store's lock.
#[tokio::test(flavor = "current_thread")]
async fn a_containerd_left_without_its_dockerd_is_stopped_before_the_start() {
    corral_harness::require_dockerd();
    let root = tempfile::tempdir().expect("temp dir");
    let spec = EngineSpec::system_at(root.path()).for_build_host();
    let mut left = left_containerd(&spec).await;

    let (stop_tx, stop_rx) = watch::channel(None);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(supervise(spec.clone(), None, stop_rx, Some(tx)));
    let event = next(&mut rx).await;
    assert!(matches!(event, EngineEvent::Ready { .. }), "{event:?}");
    left.wait().expect("the left containerd was stopped");
    let own = containerd_pid(&spec);
    assert_ne!(own, left.id() as i32, "the engine runs its own containerd");
    assert!(alive(own));
    stop_tx
        .send(Some(Stop::Within(Duration::from_secs(25))))
        .expect("send stop");
    assert_eq!(next(&mut rx).await, EngineEvent::Stopped);
    task.await.expect("supervisor task");
    assert!(!alive(own), "containerd {own} stopped");
}

/// A data root dockerd cannot start from (its image index damaged, as a power cut or a
/// full disk can leave it): after three failed starts in a row its contents are moved
/// aside, kept for a look, and the engine starts from an empty store.
#[tokio::test(flavor = "current_thread")]
async fn a_data_root_the_engine_cannot_start_from_is_moved_aside() {
    corral_harness::require_dockerd();
    let root = tempfile::tempdir().expect("temp dir");
    let spec = EngineSpec::system_at(root.path()).for_build_host();
    let index = spec.data_root.join("image/overlay2/repositories.json");
    std::fs::create_dir_all(index.parent().expect("dir")).expect("mkdir");
    std::fs::write(&index, "{\"Repositories\": {bro").expect("a damaged index");

    let (stop_tx, stop_rx) = watch::channel(None);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(supervise(spec.clone(), None, stop_rx, Some(tx)));
    let mut exits = 0;
    let ready = loop {
        match next(&mut rx).await {
            EngineEvent::Exited { .. } => exits += 1,
            EngineEvent::Ready { pid, .. } => break pid,
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            exits <= 3,
            "the engine kept failing after its data root was moved aside"
        );
    };
    assert_eq!(
        exits, 3,
        "three failed starts, then the store is moved aside"
    );
    let aside: Vec<std::path::PathBuf> = std::fs::read_dir(&spec.data_root)
        .expect("data root")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".corrupt-"))
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read_to_string(aside[0].join("image/overlay2/repositories.json"))
            .expect("the damaged index is kept"),
        "{\"Repositories\": {bro"
    );

    stop_tx
        .send(Some(Stop::Within(Duration::from_secs(25))))
        .expect("send stop");
    assert_eq!(next(&mut rx).await, EngineEvent::Stopped);
    task.await.expect("supervisor task");
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(ready as i32), None).is_err());
}

/// A store containerd itself cannot start from (here its root is a file, not a
/// directory): containerd exits before it answers, which counts as a start that never
/// answered, so after three the store is moved aside, as when dockerd started it.
#[tokio::test(flavor = "current_thread")]
async fn a_store_containerd_cannot_start_from_is_moved_aside_too() {
    corral_harness::require_dockerd();
    let root = tempfile::tempdir().expect("temp dir");
    let spec = EngineSpec::system_at(root.path()).for_build_host();
    std::fs::create_dir_all(&spec.data_root).expect("mkdir");
    std::fs::write(spec.data_root.join("containerd"), "not a directory").expect("damage");

    let (stop_tx, stop_rx) = watch::channel(None);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(supervise(spec.clone(), None, stop_rx, Some(tx)));
    // No Exited events: dockerd never started. The engine comes up once the store is
    // moved aside.
    let event = tokio::time::timeout(Duration::from_secs(180), rx.recv())
        .await
        .expect("the engine within 180 s")
        .expect("the supervisor runs");
    assert!(matches!(event, EngineEvent::Ready { .. }), "{event:?}");
    let aside: Vec<_> = std::fs::read_dir(&spec.data_root)
        .expect("data root")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the store moved aside once");
    assert_eq!(
        std::fs::read_to_string(aside[0].path().join("containerd")).expect("kept for a look"),
        "not a directory"
    );
    let log = std::fs::read_to_string(&spec.log_file).unwrap_or_default();
    assert!(
        log.contains("containerd"),
        "containerd's own output is kept"
    );
    stop_tx
        .send(Some(Stop::Within(Duration::from_secs(25))))
        .expect("send stop");
    assert_eq!(next(&mut rx).await, EngineEvent::Stopped);
    task.await.expect("supervisor task");
}

#[tokio::test(flavor = "current_thread")]
async fn settings_the_engine_cannot_start_with_are_dropped_before_the_store_is_touched() {
    corral_harness::require_dockerd();
    let root = tempfile::tempdir().expect("temp dir");
    let plain = EngineSpec::system_at(root.path()).for_build_host();
    let mut spec = plain.clone();
    spec.extra_args.push("--no-such-flag".into());
    std::fs::create_dir_all(&spec.data_root).expect("mkdir");
    std::fs::write(spec.data_root.join("kept"), "store").expect("a file in the store");

    let (stop_tx, stop_rx) = watch::channel(None);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(supervise(spec.clone(), Some(plain), stop_rx, Some(tx)));
    let mut exits = 0;
    loop {
        match next(&mut rx).await {
            EngineEvent::Exited { .. } => exits += 1,
            EngineEvent::Ready { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
        assert!(exits <= 3, "the engine kept failing without the bad flag");
    }
    assert_eq!(
        exits, 3,
        "three failed starts with the flag, then without it"
    );
    assert_eq!(
        std::fs::read_to_string(spec.data_root.join("kept")).expect("the store is untouched"),
        "store"
    );
    let moved = std::fs::read_dir(&spec.data_root)
        .expect("data root")
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with(".corrupt-"));
    assert!(!moved, "nothing was moved aside");
    stop_tx
        .send(Some(Stop::Within(Duration::from_secs(25))))
        .expect("send stop");
    assert_eq!(next(&mut rx).await, EngineEvent::Stopped);
    task.await.expect("supervisor task");
}
