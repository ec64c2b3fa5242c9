//! Writing files as root into trees other accounts can write to (home directories,
//! `/opt`, `/var/lib`) without following a link one of them planted: `write_files` and
//! `authorized_keys` would otherwise write through `~/.ssh -> /etc` or a link named like
//! the temporary file onto any file of the machine. Each directory on the way is opened
//! from the one before with `O_NOFOLLOW` (`openat`); a link on the way is followed only
//! when root owns it (a system's own links, such as `/var/run -> /run`); a file is made
//! fresh (`O_EXCL`, mode 0600 until its own mode and owner are set through its
//! descriptor), synced, and renamed over the old one.

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode};
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

fn other(detail: String) -> std::io::Error {
    std::io::Error::other(detail)
}

fn is_link(dir: &OwnedFd, name: &OsStr) -> std::io::Result<Option<u32>> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    Ok((st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFLNK).then_some(st.st_uid))
}

/// mkdirat(2), content when something made it meanwhile.
fn make_dir(dir: &OwnedFd, name: &OsStr, mode: u32) -> std::io::Result<()> {
    match mkdirat(dir, name, Mode::from_bits_truncate(mode)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Opens the directory `name` in `dir`, made (mode 0755) when missing. A link is followed
/// only when root owns it.
fn step(dir: &OwnedFd, name: &OsStr) -> std::io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match openat(dir, name, flags | OFlag::O_NOFOLLOW, Mode::empty()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {
            make_dir(dir, name, 0o755)?;
            return Ok(openat(dir, name, flags | OFlag::O_NOFOLLOW, Mode::empty())?);
        }
        // A link (ELOOP), or not a directory at all.
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {}
        Err(e) => return Err(e.into()),
    }
    match is_link(dir, name)? {
        Some(0) => Ok(openat(dir, name, flags, Mode::empty())?),
        Some(uid) => Err(other(format!(
            "{} is a link owned by uid {uid}, not root; it is not followed",
            name.to_string_lossy()
        ))),
        None => Err(other(format!(
            "{} is not a directory",
            name.to_string_lossy()
        ))),
    }
}

/// The directory that holds `rel` (a relative path under `root`), opened with each
/// missing directory made on the way, and the file's name. `..` is refused.
pub fn parent_dir(root: &Path, rel: &Path) -> std::io::Result<(OwnedFd, OsString)> {
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => names.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(other(format!("{}: '..' is not allowed", rel.display())))
            }
        }
    }
    let Some((name, dirs)) = names.split_last() else {
        return Err(other(format!("{}: no file name", rel.display())));
    };
    let mut dir: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY)
        .open(root)?
        .into();
    for d in dirs {
        dir = step(&dir, d)?;
    }
    Ok((dir, name.to_os_string()))
}

fn own(file: &impl std::os::fd::AsFd, mode: u32, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    if let Some((uid, gid)) = owner {
        fchown(file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    }
    // After the owner: a change of owner clears the set-id bits.
    fchmod(file, Mode::from_bits_truncate(mode))?;
    Ok(())
}

/// The directory `name` in `dir`, owned by `owner` with `mode`: made when missing, and
/// made again when something else (a link, a file) has its name.
pub fn own_dir(
    dir: &OwnedFd,
    name: &OsStr,
    mode: u32,
    owner: (u32, u32),
) -> std::io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e @ (Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR)) => {
            if e != Errno::ENOENT {
                unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?;
            }
            make_dir(dir, name, 0o700)?;
            openat(dir, name, flags, Mode::empty())?
        }
        Err(e) => return Err(e.into()),
    };
    own(&fd, mode, Some(owner))?;
    Ok(fd)
}

