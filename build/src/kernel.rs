//! The kernel from Debian's package: vmlinuz, and the subset of its modules Corral ships.
//! depmod runs at build time, on the package's full tree (to learn dependencies) and on
//! the subset in the root (so the kernel's autoloading through modprobe finds them).

use crate::error::{BuildError, Result};
use crate::host;
use crate::spec::KernelSpec;
use corral_host::modules::DepMap;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files depmod reads besides the modules themselves.
const META: &[&str] = &[
    "modules.builtin",
    "modules.builtin.modinfo",
    "modules.order",
];

/// An unpacked kernel package.
pub struct Kernel {
    pub release: String,
    pub vmlinuz: PathBuf,
    /// `<tree>/lib/modules/<release>`.
    pub modules_dir: PathBuf,
    deps: DepMap,
}

impl Kernel {
    /// Reads an unpacked linux-image package (modules in `usr/lib/modules` since
    /// Debian 13, `lib/modules` before); decompresses its modules and runs depmod on it
    /// once.
    pub fn open(tree: &Path) -> Result<Kernel> {
        let modules = ["usr/lib/modules", "lib/modules"]
            .iter()
            .map(|m| tree.join(m))
            .find(|m| m.is_dir())
            .unwrap_or_else(|| tree.join("usr/lib/modules"));
        let release = fs::read_dir(&modules)
            .map_err(BuildError::read(&modules))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .ok_or_else(|| BuildError::Modules {
                detail: format!("no kernel release under '{}'", modules.display()),
            })?;
        let vmlinuz = tree.join(format!("boot/vmlinuz-{release}"));
        if !vmlinuz.exists() {
            return Err(BuildError::Modules {
                detail: format!("'{}' is missing from the kernel package", vmlinuz.display()),
            });
        }
        let modules_dir = modules.join(&release);
        let dep_file = modules_dir.join("modules.dep");
        if !dep_file.exists() {
            decompress(&modules_dir)?;
            depmod_tree(&modules, &release)?;
        }
        let deps = read_deps(&modules_dir)?;
        Ok(Kernel {
            release,
            vmlinuz,
            modules_dir,
            deps,
        })
    }

    fn closure(&self, names: &[String]) -> Result<Vec<String>> {
        let order = self.deps.load_order(names).map_err(
            |corral_host::modules::MissingModule(missing)| BuildError::Modules {
                detail: format!(
                    "module '{missing}' is not in kernel {}; fix its name in build/rootfs.yml",
                    self.release
                ),
            },
        )?;
        Ok(order.into_iter().map(|(_, path)| path).collect())
    }

    /// Module paths for the root: boot, load and include entries, with dependencies.
    pub fn root_modules(&self, spec: &KernelSpec) -> Result<BTreeSet<String>> {
        let mut names: Vec<String> = spec.boot.iter().chain(&spec.load).cloned().collect();
        for (name, path) in self.deps.modules() {
            if spec
                .include
                .iter()
                .any(|prefix| path.starts_with(prefix.as_str()))
            {
                names.push(name.to_string());
            }
        }
        Ok(self.closure(&names)?.into_iter().collect())
    }

    /// Module paths for the initrd: the boot entries with dependencies, in load order.
    pub fn boot_modules(&self, spec: &KernelSpec) -> Result<Vec<String>> {
        self.closure(&spec.boot)
    }

    /// Copies `paths` (relative to the modules directory) into `root` and runs depmod
    /// there, so the root has a modules.dep for exactly what it ships.
    pub fn install(&self, root: &Path, paths: &BTreeSet<String>) -> Result<()> {
        let dest = root.join("usr/lib/modules").join(&self.release);
        for rel in paths.iter().map(String::as_str).chain(META.iter().copied()) {
            let (src, to) = (self.modules_dir.join(rel), dest.join(rel));
            if let Some(dir) = to.parent() {
                fs::create_dir_all(dir).map_err(BuildError::write(dir))?;
            }
            if src.exists() {
                fs::copy(&src, &to).map_err(BuildError::write(&to))?;
            }
        }
        host::require("depmod")?;
        host::run(
            Command::new("depmod")
                .arg("-b")
                .arg(root)
                .arg(&self.release),
        )?;
        Ok(())
    }

    /// The lines of modules.dep that concern `paths`, for the initrd.
    pub fn dep_lines(&self, paths: &[String]) -> Result<String> {
        let text = fs::read_to_string(self.modules_dir.join("modules.dep"))
            .map_err(BuildError::read(self.modules_dir.join("modules.dep")))?;
        Ok(filter_dep_lines(&text, paths))
    }
}

