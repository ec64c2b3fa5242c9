//! Assembles the root filesystem tree from unpacked packages and Corral's own files. The
//! tree is merged-/usr (bin, sbin and lib are links into usr/), as Debian 12 installs it;
//! packages that still ship files under /bin or /lib land in usr/ by [`map_path`].

use crate::error::{BuildError, Result};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// Top-level directories that are links into usr/.
pub const MERGED: &[&str] = &["bin", "sbin", "lib", "lib64"];

/// Paths nothing on a running Corral host reads: documentation, manuals, translations.
const DROPPED: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/share/bash-completion",
    "usr/share/zsh",
    "usr/share/fish",
];

/// Where a package's path (relative, like `bin/busybox`) goes in the merged-/usr root;
/// `None` for dropped paths.
pub fn map_path(rel: &Path) -> Option<PathBuf> {
    let mut parts = rel.components();
    let first = parts.next()?.as_os_str().to_string_lossy().into_owned();
    let mapped = if MERGED.contains(&first.as_str()) {
        Path::new("usr").join(rel)
    } else {
        rel.to_path_buf()
    };
    if DROPPED.iter().any(|d| mapped.starts_with(d)) {
        return None;
    }
    Some(mapped)
}

/// The host root's directories: merged /usr, mount points, engines' data roots.
pub const HOST_DIRS: &[&str] = &[
    "usr/bin",
    "usr/sbin",
    "usr/lib",
    "usr/lib64",
    "etc/corral",
    "proc",
    "sys",
    "dev",
    "run",
    "tmp",
    "root",
    "home",
    "var/lib/system-docker",
    "var/lib/docker",
    "var/log",
    "var/tmp",
    "mnt",
    "opt",
    "media",
];

/// A system image's directories.
pub const IMAGE_DIRS: &[&str] = &[
    "usr/bin",
    "usr/sbin",
    "usr/lib",
    "usr/lib64",
    "etc",
    "proc",
    "sys",
    "dev",
    "run",
    "tmp",
    "root",
    "var/tmp",
    "var/log",
];

/// Starts an empty root at `root`: the merged-/usr links and `dirs`.
pub fn create(root: &Path, dirs: &[&str]) -> Result<()> {
    if root.exists() {
        fs::remove_dir_all(root).map_err(BuildError::write(root))?;
    }
    for dir in dirs {
        let p = root.join(dir);
        fs::create_dir_all(&p).map_err(BuildError::write(&p))?;
    }
    for (dir, mode) in [("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700)] {
        let p = root.join(dir);
        if p.is_dir() {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                .map_err(BuildError::write(&p))?;
        }
    }
    for link in MERGED {
        let p = root.join(link);
        symlink(format!("usr/{link}"), &p).map_err(BuildError::write(&p))?;
    }
    // FHS: /var/run is /run (docker's /var/run/docker.sock, daemons' pid files).
    let var_run = root.join("var/run");
    if let Some(var) = var_run.parent() {
        fs::create_dir_all(var).map_err(BuildError::write(var))?;
    }
    symlink("/run", &var_run).map_err(BuildError::write(&var_run))?;
    Ok(())
}

/// Removes `paths` (relative to the root) if they exist: the `drop:` lists.
pub fn drop_paths(root: &Path, paths: &[String]) -> Result<()> {
    for rel in paths {
        let p = root.join(rel.trim_start_matches('/'));
        if p.is_dir() && !p.is_symlink() {
            fs::remove_dir_all(&p).map_err(BuildError::write(&p))?;
        } else if p.symlink_metadata().is_ok() {
            fs::remove_file(&p).map_err(BuildError::write(&p))?;
        }
    }
    Ok(())
}

/// Copies an unpacked package tree into the root, mapping paths to merged /usr. Files are
/// hard-linked from the cache where possible (the root is only read afterwards).
pub fn merge(root: &Path, tree: &Path) -> Result<usize> {
    let mut count = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let src = tree.join(&rel);
        let entries = fs::read_dir(&src).map_err(BuildError::read(&src))?;
        for entry in entries {
            let entry = entry.map_err(BuildError::read(&src))?;
            let rel = rel.join(entry.file_name());
            let Some(dest_rel) = map_path(&rel) else {
                continue;
            };
            let src = entry.path();
            let dest = root.join(&dest_rel);
            let kind = entry.file_type().map_err(BuildError::read(&src))?;
            if kind.is_dir() {
                fs::create_dir_all(&dest).map_err(BuildError::write(&dest))?;
                stack.push(rel);
            } else if kind.is_symlink() && dest.is_dir() && rel.components().count() == 1 {
                // Debian 13's base-files ships the merged-/usr links themselves (/sbin ->
                // usr/sbin); the root already has them as directories under usr/.
                continue;
            } else {
                if dest.symlink_metadata().is_ok() {
                    fs::remove_file(&dest).map_err(BuildError::write(&dest))?;
                }
                if kind.is_symlink() {
                    let target = fs::read_link(&src).map_err(BuildError::read(&src))?;
                    symlink(&target, &dest).map_err(BuildError::write(&dest))?;
                } else if fs::hard_link(&src, &dest).is_err() {
                    fs::copy(&src, &dest).map_err(BuildError::write(&dest))?;
                }
                count += 1;
            }
        }
    }
    Ok(count)
}

