//! The parts of the cloud-config the manager applies on the host before the services
//! start: the host name and /etc/hosts, sysctl, kernel modules and mounts. Each takes the
//! system behind [`Sys`], so the order and the arguments are tested with a fake; every
//! item that fails is reported and the others still apply.
//!
//! `bootcmd` runs here too ([`run_commands`]); `write_files` and `runcmd` run in the
//! console, where users look for them (as RancherOS did).

use corral_config::schema::{Command, ModuleName, Mount, Scalar, SysctlKey};
use corral_host::sys::Sys;
use nix::mount::MsFlags;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sets the configured host name the way PID 1 set the boot one
/// (`corral_host::hosts::apply`).
pub fn hostname(sys: &dyn Sys, name: &str) -> Vec<String> {
    corral_host::hosts::apply(sys, name)
        .into_iter()
        .map(|e| format!("hostname {name}: {e}"))
        .collect()
}

/// Where a sysctl key lives under /proc/sys.
pub fn sysctl_path(key: &str) -> PathBuf {
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    Path::new("/proc/sys").join(rel.trim_start_matches('/'))
}

/// Writes each sysctl.
pub fn sysctl(sys: &dyn Sys, settings: &BTreeMap<SysctlKey, Scalar>) -> Vec<String> {
    settings
        .iter()
        .filter_map(|(key, value)| {
            let path = sysctl_path(key);
            if !sys.exists(&path) {
                return Some(format!(
                    "corral.sysctl.{key}: the kernel has no such setting ({} is missing)",
                    path.display()
                ));
            }
            sys.write(&path, &format!("{}\n", value.0))
                .err()
                .map(|e| format!("corral.sysctl.{key}: {e}"))
        })
        .collect()
}

/// Loads the modules (with their dependencies and parameters).
pub fn modules(sys: &dyn Sys, release: &str, wanted: &[ModuleName]) -> Vec<String> {
    let names: Vec<String> = wanted.iter().map(|m| m.0.clone()).collect();
    load_modules(sys, release, &names, "corral.modules")
}

/// Loads `names` into the running kernel (its release read from /proc) for `what`, as
/// [`load_modules`] does.
pub fn load_running(names: &[String], what: &str) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    load_modules(&corral_host::sys::Linux, release.trim(), names, what)
}

/// Loads `names` for `what` (named in the problems it returns).
pub fn load_modules(sys: &dyn Sys, release: &str, names: &[String], what: &str) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    let dir = Path::new("/lib/modules").join(release);
    match corral_host::modules::load(sys, &dir, names) {
        Ok(0) => Vec::new(),
        Ok(n) => vec![format!(
            "{what}: {n} module(s) did not load; the kernel log says which"
        )],
        Err(e) => vec![format!("{what}: {e}")],
    }
}

/// fstab options split into mount flags and the filesystem's own options.
pub fn mount_options(options: &str) -> (MsFlags, Option<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match o {
            "defaults" | "rw" | "auto" | "noauto" | "nofail" | "_netdev" => {}
            "ro" => flags |= MsFlags::MS_RDONLY,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "bind" => flags |= MsFlags::MS_BIND,
            other => data.push(other),
        }
    }
    (flags, (!data.is_empty()).then(|| data.join(",")))
}

/// Filesystem types tried for `auto`, in order.
const AUTO_TYPES: &[&str] = &["ext4", "xfs", "btrfs", "vfat", "iso9660"];

