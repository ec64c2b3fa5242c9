//! `corral.swarm` against two real dockerds (Debian's docker.io) on private sockets on
//! the build host, a swarm between them over 127.0.0.1: one starts it from its
//! configuration, the other joins from the cloud-config `corral swarm token` printed,
//! (both drained from their configuration, the availability sent with the init and
//! the join) through an address that does not answer at first (retried in the background, the
//! status file saying why, never the token), then answers. A node in the swarm is left
//! there on the next run; changed settings are not forced, and a node in another swarm
//! is left alone; `leave` records the settings so that they are not applied again. Overlay networks and the routing mesh
//! need the kernel and network of a Corral machine: `make swarm` boots three.

use corral_config::schema::{Availability, SwarmRole};
use corral_config::CloudConfig;
use corral_dockerd::engine::{wait_ready, Engine, EngineSpec};
use corral_user_docker::swarm::apply::{self, Paths, Timing};
use corral_user_docker::swarm::cli::{self, Failure, TokenRole};
use corral_user_docker::swarm::status::{Phase, Status};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

fn role(yaml: &str) -> SwarmRole {
    let c: CloudConfig = yaml_serde::from_str(yaml).expect(yaml);
    c.corral.swarm.role
}

fn timing() -> Timing {
    Timing {
        first_retry: Duration::from_secs(1),
        max_retry: Duration::from_secs(2),
        now: || 0.0,
    }
}

async fn engine(dir: &std::path::Path) -> (Engine, bollard::Docker) {
    let spec = EngineSpec::system_at(dir).for_build_host();
    let engine = Engine::start(&spec)
        .await
        .expect("dockerd starts (make setup installs docker.io)");
    let docker = wait_ready(&spec, Duration::from_secs(90))
        .await
        .expect("dockerd answers");
    (engine, docker)
}

/// The availability `manager` sees for the node of the engine `node`.
async fn availability(manager: &bollard::Docker, node: &bollard::Docker) -> Option<String> {
    let id = node.info().await.expect("info").swarm?.node_id?;
    let seen = manager.inspect_node(&id).await.expect("the node");
    seen.spec?.availability.map(|a| a.to_string())
}

