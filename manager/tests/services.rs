//! Services on a real dockerd (Debian's docker.io) on a private socket, with the busybox
//! test image (`tests/images/busybox`, built by `corral-build test-images`, which
//! `make unit` runs first). Containers are unprivileged:
//! the build machines lack CAP_SYS_RESOURCE (privileged services are tested in QEMU).

use bollard::Docker;
use corral_api::protocol::{Brought, Request, Response, Service};
use corral_compose::parse;
use corral_config::edit::Machine;
use corral_dockerd::engine::{wait_ready, Engine, EngineSpec};
use corral_dockerd::images::{load_all, Archive};
use corral_manager::assemble;
use corral_manager::enable::{Assemble, Services};
use corral_manager::services::{up, up_each, Action, Outcome};
use futures_util::StreamExt;
use std::path::Path;
use std::time::Duration;

/// The test image's reference.
const IMAGE: &str = "corral/busybox:0.1.0";

async fn engine_with_busybox(tmp: &Path) -> (Engine, Docker) {
    // The build's record of the test image: reference, image ID and the archive's sha256.
    let archive = corral_harness::test_image("busybox");
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(archive.with_extension("json")).expect("busybox.json beside the archive"),
    )
    .expect("busybox.json");
    let field = |k: &str| record[k].as_str().expect(k).to_string();
    assert_eq!(field("reference"), IMAGE);
    let images = tmp.join("images");
    std::fs::create_dir_all(&images).expect("mkdir");
    std::fs::copy(&archive, images.join("busybox.tar")).expect("copy the archive");
    let index = vec![Archive {
        name: "busybox".into(),
        reference: field("reference"),
        image_id: field("image_id"),
        archive_sha256: field("archive_sha256"),
        file: "busybox.tar".into(),
    }];
    std::fs::write(
        images.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("index");
    let engine_spec = EngineSpec::system_at(&tmp.join("engine")).for_build_host();
    let engine = Engine::start(&engine_spec).await.expect("dockerd starts");
    let docker = wait_ready(&engine_spec, Duration::from_secs(90))
        .await
        .expect("ready");
    for (name, r) in load_all(&docker, &tmp.join("images")).await.expect("load") {
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    (engine, docker)
}

/// A unix socket at `front` that forwards each connection to `back`, until the count
/// sent on the returned channel changes: then every open connection is dropped.
fn cuttable_proxy(front: &Path, back: &Path) -> tokio::sync::watch::Sender<u32> {
    let listener = tokio::net::UnixListener::bind(front).expect("bind the proxy");
    let (cut_tx, cut_rx) = tokio::sync::watch::channel(0u32);
    let back = back.to_path_buf();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let back = back.clone();
            let mut cut = cut_rx.clone();
            cut.mark_unchanged();
            tokio::spawn(async move {
                let Ok(mut engine) = tokio::net::UnixStream::connect(&back).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut engine) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    });
    cut_tx
}

async fn container(docker: &Docker, name: &str) -> (String, bool, i64) {
    let c = docker.inspect_container(name, None).await.expect("inspect");
    let state = c.state.expect("state");
    (
        c.id.expect("id"),
        state.running.unwrap_or(false),
        c.restart_count.unwrap_or(0),
    )
}

async fn app_pid(docker: &Docker) -> i64 {
    docker
        .inspect_container("app", None)
        .await
        .expect("inspect")
        .state
        .and_then(|s| s.pid)
        .unwrap_or(0)
}

/// Waits (up to 5 s) for app to run with a pid other than `old`; its new pid.
async fn running_again(docker: &Docker, old: i64) -> Option<i64> {
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pid = app_pid(docker).await;
        if container(docker, "app").await.1 && pid != 0 && pid != old {
            return Some(pid);
        }
    }
    None
}