/// Debian 13 ships its modules xz-compressed (`.ko.xz`). PID 1 hands a module to
/// finit_module(2) and busybox's modprobe reads it itself; both take plain `.ko`, and
/// the root image and the initrd are compressed as a whole anyway, so the modules are
/// decompressed once, in the unpacked package.
fn decompress(modules_dir: &Path) -> Result<()> {
    let mut compressed = Vec::new();
    let mut stack = vec![modules_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(BuildError::read(&dir))? {
            let path = entry.map_err(BuildError::read(&dir))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "xz") {
                compressed.push(path);
            }
        }
    }
    for batch in compressed.chunks(200) {
        host::run(Command::new("xz").args(["-d", "-f", "-q"]).args(batch))?;
    }
    Ok(())
}

/// Runs depmod for a package's modules wherever the package put them: depmod's `-b`
/// takes a base under which it looks for `lib/modules` (kmod before 33) or
/// `usr/lib/modules`, so a scratch base links both to the package's folder.
fn depmod_tree(modules: &Path, release: &str) -> Result<()> {
    host::require("depmod")?;
    let base = modules.with_file_name("modules.depmod-base");
    let _ = fs::remove_dir_all(&base);
    let target = fs::canonicalize(modules).map_err(BuildError::read(modules))?;
    for link in ["lib/modules", "usr/lib/modules"] {
        let link = base.join(link);
        if let Some(dir) = link.parent() {
            fs::create_dir_all(dir).map_err(BuildError::write(dir))?;
        }
        std::os::unix::fs::symlink(&target, &link).map_err(BuildError::write(&link))?;
    }
    let result = host::run(Command::new("depmod").arg("-b").arg(&base).arg(release));
    let _ = fs::remove_dir_all(&base);
    result.map(|_| ())
}

fn read_deps(modules_dir: &Path) -> Result<DepMap> {
    let read = |name: &str| {
        let p = modules_dir.join(name);
        fs::read_to_string(&p).map_err(BuildError::read(p))
    };
    Ok(DepMap::parse(
        &read("modules.dep")?,
        &read("modules.builtin").unwrap_or_default(),
    ))
}

/// Keeps the modules.dep lines whose module is in `paths`.
pub fn filter_dep_lines(modules_dep: &str, paths: &[String]) -> String {
    modules_dep
        .lines()
        .filter(|line| {
            line.split_once(':')
                .is_some_and(|(p, _)| paths.iter().any(|want| want == p))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_lines_keep_only_the_listed_modules() {
        let dep = "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\nkernel/c.ko:\n";
        assert_eq!(
            filter_dep_lines(dep, &["kernel/a.ko".into(), "kernel/b.ko".into()]),
            "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n"
        );
    }

    #[test]
    fn modules_are_selected_by_name_and_prefix_with_dependencies() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("lib/modules/6.1.0-t");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::create_dir_all(tmp.path().join("boot")).expect("mkdir");
        fs::write(tmp.path().join("boot/vmlinuz-6.1.0-t"), "k").expect("write");
        fs::write(
            dir.join("modules.dep"),
            "kernel/fs/squashfs/squashfs.ko:\nkernel/net/bridge/bridge.ko: kernel/net/802/stp.ko\n\
             kernel/net/802/stp.ko:\nkernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko\n\
             kernel/drivers/net/net_failover.ko:\nkernel/sound/snd.ko:\n",
        )
        .expect("write");
        let kernel = Kernel::open(tmp.path()).expect("open");
        assert_eq!(kernel.release, "6.1.0-t");
        let spec = KernelSpec {
            flavour: "cloud".into(),
            boot: vec!["squashfs".into()],
            load: vec!["virtio_net".into()],
            include: vec!["kernel/net/bridge/".into()],
        };
        let root: Vec<String> = kernel
            .root_modules(&spec)
            .expect("select")
            .into_iter()
            .collect();
        assert_eq!(
            root,
            [
                "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/net/virtio_net.ko",
                "kernel/fs/squashfs/squashfs.ko",
                "kernel/net/802/stp.ko",
                "kernel/net/bridge/bridge.ko",
            ]
        );
        assert_eq!(
            kernel.boot_modules(&spec).expect("boot"),
            ["kernel/fs/squashfs/squashfs.ko"]
        );
        let bad = KernelSpec {
            load: vec!["e1000".into()],
            ..spec
        };
        let err = kernel.root_modules(&bad).expect_err("no e1000 in cloud");
        assert!(err.to_string().contains("'e1000'"), "{err}");
    }
}
