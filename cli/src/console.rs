//! The console container's set-up, as `corral console-init` does it at each start: the
//! `corral` user's `authorized_keys` from the configuration, the ssh host keys (made once,
//! kept in a directory the service bind-mounts from the host), sshd's run directory, and
//! the list of programs to keep running (sshd, a getty per console). Every path is taken
//! under a root so that tests run it on a temporary tree.

use crate::passwd::Account;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The user people log in as.
pub const USER: &str = "corral";
/// Where the host keys live; the console service bind-mounts it from the host, where a
/// state partition keeps it across reboots.
pub const HOST_KEY_DIR: &str = "/var/lib/corral/ssh";
/// Host key types made at first boot. RSA is left out: its key generation takes tens of
/// seconds on a slow machine, and every OpenSSH since 6.5 (2014) speaks ed25519.
pub const HOST_KEY_TYPES: &[&str] = &["ed25519", "ecdsa"];
/// The consoles that get a getty, when their device exists: the first virtual terminal
/// (what `console=tty0` shows) and the first serial port.
pub const CONSOLES: &[&str] = &["tty1", "ttyS0"];
/// busybox, whose `getty` and `login` the console uses.
pub const BUSYBOX: &str = "/usr/bin/busybox";
/// The login program of an autologin console: `login -f corral`.
pub const AUTOLOGIN: &str = "/usr/libexec/corral/autologin";
/// RancherOS's user: an account with corral's uid, home and keys (the console's
/// passwd), and its home's path, a link to corral's.
pub const RANCHER_USER: &str = "rancher";

/// Makes `/home/rancher` (under `root`) a link to `home` (corral's), so that scripts
/// that write under RancherOS's home keep working; a file or directory already there is
/// left alone. True when it made the link.
pub fn link_rancher_home(root: &Path, home: &Path) -> std::io::Result<bool> {
    let alias = under(root, &Path::new("/home").join(RANCHER_USER));
    if alias.symlink_metadata().is_ok() {
        return Ok(false);
    }
    let target = home
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| home.to_path_buf());
    std::os::unix::fs::symlink(target, &alias)?;
    Ok(true)
}

/// Where the console's login shells find the proxies of `corral.network`.
pub const PROXY_PROFILE: &str = "/etc/profile.d/proxy.sh";

/// The text of [`PROXY_PROFILE`] for `env` (`corral.network`'s proxy environment), or
/// `None` when no proxy is set.
pub fn proxy_profile(env: &[(String, String)]) -> Option<String> {
    if env.is_empty() {
        return None;
    }
    let mut text = String::from("# corral.network's proxies, written by corral console-init\n");
    for (k, v) in env {
        text.push_str(&format!("export {k}='{}'\n", v.replace('\'', r"'\''")));
    }
    Some(text)
}

/// Writes [`PROXY_PROFILE`] under `root` for `env`, or removes it when there is none.
pub fn install_proxy_profile(root: &Path, env: &[(String, String)]) -> std::io::Result<()> {
    let path = under(root, Path::new(PROXY_PROFILE));
    match proxy_profile(env) {
        Some(text) => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            fs::write(&path, text)
        }
        None => match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

/// OpenSSH's keygen and daemon.
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
pub const SSHD: &str = "/usr/sbin/sshd";

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("making the host key {key}: {source}")]
    Keygen {
        key: PathBuf,
        source: corral_host::HostError,
    },
}

type Result<T> = std::result::Result<T, ConsoleError>;

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ConsoleError + 'a {
    move |source| ConsoleError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// `abs` (an absolute path on the machine) under `root`.
pub fn under(root: &Path, abs: &Path) -> PathBuf {
    root.join(abs.strip_prefix("/").unwrap_or(abs))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io("setting the mode of", path))
}