/// Replaces `name` in `dir` with `content`: a new file, mode 0600 until `mode` and
/// `owner` are set on it, synced, then renamed over the old one (a link there is
/// replaced, not written through).
pub fn replace(
    dir: &OwnedFd,
    name: &OsStr,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".corral-tmp");
    match unlinkat(dir, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut file = File::from(openat(
        dir,
        tmp.as_os_str(),
        flags,
        Mode::from_bits_truncate(0o600),
    )?);
    let written = file
        .write_all(content)
        .and_then(|()| own(&file, mode, owner))
        .and_then(|()| file.sync_all())
        .and_then(|()| renameat(dir, tmp.as_os_str(), dir, name).map_err(Into::into));
    if written.is_err() {
        // A full disk, say: the half-written copy goes, the old file stays as it was.
        let _ = unlinkat(dir, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
    }
    written
}

/// Whether `name` in `dir` is already a regular file (not a link) holding `content` with
/// `mode` and `owner`: then [`replace`] has nothing to do, and need not write.
pub fn holds(
    dir: &OwnedFd,
    name: &OsStr,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> bool {
    use std::io::Read;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let Ok(fd) = openat(dir, name, flags, Mode::empty()) else {
        return false;
    };
    let Ok(st) = fstat(&fd) else {
        return false;
    };
    let regular = st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG;
    let owned = owner.is_none_or(|(u, g)| st.st_uid == u && st.st_gid == g);
    if !regular || !owned || st.st_mode & 0o7777 != mode || st.st_size as usize != content.len() {
        return false;
    }
    let mut text = Vec::with_capacity(content.len());
    File::from(fd)
        .take(content.len() as u64 + 1)
        .read_to_end(&mut text)
        .is_ok()
        && text == content
}

/// Appends `content` to `name` in `dir` (made when missing), then sets `mode` and
/// `owner`. A link, or anything but a regular file, is refused.
pub fn append(
    dir: &OwnedFd,
    name: &OsStr,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    // O_NONBLOCK: a FIFO planted under the name would block an O_WRONLY open.
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_CLOEXEC;
    let fd = openat(dir, name, flags, Mode::from_bits_truncate(0o600)).map_err(|e| {
        if e == Errno::ELOOP {
            other(format!(
                "{} is a link; it is not followed",
                name.to_string_lossy()
            ))
        } else {
            e.into()
        }
    })?;
    if fstat(&fd)?.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
        return Err(other(format!(
            "{} is not a regular file",
            name.to_string_lossy()
        )));
    }
    let mut file = File::from(fd);
    file.write_all(content)?;
    own(&file, mode, owner)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn me() -> (u32, u32) {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }

    #[test]
    fn files_are_made_whole_with_their_mode_and_directories_on_the_way() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, name) = parent_dir(root.path(), Path::new("/opt/a/b/file")).expect("dirs");
        assert_eq!(name, "file");
        replace(&dir, &name, b"one", 0o640, Some(me())).expect("write");
        let path = root.path().join("opt/a/b/file");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "one");
        assert_eq!(
            std::fs::metadata(&path).expect("stat").mode() & 0o7777,
            0o640
        );
        append(&dir, &name, b" two", 0o600, None).expect("append");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "one two");
        assert_eq!(
            std::fs::metadata(&path).expect("stat").mode() & 0o7777,
            0o600
        );
        let left: Vec<_> = std::fs::read_dir(root.path().join("opt/a/b"))
            .expect("ls")
            .collect();
        assert_eq!(left.len(), 1, "no temporary file left");
        assert!(parent_dir(root.path(), Path::new("/opt/../etc/x")).is_err());
    }

    #[test]
    fn a_failed_replace_leaves_the_old_and_no_temporary_file() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, _) = parent_dir(root.path(), Path::new("/d/x")).expect("dirs");
        // The rename cannot put a file over a directory that holds something: the write
        // fails at its last step, as a full disk fails one at an earlier step.
        std::fs::create_dir_all(root.path().join("d/keys/inside")).expect("mkdir");
        let name = OsStr::new("keys");
        assert!(replace(&dir, name, b"new", 0o600, None).is_err());
        let left: Vec<_> = std::fs::read_dir(root.path().join("d"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, vec![OsString::from("keys")], "no temporary file left");
        assert!(root.path().join("d/keys/inside").is_dir(), "the old stays");
        // `holds` says whether a write is needed: same bytes, mode and owner only.
        let file = OsStr::new("file");
        replace(&dir, file, b"same", 0o640, Some(me())).expect("write");
        assert!(holds(&dir, file, b"same", 0o640, Some(me())));
        assert!(!holds(&dir, file, b"other", 0o640, Some(me())));
        assert!(!holds(&dir, file, b"sam", 0o640, Some(me())));
        assert!(!holds(&dir, file, b"same", 0o600, Some(me())));
        assert!(!holds(&dir, name, b"same", 0o640, None), "a directory");
        assert!(!holds(&dir, OsStr::new("none"), b"", 0o600, None));
    }

    #[test]
    fn planted_links_are_never_written_through() {
        let root = tempfile::tempdir().expect("tempdir");
        let target = root.path().join("secret");
        std::fs::write(&target, "root's").expect("write");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let home = root.path().join("home/u");
        std::fs::create_dir_all(&home).expect("mkdir");
        // A link named like the temporary file, and one in place of the file itself.
        symlink(&target, home.join(".f.corral-tmp")).expect("link");
        symlink(&target, home.join("f")).expect("link");
        let (dir, name) = parent_dir(root.path(), Path::new("home/u/f")).expect("dir");
        replace(&dir, &name, b"mine", 0o644, None).expect("replace");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "root's");
        assert_eq!(
            std::fs::read_to_string(home.join("f")).expect("read"),
            "mine"
        );
        assert!(!std::fs::symlink_metadata(home.join("f"))
            .expect("stat")
            .file_type()
            .is_symlink());
        symlink(&target, home.join("g")).expect("link");
        let err = append(&dir, OsStr::new("g"), b"x", 0o644, None).expect_err("a link");
        assert!(err.to_string().contains("is a link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "root's");
        // A directory link owned by someone else than root is not followed. Links this
        // test makes are its own user's: as root (CI), that is root, and they are.
        std::fs::create_dir_all(root.path().join("elsewhere")).expect("mkdir");
        symlink(root.path().join("elsewhere"), home.join("d")).expect("link");
        let followed = parent_dir(root.path(), Path::new("home/u/d/x"));
        assert_eq!(followed.is_ok(), me().0 == 0, "{followed:?}");
        // .ssh as a link to elsewhere: replaced by a directory of the account's.
        symlink(root.path().join("elsewhere"), home.join(".ssh")).expect("link");
        let (home_fd, _) = parent_dir(root.path(), Path::new("home/u/.ssh")).expect("home");
        let ssh = own_dir(&home_fd, OsStr::new(".ssh"), 0o700, me()).expect(".ssh");
        replace(&ssh, OsStr::new("authorized_keys"), b"k", 0o600, Some(me())).expect("keys");
        assert!(std::fs::symlink_metadata(home.join(".ssh"))
            .expect("stat")
            .is_dir());
        assert!(!root.path().join("elsewhere/authorized_keys").exists());
    }
}
