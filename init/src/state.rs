//! The state partition: the one place where a machine keeps what it writes. PID 1 finds
//! the filesystem labelled `CORRAL_STATE` (or RancherOS's `RANCHER_STATE`) (formatting a blank disk first when
//! `corral.state.autoformat` names it), grows its partition to the end of the disk the
//! first time (an image written to a bigger disk), mounts it at [`MOUNT`] and binds its
//! directories over the paths in [`PERSISTED`]. Without one, Corral runs from RAM (the
//! engines' data roots on tmpfs) and says so on the console, unless
//! `corral.state.required` makes that fatal.
//!
//! The settings come from the kernel command line and, when it finds no state with
//! them, from the user-data of a local datasource (NoCloud, config drive): PID 1 asks
//! [`SEED_PROGRAM`] for them, as RancherOS read `rancher.state` from the cloud-config it
//! fetched before mounting the state. The command line's settings win.
//!
//! The root itself stays a fresh overlay every boot: what persists is the list below,
//! nothing else (as on Bottlerocket), so a reboot always starts from the shipped OS.

use crate::error::{InitError, Result};
use crate::mounts;
use corral_host::cmdline::{BootOptions, StateDev};
use corral_host::layout::PERSISTED;
use corral_host::sys::{poll_devices, Sys};
use nix::mount::MsFlags;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The state filesystem's label.
pub const LABEL: &str = "CORRAL_STATE";
/// RancherOS's label, used when no filesystem has [`LABEL`]: a RancherOS state disk
/// becomes the state partition (Corral's directories are made beside RancherOS's, whose
/// contents it does not read).
pub const RANCHER_LABEL: &str = "RANCHER_STATE";
/// Where the state filesystem is mounted.
pub const MOUNT: &str = corral_host::layout::STATE;
/// A disk counts as blank when this much of its start is zeros.
pub const BLANK_BYTES: usize = 1 << 20;
/// The program that reads the state settings from a local datasource's user-data and
/// prints them as `corral.state.*` options, one a line (`corral config state-seed`).
pub const SEED_PROGRAM: &str = "/usr/bin/corral";
const SEED_ARGS: &[&str] = &["config", "state-seed"];
/// How long the seed program may take (it mounts a CD or a config drive): a device that
/// hangs never holds the boot up for longer.
const SEED_LIMIT: Duration = Duration::from_secs(30);
/// How long to wait for NVMe namespaces (probed asynchronously) to show the label.
const NVME_WAIT: Duration = Duration::from_secs(5);

/// What PID 1 ended up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The state filesystem on `device`, mounted; `grown_to` is the partition's new
    /// size in bytes when this boot grew it.
    Mounted {
        device: PathBuf,
        grown_to: Option<u64>,
        formatted: bool,
    },
    /// No state partition: everything lives in RAM.
    Live,
}

/// Whether a disk's first bytes are all zero. Fewer bytes than [`BLANK_BYTES`] (a tiny
/// device) count as not blank: nothing that small is worth a state partition.
pub fn is_blank(head: &[u8]) -> bool {
    head.len() >= BLANK_BYTES && head.iter().all(|&b| b == 0)
}

/// How long `corral.state.wait` waits for the state device.
const STATE_WAIT: Duration = Duration::from_secs(30);

/// Whether `device`'s first and last MiB are zeros (read errors: not blank).
fn blank(sys: &dyn Sys, device: &Path) -> bool {
    let head = sys.read_head(device, BLANK_BYTES);
    let tail = sys.read_tail(device, BLANK_BYTES);
    matches!((head, tail), (Ok(h), Ok(t)) if is_blank(&h) && is_blank(&t))
}

