//! Fetching real Debian packages with the host's apt into a private cache (needs the apt
//! lists that `make setup` refreshes, and the network to Debian's mirror).

use corral_build::apt::{sha256_file, Apt};
use std::cell::Cell;

#[test]
fn a_corrupt_cached_package_is_detected_and_fetched_again() {
    let cache = tempfile::tempdir().expect("tempdir");
    let apt = Apt::new(cache.path()).expect("apt-get is installed");
    // tini is small and has no dependencies beyond libc.
    let debs = apt.resolve(&["tini".to_string()]).expect("resolve tini");
    let tini = debs
        .iter()
        .find(|d| d.name == "tini")
        .expect("tini resolved")
        .clone();
    assert_eq!(tini.sha256.len(), 64, "sha256 from apt-cache: {tini:?}");
    assert!(
        debs.iter().any(|d| d.name == "libc6"),
        "dependencies are resolved too"
    );

    let done = Cell::new(0);
    apt.fetch_all(std::slice::from_ref(&tini), &|_| done.set(done.get() + 1))
        .expect("first fetch");
    let path = apt.path(&tini);
    assert_eq!(sha256_file(&path).expect("hash"), tini.sha256);
    assert_eq!(done.get(), 1);

    std::fs::write(&path, b"not a deb").expect("corrupt the cached file");
    apt.fetch_all(std::slice::from_ref(&tini), &|_| done.set(done.get() + 1))
        .expect("second fetch repairs the cache");
    assert_eq!(
        sha256_file(&path).expect("hash"),
        tini.sha256,
        "fetched anew"
    );
    assert_eq!(done.get(), 2);
}

#[test]
fn an_unknown_package_fails_with_the_fix() {
    let cache = tempfile::tempdir().expect("tempdir");
    let apt = Apt::new(cache.path()).expect("apt-get is installed");
    let err = apt
        .resolve(&["no-such-package-corral".to_string()])
        .expect_err("unknown package");
    let text = err.to_string();
    assert!(text.contains("no-such-package-corral"), "{text}");
    assert!(text.contains("apt-get update"), "the fix is named: {text}");
}
