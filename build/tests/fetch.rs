//! Fetching real Debian packages with the build's own apt into a private cache (needs the
//! network to Debian's mirror; each test fetches its own package lists).

use corral_build::apt::{sha256_file, Apts, Suite, View};
use std::cell::Cell;

#[test]
fn a_corrupt_cached_package_is_detected_and_fetched_again() {
    let cache = tempfile::tempdir().expect("tempdir");
    let apts = Apts::new(cache.path(), false).expect("apt-get is installed");
    let apt = apts.view(View::of(Suite::Trixie)).expect("trixie's lists");
    // tini is small and has no dependencies beyond libc.
    let debs = apt
        .resolve(&["tini".to_string()], &[])
        .expect("resolve tini");
    let tini = debs
        .iter()
        .find(|d| d.name == "tini")
        .expect("tini resolved")
        .clone();
    assert_eq!(tini.sha256.len(), 64, "sha256 from apt-cache: {tini:?}");
    assert_eq!(tini.suite(), Some(Suite::Trixie), "{tini:?}");
    assert!(
        debs.iter().any(|d| d.name == "libc6"),
        "dependencies are resolved too"
    );

    let done = Cell::new(0);
    apts.fetch_all(std::slice::from_ref(&tini), &|_| done.set(done.get() + 1))
        .expect("first fetch");
    let path = apts.path(&tini);
    assert_eq!(sha256_file(&path).expect("hash"), tini.sha256);
    assert_eq!(done.get(), 1);

    std::fs::write(&path, b"not a deb").expect("corrupt the cached file");
    apts.fetch_all(std::slice::from_ref(&tini), &|_| done.set(done.get() + 1))
        .expect("second fetch repairs the cache");
    assert_eq!(
        sha256_file(&path).expect("hash"),
        tini.sha256,
        "fetched anew"
    );
    assert_eq!(done.get(), 2);
}

#[test]
fn a_package_the_suite_lacks_is_named_with_the_suite_and_the_fix() {
    let cache = tempfile::tempdir().expect("tempdir");
    let apts = Apts::new(cache.path(), false).expect("apt-get is installed");
    let apt = apts.view(View::of(Suite::Trixie)).expect("trixie's lists");
    let err = apt
        .resolve(&["no-such-package-corral".to_string()], &[])
        .expect_err("unknown package");
    let text = err.to_string();
    assert!(text.contains("no-such-package-corral"), "{text}");
    assert!(text.contains("trixie"), "the suite is named: {text}");
    assert!(text.contains("fix:"), "the fix is named: {text}");
    assert!(
        cache
            .path()
            .join("apt/trixie/lists")
            .read_dir()
            .expect("lists")
            .next()
            .is_some(),
        "the lists are the build's own, under its cache"
    );
}

#[test]
fn newer_packages_come_from_unstable_and_their_dependencies_from_trixie() {
    let cache = tempfile::tempdir().expect("tempdir");
    let apts = Apts::new(cache.path(), false).expect("apt-get is installed");
    let view = View {
        base: Suite::Trixie,
        newer: Some(Suite::Unstable),
    };
    let debs = apts
        .view(view)
        .expect("both suites' lists")
        .resolve(&[], &["docker-cli".to_string()])
        .expect("resolve docker-cli/unstable");
    let find = |name: &str| {
        debs.iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} in {debs:?}"))
    };
    assert_eq!(find("docker-cli").suite(), Some(Suite::Unstable));
    assert_eq!(
        find("libc6").suite(),
        Some(Suite::Trixie),
        "libc from the base"
    );
}
