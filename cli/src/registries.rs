//! `corral.registry_auths` (RancherOS's `rancher.registry_auths`) in docker's client
//! configuration, as `corral console-init` writes it at each start for `corral` and for
//! root in the console: `~/.docker/config.json`'s `auths`, one entry per registry. The
//! file's other keys, and registries the configuration does not name (a `docker login`
//! of the user's), are kept; a file that is not JSON is left alone with an error.

use crate::passwd::Account;
use corral_config::schema::RegistryAuth;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// docker's client configuration under a home.
pub const CONFIG: &str = ".docker/config.json";

/// `existing` (a client configuration's text, if any) with `auths` set in it.
pub fn merged(
    existing: Option<&str>,
    auths: &BTreeMap<String, RegistryAuth>,
) -> Result<String, String> {
    let mut doc = match existing.map(str::trim) {
        None | Some("") => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err("is not a JSON object".into()),
            Err(e) => return Err(format!("is not JSON: {e}")),
        },
    };
    let entries = doc
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !entries.is_object() {
        *entries = Value::Object(Map::new());
    }
    if let Value::Object(entries) = entries {
        for (registry, auth) in auths {
            if let Some(entry) = auth.docker_entry() {
                entries.insert(registry.clone(), entry);
            }
        }
    }
    serde_json::to_string_pretty(&Value::Object(doc))
        .map(|mut t| {
            t.push('\n');
            t
        })
        .map_err(|e| e.to_string())
}

/// Writes `auths` into the account's client configuration under `root` (owned by the
/// account, mode 0600, replaced whole). Nothing is written when `auths` is empty.
/// Nothing under the home is followed: the home is the account's to change, and a
/// `~/.docker` that links elsewhere is replaced, never written through
/// (`crate::nofollow`, as for `authorized_keys`).
pub fn install(
    root: &Path,
    account: &Account,
    auths: &BTreeMap<String, RegistryAuth>,
) -> Result<Option<PathBuf>, String> {
    use std::io::Read;
    if auths.is_empty() {
        return Ok(None);
    }
    let path = crate::console::under(root, &account.home).join(CONFIG);
    let shown = path.display().to_string();
    let home_rel = account.home.strip_prefix("/").unwrap_or(&account.home);
    // root's home may be missing from the console image.
    let home = root.join(home_rel);
    if std::fs::symlink_metadata(&home).is_err() {
        let _ = std::fs::create_dir_all(&home);
    }
    let (home_dir, _) = crate::nofollow::parent_dir(root, &home_rel.join(".docker"))
        .map_err(|e| format!("opening the home of {}: {e}", account.name))?;
    let ids = (account.uid, account.gid);
    let docker =
        crate::nofollow::own_dir(&home_dir, std::ffi::OsStr::new(".docker"), 0o700, ids)
            .map_err(|e| format!("making {}: {e}", path.parent().unwrap_or(&path).display()))?;
    let name = std::ffi::OsStr::new("config.json");
    let flags =
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC;
    let existing = match nix::fcntl::openat(&docker, name, flags, nix::sys::stat::Mode::empty()) {
        Ok(fd) => {
            let mut text = String::new();
            std::fs::File::from(fd)
                .take(1 << 20)
                .read_to_string(&mut text)
                .map_err(|e| format!("reading {shown}: {e}"))?;
            Some(text)
        }
        Err(nix::errno::Errno::ENOENT) => None,
        Err(e) => return Err(format!("reading {shown}: {e}")),
    };
    let text =
        merged(existing.as_deref(), auths).map_err(|e| format!("{shown} {e}; left as it is"))?;
    crate::nofollow::replace(&docker, name, text.as_bytes(), 0o600, Some(ids))
        .map_err(|e| format!("writing {shown}: {e}"))?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn auths(yaml: &str) -> BTreeMap<String, RegistryAuth> {
        yaml_serde::from_str(yaml).expect("yaml")
    }

    #[test]
    fn entries_are_set_and_the_rest_of_the_file_is_kept() {
        let a = auths(
            "https://index.docker.io/v1/: {auth: dXNlcjpwYXNz}\nreg.corp:5000: {username: u, password: p}\nempty.corp: {email: a@b}\n",
        );
        let text = merged(
            Some(r#"{"auths": {"mine.io": {"auth": "bWluZQ=="}, "reg.corp:5000": {"auth": "old"}}, "credsStore": "pass"}"#),
            &a,
        )
        .expect("merged");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["credsStore"], "pass");
        assert_eq!(v["auths"]["mine.io"]["auth"], "bWluZQ==");
        assert_eq!(
            v["auths"]["https://index.docker.io/v1/"]["auth"],
            "dXNlcjpwYXNz"
        );
        // base64("u:p")
        assert_eq!(v["auths"]["reg.corp:5000"]["auth"], "dTpw");
        assert!(
            v["auths"].get("empty.corp").is_none(),
            "no credential, no entry"
        );
        assert!(merged(Some("[1]"), &a).is_err());
        assert!(merged(Some("{nope"), &a).is_err());
        assert!(merged(None, &a).is_ok());
    }

    #[test]
    fn the_file_is_the_accounts_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let account = Account {
            name: "corral".into(),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            home: "/home/corral".into(),
        };
        let a = auths("reg.corp: {auth: eDp5}\n");
        let path = install(dir.path(), &account, &a)
            .expect("installed")
            .expect("a file");
        assert_eq!(path, dir.path().join("home/corral/.docker/config.json"));
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert!(install(dir.path(), &account, &BTreeMap::new())
            .expect("nothing to do")
            .is_none());
        // A ~/.docker that links elsewhere is replaced, not written through.
        let elsewhere = dir.path().join("etc");
        fs::create_dir_all(&elsewhere).expect("etc");
        fs::remove_dir_all(path.parent().unwrap()).expect("rm");
        std::os::unix::fs::symlink(&elsewhere, path.parent().unwrap()).expect("link");
        install(dir.path(), &account, &a).expect("installed");
        assert!(
            !elsewhere.join("config.json").exists(),
            "nothing written through the link"
        );
        assert!(fs::symlink_metadata(path.parent().unwrap())
            .expect("stat")
            .is_dir());
        fs::write(&path, "not json").expect("w");
        assert!(install(dir.path(), &account, &a)
            .unwrap_err()
            .contains("left as it is"));
        assert_eq!(fs::read_to_string(&path).expect("r"), "not json");
    }
}