fn services(data: &Path, app_cmd: &str) -> String {
    format!(
        r#"
services:
  data:
    image: corral/busybox:0.1.0
    command: "true"
    labels: {{io.rancher.os.createonly: "true"}}
    volumes: ["{data}:/data"]
  setup:
    image: corral/busybox:0.1.0
    command: [sh, -c, "echo prepared > /data/setup"]
    labels: {{io.rancher.os.detach: "false"}}
    volumes_from: [data]
  app:
    image: corral/busybox:0.1.0
    command: [sh, -c, "{app_cmd}"]
    restart: always
    labels: {{io.rancher.os.after: setup}}
    volumes_from: [data]
  broken:
    image: corral/busybox:0.1.0
    command: [sh, -c, "exit 3"]
    labels: {{io.rancher.os.detach: "false"}}
  after-broken:
    image: corral/busybox:0.1.0
    command: [sleep, "1000"]
    labels: {{io.rancher.os.after: broken}}
  missing-image:
    image: corral/nope:1
  loop-a:
    image: corral/busybox:0.1.0
    labels: {{io.rancher.os.after: loop-b}}
  loop-b:
    image: corral/busybox:0.1.0
    labels: {{io.rancher.os.after: loop-a}}
  reads-file:
    image: corral/busybox:0.1.0
    command: [sh, -c, "test \"$(cat /etc/from-cloud-config)\" = hello"]
    labels: {{io.rancher.os.detach: "false"}}
"#,
        data = data.display()
    )
}

