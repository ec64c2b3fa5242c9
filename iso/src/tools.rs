//! Where the bootloaders and the programs that make boot media come from. The build
//! passes a folder of Debian packages unpacked from the image's own suite (GRUB,
//! isolinux, e2fsprogs and the libraries they need); their programs run there with the
//! folder's own dynamic loader and libraries, so a Debian 12 build host makes Debian
//! 13's GRUB images and ext4 filesystems that Debian 13's GRUB reads. This crate's own
//! tests use the build host's packages ([`Tools::host`]).

use crate::{IsoError, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A root holding the boot packages, and how to run its programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    root: PathBuf,
    /// The root's dynamic loader, when its programs are not the host's own.
    loader: Option<PathBuf>,
}

/// The loader of an unpacked amd64 Debian root.
const LOADER: &str = "usr/lib64/ld-linux-x86-64.so.2";
/// Where its shared libraries are.
const LIBRARIES: &str = "usr/lib/x86_64-linux-gnu";

impl Tools {
    /// The build host's installed packages (`make setup` installs them).
    pub fn host() -> Tools {
        Tools {
            root: PathBuf::from("/"),
            loader: None,
        }
    }

    /// Packages unpacked under `root` (merged /usr), run with `root`'s own loader.
    pub fn unpacked(root: &Path) -> Result<Tools> {
        let loader = root.join(LOADER);
        if !loader.is_file() {
            return Err(IsoError::MissingFile {
                path: loader,
                package: "libc6 (in the build's boot packages, build/rootfs.yml `bootloaders`)",
            });
        }
        Ok(Tools {
            root: root.to_path_buf(),
            loader: Some(loader),
        })
    }

    /// A file of package `package` at `path` (absolute, as installed), which must exist.
    pub fn file(&self, path: &str, package: &'static str) -> Result<PathBuf> {
        let full = self.root.join(path.trim_start_matches('/'));
        if full.exists() {
            Ok(full)
        } else {
            Err(IsoError::MissingFile {
                path: full,
                package,
            })
        }
    }

    /// A command for `program` (absolute, as installed) of package `package`.
    pub fn command(&self, program: &str, package: &'static str) -> Result<Command> {
        let path = self.file(program, package)?;
        Ok(match &self.loader {
            None => Command::new(path),
            Some(loader) => {
                let mut cmd = Command::new(loader);
                cmd.arg("--library-path")
                    .arg(self.root.join(LIBRARIES))
                    .arg(path);
                cmd
            }
        })
    }

    /// mke2fs making ext4, with this root's defaults (`/etc/mke2fs.conf`), not the
    /// host's: the features a filesystem gets are the ones this suite's GRUB reads.
    pub fn mke2fs(&self) -> Result<Command> {
        let mut cmd = self.command("/usr/sbin/mke2fs", "e2fsprogs")?;
        cmd.env("MKE2FS_CONFIG", self.file("/etc/mke2fs.conf", "e2fsprogs")?);
        cmd.args(["-t", "ext4"]);
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacked_programs_run_with_the_roots_loader_and_libraries() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("usr/lib64")).unwrap();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join(LOADER), "").unwrap();
        std::fs::write(root.join("usr/bin/grub-mkimage"), "").unwrap();
        let tools = Tools::unpacked(root).unwrap();
        let cmd = tools
            .command("/usr/bin/grub-mkimage", "grub-common")
            .unwrap();
        assert_eq!(cmd.get_program(), root.join(LOADER));
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(
            args,
            [
                std::ffi::OsStr::new("--library-path"),
                root.join(LIBRARIES).as_os_str(),
                root.join("usr/bin/grub-mkimage").as_os_str()
            ]
        );
        let missing = tools.command("/usr/bin/xorriso", "xorriso").unwrap_err();
        assert!(missing.to_string().contains("usr/bin/xorriso"), "{missing}");
        let no_loader = Tools::unpacked(&root.join("usr")).unwrap_err();
        assert!(no_loader.to_string().contains("libc6"), "{no_loader}");
    }

    #[test]
    fn host_programs_run_as_they_are() {
        let cmd = Tools::host().command("/bin/sh", "dash").unwrap();
        assert_eq!(cmd.get_program(), "/bin/sh");
        assert_eq!(cmd.get_args().count(), 0);
    }
}