fn give(path: &Path, account: &Account) -> Result<()> {
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(account.uid)),
        Some(nix::unistd::Gid::from_raw(account.gid)),
    )
    .map_err(|e| ConsoleError::Io {
        what: "changing the owner of",
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// The text of `authorized_keys` for these keys.
pub fn authorized_keys_text(keys: &[String]) -> String {
    let mut text = String::from(
        "# Written by `corral console-init` at each start from the configuration\n\
         # (ssh_authorized_keys); edits here are replaced at the next start.\n",
    );
    for k in keys {
        text.push_str(k);
        text.push('\n');
    }
    text
}

/// Makes the account's home (if missing) and `.ssh/authorized_keys` holding `keys`, all
/// owned by the account, with the modes sshd's StrictModes wants. Returns the file.
pub fn install_authorized_keys(root: &Path, account: &Account, keys: &[String]) -> Result<PathBuf> {
    let home = under(root, &account.home);
    if !home.exists() {
        fs::create_dir_all(&home).map_err(io("creating", &home))?;
        set_mode(&home, 0o750)?;
    }
    // A home kept from an earlier boot stays as its owner left it, but must be theirs.
    give(&home, account)?;
    // Everything under the home is the account's to change: nothing there is followed
    // (`~/.ssh -> /etc` would have root write and chown /etc; crate::nofollow).
    let ssh = home.join(".ssh");
    let file = ssh.join("authorized_keys");
    let rel = file.strip_prefix(root).unwrap_or(&file);
    let (home_dir, _) = crate::nofollow::parent_dir(root, rel.parent().unwrap_or(rel))
        .map_err(io("opening", &home))?;
    let ids = (account.uid, account.gid);
    let ssh_dir = crate::nofollow::own_dir(&home_dir, std::ffi::OsStr::new(".ssh"), 0o700, ids)
        .map_err(io("making", &ssh))?;
    let name = std::ffi::OsStr::new("authorized_keys");
    let text = authorized_keys_text(keys);
    // Unchanged keys are not written again (a full state partition still boots).
    if !crate::nofollow::holds(&ssh_dir, name, text.as_bytes(), 0o600, Some(ids)) {
        crate::nofollow::replace(&ssh_dir, name, text.as_bytes(), 0o600, Some(ids))
            .map_err(io("replacing", &file))?;
    }
    Ok(file)
}

/// The private host key of type `t` in `dir` (its public half adds `.pub`).
pub fn host_key(dir: &Path, t: &str) -> PathBuf {
    dir.join(format!("ssh_host_{t}_key"))
}

/// Installs a host key given in `corral.ssh.keys` (`ed25519`, `ed25519-pub`, `ecdsa`,
/// `ecdsa-pub`): private keys 0600, public 0644. Returns where it went.
pub fn install_host_key(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let (kind, public) = match name.strip_suffix("-pub") {
        Some(k) => (k, true),
        None => (name, false),
    };
    if !HOST_KEY_TYPES.contains(&kind) {
        return Err(ConsoleError::Io {
            what: "installing the host key",
            path: PathBuf::from(name),
            source: std::io::Error::other(format!(
                "not a key type Corral's sshd uses; use one of {}",
                HOST_KEY_TYPES.join(", ")
            )),
        });
    }
    fs::create_dir_all(dir).map_err(io("creating", dir))?;
    set_mode(dir, 0o700)?;
    let mut path = host_key(dir, kind);
    if public {
        path.set_extension("pub");
    }
    let mut body = text.trim_end().to_string();
    body.push('\n');
    fs::write(&path, body).map_err(io("writing", &path))?;
    set_mode(&path, if public { 0o644 } else { 0o600 })?;
    Ok(path)
}

/// Makes every missing host key in `dir` with `keygen`; returns the keys it made. An
/// empty key file (a write cut short by a power cut or a full disk) counts as missing:
/// sshd would refuse it, and nobody could log in.
pub fn ensure_host_keys(dir: &Path, keygen: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).map_err(io("creating", dir))?;
    set_mode(dir, 0o700)?;
    let mut made = Vec::new();
    for t in HOST_KEY_TYPES {
        let key = host_key(dir, t);
        match fs::metadata(&key) {
            Ok(m) if m.len() > 0 => continue,
            Ok(_) => {
                log::warn!("the host key {} is empty; making a new one", key.display());
                for stale in [key.clone(), key.with_extension("pub")] {
                    if let Err(e) = fs::remove_file(&stale) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            return Err(io("removing", &stale)(e));
                        }
                    }
                }
            }
            Err(_) => {}
        }
        let mut cmd = Command::new(keygen);
        cmd.args(["-q", "-t", t, "-N", "", "-C", "corral host key", "-f"])
            .arg(&key);
        if let Err(source) = corral_host::command::output(&mut cmd) {
            return Err(ConsoleError::Keygen { key, source });
        }
        made.push(key);
    }
    Ok(made)
}

