//! The initrds: `/init` (corral-init, static), busybox for the recovery shell, the
//! device nodes PID 1 needs before devtmpfs and the modules that find and mount the root.
//! `dist/initrd`, which the ISO and the disk image boot, stops there: PID 1 reads the root
//! image from the medium it booted from (`init/src/medium.rs`). `dist/initrd-pxe` carries
//! the root image as well, for PXE and QEMU's `-kernel`, where there is no medium. And
//! the kernel beside them.

use super::{made, Build};
use crate::cpio::{Archive, Node};
use crate::error::{BuildError, Result};
use crate::progress::Step;
use crate::stage::{fresh, Fingerprint};
use std::fs;
use std::path::Path;

/// Makes `dist/initrd` (without the root image) and `dist/initrd-pxe` (with it).
pub(super) fn initrd(b: &mut Build<'_>) -> Result<()> {
    let paths = b.paths;
    let r = b.resolved()?;
    let kernel = b.kernel()?;
    let busybox = b
        .trees
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
    fp.text("modules", &boot_modules.join(","))
        .text("initrd.rs", include_str!("initrd.rs"));
    fp.file(&paths.binaries.join("corral-init"))?;
    fp.file(&busybox)?;
    let initrd_fp = fp.finish();
    let mut base = Archive::default();
    base.add(
        "init",
        0o755,
        Node::File(paths.binaries.join("corral-init")),
    );
    base.add("bin/busybox", 0o755, Node::File(busybox));
    base.add("bin/sh", 0o777, Node::Symlink("busybox".into()));
    base.add("dev/console", 0o600, Node::CharDev { major: 5, minor: 1 });
    base.add("dev/null", 0o666, Node::CharDev { major: 1, minor: 3 });
    base.add(
        "dev/kmsg",
        0o644,
        Node::CharDev {
            major: 1,
            minor: 11,
        },
    );
    for dir in ["proc", "sys", "run", "sysroot", "tmp"] {
        base.add(dir, 0o755, Node::Dir);
    }
    let names: Vec<String> = r.spec.kernel.boot.clone();
    base.add(
        "etc/corral/modules.boot",
        0o644,
        Node::Data((names.join("\n") + "\n").into_bytes()),
    );
    let mdir = format!("lib/modules/{}", kernel.release);
    base.add(
        &format!("{mdir}/modules.dep"),
        0o644,
        Node::Data(kernel.dep_lines(&boot_modules)?.into_bytes()),
    );
    base.add(
        &format!("{mdir}/modules.builtin"),
        0o644,
        Node::File(kernel.modules_dir.join("modules.builtin")),
    );
    for m in &boot_modules {
        base.add(
            &format!("{mdir}/{m}"),
            0o644,
            Node::File(kernel.modules_dir.join(m)),
        );
    }
    write(&base, "initrd", &b.initrd(), &initrd_fp)?;
    let mut pxe = base;
    pxe.add("root.squashfs", 0o644, Node::File(b.squashfs()));
    let pxe_fp = {
        let mut fp = Fingerprint::new("initrd-pxe");
        fp.text("initrd", &initrd_fp).text("root", &b.root_fp);
        fp.finish()
    };
    write(&pxe, "initrd-pxe", &b.initrd_pxe(), &pxe_fp)?;
    b.initrd_fp = initrd_fp;
    Ok(())
}

/// Writes `archive` to `out` unless it is there with the same fingerprint.
fn write(archive: &Archive, name: &str, out: &Path, fp: &str) -> Result<()> {
    if fresh(out, fp) {
        eprintln!("  {name:<28} unchanged");
        return Ok(());
    }
    let step = Step::start(&format!("making {name}"), 0);
    archive.write_to(out)?;
    made(step, out, fp)
}

/// Copies the kernel into `dist/`.
pub(super) fn kernel(b: &mut Build<'_>) -> Result<()> {
    let vmlinuz = b.vmlinuz();
    let kernel = b.kernel()?;
    fs::copy(&kernel.vmlinuz, &vmlinuz).map_err(BuildError::write(&vmlinuz))?;
    Ok(())
}
