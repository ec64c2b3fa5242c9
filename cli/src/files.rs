//! `write_files` in the console, where users look for them: each entry's parent
//! directories are made, the file written whole (or appended to) with its mode and
//! owner set through its descriptor, never through a link (`crate::nofollow`). Names in `owner` are looked up in the console's /etc/passwd and
//! /etc/group. A CA certificate written under `/etc/ssl/certs/` is also put in
//! `corral_dockerd::EXTRA_CERTS_DIR`, where both engines look for CAs ([`share_cert`]).
//! Every path is taken under a root so tests run on a temporary tree.

use crate::{nofollow, passwd};
use corral_config::schema::WriteFile;
use std::path::Path;

/// `user`, `user:group`, or numeric ids, as uid and gid.
pub fn owner_ids(root: &Path, owner: &str) -> Result<(u32, u32), String> {
    let (user, group) = match owner.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (owner, None),
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => {
            let a = passwd::lookup(root, user)
                .map_err(|e| format!("reading /etc/passwd: {e}"))?
                .ok_or_else(|| format!("owner {owner:?}: no user {user} in /etc/passwd"))?;
            (a.uid, a.gid)
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => std::fs::read_to_string(root.join("etc/group"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse().ok())
                        .flatten()
                })
                .ok_or_else(|| format!("owner {owner:?}: no group {g} in /etc/group"))?,
        },
    };
    Ok((uid, gid))
}

/// Writes one entry under `root`, never through a link another account planted
/// (`crate::nofollow`).
pub fn write(root: &Path, f: &WriteFile) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| format!("write_files {}: {what}: {e}", f.path);
    let rel = Path::new(f.path.trim_start_matches('/'));
    let ids = f
        .owner
        .as_deref()
        .map(|o| owner_ids(root, o))
        .transpose()
        .map_err(|e| format!("write_files {}: {e}", f.path))?;
    let (dir, name) =
        nofollow::parent_dir(root, rel).map_err(|e| fail("making its directory", e))?;
    if f.append {
        nofollow::append(&dir, &name, &f.content, f.permissions.0, ids)
            .map_err(|e| fail("appending", e))
    } else {
        nofollow::replace(&dir, &name, &f.content, f.permissions.0, ids)
            .map_err(|e| fail("writing", e))
    }
}

/// Where RancherOS users put a CA certificate for the engines to trust.
pub const CERTS: &str = "/etc/ssl/certs/";

/// For an entry under [`CERTS`] (written already), a copy of the file as it now is in
/// `corral_dockerd::EXTRA_CERTS_DIR` under `root`, by its name: what RancherOS's shared
/// `/etc/ssl/certs` gave the engines. Returns the copy's path, or `None` for an entry
/// elsewhere.
pub fn share_cert(root: &Path, f: &WriteFile) -> Result<Option<std::path::PathBuf>, String> {
    let Some(name) = f
        .path
        .strip_prefix(CERTS)
        .and_then(|rest| rest.rsplit('/').next())
    else {
        return Ok(None);
    };
    if name.is_empty() {
        return Ok(None);
    }
    let fail = |what: &str, e: std::io::Error| format!("write_files {}: {what}: {e}", f.path);
    let written = root.join(f.path.trim_start_matches('/'));
    let content = std::fs::read(&written).map_err(|e| fail("reading it back", e))?;
    let shared = Path::new(corral_dockerd::EXTRA_CERTS_DIR.trim_start_matches('/')).join(name);
    let (dir, file) = nofollow::parent_dir(root, &shared)
        .map_err(|e| fail("making the engines' CA directory", e))?;
    nofollow::replace(&dir, &file, &content, 0o644, None)
        .map_err(|e| fail("sharing it with the engines", e))?;
    Ok(Some(Path::new("/").join(shared)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn files(yaml: &str) -> Vec<WriteFile> {
        yaml_serde::from_str(yaml).expect("yaml")
    }

    #[test]
    fn writes_appends_and_sets_mode_and_owner() {
        let root = tempfile::tempdir().expect("tempdir");
        let me = nix::unistd::getuid().as_raw();
        let group = nix::unistd::getgid().as_raw();
        std::fs::create_dir_all(root.path().join("etc")).expect("mkdir");
        std::fs::write(
            root.path().join("etc/passwd"),
            format!("me:x:{me}:{group}::/home/me:/bin/sh\n"),
        )
        .expect("w");
        std::fs::write(root.path().join("etc/group"), format!("mine:x:{group}:\n")).expect("w");
        let fs = files(&format!(
            "- {{path: /opt/a/b.txt, content: one, permissions: '0600', owner: 'me:mine'}}\n\
             - {{path: /opt/a/b.txt, content: ' two', append: true, permissions: '0640'}}\n\
             - {{path: /opt/c, encoding: b64, content: aGk=, owner: '{me}'}}\n\
             - {{path: /opt/d, owner: nobody}}\n"
        ));
        for f in &fs[..3] {
            write(root.path(), f).expect("writes");
        }
        let b = root.path().join("opt/a/b.txt");
        assert_eq!(std::fs::read_to_string(&b).expect("read"), "one two");
        let meta = std::fs::metadata(&b).expect("stat");
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!((meta.uid(), meta.gid()), (me, group));
        assert_eq!(
            std::fs::read(root.path().join("opt/c")).expect("read"),
            b"hi"
        );
        let err = write(root.path(), &fs[3]).expect_err("unknown user");
        assert_eq!(
            err,
            "write_files /opt/d: owner \"nobody\": no user nobody in /etc/passwd"
        );
        assert!(!root.path().join("opt/d").exists());
    }

    #[test]
    fn a_ca_under_etc_ssl_certs_is_shared_with_the_engines() {
        let root = tempfile::tempdir().expect("tempdir");
        let fs = files(
            "- {path: /etc/ssl/certs/corp-ca.pem, content: 'CA ONE;'}\n\
             - {path: /etc/ssl/certs/corp-ca.pem, content: 'CA TWO', append: true}\n\
             - {path: /etc/ssl/private/key.pem, content: secret}\n",
        );
        let mut shared = Vec::new();
        for f in &fs {
            write(root.path(), f).expect("writes");
            shared.push(share_cert(root.path(), f).expect("shares"));
        }
        let copy = std::path::PathBuf::from("/run/corral/certs/corp-ca.pem");
        assert_eq!(shared, [Some(copy.clone()), Some(copy), None]);
        assert_eq!(
            std::fs::read_to_string(root.path().join("run/corral/certs/corp-ca.pem"))
                .expect("the engines' copy"),
            "CA ONE;CA TWO"
        );
        assert!(!root.path().join("run/corral/certs/key.pem").exists());
    }
}