/// The fingerprint line of a public key (`256 SHA256:... (ED25519)`), for the console.
pub fn fingerprint(keygen: &Path, public: &Path) -> Option<String> {
    corral_host::command::output(Command::new(keygen).arg("-lf").arg(public))
        .ok()
        .map(|out| out.trim().to_string())
}

/// busybox getty's arguments for a console; with `autologin`, no prompt: `corral` is
/// logged in at once.
pub fn getty_args(tty: &str, autologin: bool) -> Vec<String> {
    let serial = tty.starts_with("ttyS") || tty.starts_with("hvc");
    let mut args: Vec<String> = vec!["getty".into()];
    if serial {
        // A local line: no modem control, no waiting for carrier.
        args.push("-L".into());
    }
    if autologin {
        args.extend(["-n".into(), "-l".into(), AUTOLOGIN.into()]);
    }
    let (baud, term) = if serial {
        ("115200", "vt102")
    } else {
        ("38400", "linux")
    };
    args.extend([baud.into(), tty.into(), term.into()]);
    args
}

/// The consoles of [`CONSOLES`] whose device exists under `root`.
pub fn consoles(root: &Path) -> Vec<&'static str> {
    CONSOLES
        .iter()
        .copied()
        .filter(|tty| root.join("dev").join(tty).exists())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn rancher_home_is_a_link_to_corrals_unless_something_is_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("home/corral")).expect("home");
        assert!(link_rancher_home(dir.path(), Path::new("/home/corral")).expect("linked"));
        fs::write(dir.path().join("home/rancher/f"), "x").expect("through the link");
        assert_eq!(
            fs::read_to_string(dir.path().join("home/corral/f")).expect("in corral's home"),
            "x"
        );
        assert!(!link_rancher_home(dir.path(), Path::new("/home/corral")).expect("kept"));
    }

    #[test]
    fn the_proxy_profile_exports_each_variable_quoted_and_goes_when_unset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = vec![
            ("HTTP_PROXY".to_string(), "http://p:3128".to_string()),
            ("no_proxy".to_string(), "a,b'c".to_string()),
        ];
        install_proxy_profile(dir.path(), &env).expect("written");
        let path = dir.path().join("etc/profile.d/proxy.sh");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.contains("export HTTP_PROXY='http://p:3128'\n"),
            "{text}"
        );
        assert!(text.contains(r"export no_proxy='a,b'\''c'"), "{text}");
        // The shell reads back what was written.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(". {}; printf %s \"$no_proxy\"", path.display()))
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a,b'c");
        install_proxy_profile(dir.path(), &[]).expect("removed");
        assert!(!path.exists());
        install_proxy_profile(dir.path(), &[]).expect("nothing to remove");
    }

    fn me(home: &str) -> Account {
        Account {
            name: USER.into(),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            home: home.into(),
        }
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).expect("stat").mode() & 0o7777
    }

    #[test]
    fn keys_land_in_a_strict_ssh_directory_and_are_replaced_each_start() {
        let root = tempfile::tempdir().expect("tmp");
        let account = me("/home/corral");
        let file = install_authorized_keys(root.path(), &account, &["ssh-ed25519 AAAA a".into()])
            .expect("install");
        assert_eq!(file, root.path().join("home/corral/.ssh/authorized_keys"));
        assert_eq!(mode(&root.path().join("home/corral")), 0o750);
        assert_eq!(mode(&root.path().join("home/corral/.ssh")), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::metadata(&file).expect("stat").uid(), account.uid);
        let text = fs::read_to_string(&file).expect("read");
        assert!(text.ends_with("\nssh-ed25519 AAAA a\n"), "{text}");
        install_authorized_keys(root.path(), &account, &["ssh-ed25519 BBBB b".into()])
            .expect("again");
        let text = fs::read_to_string(&file).expect("read");
        assert!(!text.contains("AAAA") && text.contains("BBBB"), "{text}");
        // The same keys again: the file is left as it is (not even rewritten).
        let inode = fs::metadata(&file).expect("stat").ino();
        install_authorized_keys(root.path(), &account, &["ssh-ed25519 BBBB b".into()])
            .expect("unchanged");
        assert_eq!(
            fs::metadata(&file).expect("stat").ino(),
            inode,
            "not replaced"
        );
        // No keys: the file holds only its header, so nobody logs in.
        install_authorized_keys(root.path(), &account, &[]).expect("empty");
        let text = fs::read_to_string(&file).expect("read");
        assert!(text.lines().all(|l| l.starts_with('#')), "{text}");
    }

    #[test]
    fn host_keys_are_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let keys = dir.path().join("ssh");
        let made = ensure_host_keys(&keys, Path::new("ssh-keygen")).expect("keygen");
        assert_eq!(made.len(), HOST_KEY_TYPES.len());
        assert_eq!(mode(&keys), 0o700);
        let ed = keys.join("ssh_host_ed25519_key");
        assert_eq!(mode(&ed), 0o600);
        let before = fs::read(&ed).expect("read");
        let fp = fingerprint(
            Path::new("ssh-keygen"),
            &keys.join("ssh_host_ed25519_key.pub"),
        )
        .expect("fingerprint");
        assert!(fp.contains("SHA256:") && fp.contains("(ED25519)"), "{fp}");
        let again = ensure_host_keys(&keys, Path::new("ssh-keygen")).expect("again");
        assert!(again.is_empty(), "existing keys are kept: {again:?}");
        assert_eq!(fs::read(&ed).expect("read"), before);
        // An empty key (a write cut short) is made again; the others stay.
        fs::write(&ed, b"").expect("truncate");
        let remade = ensure_host_keys(&keys, Path::new("ssh-keygen")).expect("remade");
        assert_eq!(remade, std::slice::from_ref(&ed));
        assert!(fs::metadata(&ed).expect("key").len() > 0);
    }

    #[test]
    fn a_failing_keygen_is_reported_with_its_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let err = ensure_host_keys(&dir.path().join("ssh"), Path::new("false")).expect_err("fails");
        assert!(err.to_string().contains("ssh_host_ed25519_key"), "{err}");
    }

    #[test]
    fn getty_lines_for_serial_and_virtual_consoles() {
        assert_eq!(
            getty_args("ttyS0", false),
            ["getty", "-L", "115200", "ttyS0", "vt102"]
        );
        assert_eq!(
            getty_args("tty1", false),
            ["getty", "38400", "tty1", "linux"]
        );
        assert_eq!(
            getty_args("tty1", true),
            ["getty", "-n", "-l", AUTOLOGIN, "38400", "tty1", "linux"]
        );
    }

    #[test]
    fn only_existing_consoles_get_a_getty() {
        let root = tempfile::tempdir().expect("tmp");
        fs::create_dir_all(root.path().join("dev")).expect("mkdir");
        fs::write(root.path().join("dev/ttyS0"), "").expect("touch");
        assert_eq!(consoles(root.path()), ["ttyS0"]);
    }

    #[test]
    fn host_keys_from_the_configuration_get_their_modes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("ssh");
        let private =
            install_host_key(&keys, "ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n")
                .expect("installs");
        assert_eq!(private, keys.join("ssh_host_ed25519_key"));
        assert_eq!(fs::metadata(&private).expect("stat").mode() & 0o777, 0o600);
        let public =
            install_host_key(&keys, "ed25519-pub", "ssh-ed25519 AAAA host").expect("installs");
        assert_eq!(public, keys.join("ssh_host_ed25519_key.pub"));
        assert_eq!(
            fs::read_to_string(&public).expect("read"),
            "ssh-ed25519 AAAA host\n"
        );
        assert_eq!(fs::metadata(&public).expect("stat").mode() & 0o777, 0o644);
        assert!(install_host_key(&keys, "rsa", "x").is_err());
    }
}