/// Writes a file into the root, creating its directory.
pub fn write(root: &Path, rel: &str, content: &[u8], mode: u32) -> Result<()> {
    let p = root.join(rel.trim_start_matches('/'));
    if let Some(dir) = p.parent() {
        fs::create_dir_all(dir).map_err(BuildError::write(dir))?;
    }
    if p.symlink_metadata().is_ok() {
        fs::remove_file(&p).map_err(BuildError::write(&p))?;
    }
    fs::write(&p, content).map_err(BuildError::write(&p))?;
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(BuildError::write(&p))
}

/// Where Debian's ca-certificates keeps the certificates, and where its maintainer
/// script (update-ca-certificates, which never runs here) puts the bundle that Go's
/// crypto/x509 (dockerd pulling over TLS), OpenSSL and rustls read.
const CA_DIR: &str = "usr/share/ca-certificates";
const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// Makes the CA bundle from the certificates the ca-certificates package unpacked, as
/// update-ca-certificates does with every certificate enabled (Debian's default): each
/// `.crt` under /usr/share/ca-certificates, in path order, one after the other. Returns
/// how many went in; none when the package is not in the root.
pub fn ca_bundle(root: &Path) -> Result<usize> {
    let dir = root.join(CA_DIR);
    if !dir.is_dir() {
        return Ok(0);
    }
    let mut certs = Vec::new();
    let mut pending = vec![dir];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).map_err(BuildError::read(&d))? {
            let path = entry.map_err(BuildError::read(&d))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "crt") {
                certs.push(path);
            }
        }
    }
    certs.sort();
    let mut bundle = Vec::new();
    for c in &certs {
        let mut pem = fs::read(c).map_err(BuildError::read(c))?;
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        bundle.extend_from_slice(&pem);
    }
    write(root, CA_BUNDLE, &bundle, 0o644)?;
    Ok(certs.len())
}

/// Makes the `links:` of a spec in the root.
pub fn links(root: &Path, links: &[crate::image::LinkSpec]) -> Result<()> {
    for l in links {
        link(root, &l.path, &l.target)?;
    }
    Ok(())
}

/// Makes a symlink in the root, replacing what is there.
pub fn link(root: &Path, rel: &str, target: &str) -> Result<()> {
    let p = root.join(rel.trim_start_matches('/'));
    if p.symlink_metadata().is_ok() {
        fs::remove_file(&p).map_err(BuildError::write(&p))?;
    }
    symlink(target, &p).map_err(BuildError::write(&p))
}

/// Corral's /etc: users, groups, identity, name resolution. `build_id` names what made
/// the root (`BUILD_ID` in os-release, `corral os version`'s build).
pub fn etc_files(version: &str, build_id: &str) -> Vec<(&'static str, String, u32)> {
    vec![
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n".into(), 0o644),
        // Numbers as in Debian's base-passwd (tty 5); docker as Debian's docker.io makes it.
        ("etc/group", "root:x:0:\ntty:x:5:\ndocker:x:999:\nnogroup:x:65534:\n".into(), 0o644),
        ("etc/shadow", "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n".into(), 0o600),
        ("etc/hostname", "corral\n".into(), 0o644),
        ("etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n".into(), 0o644),
        ("etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n".into(), 0o644),
        ("etc/resolv.conf", String::new(), 0o644),
        ("etc/os-release", format!(
            "NAME=\"Corral\"\nID=corral\nID_LIKE=debian\nVERSION_ID=\"{version}\"\nBUILD_ID={build_id}\nPRETTY_NAME=\"Corral {version}\"\n"
        ), 0o644),
    ]
}

