//! A small apt repository for the console tests: one package built with dpkg-deb, in a
//! flat repository (`Packages`, `Release`) that apt takes with `[trusted=yes]`.

use corral_harness::Ssh;
use sha2::Digest;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// In the Debian console over `ssh`: apt pointed at [`flat_repository`] served at `addr`
/// (`host:port`, in place of Debian's own, which is out of reach), `corral-hello`
/// installed and run. Returns what that printed.
pub fn install_hello(ssh: &Ssh, addr: &str, timeout: Duration) -> String {
    ssh.check(
        &format!(
            "sudo mv /etc/apt/sources.list.d/debian.sources /root/ && \
             echo 'deb [trusted=yes] http://{addr}/apt ./' | sudo tee /etc/apt/sources.list.d/e2e.list && \
             sudo apt-get update 2>&1 && sudo apt-get install -y corral-hello 2>&1 && corral-hello"
        ),
        timeout,
    )
    .expect("apt installs corral-hello from the loopback repository")
}

/// A package `corral-hello` (a script printing a line) and a flat apt repository with
/// it: `dir/apt/{Packages,Release,corral-hello_1.0_all.deb}`.
pub fn flat_repository(dir: &Path) {
    let tree = dir.join("pkg");
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(tree.join("DEBIAN")).expect("mkdir");
    std::fs::create_dir_all(tree.join("usr/bin")).expect("mkdir");
    std::fs::write(
        tree.join("DEBIAN/control"),
        "Package: corral-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: Corral <e2e@corral.test>\n\
         Description: says hello\n a package for the console test\n",
    )
    .expect("control");
    let bin = tree.join("usr/bin/corral-hello");
    std::fs::write(&bin, "#!/bin/sh\necho hello from apt\n").expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let repo = dir.join("served/apt");
    std::fs::create_dir_all(&repo).expect("mkdir");
    let deb = repo.join("corral-hello_1.0_all.deb");
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        .arg(&deb)
        .status()
        .expect("dpkg-deb");
    assert!(status.success(), "dpkg-deb --build");
    let bytes = std::fs::read(&deb).expect("deb");
    let packages = format!(
        "Package: corral-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: Corral <e2e@corral.test>\n\
         Filename: ./corral-hello_1.0_all.deb\nSize: {}\nSHA256: {}\nDescription: says hello\n\n",
        bytes.len(),
        hex::encode(sha2::Sha256::digest(&bytes))
    );
    std::fs::write(repo.join("Packages"), &packages).expect("Packages");
    let release = format!(
        "Origin: corral-e2e\nLabel: corral-e2e\nSuite: e2e\nCodename: e2e\n\
         Date: Tue, 01 Dec 2026 00:00:00 UTC\nArchitectures: all amd64\nSHA256:\n {} {} Packages\n",
        hex::encode(sha2::Sha256::digest(packages.as_bytes())),
        packages.len()
    );
    std::fs::write(repo.join("Release"), release).expect("Release");
}
