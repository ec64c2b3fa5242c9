//! cloud-init's `users:` in the console, as `corral console-init` makes them at each
//! start: each account in the console's `/etc/passwd`, `shadow` and `group` (no
//! password: keys only), its supplementary groups (made when missing), its home under
//! `/home` (on the state partition, so a uid is kept: an existing home's owner is the
//! account's uid) with its `authorized_keys`, and its sudo rules in
//! `/etc/sudoers.d/90-corral-users`. The console's own accounts (`root`, `corral`,
//! `rancher`, ...) are never changed.

use crate::console::{install_authorized_keys, under};
use crate::passwd::Account;
use corral_config::schema::UserSpec;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The accounts this file lists were made here (one name per line): on a restart of
/// the console they are updated, not refused as the image's.
const MADE: &str = "/etc/corral-users";
/// Where the sudo rules go (Debian's /etc/sudoers includes the directory, where the
/// console's own rules are too).
pub const SUDOERS: &str = "/etc/sudoers.d/90-corral-users";
const FIRST_UID: u32 = 1101;
const FIRST_GID: u32 = 1200;

fn read(root: &Path, file: &str) -> String {
    fs::read_to_string(under(root, Path::new(file))).unwrap_or_default()
}

/// Replaces `file` under `root` whole (a temporary file, fsync, rename; nothing under
/// `root` followed), made `mode`, owned by root.
fn write(root: &Path, file: &str, text: &str, mode: u32) -> Result<(), String> {
    let rel = Path::new(file.trim_start_matches('/'));
    if let Some(parent) = rel.parent() {
        let _ = fs::create_dir_all(root.join(parent));
    }
    let (dir, name) =
        crate::nofollow::parent_dir(root, rel).map_err(|e| format!("writing {file}: {e}"))?;
    crate::nofollow::replace(&dir, &name, text.as_bytes(), mode, None)
        .and_then(|()| nix::unistd::fsync(&dir).map_err(Into::into))
        .map_err(|e| format!("writing {file}: {e}"))
}

/// The uids taken: passwd's and the owners of the homes under `/home` (kept on the
/// state partition across console images).
fn used_uids(root: &Path, passwd: &str) -> Vec<u32> {
    let mut used = ids(passwd);
    if let Ok(entries) = fs::read_dir(under(root, Path::new("/home"))) {
        for e in entries.flatten() {
            if let Ok(m) = fs::symlink_metadata(e.path()) {
                used.push(m.uid());
            }
        }
    }
    used
}

/// `text` (passwd, shadow or group) without the lines of `names`, and without them as
/// group members.
fn without(text: &str, gone: &[String]) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut f: Vec<String> = line.split(':').map(String::from).collect();
        if f.first().is_some_and(|n| gone.contains(n)) {
            continue;
        }
        if f.len() == 4 {
            let members: Vec<&str> = f[3]
                .split(',')
                .filter(|m| !m.is_empty() && !gone.iter().any(|g| g == m))
                .collect();
            f[3] = members.join(",");
        }
        out.push_str(&f.join(":"));
        out.push('\n');
    }
    out
}

/// Whether `shell` may be written into passwd: an absolute path without `:` or
/// control characters.
fn plain_shell(shell: &str) -> bool {
    shell.starts_with('/') && !shell.contains(':') && !shell.chars().any(char::is_control)
}