#[tokio::test(flavor = "current_thread")]
async fn services_come_up_in_order_and_are_kept_as_defined() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut engine, docker) = engine_with_busybox(tmp.path()).await;
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let app = "cat /data/setup; exec sleep 1000";
    let mut file = parse("test.yml", &services(&data, app)).expect("parses");
    // A write_files entry with `container: reads-file`: there before its command runs.
    let tar = |content: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut header, "etc/from-cloud-config", content.as_bytes())
            .expect("tar");
        b.into_inner().expect("tar")
    };
    file.services.get_mut("reads-file").expect("defined").files = vec![tar("hello")];
    // Each outcome is handed on when that service's bring-up ends, not when the last
    // one's does: a one-shot of 3 s (named to sort first) is handed on after app, which
    // waits for two others but is up in well under that.
    let slow = parse(
        "slow.yml",
        "services:\n  a-slow:\n    image: corral/busybox:0.1.0\n    command: [sleep, \"3\"]\n    labels: {io.rancher.os.detach: \"false\"}\n",
    )
    .expect("parses");
    let mut first = file.clone();
    first.services.extend(slow.services);
    let mut handed = Vec::new();
    let out = up_each(&docker, &first, |name, outcome| {
        handed.push((name.to_string(), outcome.clone()))
    })
    .await;
    let order: Vec<&str> = handed.iter().map(|(n, _)| n.as_str()).collect();
    let at = |n: &str| {
        order
            .iter()
            .position(|o| *o == n)
            .unwrap_or_else(|| panic!("{n} not handed on: {order:?}"))
    };
    assert!(at("app") < at("a-slow"), "{order:?}");
    assert!(
        at("data") < at("setup") && at("setup") < at("app"),
        "{order:?}"
    );
    for (name, outcome) in &handed {
        assert_eq!(&out[name], outcome, "{name}: handed on as returned");
    }
    let never: Vec<&String> = out
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Skipped(_) | Outcome::Blocked(_)))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(never.len(), 3, "after-broken, loop-a, loop-b: {never:?}");
    // Those that never start are handed on too, each once: every outcome is.
    assert_eq!(handed.len(), out.len(), "{order:?}");
    assert_eq!(out["a-slow"], Outcome::Completed);
    assert_eq!(out["reads-file"], Outcome::Completed);

    assert_eq!(
        out["data"],
        Outcome::Created {
            action: Action::Created
        }
    );
    assert_eq!(out["setup"], Outcome::Completed);
    assert_eq!(
        out["app"],
        Outcome::Running {
            action: Action::Created
        }
    );
    assert_eq!(out["broken"], Outcome::Failed("exited with code 3".into()));
    assert_eq!(
        out["after-broken"],
        Outcome::Skipped("broken did not come up".into())
    );
    assert!(
        matches!(&out["missing-image"], Outcome::Failed(e) if e.contains("corral/nope:1 is not loaded")),
        "{:?}",
        out["missing-image"]
    );
    assert!(
        matches!(&out["loop-a"], Outcome::Blocked(e) if e.contains("test.yml: dependency cycle loop-a -> loop-b -> loop-a")),
        "{:?}",
        out["loop-a"]
    );
    assert!(
        docker
            .inspect_container("after-broken", None)
            .await
            .is_err(),
        "never created"
    );

    // Other file contents make another container, which gets them before it starts.
    let mut changed = file.clone();
    changed
        .services
        .get_mut("reads-file")
        .expect("defined")
        .files = vec![tar("changed")];
    let only = |f: &corral_compose::ServicesFile| corral_compose::ServicesFile {
        services: f
            .services
            .iter()
            .filter(|(n, _)| *n == "reads-file")
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect(),
        ..Default::default()
    };
    let out = up(&docker, &only(&changed)).await;
    assert_eq!(
        out["reads-file"],
        Outcome::Failed("exited with code 1".into()),
        "recreated with the new file"
    );
    assert_eq!(
        up(&docker, &only(&file)).await["reads-file"],
        Outcome::Completed
    );

    // app started after the one-shot had written its file.
    let logs: Vec<String> = docker
        .logs(
            "app",
            Some(bollard::query_parameters::LogsOptions {
                stdout: true,
                ..Default::default()
            }),
        )
        .map(|l| l.map(|l| l.to_string()).unwrap_or_default())
        .collect::<Vec<_>>()
        .await;
    assert_eq!(logs.concat(), "prepared\n");

    // The manager's watcher restarts a crashed service: the process killed from outside,
    // then the container killed through the API. A `docker stop` is respected. The
    // watcher goes by each container's restart label, as for a service brought up after
    // the boot (`corral service up`).
    // The watcher talks to the engine through a proxy that the test can cut, as an
    // event stream fails while the engine runs on.
    let front = tmp.path().join("proxy.sock");
    let cut = cuttable_proxy(&front, &tmp.path().join("engine/run/system-docker.sock"));
    let watched = corral_dockerd::engine::connect_to("proxied", &front)
        .await
        .expect("through the proxy");
    let (quiet_tx, quiet_rx) = tokio::sync::watch::channel(false);
    let (_engine_run, engine_run) = tokio::sync::watch::channel(());
    let watcher = tokio::spawn(corral_manager::service_watch::run(
        watched,
        corral_manager::service_watch::now_stamp(),
        quiet_rx,
        engine_run,
    ));
    let (app_id, running, _) = container(&docker, "app").await;
    assert!(running);
    let pid = app_pid(&docker).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill app");
    let pid2 = running_again(&docker, pid)
        .await
        .expect("app restarted after a kill -9");
    assert_eq!(
        container(&docker, "app").await.0,
        app_id,
        "restarted, not recreated"
    );
    docker
        .kill_container(
            "app",
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("docker kill app");
    let pid2 = running_again(&docker, pid2)
        .await
        .expect("app restarted after docker kill");
    // The event stream cut while the engine runs on: the watcher opens it again and
    // still restarts a crashed service.
    cut.send_modify(|n| *n += 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid2 as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill app");
    let pid3 = running_again(&docker, pid2)
        .await
        .expect("app restarted after its watcher's event stream was cut");
    docker
        .stop_container(
            "app",
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .expect("docker stop app");
    assert_eq!(
        running_again(&docker, pid3).await,
        None,
        "a stopped service stays stopped"
    );
    let _ = quiet_tx.send(true);
    watcher.await.expect("the watcher ends at shutdown");

    // The same file again: nothing running is touched, and the stopped app is started.
    let out = up(&docker, &file).await;
    assert_eq!(
        out["app"],
        Outcome::Running {
            action: Action::Unchanged
        }
    );
    assert_eq!(
        out["data"],
        Outcome::Created {
            action: Action::Unchanged
        }
    );
    assert_eq!(container(&docker, "app").await.0, app_id);

    // A changed definition: app is recreated, the rest left alone.
    let file = parse("test.yml", &services(&data, "exec sleep 999")).expect("parses");
    let out = up(&docker, &file).await;
    assert_eq!(
        out["app"],
        Outcome::Running {
            action: Action::Recreated
        }
    );
    assert_ne!(container(&docker, "app").await.0, app_id);
    assert_eq!(
        out["data"],
        Outcome::Created {
            action: Action::Unchanged
        }
    );

    // The api socket (`corral service ...`) on this engine: list, logs, stop, start, and
    // a name that is not a service, through the CLI's own client.
    let sock = tmp.path().join("api.sock");
    let listener = corral_manager::api::bind(&sock).expect("bind the api socket");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "root only");
    // The services the api's enable, disable and up work from: this test's file as the
    // built-in one, with the saved configuration's services_include applied, as a boot.
    let conf = tmp.path().join("conf");
    let machine = Machine::under(tmp.path(), "");
    let builtin = services(&data, "exec sleep 999");
    let (assemble_machine, user_dir) = (machine.clone(), tmp.path().join("no-user-services"));
    let available = conf.join("services-available");
    let lookup = vec![available.clone()];
    let assemble_lookup = lookup.clone();
    let assemble: Assemble = std::sync::Arc::new(move |_| {
        let effective = assemble_machine.in_force();
        let file = assemble::services(
            &effective,
            &assemble::Sources {
                builtin: &builtin,
                user_dir: &user_dir,
                available: &assemble_lookup,
                network_env: Vec::new(),
            },
        );
        Box::pin(async move { file })
    });
    let context = corral_manager::api::Context {
        docker: docker.clone(),
        services: Services {
            machine: machine.clone(),
            available,
            lookup,
            assemble,
        },
        engine_dirs: corral_user_docker::service::Dirs::under(&tmp.path().join("engine")),
    };
    let server = tokio::spawn(corral_manager::api::serve(
        listener,
        std::sync::Arc::new(context),
    ));
    let call = |request: Request| {
        let sock = sock.clone();
        tokio::task::spawn_blocking(move || {
            corral_api::client::call(&sock, &request, Duration::from_secs(60)).expect("answer")
        })
    };
    let body = |r: Response| match r {
        Response::Ok { body } => body,
        other => panic!("{other:?}"),
    };
    let list: Vec<Service> =
        serde_json::from_value(body(call(Request::ServiceList).await.expect("join")))
            .expect("services");
    let app = list.iter().find(|s| s.name == "app").expect("app listed");
    assert_eq!((app.image.as_str(), app.state.as_str()), (IMAGE, "running"));
    assert!(
        app.since.as_deref().is_some_and(|s| s.starts_with("20")),
        "{app:?}"
    );
    let data_svc = list.iter().find(|s| s.name == "data").expect("data listed");
    assert_eq!(data_svc.state, "created");
    assert!(
        list.iter().all(|s| s.name != "after-broken"),
        "never created, not listed"
    );
    // The services by name, then what the machine can run and does not.
    let names: Vec<&str> = list
        .iter()
        .filter(|s| s.offered_by.is_none())
        .map(|s| s.name.as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "by name");
    let offered = list.iter().position(|s| s.offered_by.is_some());
    assert!(
        offered.is_some_and(|i| list[i..].iter().all(|s| s.offered_by.is_some())),
        "the offered ones last: {list:?}"
    );
    let crond = list
        .iter()
        .find(|s| s.name == "crond")
        .expect("crond offered");
    assert_eq!(
        (crond.state.as_str(), crond.offered_by.as_deref()),
        ("available", Some("catalogue"))
    );

    let setup_logs: corral_api::protocol::Logs = serde_json::from_value(body(
        call(Request::ServiceLogs {
            name: "setup".into(),
            lines: Some(5),
            follow: false,
        })
        .await
        .expect("join"),
    ))
    .expect("logs");
    assert!(
        setup_logs.lines.is_empty(),
        "setup writes to a file, not its output"
    );
    let broken_logs = call(Request::ServiceLogs {
        name: "nothing-here".into(),
        lines: None,
        follow: false,
    })
    .await
    .expect("join");
    match broken_logs {
        Response::Error { kind, message } => {
            assert_eq!(kind, corral_api::ErrorKind::User);
            assert!(
                message.contains("there is no service \"nothing-here\""),
                "{message}"
            );
            assert!(message.contains("app"), "names the services: {message}");
        }
        other => panic!("{other:?}"),
    }
    body(
        call(Request::ServiceStop { name: "app".into() })
            .await
            .expect("join"),
    );
    assert!(!container(&docker, "app").await.1, "stopped");
    body(
        call(Request::ServiceStop { name: "app".into() })
            .await
            .expect("join"),
    );
    body(
        call(Request::ServiceStart { name: "app".into() })
            .await
            .expect("join"),
    );
    assert!(container(&docker, "app").await.1, "started again");
    let report: corral_api::BootReport =
        serde_json::from_value(body(call(Request::BootReport).await.expect("join")))
            .expect("boot report");
    assert!(report.steps.iter().all(|s| s.end >= s.start));

    // Disable: saved in the configuration, the container gone; up refuses it then.
    body(
        call(Request::ServiceDisable { name: "app".into() })
            .await
            .expect("join"),
    );
    assert!(
        docker.inspect_container("app", None).await.is_err(),
        "removed"
    );
    let layer = std::fs::read_to_string(machine.store.set_path()).expect("saved");
    assert!(layer.contains("app: false"), "{layer}");
    let user_error = |r: Response, want: &str| match r {
        Response::Error {
            kind: corral_api::ErrorKind::User,
            message,
        } => assert!(message.contains(want), "{want:?} in {message}"),
        other => panic!("{other:?}"),
    };
    user_error(
        call(Request::ServiceUp {
            names: vec!["app".into()],
        })
        .await
        .expect("join"),
        "corral service enable app",
    );
    user_error(
        call(Request::ServiceDisable {
            name: "console".into(),
        })
        .await
        .expect("join"),
        "the console cannot be disabled",
    );
    user_error(
        call(Request::ServiceEnable {
            name: "nonesuch".into(),
            definition: None,
        })
        .await
        .expect("join"),
        "the catalogue has: crond",
    );
    // Enable it again, and up (everything): app is back; the broken ones say so.
    body(
        call(Request::ServiceEnable {
            name: "app".into(),
            definition: None,
        })
        .await
        .expect("join"),
    );
    let brought: Vec<Brought> = serde_json::from_value(body(
        call(Request::ServiceUp { names: Vec::new() })
            .await
            .expect("join"),
    ))
    .expect("brought");
    let app = brought.iter().find(|b| b.name == "app").expect("app");
    assert!(app.ok && app.outcome == "running (created)", "{app:?}");
    assert!(brought.iter().any(|b| b.name == "missing-image" && !b.ok));
    assert!(container(&docker, "app").await.1, "running again");
    // A service from a file's text: kept, enabled, brought up by name, its output
    // followed as it comes.
    let ticker = "services:\n  ticker:\n    image: corral/busybox:0.1.0\n    \
                  command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done']\n";
    body(
        call(Request::ServiceEnable {
            name: "ticker".into(),
            definition: Some(ticker.into()),
        })
        .await
        .expect("join"),
    );
    assert!(conf.join("services-available/ticker.yml").is_file());
    let brought: Vec<Brought> = serde_json::from_value(body(
        call(Request::ServiceUp {
            names: vec!["ticker".into()],
        })
        .await
        .expect("join"),
    ))
    .expect("brought");
    assert_eq!(brought.len(), 1, "only the one named: {brought:?}");
    assert!(brought[0].ok, "{brought:?}");
    let followed = tokio::task::spawn_blocking({
        let sock = sock.clone();
        move || {
            let mut seen: Vec<String> = Vec::new();
            let mut batches = 0;
            corral_api::client::stream(
                &sock,
                &Request::ServiceLogs {
                    name: "ticker".into(),
                    lines: Some(1),
                    follow: true,
                },
                |r| {
                    let Response::Ok { body } = r else {
                        panic!("{r:?}")
                    };
                    let logs: corral_api::protocol::Logs =
                        serde_json::from_value(body).expect("logs");
                    seen.extend(logs.lines);
                    batches += 1;
                    seen.len() < 5
                },
            )
            .expect("follow");
            (seen, batches)
        }
    })
    .await
    .expect("join");
    let (seen, batches) = followed;
    assert!(batches >= 2, "lines came as they were written: {seen:?}");
    let numbers: Vec<u32> = seen
        .iter()
        .map(|l| l.strip_prefix("tick ").expect(l).parse().expect(l))
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, none missed: {numbers:?}"
    );
    // Engines: none here (the busybox image is not one); a switch to a non-engine or a
    // missing image is the user's error and changes nothing.
    let engines: Vec<corral_api::protocol::Engine> =
        serde_json::from_value(body(call(Request::EngineList).await.expect("join")))
            .expect("engines");
    assert!(engines.is_empty(), "{engines:?}");
    let layer_before = std::fs::read_to_string(machine.store.set_path()).expect("saved");
    user_error(
        call(Request::EngineSwitch {
            image: IMAGE.into(),
        })
        .await
        .expect("join"),
        "is not an engine image",
    );
    user_error(
        call(Request::EngineSwitch {
            image: "corral/nope:1".into(),
        })
        .await
        .expect("join"),
        "is not in the system engine",
    );
    user_error(
        call(Request::EngineSwitch {
            image: "docker-26.1".into(),
        })
        .await
        .expect("join"),
        "there is no engine named docker-26.1; the engines here: none",
    );
    assert_eq!(
        std::fs::read_to_string(machine.store.set_path()).expect("saved"),
        layer_before
    );
    // TLS: a new CA and certificates for the names given, the client's copy installed;
    // a bad name is the user's error.
    let made: corral_api::protocol::Tls = serde_json::from_value(body(
        call(Request::TlsGenerate {
            hostnames: vec!["engine.example".into()],
        })
        .await
        .expect("join"),
    ))
    .expect("tls answer");
    assert!(made.names.iter().any(|n| n == "engine.example"), "{made:?}");
    assert!(!made.enabled, "TLS is off in this configuration");
    assert_eq!(
        std::fs::read(tmp.path().join("engine/tls/ca.pem")).expect("ca"),
        std::fs::read(tmp.path().join("engine/home/.docker/ca.pem")).expect("client ca")
    );
    user_error(
        call(Request::TlsGenerate {
            hostnames: vec!["no spaces".into()],
        })
        .await
        .expect("join"),
        "is not a host name",
    );
    server.abort();

    engine.stop(Duration::from_secs(25)).await;
}

