//! The dpkg database of an image whose packages apt and dpkg go on managing on the
//! machine (the Debian console): `/var/lib/dpkg/status` with every unpacked package as
//! installed (its control fields, from `dpkg-deb -f`, the reference reader), its file
//! list and checksums in `/var/lib/dpkg/info/<package>.{list,md5sums}`,
//! and the folders dpkg and apt expect.
//! Maintainer scripts are not kept: the build never runs them, and dpkg must not run a
//! `prerm` that was never preceded by its `postinst`.

use crate::apt::Deb;
use crate::error::{BuildError, Result};
use crate::host;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// The folders dpkg and apt need, made empty.
const DIRS: &[&str] = &[
    "var/lib/dpkg/info",
    "var/lib/dpkg/updates",
    "var/lib/dpkg/triggers",
    "var/lib/dpkg/alternatives",
    "var/lib/apt/lists/partial",
    "var/cache/apt/archives/partial",
    "var/log/apt",
];

/// A control file as a status entry: its fields, `Status: install ok installed` after
/// `Package:`, and nothing of what only an archive's index has.
pub fn status_entry(control: &str) -> String {
    let mut out = String::new();
    for line in control.lines().filter(|l| !l.trim().is_empty()) {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("Package:") {
            out.push_str("Status: install ok installed\n");
        }
    }
    out
}

/// The `.list` of a package unpacked at `tree`: `/.` and every path under it, each with
/// its leading `/`, parents first, in name order.
pub fn file_list(tree: &Path) -> Result<String> {
    let mut out = String::from("/.\n");
    let mut stack = vec![tree.to_path_buf()];
    let mut paths = Vec::new();
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(BuildError::read(&dir))?;
        for e in entries {
            let e = e.map_err(BuildError::read(&dir))?;
            let path = e.path();
            let rel = path.strip_prefix(tree).unwrap_or(&path).to_path_buf();
            let is_dir = e.file_type().map_err(BuildError::read(&path))?.is_dir();
            if is_dir {
                stack.push(path);
            }
            paths.push(rel);
        }
    }
    paths.sort();
    for p in paths {
        let _ = writeln!(out, "/{}", p.display());
    }
    Ok(out)
}

/// A package unpacked into an image: the .deb it came from and its tree.
pub struct Unpacked<'a> {
    pub deb: &'a Deb,
    pub file: std::path::PathBuf,
    pub tree: std::path::PathBuf,
}

/// Writes the database under `root` for the packages `unpacked` into it.
pub fn write(root: &Path, unpacked: &[Unpacked<'_>]) -> Result<()> {
    for d in DIRS {
        let dir = root.join(d);
        std::fs::create_dir_all(&dir).map_err(BuildError::write(&dir))?;
    }
    host::require("dpkg-deb")?;
    let mut status = String::new();
    let info = root.join("var/lib/dpkg/info");
    for u in unpacked {
        let control = host::run(Command::new("dpkg-deb").arg("-f").arg(&u.file))?;
        status.push_str(&status_entry(&control));
        status.push('\n');
        let list = info.join(format!("{}.list", u.deb.name));
        let text = file_list(&u.tree)?;
        std::fs::write(&list, text).map_err(BuildError::write(&list))?;
        // Its checksums, which `dpkg --verify` and `--audit` read; a package without
        // them has none to give. (Conffiles are not recorded: the build replaced some,
        // and dpkg then treats each as the administrator's on an upgrade.)
        let mut cmd = Command::new("dpkg-deb");
        cmd.arg("--info").arg(&u.file).arg("md5sums");
        if let Ok(text) = host::run(&mut cmd) {
            let path = info.join(format!("{}.md5sums", u.deb.name));
            std::fs::write(&path, text).map_err(BuildError::write(&path))?;
        }
    }
    for (name, text) in [("status", status.as_str()), ("available", "")] {
        let path = root.join("var/lib/dpkg").join(name);
        std::fs::write(&path, text).map_err(BuildError::write(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_file_becomes_an_installed_entry() {
        let control = "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nDepends: libc6 (>= 2.34)\nDescription: example\n more text\n\n";
        assert_eq!(
            status_entry(control),
            "Package: hello\nStatus: install ok installed\nVersion: 2.10-3\nArchitecture: amd64\nDepends: libc6 (>= 2.34)\nDescription: example\n more text\n"
        );
    }

    #[test]
    fn a_file_list_has_every_path_parents_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("usr/bin")).expect("mkdir");
        std::fs::write(dir.path().join("usr/bin/hello"), b"x").expect("w");
        std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
        assert_eq!(
            file_list(dir.path()).expect("list"),
            "/.\n/etc\n/usr\n/usr/bin\n/usr/bin/hello\n"
        );
    }
}