/// The devices that hold the state filesystem: `corral.state.dev` when given, else the
/// filesystem labelled [`LABEL`], else [`RANCHER_LABEL`].
fn look(sys: &dyn Sys, opts: &BootOptions) -> Vec<PathBuf> {
    match &opts.state_dev {
        Some(StateDev::Label(label)) => sys.find_labelled(label),
        // A blank device is not the state yet: autoformat may make it so.
        Some(StateDev::Path(path)) if sys.exists(path) && !blank(sys, path) => vec![path.clone()],
        Some(StateDev::Path(_)) => Vec::new(),
        None => {
            let found = sys.find_labelled(LABEL);
            if found.is_empty() {
                sys.find_labelled(RANCHER_LABEL)
            } else {
                found
            }
        }
    }
}

/// Finds the state device, waiting a little for NVMe (its namespaces show late), or up
/// to [`STATE_WAIT`] with `corral.state.wait`.
fn find(sys: &dyn Sys, opts: &BootOptions) -> Vec<PathBuf> {
    let wait = opts.state_wait == Some(true);
    let limit = if wait {
        STATE_WAIT
    } else if sys.nvme_present() {
        NVME_WAIT
    } else {
        Duration::ZERO
    };
    let found = poll_devices(sys, limit, || look(sys, opts));
    if found.is_empty() && wait {
        log::warn!(
            "corral.state.wait: no state device after {}s; running from RAM",
            STATE_WAIT.as_secs()
        );
    }
    found
}

/// The label a formatted state filesystem gets: `corral.state.dev`'s when it names one.
fn label_for(opts: &BootOptions) -> &str {
    match &opts.state_dev {
        Some(StateDev::Label(label)) => label,
        _ => LABEL,
    }
}

/// Formats the first blank device of `candidates` as the state filesystem (the whole
/// device, no partition table, as RancherOS did). Devices that hold anything are left
/// alone and named on the console.
fn autoformat(sys: &dyn Sys, candidates: &[PathBuf], label: &str) -> Option<PathBuf> {
    for device in candidates {
        if !sys.exists(device) {
            log::warn!(
                "corral.state.autoformat: {} does not exist; skipped",
                device.display()
            );
            continue;
        }
        // Both ends: a GPT keeps its backup copy in the last sectors, so a disk whose
        // first MiB was wiped may still hold a partition table and data.
        let ends = sys
            .read_head(device, BLANK_BYTES)
            .and_then(|head| Ok((head, sys.read_tail(device, BLANK_BYTES)?)));
        match ends {
            Ok((head, tail)) if is_blank(&head) && is_blank(&tail) => {}
            Ok(_) => {
                log::warn!(
                    "corral.state.autoformat: {} is not blank (its first or last MiB holds \
                     data); it is never formatted. Label a filesystem {LABEL} to use it.",
                    device.display()
                );
                continue;
            }
            Err(e) => {
                log::warn!("corral.state.autoformat: {e}");
                continue;
            }
        }
        let path = device.to_string_lossy();
        log::info!("formatting blank {path} as {label} (corral.state.autoformat)");
        match sys.run("mkfs.ext4", &["-q", "-F", "-L", label, &path]) {
            Ok(()) => return Some(device.clone()),
            Err(e) => log::error!("{e}"),
        }
    }
    None
}

/// The kernel command line's options with the state settings a local datasource's
/// user-data adds ([`SEED_PROGRAM`]'s answer), or `None` when it adds none. The program's
/// lines are `from SOURCE`, `warning: ...` and `corral.state.KEY=VALUE`.
fn seeded(sys: &dyn Sys, opts: &BootOptions) -> Option<BootOptions> {
    let text = match sys.output(SEED_PROGRAM, SEED_ARGS, SEED_LIMIT) {
        Ok(text) => text,
        Err(e) => {
            log::warn!("reading the state settings from a local datasource: {e}");
            return None;
        }
    };
    let mut source = "a local datasource";
    let mut options = Vec::new();
    for line in text.lines() {
        if let Some(from) = line.strip_prefix("from ") {
            source = from;
        } else if let Some(warning) = line.strip_prefix("warning: ") {
            log::warn!("{warning}");
        } else if line.starts_with("corral.state.") && !line.contains(char::is_whitespace) {
            options.push(line);
        }
    }
    let seed = BootOptions::parse(&options.join(" "));
    for warning in &seed.warnings {
        log::warn!("{source}: {warning}");
    }
    if !seed.has_state_settings() {
        return None;
    }
    log::info!("state settings from {source}: {}", options.join(" "));
    let mut merged = opts.clone();
    merged.fill_state_from(&seed);
    Some(merged)
}

