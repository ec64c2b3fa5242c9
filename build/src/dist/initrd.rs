//! The initrd: `/init` (corral-init, static), busybox for the recovery shell, the
//! device nodes PID 1 needs before devtmpfs, the modules that mount the root, and the
//! root image itself; and the kernel beside it.

use super::{made, Build};
use crate::cpio::{Archive, Node};
use crate::error::{BuildError, Result};
use crate::progress::Step;
use crate::stage::{fresh, Fingerprint};
use std::fs;

/// Makes the initrd: `/init` (corral-init), busybox, the device nodes, the boot modules
/// and the root image.
pub(super) fn initrd(b: &mut Build<'_>) -> Result<()> {
    let paths = b.paths;
    let r = b.resolved()?;
    let kernel = b.kernel()?;
    let trees = &b.trees;
    let root_fp = &b.root_fp;
    let squashfs = b.squashfs();
    let initrd = b.initrd();
    let busybox = trees
        .iter()
        .find(|(d, _)| d.name == "busybox-static")
        // usr/bin in Debian 13's merged-/usr package, bin before.
        .and_then(|(_, t)| {
            ["usr/bin/busybox", "bin/busybox"]
                .iter()
                .map(|p| t.join(p))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| BuildError::Spec {
            path: paths.repo.join("build/rootfs.yml"),
            detail: "busybox-static must be in packages (the initrd's recovery shell)".into(),
        })?;
    let boot_modules = kernel.boot_modules(&r.spec.kernel)?;
    let mut fp = Fingerprint::new("initrd");
    fp.text("root", root_fp)
        .text("modules", &boot_modules.join(","))
        .text("initrd.rs", include_str!("initrd.rs"));
    fp.file(&paths.binaries.join("corral-init"))?;
    let initrd_fp = fp.finish();
    if fresh(&initrd, &initrd_fp) {
        eprintln!("  {:<28} unchanged", "initrd");
    } else {
        let step = Step::start("making the initrd", 0);
        let mut a = Archive::default();
        a.add(
            "init",
            0o755,
            Node::File(paths.binaries.join("corral-init")),
        );
        a.add("bin/busybox", 0o755, Node::File(busybox));
        a.add("bin/sh", 0o777, Node::Symlink("busybox".into()));
        a.add("dev/console", 0o600, Node::CharDev { major: 5, minor: 1 });
        a.add("dev/null", 0o666, Node::CharDev { major: 1, minor: 3 });
        a.add(
            "dev/kmsg",
            0o644,
            Node::CharDev {
                major: 1,
                minor: 11,
            },
        );
        for dir in ["proc", "sys", "run", "sysroot", "tmp"] {
            a.add(dir, 0o755, Node::Dir);
        }
        let names: Vec<String> = r.spec.kernel.boot.clone();
        a.add(
            "etc/corral/modules.boot",
            0o644,
            Node::Data((names.join("\n") + "\n").into_bytes()),
        );
        let mdir = format!("lib/modules/{}", kernel.release);
        a.add(
            &format!("{mdir}/modules.dep"),
            0o644,
            Node::Data(kernel.dep_lines(&boot_modules)?.into_bytes()),
        );
        let builtin = kernel.modules_dir.join("modules.builtin");
        a.add(
            &format!("{mdir}/modules.builtin"),
            0o644,
            Node::File(builtin),
        );
        for m in &boot_modules {
            a.add(
                &format!("{mdir}/{m}"),
                0o644,
                Node::File(kernel.modules_dir.join(m)),
            );
        }
        a.add("root.squashfs", 0o644, Node::File(squashfs.clone()));
        a.write_to(&initrd)?;
        made(step, &initrd, &initrd_fp)?;
    }
    b.initrd_fp = initrd_fp;
    Ok(())
}

/// Copies the kernel into `dist/`.
pub(super) fn kernel(b: &mut Build<'_>) -> Result<()> {
    let vmlinuz = b.vmlinuz();
    let kernel = b.kernel()?;
    fs::copy(&kernel.vmlinuz, &vmlinuz).map_err(BuildError::write(&vmlinuz))?;
    Ok(())
}