/// Mounts each entry; `LABEL=` devices are found by label.
pub fn mounts(sys: &dyn Sys, entries: &[Mount]) -> Vec<String> {
    let mut errors = Vec::new();
    for m in entries {
        let target = Path::new(&*m.target);
        let device = match m.device.strip_prefix("LABEL=") {
            Some(label) => {
                match corral_host::label::find(
                    Path::new("/sys/class/block"),
                    Path::new("/dev"),
                    &[label],
                )
                .into_iter()
                .next()
                {
                    Some((dev, _)) => dev.display().to_string(),
                    None => {
                        errors.push(format!(
                            "mounts: no device is labelled {label} (for {})",
                            m.target
                        ));
                        continue;
                    }
                }
            }
            None => m.device.clone(),
        };
        if let Err(e) = sys.mkdir_all(target) {
            errors.push(format!("mounts: {}: {e}", m.target));
            continue;
        }
        let (flags, data) = mount_options(&m.options);
        let types: Vec<&str> = if m.fstype == "auto" {
            AUTO_TYPES.to_vec()
        } else {
            vec![m.fstype.as_str()]
        };
        let mut last = None;
        let mut done = false;
        for t in types {
            match sys.mount(
                Some(device.as_str()),
                target,
                Some(t),
                flags,
                data.as_deref(),
            ) {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if !done {
            let why = last.map(|e| e.to_string()).unwrap_or_default();
            errors.push(format!("mounts: {device} on {}: {why}", m.target));
        }
    }
    errors
}

/// Runs commands one after the other (bootcmd), each with a time limit; returns one
/// line per command: what ran, how it ended, and its output.
pub async fn run_commands(what: &str, commands: &[Command], limit: Duration) -> Vec<String> {
    let mut report = Vec::new();
    for (i, c) in commands.iter().enumerate() {
        let argv = c.argv();
        let named = format!("{what}[{i}] `{c}`");
        // The runner blocks (it waits for the command), so it runs off the runtime.
        let line = tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            corral_host::command::report(&named, &mut cmd, Some(limit))
        })
        .await
        .unwrap_or_else(|e| format!("{what}[{i}] `{c}`: the runner failed: {e}"));
        report.push(line);
    }
    report
}