/// Mounts the state filesystem and binds its directories; or, without one, the live
/// tmpfs mounts. Errors on the state path fall back to live mode (logged): a machine
/// whose disk fails still boots and can be reached. With `corral.state.required`, they
/// are the error this returns instead.
pub fn setup(sys: &dyn Sys, opts: &BootOptions) -> Result<State> {
    let mut found = find(sys, opts);
    let with_seed;
    let mut opts = opts;
    if found.is_empty() {
        if let Some(seed) = seeded(sys, opts) {
            with_seed = seed;
            opts = &with_seed;
            found = find(sys, opts);
        }
    }
    let required = opts.state_required == Some(true);
    let mut formatted = false;
    if found.is_empty() {
        if let Some(device) = autoformat(sys, &opts.state_autoformat, label_for(opts)) {
            found.push(device);
            formatted = true;
        }
    }
    let Some(device) = found.first().cloned() else {
        if required {
            return Err(InitError::StateRequired {
                why: "no filesystem matches corral.state.dev and no autoformat device is blank"
                    .into(),
            });
        }
        live(sys)?;
        return Ok(State::Live);
    };
    if found.len() > 1 {
        log::warn!(
            "{} filesystems are labelled {LABEL}; using {}",
            found.len(),
            device.display()
        );
    }
    // What autoformat made is ext4, whatever the setting says.
    let fstype = if formatted { "ext4" } else { fstype(opts) };
    match mount(sys, &device, fstype) {
        Ok(grown_to) => Ok(State::Mounted {
            device,
            grown_to,
            formatted,
        }),
        Err(e) if required => Err(InitError::StateRequired {
            why: format!("mounting {}: {e}", device.display()),
        }),
        Err(e) => {
            log::error!(
                "state partition {}: {e}; running from RAM instead",
                device.display()
            );
            live(sys)?;
            Ok(State::Live)
        }
    }
}

fn live(sys: &dyn Sys) -> Result<()> {
    mounts::apply(sys, &mounts::live_plan())?;
    Ok(())
}

/// The type the state is mounted as: `corral.state.fstype`, ext4 for `auto` or unset
/// (autoformat makes ext4; RancherOS's `auto` found the same).
fn fstype(opts: &BootOptions) -> &str {
    match opts.state_fstype.as_deref() {
        None | Some("auto") => "ext4",
        Some(other) => other,
    }
}

