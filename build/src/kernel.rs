//! The kernel from Debian's package: vmlinuz, and the subset of its modules Corral ships.
//! depmod runs at build time, on the package's full tree (to learn dependencies) and on
//! the subset in the root (so the kernel's autoloading through modprobe finds them).

use crate::error::{BuildError, Result};
use crate::host;
use crate::spec::KernelSpec;
use corral_init::modules::DepMap;
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
    /// Reads an unpacked linux-image package; runs depmod on it once.
    pub fn open(tree: &Path) -> Result<Kernel> {
        let modules = tree.join("lib/modules");
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
            host::require("depmod")?;
            host::run(Command::new("depmod").arg("-b").arg(tree).arg(&release))?;
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
        let order = self
            .deps
            .load_order(names)
            .map_err(|missing| BuildError::Modules {
                detail: format!(
                    "module '{missing}' is not in kernel {}; fix its name in build/rootfs.yml",
                    self.release
                ),
            })?;
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