/// A one-file tar archive of a `write_files` entry, for a service's container (the
/// engine makes missing parent directories). Owners are numeric there (`1000:1000`) or
/// `root`: the host cannot look names up in a container's /etc/passwd.
pub fn file_tar(f: &corral_config::schema::WriteFile) -> Result<Vec<u8>, String> {
    let id = |s: &str| -> Result<u64, String> {
        if s == "root" {
            return Ok(0);
        }
        s.parse().map_err(|_| {
            format!(
                "owner {s:?}: files written into a service take numeric ids (1000:1000) or root"
            )
        })
    };
    let (uid, gid) = match f.owner.as_deref() {
        None => (0, 0),
        Some(o) => match o.split_once(':') {
            Some((u, g)) => (id(u)?, id(g)?),
            None => {
                let u = id(o)?;
                (u, u)
            }
        },
    };
    let mut header = tar::Header::new_gnu();
    header.set_size(f.content.len() as u64);
    header.set_mode(f.permissions.0);
    header.set_uid(uid);
    header.set_gid(gid);
    header.set_mtime(0);
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_data(&mut header, f.path.trim_start_matches('/'), &f.content[..])
        .map_err(|e| e.to_string())?;
    builder.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_host::sys::fake::{Call, FakeSys};

    #[test]
    fn hostname_goes_to_the_kernel_and_both_files() {
        let sys =
            FakeSys::default().with_file("/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 old\n");
        assert!(hostname(&sys, "web1").is_empty());
        assert_eq!(sys.calls()[0], Call::SetHostname("web1".into()));
        let files = sys.files.borrow();
        assert_eq!(files[Path::new("/etc/hostname")], "web1\n");
        assert_eq!(
            files[Path::new("/etc/hosts")],
            "127.0.0.1 localhost\n127.0.1.1 web1\n"
        );
    }

    #[test]
    fn sysctl_keys_map_to_proc_sys_and_missing_ones_are_named() {
        let sys = FakeSys::default().with_file("/proc/sys/net/ipv4/ip_forward", "0\n");
        let settings: BTreeMap<SysctlKey, Scalar> =
            yaml_serde::from_str("net.ipv4.ip_forward: 1\nnet/ipv4/ip_forward: 1\nvm.nosuch: 3\n")
                .expect("yaml");
        let errors = sysctl(&sys, &settings);
        assert_eq!(
            errors,
            ["corral.sysctl.vm.nosuch: the kernel has no such setting (/proc/sys/vm/nosuch is missing)"]
        );
        assert_eq!(
            sys.calls(),
            [
                Call::Write("/proc/sys/net/ipv4/ip_forward".into(), "1\n".into()),
                Call::Write("/proc/sys/net/ipv4/ip_forward".into(), "1\n".into()),
            ]
        );
    }

    #[test]
    fn modules_load_with_dependencies_and_parameters() {
        let sys = FakeSys::default().with_file(
            "/lib/modules/6.1/modules.dep",
            "kernel/drivers/block/loop.ko:\nkernel/x/br_netfilter.ko: kernel/x/bridge.ko\nkernel/x/bridge.ko:\n",
        );
        let wanted: Vec<ModuleName> =
            yaml_serde::from_str("[br_netfilter, 'loop max_loop=64', nosuch]").expect("yaml");
        let errors = modules(&sys, "6.1", &wanted);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            sys.calls(),
            [
                Call::LoadModule(
                    "bridge".into(),
                    "/lib/modules/6.1/kernel/x/bridge.ko".into()
                ),
                Call::LoadModule(
                    "br_netfilter".into(),
                    "/lib/modules/6.1/kernel/x/br_netfilter.ko".into()
                ),
                Call::LoadModule(
                    "loop max_loop=64".into(),
                    "/lib/modules/6.1/kernel/drivers/block/loop.ko".into()
                ),
            ]
        );
    }

    #[test]
    fn mounts_make_their_target_and_split_options() {
        let sys = FakeSys::default();
        let entries: Vec<Mount> = yaml_serde::from_str(
            "- [/dev/vdb, /mnt/data, ext4, 'noatime,ro,errors=remount-ro']\n- [/dev/vdc, /mnt/any]\n",
        )
        .expect("yaml");
        assert!(mounts(&sys, &entries).is_empty());
        let calls = sys.calls();
        assert_eq!(calls[0], Call::Mkdir("/mnt/data".into()));
        assert_eq!(
            calls[1],
            Call::Mount {
                source: Some("/dev/vdb".into()),
                target: "/mnt/data".into(),
                fstype: Some("ext4".into()),
                flags: MsFlags::MS_NOATIME | MsFlags::MS_RDONLY,
                data: Some("errors=remount-ro".into()),
            }
        );
        assert!(
            matches!(&calls[3], Call::Mount { fstype: Some(t), .. } if t == "ext4"),
            "auto tries ext4 first"
        );
        let failing = FakeSys::default().failing("/mnt/data");
        let errors = mounts(&failing, &entries[..1]);
        assert!(
            errors[0].starts_with("mounts: /mnt/data: mounting fake on"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_file_for_a_service_is_a_one_entry_tar() {
        let files: Vec<corral_config::schema::WriteFile> = yaml_serde::from_str(
            "- {path: /etc/x/y, content: hi, permissions: '0600', owner: '1000:50'}\n- {path: /a, owner: corral}\n",
        )
        .expect("yaml");
        let tar_bytes = file_tar(&files[0]).expect("tar");
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut entries = archive.entries().expect("entries");
        let mut e = entries.next().expect("one").expect("entry");
        assert_eq!(e.path().expect("path").to_str(), Some("etc/x/y"));
        assert_eq!(e.header().mode().expect("mode"), 0o600);
        assert_eq!(
            (
                e.header().uid().expect("uid"),
                e.header().gid().expect("gid")
            ),
            (1000, 50)
        );
        let mut body = String::new();
        std::io::Read::read_to_string(&mut e, &mut body).expect("read");
        assert_eq!(body, "hi");
        assert!(entries.next().is_none());
        assert!(file_tar(&files[1])
            .expect_err("named owner")
            .contains("numeric ids"));
    }

    #[tokio::test]
    async fn commands_run_in_order_with_their_output_and_exit_codes() {
        let cmds: Vec<Command> =
            yaml_serde::from_str("- echo one\n- [sh, -c, 'echo two >&2; exit 3']\n- sleep 5\n")
                .expect("yaml");
        let report = run_commands("bootcmd", &cmds, Duration::from_millis(500)).await;
        assert_eq!(report[0], "bootcmd[0] `echo one`: exit 0\n    one");
        assert_eq!(
            report[1],
            "bootcmd[1] `sh -c echo two >&2; exit 3`: exit 3\n    two"
        );
        assert!(report[2].contains("still running after"), "{report:?}");
    }
}