/// Debian's registry (package docker-registry) on 127.0.0.1:`port`, storing in `dir`.
fn registry(dir: &Path, port: u16) -> std::process::Child {
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.join("store").display()
        ),
    )
    .expect("registry.yml");
    let child = std::process::Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(&config)
        .spawn()
        .expect("docker-registry (scripts/setup.sh installs it)");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the registry listens");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

#[tokio::test(flavor = "current_thread")]
async fn an_image_the_machine_lacks_is_pulled_for_a_service_or_a_repositorys_console_never_corrals()
{
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_engine, docker) = engine_with_busybox(tmp.path()).await;
    let port = corral_harness::free_port().expect("port");
    let mut served = registry(tmp.path(), port);
    // The test image pushed to the registry, then gone from the engine under that name.
    let repo = format!("127.0.0.1:{port}/test/busybox");
    docker
        .tag_image(
            IMAGE,
            Some(bollard::query_parameters::TagImageOptions {
                repo: Some(repo.clone()),
                tag: Some("1".into()),
            }),
        )
        .await
        .expect("tag");
    let mut push = docker.push_image(
        &repo,
        Some(bollard::query_parameters::PushImageOptions {
            tag: Some("1".into()),
            ..Default::default()
        }),
        None,
    );
    while let Some(step) = push.next().await {
        step.expect("push");
    }
    let image = format!("{repo}:1");
    docker
        .remove_image(
            &image,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .expect("untag");
    let file = parse(
        "pulled.yml",
        &format!(
            r#"
services:
  pulled:
    image: {image}
    command: ["true"]
    labels: {{io.rancher.os.detach: "false"}}
  unreachable:
    image: 127.0.0.1:9/test/none:1
    labels: {{io.rancher.os.detach: "false"}}
  own:
    image: corral/notbuilt:1
"#
        ),
    )
    .expect("parses");
    let out = up(&docker, &file).await;
    assert_eq!(out["pulled"], Outcome::Completed, "{out:?}");
    docker.inspect_image(&image).await.expect("pulled");
    assert!(
        matches!(&out["unreachable"], Outcome::Failed(e) if e.contains("is not on this machine, and pulling 127.0.0.1:9/test/none:1")),
        "{:?}",
        out["unreachable"]
    );
    assert!(
        matches!(&out["own"], Outcome::Failed(e) if e.contains("corral/notbuilt:1 is not loaded")),
        "{:?}",
        out["own"]
    );
    // A console a repository offers (RancherOS's layout): its image pulled and tagged
    // so that its name finds it.
    let site = tmp.path().join("site");
    std::fs::create_dir_all(site.join("r")).expect("mkdir");
    std::fs::write(
        site.join("index.yml"),
        "services: []\nconsoles: [rconsole]\n",
    )
    .expect("w");
    std::fs::write(
        site.join("r/rconsole.yml"),
        format!("console:\n  image: {image}\n  privileged: true\n"),
    )
    .expect("w");
    docker
        .remove_image(
            &image,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .expect("untag");
    let web = corral_harness::files::FileServer::start(&site, None).expect("file server");
    let repositories: corral_manager::consoles::Repositories =
        yaml_serde::from_str(&format!("test: {{url: 'http://127.0.0.1:{}'}}\n", web.port))
            .expect("repositories");
    use corral_manager::consoles::{resolve, Choice};
    let named = Choice::Named("rconsole".into());
    assert_eq!(
        resolve(&docker, &named, &repositories).await,
        Ok(Some(
            "corral-repository-console/rconsole:latest".to_string()
        ))
    );
    docker.inspect_image(&image).await.expect("pulled");
    assert_eq!(
        resolve(&docker, &named, &Default::default()).await,
        Ok(Some(
            "corral-repository-console/rconsole:latest".to_string()
        )),
        "found again by its name, without the repository"
    );
    let other = Choice::Named("nothere".into());
    assert_eq!(resolve(&docker, &other, &repositories).await, Ok(None));
    assert!(web
        .requests()
        .iter()
        .any(|r| r.starts_with("GET /r/rconsole.yml")));
    let _ = served.kill();
    let _ = served.wait();
}

/// Every one of `names` came up running.
fn all_running(out: &std::collections::BTreeMap<String, Outcome>, names: &[&str]) {
    for name in names {
        assert!(
            matches!(out[*name], Outcome::Running { .. }),
            "{name}: {:?}",
            out[*name]
        );
    }
}

/// Kills every process whose command line names a path under `root` (the engine there
/// and the shims it left) and their descendants (the containers' processes), as the
/// power-off after the way down does, and waits until they are gone; the pids that
/// outlive SIGKILL for 10 s.
fn power_off_leftovers(root: &Path) -> Vec<nix::unistd::Pid> {
    let root = root.display().to_string();
    // (pid, parent, whether its command line names `root`) of every process.
    let all: Vec<(i32, i32, bool)> = std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let parent = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            Some((
                pid,
                parent,
                String::from_utf8_lossy(&cmdline).contains(&root),
            ))
        })
        .collect();
    let mut left: Vec<i32> = all.iter().filter(|p| p.2).map(|p| p.0).collect();
    let mut grown = true;
    while grown {
        grown = false;
        for (pid, parent, _) in &all {
            if left.contains(parent) && !left.contains(pid) {
                left.push(*pid);
                grown = true;
            }
        }
    }
    let left: Vec<nix::unistd::Pid> = left.into_iter().map(nix::unistd::Pid::from_raw).collect();
    for pid in &left {
        let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGKILL);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let running: Vec<nix::unistd::Pid> = left
            .iter()
            .copied()
            .filter(|p| corral_dockerd::engine::runs(*p))
            .collect();
        if running.is_empty() || std::time::Instant::now() >= deadline {
            return running;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs [`power_off_leftovers`] when dropped, so that a test that fails part way does
/// not leave its engine's containers running (busy loops that slow every later test).
struct Leftovers(std::path::PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let running = power_off_leftovers(&self.0);
            if !running.is_empty() {
                eprintln!("{running:?} outlive SIGKILL");
            }
        }
    }
}

