//! Early mounts as data (kata's `mount.rs` keeps them in a static table too): a table, a
//! pure function that turns table plus boot options into a plan, and one executor that
//! applies the plan through [`Sys`]. Mounting is idempotent: a target already mounted with
//! the same filesystem type is skipped.

use crate::error::Result;
use corral_host::cmdline::{BootOptions, Cgroup};
use corral_host::sys::Sys;
use nix::mount::MsFlags;
use std::path::{Path, PathBuf};

/// One mount to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub target: PathBuf,
    pub fstype: String,
    pub flags: MsFlags,
    pub data: String,
}

const NOSUID_NODEV: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);
const NOSUID_NODEV_NOEXEC: MsFlags = NOSUID_NODEV.union(MsFlags::MS_NOEXEC);

/// (source, target, fstype, flags, data): the API filesystems, made in the initramfs and
/// moved into the real root at the switch.
const EARLY: &[(&str, &str, &str, MsFlags, &str)] = &[
    ("proc", "/proc", "proc", NOSUID_NODEV_NOEXEC, ""),
    ("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC, ""),
    (
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MsFlags::MS_NOSUID,
        "mode=0755",
    ),
    // gid 5 is the tty group in Debian's base-passwd.
    (
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        "gid=5,mode=620,ptmxmode=666",
    ),
    ("shm", "/dev/shm", "tmpfs", NOSUID_NODEV, "mode=1777"),
    ("run", "/run", "tmpfs", NOSUID_NODEV, "mode=0755"),
];

/// Mounts made in the real root after the switch.
const LATE: &[(&str, &str, &str, MsFlags, &str)] =
    &[("tmp", "/tmp", "tmpfs", NOSUID_NODEV, "mode=1777")];

/// Without a state partition (live mode): the engines' data roots get their own tmpfs,
/// because dockerd's overlay2 fails on an overlayfs backing and silently falls back to
/// vfs (DESIGN.md).
const LIVE: &[(&str, &str, &str, MsFlags, &str)] = &[
    (
        "system-docker",
        "/var/lib/system-docker",
        "tmpfs",
        MsFlags::empty(),
        "mode=0711",
    ),
    (
        "docker",
        "/var/lib/docker",
        "tmpfs",
        MsFlags::empty(),
        "mode=0711",
    ),
];

/// The directories that the API filesystems are moved from and to at the switch.
pub const MOVED_AT_SWITCH: &[&str] = &["/dev", "/proc", "/sys", "/run"];

fn from_table(table: &[(&str, &str, &str, MsFlags, &str)]) -> Vec<Mount> {
    table
        .iter()
        .map(|&(source, target, fstype, flags, data)| Mount {
            source: source.into(),
            target: target.into(),
            fstype: fstype.into(),
            flags,
            data: data.into(),
        })
        .collect()
}

/// The live-mode mounts (no state partition).
pub fn live_plan() -> Vec<Mount> {
    from_table(LIVE)
}

/// The mounts made first, in the initramfs.
pub fn early_plan() -> Vec<Mount> {
    from_table(EARLY)
}

/// The mounts made in the real root: cgroups per the boot options, then
/// /tmp. `proc_cgroups` is the text of /proc/cgroups (used for v1 only).
pub fn late_plan(opts: &BootOptions, proc_cgroups: &str) -> Vec<Mount> {
    let mut plan = Vec::new();
    match opts.cgroup {
        Cgroup::V2 => plan.push(Mount {
            source: "cgroup2".into(),
            target: "/sys/fs/cgroup".into(),
            fstype: "cgroup2".into(),
            flags: NOSUID_NODEV_NOEXEC,
            data: "nsdelegate".into(),
        }),
        Cgroup::V1 => {
            plan.push(Mount {
                source: "cgroup".into(),
                target: "/sys/fs/cgroup".into(),
                fstype: "tmpfs".into(),
                flags: NOSUID_NODEV_NOEXEC,
                data: "mode=0755".into(),
            });
            for controller in v1_controllers(proc_cgroups) {
                plan.push(Mount {
                    source: "cgroup".into(),
                    target: Path::new("/sys/fs/cgroup").join(&controller),
                    fstype: "cgroup".into(),
                    flags: NOSUID_NODEV_NOEXEC,
                    data: controller,
                });
            }
        }
    }
    plan.extend(from_table(LATE));
    plan
}

/// The enabled controllers listed in /proc/cgroups (`name hierarchy num_cgroups enabled`).
pub fn v1_controllers(proc_cgroups: &str) -> Vec<String> {
    proc_cgroups
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [name, _, _, "1"] => Some((*name).to_string()),
                _ => None,
            }
        })
        .collect()
}

/// (target, fstype) of each line of /proc/self/mounts.
pub fn parse_mounts(text: &str) -> Vec<(PathBuf, String)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _source = fields.next()?;
            let target = fields.next()?;
            let fstype = fields.next()?;
            Some((PathBuf::from(unescape(target)), fstype.to_string()))
        })
        .collect()
}

