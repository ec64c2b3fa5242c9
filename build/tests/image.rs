//! A system image built from real Debian packages without a Docker daemon, loaded by the
//! manager's loader into a real dockerd (Debian's docker.io) on a private socket, and run.

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, StartContainerOptions, WaitContainerOptions,
};
use corral_build::apt::Apts;
use corral_build::image::{self, ImageInputs, ImageSpec};
use corral_dockerd::engine::{wait_ready, Engine, EngineSpec};
use corral_dockerd::images::{load_all, load_file, Archive, LoadFailure, Outcome};
use futures_util::StreamExt;
use std::path::Path;
use std::time::Duration;

fn build_base(root: &Path, cache: &Path) -> (corral_build::docker_archive::Built, ImageSpec) {
    let dir = root.join("images/hello");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("motd"), "from the image folder\n").expect("write");
    std::fs::write(
        dir.join("image.yml"),
        "name: hello\npackages: [busybox-static]\n\
         files: [{src: motd, dest: /etc/motd}]\n\
         config:\n  entrypoint: [/usr/bin/busybox]\n  cmd: [cat, /etc/motd]\n  labels: {io.rancher.os.scope: system}\n",
    )
    .expect("write");
    let spec = ImageSpec::load(&dir).expect("spec");
    let apts = Apts::new(cache, false).expect("apt");
    let inputs = ImageInputs {
        apts: &apts,
        cache,
        work: &root.join("work"),
        binaries: &root.join("no-binaries"),
        version: "test",
    };
    let debs = image::resolve(&apts, &spec).expect("resolve");
    apts.fetch_all(&debs, &|_| {}).expect("fetch");
    let built = image::build(&inputs, &dir, &spec, &debs).expect("image builds");
    assert!(debs.iter().any(|d| d.name == "busybox-static"));
    (built, spec)
}

#[tokio::test(flavor = "current_thread")]
async fn a_daemonless_image_loads_into_dockerd_and_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cache/corral"))
        .unwrap_or_else(|| tmp.path().join("cache"));
    let (built, spec) = build_base(tmp.path(), &cache);
    let (again, _) = build_base(&tmp.path().join("second"), &cache);
    assert_eq!(built.image_id, again.image_id, "same inputs, same image ID");
    assert_eq!(
        built.archive_sha256, again.archive_sha256,
        "same inputs, same archive"
    );

    // An index with the good archive and a corrupt copy of it.
    let images = tmp.path().join("images-dir");
    std::fs::create_dir_all(&images).expect("mkdir");
    std::fs::copy(&built.archive, images.join("hello.tar")).expect("copy");
    std::fs::write(images.join("broken.tar"), b"not an archive").expect("write");
    let entry = |name: &str, file: &str| Archive {
        name: name.into(),
        reference: built.reference.clone(),
        image_id: built.image_id.clone(),
        archive_sha256: built.archive_sha256.clone(),
        file: file.into(),
    };
    let index = vec![entry("broken", "broken.tar"), entry("hello", "hello.tar")];
    std::fs::write(
        images.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("write");

    let engine_root = tmp.path().join("engine");
    let spec_engine = EngineSpec::system_at(&engine_root).for_build_host();
    let mut engine = Engine::start(&spec_engine)
        .await
        .expect("dockerd starts (make setup installs docker.io)");
    let docker = wait_ready(&spec_engine, Duration::from_secs(90))
        .await
        .expect("dockerd ready");

    let results = load_all(&docker, &images).await.expect("index read");
    let broken = &results[0];
    let err = broken.1.as_ref().expect_err("corrupt archive is an error");
    assert!(
        err.to_string().contains("image broken") && err.to_string().contains("corrupt"),
        "{err}"
    );
    assert_eq!(
        results[1].1.as_ref().ok(),
        Some(&Outcome::Loaded),
        "the good one still loads"
    );
    let results = load_all(&docker, &images).await.expect("index read");
    assert_eq!(
        results[1].1.as_ref().ok(),
        Some(&Outcome::AlreadyPresent),
        "loaded once"
    );

    // The streamed loader (consoles, the user engine's preload): what the engine loaded,
    // by name; the engine's refusal and a missing file told apart.
    let names = load_file(&docker, &images.join("hello.tar"))
        .await
        .expect("the archive loads");
    assert_eq!(names, vec![built.reference.clone()]);
    assert!(matches!(
        load_file(&docker, &images.join("broken.tar")).await,
        Err(LoadFailure::Engine(_))
    ));
    assert!(matches!(
        load_file(&docker, &images.join("absent.tar")).await,
        Err(LoadFailure::Open(_))
    ));

    let inspect = docker
        .inspect_image(&built.reference)
        .await
        .expect("inspect");
    let labels = inspect.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(
        labels.get("io.rancher.os.scope").map(String::as_str),
        Some("system")
    );
    assert_eq!(spec.config.cmd, ["cat", "/etc/motd"]);

    // Run it: an unprivileged container (the build machines lack CAP_SYS_RESOURCE).
    let body = ContainerCreateBody {
        image: Some(built.reference.clone()),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some("hello".into()),
        ..Default::default()
    };
    docker
        .create_container(Some(options), body)
        .await
        .expect("create");
    docker
        .start_container("hello", None::<StartContainerOptions>)
        .await
        .expect("start");
    let mut wait = docker.wait_container("hello", None::<WaitContainerOptions>);
    while let Some(r) = wait.next().await {
        assert_eq!(r.expect("wait").status_code, 0);
    }
    let logs: Vec<String> = docker
        .logs(
            "hello",
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        )
        .map(|l| l.map(|l| l.to_string()).unwrap_or_default())
        .collect()
        .await;
    assert_eq!(logs.concat(), "from the image folder\n");
    engine.stop(Duration::from_secs(25)).await;
}
