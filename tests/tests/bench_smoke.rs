//! End-to-end: the benchmark's smoke run, so that `make bench`'s harness cannot rot
//! between benchmark sessions. One floor boot and one ISO boot through the same code as
//! `make bench` (`corral-build bench --runs 1 --only floor,iso --no-docs`), written to
//! `target/bench-smoke/bench.json`; the test checks that every figure the table needs
//! was read off those boots, not how fast they were (benchmarks are never timed
//! assertions).

use corral_harness::repo_root;
use std::path::PathBuf;
use std::process::Command;

/// `corral-build`, where `make tool` builds it (the Makefile's `BUILD`).
fn corral_build() -> PathBuf {
    let path = repo_root().join("target/debug/corral-build");
    assert!(
        path.exists(),
        "{} is missing; run `make tool` first",
        path.display()
    );
    path
}

#[test]
fn the_benchmark_reads_every_figure_off_one_floor_and_one_iso_boot() {
    let out = repo_root().join("target/bench-smoke");
    let _ = std::fs::remove_file(out.join("bench.json"));
    // From the workspace, as `make bench` runs it (nextest starts tests in the crate's).
    let status = Command::new(corral_build())
        .current_dir(repo_root())
        .args([
            "bench",
            "--runs",
            "1",
            "--only",
            "floor,iso",
            "--no-docs",
            "--out",
        ])
        .arg(&out)
        .status()
        .expect("run corral-build bench");
    assert!(status.success(), "corral-build bench: {status}");
    let text = std::fs::read_to_string(out.join("bench.json")).expect("bench.json written");
    let json: serde_json::Value = serde_json::from_str(&text).expect("bench.json parses");
    let figure = |scenario: &str, name: &str| -> f64 {
        let stat = &json["scenarios"][scenario][name];
        assert_eq!(stat["runs"], 1, "{scenario} / {name}: {stat}");
        stat["median"]
            .as_f64()
            .unwrap_or_else(|| panic!("{scenario} / {name} has no median: {text}"))
    };
    assert!(figure("floor", "QEMU exit (powered off)") > 0.0);
    let mut last = 0.0;
    // Each of these is read off its own line or probe, in boot order.
    for name in [
        "kernel start",
        "/init",
        "root switched",
        "system engine ready",
        "sshd accepts the key",
        "docker info answers",
    ] {
        let at = figure("Corral ISO", name);
        assert!(at > last, "{name} at {at}s, after {last}s: {text}");
        last = at;
    }
    for name in [
        "service network up",
        "service console up",
        "service docker up",
        "user engine ready",
        "first docker run answers",
        "poweroff (s)",
    ] {
        assert!(figure("Corral ISO", name) > 0.0, "{name}: {text}");
    }
    for name in [
        "memory in use (MiB)",
        "RSS PID 1 (MiB)",
        "RSS manager (MiB)",
        "RSS system dockerd (MiB)",
        "RSS user dockerd (MiB)",
    ] {
        let mib = figure("Corral ISO", name);
        assert!(mib > 0.0 && mib < 2048.0, "{name}: {mib} MiB");
    }
    // ssh against the floor's whole boot: the one ratio column a floor run gives.
    let ratio = json["ratios"]["Corral ISO / floor"]["sshd accepts the key"]
        .as_f64()
        .unwrap_or_else(|| panic!("the ratio to the floor: {text}"));
    assert!(
        ratio > 1.0,
        "Corral's ssh is after the floor's whole boot: {ratio}"
    );
}