/// /proc/self/mounts escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Applies a plan: creates each target and mounts it unless it is already mounted with
/// the same filesystem type. Returns how many mounts were made.
pub fn apply(sys: &dyn Sys, plan: &[Mount]) -> Result<usize> {
    let mounted = sys
        .read_to_string(Path::new("/proc/self/mounts"))
        .map(|text| parse_mounts(&text))
        .unwrap_or_default();
    let mut made = 0;
    for m in plan {
        if mounted
            .iter()
            .any(|(target, fstype)| *target == m.target && *fstype == m.fstype)
        {
            log::debug!("{} already mounted on {}", m.fstype, m.target.display());
            continue;
        }
        sys.mkdir_all(&m.target)?;
        let data = (!m.data.is_empty()).then_some(m.data.as_str());
        sys.mount(Some(&m.source), &m.target, Some(&m.fstype), m.flags, data)?;
        made += 1;
    }
    Ok(made)
}

/// The order in which to unmount at shutdown: the reverse of the mount order, leaving
/// out `/` (remounted read-only instead) and the API filesystems the kernel needs to the
/// end, and the root's own lower layer, which the root overlay pins.
pub fn unmount_order(proc_mounts: &str) -> Vec<PathBuf> {
    // The root image's medium holds the root's lower layer: it goes when the machine does
    // (read-only, nothing to flush).
    const KEEP: &[&str] = &[
        "/",
        "/proc",
        "/sys",
        "/dev",
        "/run",
        "/run/corral/lower",
        "/run/corral/medium",
    ];
    parse_mounts(proc_mounts)
        .into_iter()
        .rev()
        .map(|(target, _)| target)
        .filter(|target| !KEEP.iter().any(|keep| target == Path::new(keep)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_host::sys::fake::{Call, FakeSys};

    #[test]
    fn early_plan_mounts_api_filesystems_in_order() {
        let targets: Vec<_> = early_plan().into_iter().map(|m| m.target).collect();
        assert_eq!(
            targets,
            ["/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/run"].map(PathBuf::from)
        );
    }

    #[test]
    fn late_plan_uses_cgroup2_by_default() {
        let plan = late_plan(&BootOptions::default(), "");
        assert_eq!(plan[0].fstype, "cgroup2");
        assert_eq!(plan[0].target, Path::new("/sys/fs/cgroup"));
        assert!(plan.iter().any(|m| m.target == Path::new("/tmp")));
        assert!(live_plan()
            .iter()
            .any(|m| m.target == Path::new("/var/lib/system-docker") && m.fstype == "tmpfs"));
    }

    #[test]
    fn late_plan_mounts_each_enabled_v1_controller() {
        let proc_cgroups = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                            cpuset\t0\t1\t1\ncpu\t0\t1\t1\nrdma\t0\t1\t0\nmemory\t0\t1\t1\n";
        let opts = BootOptions::parse("corral.cgroup=v1");
        let plan = late_plan(&opts, proc_cgroups);
        let v1: Vec<_> = plan
            .iter()
            .filter(|m| m.fstype == "cgroup")
            .map(|m| (m.target.clone(), m.data.clone()))
            .collect();
        assert_eq!(
            v1,
            [
                (PathBuf::from("/sys/fs/cgroup/cpuset"), "cpuset".to_string()),
                (PathBuf::from("/sys/fs/cgroup/cpu"), "cpu".to_string()),
                (PathBuf::from("/sys/fs/cgroup/memory"), "memory".to_string()),
            ]
        );
        assert_eq!(plan[0].fstype, "tmpfs");
    }

    #[test]
    fn apply_skips_targets_already_mounted_with_the_same_type() {
        let sys = FakeSys::default().with_file(
            "/proc/self/mounts",
            "proc /proc proc rw 0 0\nnone /sys tmpfs rw 0 0\n",
        );
        let made = apply(&sys, &early_plan()[..2]).expect("apply");
        assert_eq!(
            made, 1,
            "proc is skipped; /sys holds another type, so it is mounted"
        );
        let mounts: Vec<_> = sys
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Mount { target, fstype, .. } => Some((target, fstype)),
                _ => None,
            })
            .collect();
        assert_eq!(mounts, [(PathBuf::from("/sys"), Some("sysfs".to_string()))]);
    }

    #[test]
    fn apply_stops_at_the_first_failed_mount_and_names_it() {
        let sys = FakeSys::default().failing("/dev");
        let err = apply(&sys, &early_plan()).expect_err("must fail");
        assert!(err.to_string().contains("'/dev'"), "{err}");
        assert!(!sys
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Mkdir(p) if p == Path::new("/dev/pts"))));
    }

    #[test]
    fn unmount_order_is_reverse_and_keeps_root_and_api_filesystems() {
        let text = "rootfs / rootfs rw 0 0\nproc /proc proc rw 0 0\n\
                    /dev/sr0 /run/corral/medium iso9660 ro 0 0\n\
                    /dev/loop0 /run/corral/lower squashfs ro 0 0\n\
                    /dev/sda1 /var/lib/corral\\040state ext4 rw 0 0\n\
                    tmp /tmp tmpfs rw 0 0\n";
        assert_eq!(
            unmount_order(text),
            [
                PathBuf::from("/tmp"),
                PathBuf::from("/var/lib/corral state")
            ]
        );
    }
}
