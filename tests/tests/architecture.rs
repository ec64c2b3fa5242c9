//! The workspace's dependency rules, read from `cargo metadata`: who may link whom. A
//! crate's normal and build dependencies count; dev-dependencies only where a rule says
//! so (a test may link what it tests). Each rule says why, so a failure explains itself.

use serde_json::Value;

/// (crate, or "*" for every crate; the crate it must not depend on; why).
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "*",
        "corral-init",
        "PID 1 is a leaf: what others need of it lives in corral-host",
    ),
    (
        "corral-build",
        "corral-manager",
        "the build shares the engine, the image archives and the seed with the manager \
         through corral-dockerd, and links no part of the manager",
    ),
    (
        "*",
        "corral-build",
        "the build is a host tool at the top: nothing links it",
    ),
    (
        "corral-cli",
        "corral-iso",
        "the host CLI writes a disk from corral-disk's plan; the ISO crate's image writer \
         and grub-mkimage are build tools",
    ),
    (
        "corral-init",
        "corral-iso",
        "build-only code (mtools, grub-mkimage) never reaches PID 1",
    ),
    (
        "corral-manager",
        "corral-iso",
        "build-only code (mtools, grub-mkimage) never reaches the manager",
    ),
];

/// Dev-dependencies that are forbidden too: (crate, dependency, why).
const FORBIDDEN_IN_TESTS: &[(&str, &str, &str)] = &[(
    "corral-manager",
    "corral-build",
    "the manager's integration tests take their image from `corral-build test-images` \
     (target/corral/test-images), not by linking the build",
)];

/// Every workspace crate's (name, [(dependency, kind)]), kind "normal", "build" or "dev".
fn workspace_dependencies() -> Vec<(String, Vec<(String, String)>)> {
    let text = corral_harness::workspace_metadata().expect("cargo metadata runs");
    let meta: Value = serde_json::from_str(&text).expect("cargo metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|d| {
                    let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                    (d["name"].as_str().expect("name").to_string(), kind)
                })
                .collect();
            (p["name"].as_str().expect("name").to_string(), deps)
        })
        .collect()
}

/// The rules `deps` breaks, as sentences.
fn violations(deps: &[(String, Vec<(String, String)>)]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, list) in deps {
        for (dep, kind) in list {
            let rules = match kind.as_str() {
                "dev" => FORBIDDEN_IN_TESTS,
                _ => FORBIDDEN,
            };
            for (from, to, why) in rules {
                if (*from == "*" || from == name) && to == dep {
                    found.push(format!("{name} has a {kind} dependency on {dep}: {why}"));
                }
            }
        }
    }
    found
}

#[test]
fn no_crate_breaks_the_dependency_rules() {
    let deps = workspace_dependencies();
    assert!(
        deps.iter().any(|(n, _)| n == "corral-init") && deps.len() >= 10,
        "the whole workspace was read: {:?}",
        deps.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let found = violations(&deps);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn a_normal_dependency_on_pid_1_is_caught_and_a_dev_dependency_is_not() {
    let deps = vec![
        (
            "corral-x".to_string(),
            vec![("corral-init".to_string(), "normal".to_string())],
        ),
        (
            "corral-y".to_string(),
            vec![("corral-init".to_string(), "dev".to_string())],
        ),
    ];
    let found = violations(&deps);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("corral-x has a normal dependency on corral-init"));
    let manager_test = vec![(
        "corral-manager".to_string(),
        vec![("corral-build".to_string(), "dev".to_string())],
    )];
    assert_eq!(
        violations(&manager_test).len(),
        1,
        "a test-only link to the build"
    );
}