/// Forwards every connection to `listener` on to `to`.
async fn forward(listener: TcpListener, to: u16) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", to)).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_a_swarm_and_another_joins_it_from_the_printed_cloud_config() {
    corral_harness::require_dockerd();
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = |_| corral_harness::free_port().expect("a free port");
    let (manager_port, worker_port, relay_port) = (port(0), port(1), port(2));
    let (mut manager_engine, manager) = engine(&tmp.path().join("manager")).await;
    let (mut worker_engine, worker) = engine(&tmp.path().join("worker")).await;
    let socket = |name: &str| EngineSpec::system_at(&tmp.path().join(name)).socket;
    let manager_paths = Paths {
        socket: socket("manager"),
        status: tmp.path().join("manager/swarm.json"),
        left: tmp.path().join("manager/swarm-left"),
        made: tmp.path().join("manager/swarm-made"),
    };
    let worker_paths = Paths {
        socket: socket("worker"),
        status: tmp.path().join("worker/swarm.json"),
        left: tmp.path().join("worker/swarm-left"),
        made: tmp.path().join("worker/swarm-made"),
    };

    // Nothing asked: nothing done.
    let s = apply::run(&worker, &SwarmRole::Unset, None, &worker_paths, timing()).await;
    assert_eq!(s.phase, Phase::NotConfigured);

    let init = role(&format!(
        "corral:\n  swarm:\n    init: true\n    advertise_addr: '127.0.0.1:{manager_port}'\n    \
         listen_addr: '127.0.0.1:{manager_port}'\n    default_addr_pool: [10.123.0.0/16]\n"
    ));
    let s = apply::run(
        &manager,
        &init,
        Some(Availability::Drain),
        &manager_paths,
        timing(),
    )
    .await;
    assert_eq!(s.phase, Phase::Done, "{s:?}");
    assert_eq!(s.attempts, 1);
    assert!(s.message.ends_with("availability drain"), "{}", s.message);
    assert_eq!(availability(&manager, &manager).await, Some("drain".into()));
    assert_eq!(Status::load(&manager_paths.status), Some(s));
    // Idempotent: a second run (the next boot) finds the swarm and does nothing.
    let s = apply::run(&manager, &init, None, &manager_paths, timing()).await;
    assert_eq!((s.phase, s.attempts), (Phase::Done, 0), "{}", s.message);

    // What a user copies from the manager, pointed at an address that does not answer
    // yet, as a manager still booting would not.
    let printed = cli::token(&manager, TokenRole::Worker)
        .await
        .expect("a manager gives its token");
    assert!(
        printed.contains(&format!("127.0.0.1:{manager_port}")),
        "{printed}"
    );
    let SwarmRole::Join(from_manager) = role(&printed) else {
        panic!("the printed cloud-config is a join: {printed}")
    };
    let token = from_manager.token.secret().to_string();
    let join = role(&format!(
        "corral:\n  swarm:\n    join:\n      remote_addrs: ['127.0.0.1:{relay_port}']\n      \
         token: {token}\n      advertise_addr: '127.0.0.1:{worker_port}'\n      \
         listen_addr: '127.0.0.1:{worker_port}'\n"
    ));
    let joining = {
        let (worker, join, paths) = (worker.clone(), join.clone(), worker_paths.clone());
        tokio::spawn(async move {
            apply::run(&worker, &join, Some(Availability::Drain), &paths, timing()).await
        })
    };
    // The first attempt fails; the status says why, without the token.
    let retrying = async {
        loop {
            if let Some(s) = Status::load(&worker_paths.status) {
                if s.phase == Phase::Retrying {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let s = tokio::time::timeout(Duration::from_secs(120), retrying)
        .await
        .expect("a failed attempt recorded within 120 s");
    assert!(s.message.contains("join attempt 1 failed"), "{}", s.message);
    let text = std::fs::read_to_string(&worker_paths.status).expect("status file");
    assert!(!text.contains(&token), "the token is in the status file");
    let described = cli::status(&worker, &worker_paths.status, false)
        .await
        .expect("status");
    // The next attempt may have begun (the engine then says "pending").
    assert!(
        (described.contains("not in a swarm") || described.contains("pending"))
            && (described.contains("retrying") || described.contains("waiting")),
        "{described}"
    );

    // The manager becomes reachable: the next attempt joins.
    let relay = TcpListener::bind(("127.0.0.1", relay_port))
        .await
        .expect("relay port");
    let relaying = tokio::spawn(forward(relay, manager_port));
    let s = tokio::time::timeout(Duration::from_secs(180), joining)
        .await
        .expect("joined within 180 s")
        .expect("join task");
    assert_eq!(s.phase, Phase::Done, "{s:?}");
    assert!(s.attempts >= 2, "{s:?}");
    assert!(s.message.ends_with("availability drain"), "{}", s.message);
    // Set by the join itself (a worker cannot update its own node): the manager sees
    // the worker drained.
    assert_eq!(availability(&manager, &worker).await, Some("drain".into()));
    let described = cli::status(&manager, &manager_paths.status, false)
        .await
        .expect("status");
    assert!(
        described.contains("2 nodes, 1 managers") && described.contains("this node a manager"),
        "{described}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &cli::status(&manager, &manager_paths.status, true)
            .await
            .expect("status"),
    )
    .expect("JSON");
    assert_eq!(json["state"], "active");
    assert_eq!(json["nodes"], 2);
    assert_eq!(json["corral"]["phase"], "done");
    relaying.abort();

    // In the swarm already: left there. Settings changed since (init instead of join):
    // not forced.
    let s = apply::run(&worker, &join, None, &worker_paths, timing()).await;
    assert_eq!((s.phase, s.attempts), (Phase::Done, 0), "{}", s.message);
    let s = apply::run(&worker, &init, None, &worker_paths, timing()).await;
    assert_eq!(s.phase, Phase::LeftAlone, "{s:?}");
    assert!(s.message.contains("not forced"), "{}", s.message);
    // Without Corral's record (joined by hand): a worker of another swarm, left alone.
    std::fs::remove_file(&worker_paths.made).expect("the worker's record");
    let s = apply::run(&worker, &init, None, &worker_paths, timing()).await;
    assert_eq!(s.phase, Phase::LeftAlone, "{s:?}");
    assert!(
        s.message.contains("worker in another swarm"),
        "{}",
        s.message
    );
    assert!(matches!(
        cli::token(&worker, TokenRole::Manager).await,
        Err(Failure::User(_))
    ));

    // Leaving records the settings: the next boot does not join again with them.
    let said = cli::leave(&worker, false, &join, &worker_paths.left)
        .await
        .expect("a worker leaves");
    assert!(said.contains("not applied again"), "{said}");
    let s = apply::run(&worker, &join, None, &worker_paths, timing()).await;
    assert_eq!(s.phase, Phase::Left, "{s:?}");
    // Not in a swarm any more: nothing to leave, but the settings are recorded all the
    // same (how a join that keeps failing is stopped); with no settings, the user's error.
    let said = cli::leave(&worker, false, &join, &worker_paths.left)
        .await
        .expect("recorded");
    assert!(said.contains("not in a swarm"), "{said}");
    assert!(matches!(
        cli::leave(&worker, false, &SwarmRole::Unset, &worker_paths.left).await,
        Err(Failure::User(_))
    ));
    // A manager leaves only when forced.
    assert!(matches!(
        cli::leave(&manager, false, &init, &manager_paths.left).await,
        Err(Failure::User(_))
    ));
    cli::leave(&manager, true, &init, &manager_paths.left)
        .await
        .expect("forced");

    worker_engine.stop(Duration::from_secs(20)).await;
    manager_engine.stop(Duration::from_secs(20)).await;
}
