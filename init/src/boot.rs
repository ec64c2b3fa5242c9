//! The boot sequence, in two stages: in the initramfs (API filesystems, boot modules, root
//! assembly, switch) and in the real root (cgroups, live-mode mounts, hostname, modules).
//! Everything goes through [`Sys`], so the sequence is unit-tested with the fake.

use crate::error::Result;
use crate::{medium, memcg, mounts, root, state};
use corral_host::cmdline::{BootOptions, Cgroup};
use corral_host::sys::Sys;
use corral_host::{modules, since_boot};
use std::path::{Path, PathBuf};

/// Modules the initrd needs to mount the root, one name a line (written by the build).
pub const BOOT_MODULES: &str = "/etc/corral/modules.boot";
/// Modules to load once in the real root (virtio, docker's networking), one a line.
pub const ROOT_MODULES: &str = "/etc/corral/modules";

fn names(sys: &dyn Sys, list: &str) -> Vec<String> {
    sys.read_to_string(Path::new(list))
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn modules_dir(sys: &dyn Sys) -> Result<PathBuf> {
    let release = sys.read_to_string(Path::new("/proc/sys/kernel/osrelease"))?;
    Ok(Path::new("/lib/modules").join(release.trim()))
}

fn load_modules(sys: &dyn Sys, wanted: &[String]) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let failures = modules::load(sys, &modules_dir(sys)?, wanted)?;
    if failures > 0 {
        log::warn!("{failures} of the kernel modules asked for did not load (see above)");
    }
    Ok(())
}

/// Stage one, in the initramfs. Returns the boot options read from the command line.
pub fn initramfs_stage(sys: &dyn Sys) -> Result<BootOptions> {
    mounts::apply(sys, &mounts::early_plan())?;
    // /dev/kmsg drops user-space lines beyond a small burst unless this is on.
    if let Err(e) = sys.write(Path::new("/proc/sys/kernel/printk_devkmsg"), "on\n") {
        log::warn!("{e}");
    }
    let cmdline = sys.read_to_string(Path::new("/proc/cmdline"))?;
    let opts = BootOptions::parse(&cmdline);
    for warning in &opts.warnings {
        log::warn!("{warning}");
    }
    load_modules(sys, &names(sys, BOOT_MODULES))?;
    let image = medium::locate(sys, &opts)?;
    root::assemble(sys, &image)?;
    root::switch(sys)?;
    log::info!("root switched at {:.2}s", since_boot());
    Ok(opts)
}

/// Stage two, in the real root.
pub fn root_stage(sys: &dyn Sys, opts: &BootOptions) -> Result<()> {
    let proc_cgroups = match opts.cgroup {
        Cgroup::V1 => sys.read_to_string(Path::new("/proc/cgroups"))?,
        Cgroup::V2 => String::new(),
    };
    mounts::apply(sys, &mounts::late_plan(opts, &proc_cgroups))?;
    // Before anything else runs: see memcg.rs for why.
    if let Err(e) = memcg::warm(sys, opts.cgroup) {
        log::warn!("bringing the first memory cgroup online early: {e}");
    }
    for e in corral_host::hosts::apply(sys, &opts.hostname) {
        log::warn!("{e}");
    }
    let mut wanted = names(sys, ROOT_MODULES);
    wanted.extend(opts.modules.iter().cloned());
    load_modules(sys, &wanted)?;
    match state::setup(sys, opts)? {
        state::State::Mounted {
            device,
            grown_to,
            formatted,
        } => {
            let how = match (formatted, grown_to) {
                (true, _) => " (formatted now)".to_string(),
                (false, Some(bytes)) => format!(
                    " (partition grown to {:.1} GiB)",
                    bytes as f64 / (1u64 << 30) as f64
                ),
                (false, None) => String::new(),
            };
            log::info!(
                "state: {} mounted on {}{how}",
                device.display(),
                state::MOUNT
            );
        }
        state::State::Live => log::warn!(
            "no {} filesystem: running from RAM, nothing written survives a reboot \
             (install to a disk with `corral install`, or see docs/disks.md)",
            state::LABEL
        ),
    }
    log::info!("system ready for the manager at {:.2}s", since_boot());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_host::sys::fake::{Call, FakeSys};

    fn booted_fake() -> FakeSys {
        FakeSys::default()
            .with_file("/proc/cmdline", "console=ttyS0 corral.hostname=node7\n")
            .with_file("/proc/sys/kernel/osrelease", "6.1.0-test\n")
            .with_file(BOOT_MODULES, "loop\n# comment\nsquashfs\n")
            .with_file(
                "/lib/modules/6.1.0-test/modules.dep",
                "kernel/drivers/block/loop.ko:\nkernel/fs/squashfs/squashfs.ko:\n",
            )
            .with_file(medium::ROOT_IMAGE, "")
    }

    #[test]
    fn initramfs_stage_loads_boot_modules_before_assembling_the_root() {
        let sys = booted_fake();
        let opts = initramfs_stage(&sys).expect("stage one");
        assert_eq!(opts.hostname, "node7");
        let calls = sys.calls();
        let loop_mod = calls
            .iter()
            .position(|c| matches!(c, Call::LoadModule(n, _) if n == "loop"));
        let attach = calls.iter().position(|c| matches!(c, Call::AttachLoop(_)));
        assert!(loop_mod.is_some() && loop_mod < attach, "{calls:?}");
        assert!(calls.contains(&Call::Write(
            "/proc/sys/kernel/printk_devkmsg".into(),
            "on\n".into()
        )));
    }

    #[test]
    fn a_failing_root_mount_fails_the_stage() {
        let sys = booted_fake().failing("/sysroot");
        let err = initramfs_stage(&sys).expect_err("overlay fails");
        assert!(err.to_string().contains("/sysroot"), "{err}");
    }

    #[test]
    fn root_stage_sets_hostname_and_survives_unknown_modules() {
        let sys = FakeSys::default()
            .with_file("/proc/sys/kernel/osrelease", "6.1.0-test\n")
            .with_file(ROOT_MODULES, "nosuch\n")
            .with_file("/lib/modules/6.1.0-test/modules.dep", "");
        let opts = BootOptions::parse("corral.hostname=node7");
        root_stage(&sys, &opts).expect("unknown modules are warnings");
        assert!(sys.calls().contains(&Call::SetHostname("node7".into())));
        let hosts = sys
            .read_to_string(Path::new("/etc/hosts"))
            .expect("written");
        assert_eq!(hosts, "127.0.1.1 node7\n");
    }
}