fn mount(sys: &dyn Sys, device: &Path, fstype: &str) -> Result<Option<u64>> {
    let grown_to = match sys.grow_partition(device) {
        Ok(g) => g,
        Err(e) => {
            // Still usable at its old size.
            log::warn!("{e}");
            None
        }
    };
    let target = Path::new(MOUNT);
    sys.mkdir_all(target)?;
    sys.mount(
        Some(&device.to_string_lossy()),
        target,
        Some(fstype),
        MsFlags::MS_NOATIME,
        None,
    )?;
    if grown_to.is_some() {
        // Online growth: the filesystem follows its partition while mounted.
        if let Err(e) = sys.run("resize2fs", &[&device.to_string_lossy()]) {
            log::warn!("{e}; the state filesystem keeps its old size");
        }
    }
    for (dir, at) in PERSISTED {
        let source = target.join(dir);
        sys.mkdir_all(&source)?;
        sys.mkdir_all(Path::new(at))?;
        sys.mount(
            Some(&source.to_string_lossy()),
            Path::new(at),
            None,
            MsFlags::MS_BIND,
            None,
        )?;
    }
    Ok(grown_to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_host::sys::fake::{Call, FakeSys};

    fn mounts_of(sys: &FakeSys) -> Vec<(Option<String>, PathBuf)> {
        sys.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Mount { source, target, .. } => Some((source, target)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_labelled_partition_is_grown_mounted_and_bound() {
        let mut sys = FakeSys::default().with_label(LABEL, "/dev/nvme0n1p5");
        sys.grown = Some(4 << 30);
        let state = setup(&sys, &BootOptions::default()).unwrap();
        assert_eq!(
            state,
            State::Mounted {
                device: "/dev/nvme0n1p5".into(),
                grown_to: Some(4 << 30),
                formatted: false
            }
        );
        let calls = sys.calls();
        let grow = calls
            .iter()
            .position(|c| *c == Call::Grow("/dev/nvme0n1p5".into()));
        let resize = calls
            .iter()
            .position(|c| *c == Call::Run("resize2fs /dev/nvme0n1p5".into()));
        assert!(grow < resize, "the partition grows before its filesystem");
        let m = mounts_of(&sys);
        assert_eq!(m[0], (Some("/dev/nvme0n1p5".into()), PathBuf::from(MOUNT)));
        assert!(m.contains(&(
            Some("/run/corral/state/docker".into()),
            PathBuf::from("/var/lib/docker")
        )));
        assert!(m.contains(&(
            Some("/run/corral/state/home".into()),
            PathBuf::from("/home")
        )));
        assert_eq!(m.len(), 1 + PERSISTED.len(), "no tmpfs data roots");
    }

    #[test]
    fn rancheros_label_is_the_state_when_corrals_is_missing() {
        let sys = FakeSys::default().with_label(RANCHER_LABEL, "/dev/sdb");
        let state = setup(&sys, &BootOptions::default()).unwrap();
        assert!(
            matches!(&state, State::Mounted { device, .. } if device == Path::new("/dev/sdb")),
            "{state:?}"
        );
        let both = FakeSys::default()
            .with_label(RANCHER_LABEL, "/dev/sdb")
            .with_label(LABEL, "/dev/sda5");
        let state = setup(&both, &BootOptions::default()).unwrap();
        assert!(
            matches!(&state, State::Mounted { device, .. } if device == Path::new("/dev/sda5")),
            "CORRAL_STATE first: {state:?}"
        );
    }

    #[test]
    fn not_grown_means_no_resize() {
        let sys = FakeSys::default().with_label(LABEL, "/dev/vda5");
        setup(&sys, &BootOptions::default()).unwrap();
        assert!(!sys.calls().iter().any(|c| matches!(c, Call::Run(_))));
    }

    #[test]
    fn no_state_partition_means_tmpfs_data_roots() {
        let sys = FakeSys::default();
        assert_eq!(setup(&sys, &BootOptions::default()).unwrap(), State::Live);
        let m = mounts_of(&sys);
        assert!(m.contains(&(
            Some("system-docker".into()),
            PathBuf::from("/var/lib/system-docker")
        )));
        assert!(!m.iter().any(|(_, t)| t == Path::new(MOUNT)));
    }

    #[test]
    fn autoformat_formats_only_a_blank_disk() {
        let opts = BootOptions::parse("corral.state.autoformat=[/dev/vdb,/dev/vdc]");
        let blank = "\0".repeat(BLANK_BYTES);
        let mut data = blank.clone();
        data.replace_range(600_000..600_004, "DATA");
        let sys = FakeSys::default()
            .with_file("/dev/vdb", &data)
            .with_file("/dev/vdc", &blank);
        let state = setup(&sys, &opts).unwrap();
        assert_eq!(
            state,
            State::Mounted {
                device: "/dev/vdc".into(),
                grown_to: None,
                formatted: true
            }
        );
        let runs: Vec<_> = sys
            .calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Run(_)))
            .collect();
        assert_eq!(
            runs,
            [
                Call::Run("/usr/bin/corral config state-seed".into()),
                Call::Run("mkfs.ext4 -q -F -L CORRAL_STATE /dev/vdc".into())
            ],
            "nothing found: a local datasource is asked before formatting"
        );
    }

    fn seed_answer(lines: &str) -> FakeSys {
        FakeSys::default().with_output(SEED_PROGRAM, lines)
    }

    #[test]
    fn a_local_datasources_state_settings_apply_when_the_command_line_finds_nothing() {
        let sys = seed_answer(
            "from nocloud:/dev/sr0\nwarning: something said\n\
             corral.state.dev=LABEL=SEEDED\ncorral.state.autoformat=[/dev/vdc]\nnoise\n",
        )
        .with_file("/dev/vdc", &"\0".repeat(BLANK_BYTES));
        let state = setup(&sys, &BootOptions::default()).unwrap();
        assert!(
            matches!(&state, State::Mounted { device, formatted: true, .. } if device == Path::new("/dev/vdc")),
            "{state:?}"
        );
        assert!(sys
            .calls()
            .contains(&Call::Run("mkfs.ext4 -q -F -L SEEDED /dev/vdc".into())));
        // Found by its label on the next boot: the seed is not asked again.
        let next = seed_answer("corral.state.dev=LABEL=SEEDED\n").with_label("SEEDED", "/dev/vdc");
        setup(&next, &BootOptions::default()).unwrap();
        let asked = next
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Run(l) if l.contains("state-seed")))
            .count();
        assert_eq!(asked, 1, "once, to learn the label");
        let found = FakeSys::default().with_label(LABEL, "/dev/vda5");
        setup(&found, &BootOptions::default()).unwrap();
        assert!(!found.calls().iter().any(|c| matches!(c, Call::Run(_))));
    }

    #[test]
    fn the_command_lines_state_settings_win_over_a_datasources() {
        let mut data = "\0".repeat(BLANK_BYTES);
        data.replace_range(10..14, "DATA");
        let sys = seed_answer("corral.state.autoformat=[/dev/vdc]\ncorral.state.dev=/dev/sdq\n")
            .with_file("/dev/vdb", &data)
            .with_file("/dev/vdc", &"\0".repeat(BLANK_BYTES));
        let opts = BootOptions::parse("corral.state.autoformat=/dev/vdb");
        assert_eq!(setup(&sys, &opts).unwrap(), State::Live);
        assert!(!sys
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Run(l) if l.starts_with("mkfs"))));
        // A seed with nothing usable (a malformed device) changes nothing.
        let bad = seed_answer("corral.state.dev=sdb\ncorral.state.dev=/dev/a b\n");
        assert_eq!(setup(&bad, &BootOptions::default()).unwrap(), State::Live);
        // No program (an older root): running from RAM, as before.
        assert_eq!(
            setup(&FakeSys::default(), &BootOptions::default()).unwrap(),
            State::Live
        );
    }

    #[test]
    fn a_required_state_that_is_missing_or_does_not_mount_is_an_error() {
        let opts = BootOptions::parse("rancher.state.required=true");
        let err = setup(&FakeSys::default(), &opts).expect_err("missing");
        assert!(err.to_string().contains("corral.state.required"), "{err}");
        let broken = FakeSys::default()
            .with_label(LABEL, "/dev/vda5")
            .failing(MOUNT);
        let err = setup(&broken, &opts).expect_err("does not mount");
        assert!(err.to_string().contains("/dev/vda5"), "{err}");
        assert_eq!(
            setup(&broken, &BootOptions::default()).unwrap(),
            State::Live,
            "not required: RAM"
        );
        // Required by the datasource's user-data alone.
        let seeded = seed_answer("corral.state.required=true\n");
        assert!(setup(&seeded, &BootOptions::default()).is_err());
    }

    #[test]
    fn fstype_names_the_mounts_type_and_auto_is_ext4() {
        for (line, want) in [
            ("corral.state.fstype=xfs", "xfs"),
            ("corral.state.fstype=auto", "ext4"),
            ("", "ext4"),
        ] {
            let sys = FakeSys::default().with_label(LABEL, "/dev/vda5");
            setup(&sys, &BootOptions::parse(line)).unwrap();
            let fstype = sys.calls().into_iter().find_map(|c| match c {
                Call::Mount { target, fstype, .. } if target == Path::new(MOUNT) => fstype,
                _ => None,
            });
            assert_eq!(fstype.as_deref(), Some(want), "{line}");
        }
    }

    #[test]
    fn state_dev_names_the_label_or_the_device_and_autoformat_uses_its_label() {
        let by_label = FakeSys::default()
            .with_label(LABEL, "/dev/vda5")
            .with_label("MYSTATE", "/dev/vdb");
        let opts = BootOptions::parse("rancher.state.dev=LABEL=MYSTATE");
        assert!(matches!(setup(&by_label, &opts).unwrap(),
            State::Mounted { device, .. } if device == Path::new("/dev/vdb")));
        let by_path = FakeSys::default().with_file("/dev/sdc", "ext4 here");
        let opts = BootOptions::parse("corral.state.dev=/dev/sdc");
        assert!(matches!(setup(&by_path, &opts).unwrap(),
            State::Mounted { device, .. } if device == Path::new("/dev/sdc")));
        // Named and missing: RAM, even with a CORRAL_STATE elsewhere.
        let missing = FakeSys::default().with_label(LABEL, "/dev/vda5");
        let opts = BootOptions::parse("corral.state.dev=/dev/sdz corral.state.wait=true");
        assert_eq!(setup(&missing, &opts).unwrap(), State::Live);
        // A blank device named by path is formatted when autoformat lists it.
        let blank_named = FakeSys::default().with_file("/dev/vdd", &"\0".repeat(BLANK_BYTES));
        let opts = BootOptions::parse("corral.state.dev=/dev/vdd corral.state.autoformat=/dev/vdd");
        assert!(matches!(
            setup(&blank_named, &opts).unwrap(),
            State::Mounted {
                formatted: true,
                ..
            }
        ));
        // A blank disk formatted for the named label, so the next boot finds it.
        let blank = FakeSys::default().with_file("/dev/vdc", &"\0".repeat(BLANK_BYTES));
        let opts =
            BootOptions::parse("corral.state.dev=LABEL=MYSTATE corral.state.autoformat=/dev/vdc");
        setup(&blank, &opts).unwrap();
        assert!(blank
            .calls()
            .contains(&Call::Run("mkfs.ext4 -q -F -L MYSTATE /dev/vdc".into())));
    }

    #[test]
    fn autoformat_never_touches_a_disk_with_data_and_falls_back_to_ram() {
        let opts = BootOptions::parse("corral.state.autoformat=/dev/vdb");
        let mut data = "\0".repeat(BLANK_BYTES);
        data.replace_range(BLANK_BYTES - 1.., "x");
        let sys = FakeSys::default().with_file("/dev/vdb", &data);
        assert_eq!(setup(&sys, &opts).unwrap(), State::Live);
        assert!(!sys
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Run(l) if l.starts_with("mkfs"))));
        // A short device is not blank either.
        assert!(!is_blank(&[0u8; 512]));
    }

    #[test]
    fn autoformat_never_touches_a_disk_whose_end_holds_a_backup_partition_table() {
        let opts = BootOptions::parse("corral.state.autoformat=/dev/vdb");
        // The first MiB wiped, the backup GPT header still in the last sector.
        let mut data = "\0".repeat(4 * BLANK_BYTES);
        data.replace_range(4 * BLANK_BYTES - 512..4 * BLANK_BYTES - 504, "EFI PART");
        let sys = FakeSys::default().with_file("/dev/vdb", &data);
        assert_eq!(setup(&sys, &opts).unwrap(), State::Live);
        assert!(!sys
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Run(l) if l.starts_with("mkfs"))));
    }

    #[test]
    fn nvme_is_waited_for_then_given_up_on() {
        let sys = FakeSys {
            nvme: true,
            ..Default::default()
        };
        assert_eq!(setup(&sys, &BootOptions::default()).unwrap(), State::Live);
    }

    #[test]
    fn a_failing_mount_falls_back_to_ram() {
        let sys = FakeSys::default()
            .with_label(LABEL, "/dev/vda5")
            .failing(MOUNT);
        assert_eq!(setup(&sys, &BootOptions::default()).unwrap(), State::Live);
    }
}