/// The way down (corral_manager::ending): each service's process waited for, one that
/// ignores its stop signal killed after its time, then the engine killed without
/// tearing the containers down; after the power-off that follows, the next start of that
/// engine on the same store finds them exited and starts them again.
#[tokio::test(flavor = "current_thread")]
async fn services_ended_at_the_way_down_and_the_engine_killed_start_again() {
    use corral_dockerd::engine::runs;
    use corral_manager::ending::{all_gone, end_all, Ended};
    let tmp = tempfile::tempdir().expect("tempdir");
    let _leftovers = Leftovers(tmp.path().join("engine"));
    let (mut engine, docker) = engine_with_busybox(tmp.path()).await;
    let yml = r#"
services:
  obliging:
    image: corral/busybox:0.1.0
    command: [sh, -c, "trap 'sleep 1; exit 0' TERM; while :; do sleep 0.1; done"]
  deaf:
    image: corral/busybox:0.1.0
    command: [sh, -c, "trap '' TERM; while :; do sleep 0.1; done"]
  patient:
    image: corral/busybox:0.1.0
    command: [sh, -c, "trap 'sleep 4; exit 0' TERM; while :; do sleep 0.1; done"]
  last:
    image: corral/busybox:0.1.0
    command: [sh, -c, "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
"#;
    let file = parse("test.yml", yml).expect("parses");
    all_running(
        &up(&docker, &file).await,
        &["obliging", "deaf", "patient", "last"],
    );
    let pid = |name: &'static str| {
        let docker = docker.clone();
        async move {
            let state = docker
                .inspect_container(name, None)
                .await
                .expect("inspect")
                .state;
            nix::unistd::Pid::from_raw(state.and_then(|s| s.pid).unwrap_or(0) as i32)
        }
    };
    let pids = [
        pid("obliging").await,
        pid("deaf").await,
        pid("patient").await,
        pid("last").await,
    ];
    let names: Vec<String> = ["obliging", "deaf", "patient", "last", "never-made"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // `patient` needs 4 s, more than the others' 3 s: it is given 8 (the user engine's
    // way at shutdown).
    let longer = [("patient", Duration::from_secs(8))];
    let ended = end_all(&docker, &names, "last", Duration::from_secs(3), &longer).await;
    let of = |name: &str| {
        ended
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.clone())
    };
    assert!(
        matches!(of("obliging"), Some(Ended::Exited(took)) if took >= Duration::from_secs(1)),
        "{ended:?}"
    );
    assert_eq!(of("deaf"), Some(Ended::Killed), "{ended:?}");
    assert!(
        matches!(of("patient"), Some(Ended::Exited(took)) if took >= Duration::from_secs(4)),
        "given its longer time: {ended:?}"
    );
    assert_eq!(of("never-made"), Some(Ended::NotRunning));
    // `last` ends after the others but for `patient`, which goes on beside it and is
    // listed after it.
    let at = |name: &str| ended.iter().position(|(n, _)| n == name);
    assert_eq!(at("last"), Some(3), "the last one ends last: {ended:?}");
    assert_eq!(at("patient"), Some(4), "{ended:?}");
    assert!(matches!(of("last"), Some(Ended::Exited(_))), "{ended:?}");
    assert!(all_gone(&ended));
    for p in pids {
        assert!(!runs(p), "process {p} still runs");
    }
    // Killed, not stopped: dockerd does not get to record the containers as stopped.
    engine.kill().await;
    // The machine then powers off, and what the engine left running goes with it: a
    // container's shim whose task the killed engine had not deleted yet would still
    // hold it, and the next containerd would take that task over ("task ...: already
    // exists" at the next start). On the next boot no shim is left; here they are killed.
    let running = power_off_leftovers(&tmp.path().join("engine"));
    assert!(running.is_empty(), "{running:?} outlive SIGKILL");
    let spec = EngineSpec::system_at(&tmp.path().join("engine")).for_build_host();
    let mut again = Engine::start(&spec).await.expect("dockerd starts again");
    let docker = wait_ready(&spec, Duration::from_secs(90))
        .await
        .expect("ready");
    for name in ["obliging", "deaf", "last"] {
        assert!(
            !container(&docker, name).await.1,
            "{name} runs after the kill"
        );
    }
    all_running(&up(&docker, &file).await, &["obliging", "deaf", "last"]);
    again.stop(Duration::from_secs(25)).await;
}
