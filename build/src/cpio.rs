//! A writer for the "newc" cpio format the kernel unpacks as an initramfs. Written here
//! rather than with cpio(1) so that device nodes need no root and every archive is
//! reproducible: entries sorted, parents first, owner 0, mtime 0.

use crate::error::{BuildError, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    /// A regular file copied from the host.
    File(PathBuf),
    /// A regular file with this content.
    Data(Vec<u8>),
    Symlink(String),
    CharDev {
        major: u32,
        minor: u32,
    },
}

/// An archive being built: path (without leading '/') -> (mode bits, node).
#[derive(Debug, Default)]
pub struct Archive {
    entries: BTreeMap<String, (u32, Node)>,
}

impl Archive {
    /// Adds an entry, and its parent directories (mode 0755) if not there yet.
    pub fn add(&mut self, path: &str, mode: u32, node: Node) {
        let path = path.trim_start_matches('/').to_string();
        let mut parent = Path::new(&path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            self.entries
                .entry(p.to_string_lossy().into_owned())
                .or_insert((0o755, Node::Dir));
            parent = p.parent();
        }
        self.entries.insert(path, (mode, node));
    }

    /// Paths in the archive, in the order they are written.
    pub fn paths(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// Writes the archive to `out`.
    pub fn write_to(&self, out: &Path) -> Result<()> {
        let file = File::create(out).map_err(BuildError::write(out))?;
        let mut w = io::BufWriter::new(file);
        self.write(&mut w).map_err(BuildError::write(out))?;
        w.flush().map_err(BuildError::write(out))
    }

    /// Writes the archive. BTreeMap order puts every parent before its children.
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        for (ino, (path, (mode, node))) in (1u32..).zip(&self.entries) {
            let (kind, size, rdev) = match node {
                Node::Dir => (S_IFDIR, 0, (0, 0)),
                Node::File(src) => (S_IFREG, std::fs::metadata(src)?.len(), (0, 0)),
                Node::Data(d) => (S_IFREG, d.len() as u64, (0, 0)),
                Node::Symlink(t) => (S_IFLNK, t.len() as u64, (0, 0)),
                Node::CharDev { major, minor } => (S_IFCHR, 0, (*major, *minor)),
            };
            let size = u32::try_from(size).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{path} is over 4 GiB"))
            })?;
            let nlink = if kind == S_IFDIR { 2 } else { 1 };
            header(w, ino, kind | mode, nlink, size, rdev, path)?;
            match node {
                Node::File(src) => {
                    let copied = io::copy(&mut File::open(src)?, w)?;
                    if copied != u64::from(size) {
                        return Err(io::Error::other(format!(
                            "{} changed while archived",
                            src.display()
                        )));
                    }
                }
                Node::Data(d) => w.write_all(d)?,
                Node::Symlink(t) => w.write_all(t.as_bytes())?,
                Node::Dir | Node::CharDev { .. } => {}
            }
            pad(w, size as usize)?;
        }
        header(w, 0, 0, 1, 0, (0, 0), "TRAILER!!!")
    }
}

fn header(
    w: &mut impl Write,
    ino: u32,
    mode: u32,
    nlink: u32,
    size: u32,
    rdev: (u32, u32),
    name: &str,
) -> io::Result<()> {
    let namesize = name.len() + 1;
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        size,
        0,
        0,
        rdev.0,
        rdev.1,
        namesize as u32,
        0,
    ];
    let mut h = String::from("070701");
    for f in fields {
        h.push_str(&format!("{f:08x}"));
    }
    w.write_all(h.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad(w, 110 + namesize)
}

fn pad(w: &mut impl Write, len: usize) -> io::Result<()> {
    let n = (4 - len % 4) % 4;
    w.write_all(&[0u8; 3][..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive() -> Archive {
        let mut a = Archive::default();
        a.add("/init", 0o755, Node::Data(b"#!/bin/sh\n".to_vec()));
        a.add("dev/console", 0o600, Node::CharDev { major: 5, minor: 1 });
        a.add("bin/sh", 0o777, Node::Symlink("busybox".into()));
        a
    }

    #[test]
    fn parents_come_first_and_are_added_once() {
        assert_eq!(
            archive().paths(),
            ["bin", "bin/sh", "dev", "dev/console", "init"]
        );
    }

    #[test]
    fn the_same_entries_give_the_same_bytes() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        archive().write(&mut a).expect("write");
        archive().write(&mut b).expect("write");
        assert_eq!(a, b);
        assert_eq!(a.len() % 4, 0);
    }

    #[test]
    fn cpio_1_reads_what_we_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("initrd.cpio");
        archive().write_to(&out).expect("write");
        let listing = std::process::Command::new("cpio")
            .args(["-itv", "-F"])
            .arg(&out)
            .output()
            .expect("cpio is installed by make setup");
        let text = String::from_utf8_lossy(&listing.stdout);
        assert!(
            listing.status.success(),
            "{}",
            String::from_utf8_lossy(&listing.stderr)
        );
        assert!(
            text.contains("crw-------") && text.contains("dev/console"),
            "{text}"
        );
        assert!(text.contains("bin/sh -> busybox"), "{text}");
        assert!(
            text.contains("-rwxr-xr-x") && text.contains("init"),
            "{text}"
        );
    }
}