/// Links every busybox applet that no package provides (sh, modprobe, ps, ...) to
/// `/usr/bin/busybox`, except those in `except`. Asks the root's own busybox (a static
/// binary, so the build host can run it) for the list.
pub fn busybox_links(root: &Path, except: &[&str]) -> Result<()> {
    let busybox = root.join("usr/bin/busybox");
    let list = crate::host::run(std::process::Command::new(&busybox).arg("--list-full"))?;
    for applet in list.lines() {
        let name = applet.rsplit('/').next().unwrap_or(applet);
        if except.contains(&name) {
            continue;
        }
        let Some(dest) = map_path(Path::new(applet)) else {
            continue;
        };
        if root.join(&dest).symlink_metadata().is_ok() {
            continue;
        }
        if let Some(dir) = root.join(&dest).parent() {
            fs::create_dir_all(dir).map_err(BuildError::write(dir))?;
        }
        link(root, &dest.to_string_lossy(), "/usr/bin/busybox")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_bundle_holds_every_certificate_in_path_order() {
        let root = tempfile::tempdir().expect("tempdir");
        assert_eq!(ca_bundle(root.path()).expect("no package"), 0);
        assert!(!root.path().join(CA_BUNDLE).exists());
        let mozilla = root.path().join(CA_DIR).join("mozilla");
        fs::create_dir_all(&mozilla).expect("mkdir");
        fs::write(
            mozilla.join("B.crt"),
            "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        fs::write(
            mozilla.join("A.crt"),
            "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----",
        )
        .expect("write");
        fs::write(mozilla.join("README"), "not a certificate").expect("write");
        assert_eq!(ca_bundle(root.path()).expect("bundle"), 2);
        assert_eq!(
            fs::read_to_string(root.path().join(CA_BUNDLE)).expect("read"),
            "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n"
        );
    }

    #[test]
    fn top_level_bin_and_lib_move_under_usr_and_docs_are_dropped() {
        let cases: &[(&str, Option<&str>)] = &[
            ("bin/busybox", Some("usr/bin/busybox")),
            (
                "lib/x86_64-linux-gnu/libc.so.6",
                Some("usr/lib/x86_64-linux-gnu/libc.so.6"),
            ),
            (
                "lib64/ld-linux-x86-64.so.2",
                Some("usr/lib64/ld-linux-x86-64.so.2"),
            ),
            ("usr/sbin/dockerd", Some("usr/sbin/dockerd")),
            ("etc/docker/key.json", Some("etc/docker/key.json")),
            ("usr/share/doc/runc/copyright", None),
            ("usr/share/man/man8/dockerd.8.gz", None),
            ("library/x", Some("library/x")),
        ];
        for (input, want) in cases {
            assert_eq!(
                map_path(Path::new(input)),
                want.map(PathBuf::from),
                "{input}"
            );
        }
    }

    #[test]
    fn merge_keeps_links_modes_and_maps_paths() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (root, tree) = (tmp.path().join("root"), tmp.path().join("tree"));
        create(&root, HOST_DIRS).expect("create");
        fs::create_dir_all(tree.join("bin")).expect("mkdir");
        fs::create_dir_all(tree.join("usr/share/doc/x")).expect("mkdir");
        write(&tree, "bin/tool", b"x", 0o755).expect("write");
        write(&tree, "usr/share/doc/x/README", b"doc", 0o644).expect("write");
        symlink("tool", tree.join("bin/alias")).expect("symlink");
        symlink("usr/sbin", tree.join("sbin")).expect("base-files' merged-/usr link");
        let n = merge(&root, &tree).expect("merge");
        assert_eq!(n, 2, "the doc file and the merged-/usr link are left out");
        assert!(root
            .join("usr/sbin")
            .symlink_metadata()
            .expect("sbin")
            .is_dir());
        let tool = root.join("usr/bin/tool");
        assert_eq!(
            fs::metadata(&tool).expect("tool").permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(
            fs::read_link(root.join("usr/bin/alias")).expect("link"),
            Path::new("tool")
        );
        assert!(
            root.join("bin/tool").exists(),
            "reachable through the bin -> usr/bin link"
        );
        assert!(!root.join("usr/share/doc").exists());
    }
}