/// Whether `visudo` accepts the sudoers text at `path` (when the console has visudo).
fn sudoers_ok(root: &Path, path: &Path) -> Result<(), String> {
    let visudo = under(root, Path::new("/usr/sbin/visudo"));
    if root != Path::new("/") || !visudo.exists() {
        return Ok(());
    }
    let out = std::process::Command::new(visudo)
        .arg("-cf")
        .arg(path)
        .output()
        .map_err(|e| format!("running visudo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The ids in the third field of `text`'s lines (passwd's uids, group's gids).
fn ids(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect()
}

fn names(text: &str) -> Vec<&str> {
    text.lines().filter_map(|l| l.split(':').next()).collect()
}

fn next_free(used: &[u32], from: u32) -> u32 {
    (from..).find(|id| !used.contains(id)).unwrap_or(from)
}

/// `group` text with `user` a member of `group` (made with a free gid when missing).
fn join_group(text: &str, group: &str, user: &str) -> String {
    let mut found = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|line| {
            let mut f: Vec<String> = line.split(':').map(String::from).collect();
            if f.len() == 4 && f[0] == group {
                found = true;
                let mut members: Vec<&str> = f[3].split(',').filter(|m| !m.is_empty()).collect();
                if !members.contains(&user) {
                    members.push(user);
                }
                f[3] = members.join(",");
            }
            f.join(":")
        })
        .collect();
    if !found {
        let gid = next_free(&ids(text), FIRST_GID);
        out.push(format!("{group}:x:{gid}:{user}"));
    }
    let mut joined = out.join("\n");
    joined.push('\n');
    joined
}

/// The uid for `spec`: its own (1000 or more, not taken), else the owner of its home
/// kept from an earlier boot, else the next one no account or home has.
fn uid_for(root: &Path, spec: &UserSpec, passwd: &str) -> Result<u32, String> {
    let used = used_uids(root, passwd);
    let home = under(root, &Path::new("/home").join(&*spec.name));
    let home_owner = fs::symlink_metadata(&home)
        .ok()
        .filter(|m| m.is_dir() && m.uid() >= 1000)
        .map(|m| m.uid());
    if let Some(uid) = spec.uid {
        let taken = ids(passwd).contains(&uid) || (used.contains(&uid) && home_owner != Some(uid));
        if uid < 1000 || taken {
            return Err(format!(
                "uid {uid} is a system id or taken; leave uid out to get a free one"
            ));
        }
        return Ok(uid);
    }
    match home_owner {
        Some(uid) if !ids(passwd).contains(&uid) => Ok(uid),
        _ => Ok(next_free(&used, FIRST_UID)),
    }
}

/// Makes or updates the accounts of `users`; returns what it did and what went wrong,
/// one line each (an account that cannot be made is skipped, the others are made).
pub fn apply(root: &Path, users: &[&UserSpec]) -> (Vec<String>, Vec<String>) {
    let (mut did, mut problems) = (Vec::new(), Vec::new());
    let made_text = read(root, MADE);
    let mut made: Vec<String> = made_text.lines().map(String::from).collect();
    // Accounts made at an earlier start that the configuration no longer lists: gone,
    // and their keys with them (the home stays, the user's data).
    let gone: Vec<String> = made
        .iter()
        .filter(|m| !users.iter().any(|u| &*u.name == m.as_str()))
        .cloned()
        .collect();
    if !gone.is_empty() {
        let passwd = read(root, "/etc/passwd");
        for name in &gone {
            let keys = under(
                root,
                &Path::new("/home").join(name).join(".ssh/authorized_keys"),
            );
            if fs::symlink_metadata(&keys).is_ok_and(|m| m.is_file()) {
                let _ = fs::write(&keys, "");
            }
        }
        let written = write(root, "/etc/passwd", &without(&passwd, &gone), 0o644)
            .and_then(|()| {
                write(
                    root,
                    "/etc/shadow",
                    &without(&read(root, "/etc/shadow"), &gone),
                    0o640,
                )
            })
            .and_then(|()| {
                write(
                    root,
                    "/etc/group",
                    &without(&read(root, "/etc/group"), &gone),
                    0o644,
                )
            });
        match written {
            Ok(()) => {
                did.push(format!(
                    "users: removed {} (no longer configured)",
                    gone.join(", ")
                ));
                made.retain(|m| !gone.contains(m));
            }
            Err(e) => problems.push(format!("users: removing {}: {e}", gone.join(", "))),
        }
    }
    let mut sudo = String::from("# cloud-config users: written by corral console-init\n");
    for spec in users {
        let name = &*spec.name;
        let mut passwd = read(root, "/etc/passwd");
        let exists = names(&passwd).contains(&name);
        if exists && !made.iter().any(|m| m == name) {
            problems.push(format!(
                "users: {name} is one of the console's own accounts; it is left as it is (keys for corral go in ssh_authorized_keys)"
            ));
            continue;
        }
        let uid = match passwd
            .lines()
            .find(|l| l.split(':').next() == Some(name))
            .and_then(|l| l.split(':').nth(2)?.parse().ok())
        {
            Some(uid) => uid,
            None => match uid_for(root, spec, &passwd) {
                Ok(uid) => uid,
                Err(e) => {
                    problems.push(format!("users: {name}: {e}"));
                    continue;
                }
            },
        };
        if !exists {
            let shell = spec
                .shell
                .as_deref()
                .filter(|s| plain_shell(s) && under(root, Path::new(s)).is_file())
                .unwrap_or("/bin/bash");
            let gecos: String = spec
                .gecos
                .as_ref()
                .map(|g| {
                    g.0.chars()
                        .filter(|c| *c != ':' && !c.is_control())
                        .collect()
                })
                .unwrap_or_default();
            passwd.push_str(&format!(
                "{name}:x:{uid}:{uid}:{gecos}:/home/{name}:{shell}\n"
            ));
            let mut shadow = read(root, "/etc/shadow");
            shadow.push_str(&format!("{name}:*:20000:0:99999:7:::\n"));
            let mut group = read(root, "/etc/group");
            if !names(&group).contains(&name) {
                let gid = if ids(&group).contains(&uid) {
                    next_free(&ids(&group), FIRST_GID)
                } else {
                    uid
                };
                group.push_str(&format!("{name}:x:{gid}:\n"));
            }
            let written = write(root, "/etc/group", &group, 0o644)
                .and_then(|()| write(root, "/etc/shadow", &shadow, 0o640))
                .and_then(|()| write(root, "/etc/passwd", &passwd, 0o644));
            if let Err(e) = written {
                problems.push(format!("users: {name}: {e}"));
                continue;
            }
            made.push(name.to_string());
        }
        for g in &spec.groups {
            let group = read(root, "/etc/group");
            if let Err(e) = write(root, "/etc/group", &join_group(&group, g, name), 0o644) {
                problems.push(format!("users: {name}: group {}: {e}", &**g));
            }
        }
        let account = Account {
            name: name.to_string(),
            uid,
            gid: uid,
            home: PathBuf::from("/home").join(name),
        };
        match install_authorized_keys(root, &account, &spec.ssh_authorized_keys) {
            Ok(_) => did.push(format!(
                "users: {name} (uid {uid}, {} keys{})",
                spec.ssh_authorized_keys.len(),
                if spec.sudo.is_empty() { "" } else { ", sudo" }
            )),
            Err(e) => problems.push(format!("users: {name}: {e}")),
        }
        for rule in &spec.sudo {
            sudo.push_str(&format!("{name} {}\n", &**rule));
        }
    }
    let mut list = made.join("\n");
    list.push('\n');
    if let Err(e) = write(root, MADE, &list, 0o644) {
        problems.push(format!("users: {e}"));
    }
    // Checked by visudo before it takes effect: rules sudo cannot read would have it
    // complain on every command, everyone's.
    let staged = "/etc/corral-users.sudoers";
    let checked = write(root, staged, &sudo, 0o440)
        .and_then(|()| sudoers_ok(root, &under(root, Path::new(staged))));
    let rules = match checked {
        Ok(()) => sudo,
        Err(e) => {
            problems.push(format!(
                "users: the sudo rules were refused by visudo ({e}); none are given"
            ));
            String::from("# cloud-config users: rules refused by visudo\n")
        }
    };
    let _ = fs::remove_file(under(root, Path::new(staged)));
    if let Err(e) = write(root, SUDOERS, &rules, 0o440) {
        problems.push(format!("users: {e}"));
    }
    (did, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(yaml: &str) -> Vec<UserSpec> {
        let c: corral_config::schema::CloudConfig = yaml_serde::from_str(yaml).expect("yaml");
        c.accounts().cloned().collect()
    }

    fn console(dir: &Path) {
        fs::create_dir_all(dir.join("etc")).expect("etc");
        fs::create_dir_all(dir.join("bin")).expect("bin");
        fs::write(dir.join("bin/bash"), "").expect("bash");
        fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\ncorral:x:1100:1100:Corral:/home/corral:/bin/bash\n",
        )
        .expect("passwd");
        fs::write(dir.join("etc/shadow"), "root:*:20000:0:99999:7:::\n").expect("shadow");
        fs::write(
            dir.join("etc/group"),
            "root:x:0:\nsudo:x:27:corral\ndocker:x:233:corral\ncorral:x:1100:\n",
        )
        .expect("group");
    }

    #[test]
    fn accounts_are_made_with_groups_keys_and_sudo_and_kept_on_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        console(root);
        let users = specs(
            "users:\n  - default\n  - name: alice\n    groups: [docker, ops]\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    gecos: 'Alice: admin'\n    ssh_authorized_keys: [ssh-ed25519 AAAA alice]\n  - name: corral\n  - name: bob\n",
        );
        let refs: Vec<&UserSpec> = users.iter().collect();
        let (did, problems) = apply(root, &refs);
        assert_eq!(did.len(), 2, "{did:?}");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("corral is one of the console's own accounts"));
        let passwd = fs::read_to_string(root.join("etc/passwd")).expect("passwd");
        assert!(
            passwd.contains("alice:x:1101:1101:Alice admin:/home/alice:/bin/bash\n"),
            "{passwd}"
        );
        assert!(
            passwd.contains("bob:x:1102:1102::/home/bob:/bin/bash\n"),
            "{passwd}"
        );
        let group = fs::read_to_string(root.join("etc/group")).expect("group");
        assert!(group.contains("docker:x:233:corral,alice\n"), "{group}");
        assert!(group.contains("ops:x:1200:alice\n"), "{group}");
        assert!(group.contains("alice:x:1101:\n"), "{group}");
        let keys = fs::read_to_string(root.join("home/alice/.ssh/authorized_keys")).expect("keys");
        assert!(keys.contains("ssh-ed25519 AAAA alice"));
        let sudoers =
            fs::read_to_string(root.join("etc/sudoers.d/90-corral-users")).expect("sudoers");
        assert!(
            sudoers.ends_with("alice ALL=(ALL) NOPASSWD:ALL\n"),
            "{sudoers}"
        );
        // A restart of the console: the same accounts, nothing added twice.
        let (did, problems) = apply(root, &refs);
        assert_eq!((did.len(), problems.len()), (2, 1));
        assert_eq!(
            fs::read_to_string(root.join("etc/passwd")).expect("passwd"),
            passwd
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/group")).expect("group"),
            group
        );
        // alice taken out of the configuration: her account and keys go, bob stays.
        let bob: Vec<&UserSpec> = users.iter().filter(|u| &*u.name == "bob").collect();
        let (did, _) = apply(root, &bob);
        assert!(did[0].contains("removed alice"), "{did:?}");
        let passwd = fs::read_to_string(root.join("etc/passwd")).expect("passwd");
        assert!(
            !passwd.contains("alice") && passwd.contains("bob:x:1102"),
            "{passwd}"
        );
        let group = fs::read_to_string(root.join("etc/group")).expect("group");
        assert!(
            group.contains("docker:x:233:corral\n") && !group.contains("alice"),
            "{group}"
        );
        let keys = fs::read_to_string(root.join("home/alice/.ssh/authorized_keys")).expect("keys");
        assert!(keys.is_empty());
        // A new user does not take the uid of alice's home, kept on the state partition.
        let more = specs("users:\n  - name: carol\n  - name: dave\n    uid: 1100\n  - name: eve\n    shell: '/bin/x:0'\n");
        let refs: Vec<&UserSpec> = bob.iter().copied().chain(more.iter()).collect();
        let (_, problems) = apply(root, &refs);
        assert!(
            problems.iter().any(|p| p.contains("dave: uid 1100")),
            "{problems:?}"
        );
        let passwd = fs::read_to_string(root.join("etc/passwd")).expect("passwd");
        assert!(passwd.contains("carol:x:1103:"), "{passwd}");
        assert!(
            passwd.contains("eve:x:1104:1104::/home/eve:/bin/bash\n"),
            "{passwd}"
        );
    }
}
